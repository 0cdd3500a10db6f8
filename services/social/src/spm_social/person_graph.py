"""The followers of one person: whose activity reaches whose feed."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from spm_social.graph_rules import SocialGraphError, check_event_time

# Graph ids derive from the organisation and the followed person, so each person has exactly one graph.
PERSON_GRAPH_ID_NAMESPACE = UUID("5a7c2e90-4b1d-5c6e-a3f8-1d0b9e7c6a42")


def person_graph_id_for(org_id: str, person_id: str) -> UUID:
    """Return the id of the follow graph of one person of one organisation."""
    return uuid5(PERSON_GRAPH_ID_NAMESPACE, f"{org_id}/{person_id}")


class PersonFollowGraph(Aggregate):
    """The people who follow one person. Each change is an event with its event time."""

    @staticmethod
    def create_id(org_id: str, person_id: str) -> UUID:
        return person_graph_id_for(org_id, person_id)

    @event("Started")
    def __init__(self, org_id: str, person_id: str) -> None:
        self.org_id = org_id
        self.person_id = person_id
        self.followers: set[str] = set()

    class PersonFollowed(Aggregate.Event):
        org_id: str
        person_id: str
        follower_id: str
        actor_id: str
        occurred_at: datetime

        def apply(self, graph: PersonFollowGraph) -> None:
            graph.followers.add(self.follower_id)

    class PersonUnfollowed(Aggregate.Event):
        org_id: str
        person_id: str
        follower_id: str
        actor_id: str
        occurred_at: datetime

        def apply(self, graph: PersonFollowGraph) -> None:
            graph.followers.discard(self.follower_id)

    def follow(self, follower_id: str, occurred_at: datetime) -> bool:
        """Record that ``follower_id`` follows the person. Return False if they already did."""
        occurred_at = check_event_time(occurred_at)
        if follower_id == self.person_id:
            raise SocialGraphError("person_id", "cannot follow yourself; follow another person")
        if follower_id in self.followers:
            return False
        self.trigger_event(self.PersonFollowed, **self._context(follower_id, occurred_at))
        return True

    def unfollow(self, follower_id: str, occurred_at: datetime) -> bool:
        """Record that ``follower_id`` stopped following the person. Return False if they did not follow them."""
        occurred_at = check_event_time(occurred_at)
        if follower_id not in self.followers:
            return False
        self.trigger_event(self.PersonUnfollowed, **self._context(follower_id, occurred_at))
        return True

    def _context(self, follower_id: str, occurred_at: datetime) -> dict[str, object]:
        return {
            "org_id": self.org_id,
            "person_id": self.person_id,
            "follower_id": follower_id,
            "actor_id": follower_id,
            "occurred_at": occurred_at,
        }
