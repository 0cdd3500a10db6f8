"""The social graph of one goal: who follows it and who is tagged as a collaborator on it."""

from __future__ import annotations

from datetime import datetime, timezone
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

# Graph ids are derived from the organisation and goal, so each goal has exactly one graph and
# the first follow of a goal never needs a lookup to find it.
GRAPH_ID_NAMESPACE = UUID("3c1f0b7e-2d4a-5e8b-9f60-7a1d2c3b4e5f")


class SocialGraphError(ValueError):
    """Raised when a command would break a rule of the social graph; nothing is recorded."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def graph_id_for(org_id: str, goal_id: str) -> UUID:
    """Return the id of the social graph of one goal of one organisation."""
    return uuid5(GRAPH_ID_NAMESPACE, f"{org_id}/{goal_id}")


def check_event_time(occurred_at: datetime) -> datetime:
    """Return ``occurred_at`` in UTC, raising SocialGraphError if it is naive or in the future."""
    if occurred_at.tzinfo is None or occurred_at.utcoffset() is None:
        raise SocialGraphError("occurred_at", "occurred_at must include a timezone offset")
    in_utc = occurred_at.astimezone(timezone.utc)
    if in_utc > datetime.now(timezone.utc):
        raise SocialGraphError("occurred_at", "occurred_at is in the future; send a time at or before now")
    return in_utc


class GoalSocialGraph(Aggregate):
    """Followers and tagged collaborators of one goal; each change is an event with its event time."""

    @staticmethod
    def create_id(org_id: str, goal_id: str) -> UUID:
        return graph_id_for(org_id, goal_id)

    @event("Started")
    def __init__(self, org_id: str, goal_id: str) -> None:
        self.org_id = org_id
        self.goal_id = goal_id
        self.followers: set[str] = set()
        self.collaborators: dict[str, str] = {}

    class GoalFollowed(Aggregate.Event):
        org_id: str
        goal_id: str
        follower_id: str
        actor_id: str
        occurred_at: datetime

        def apply(self, graph: GoalSocialGraph) -> None:
            graph.followers.add(self.follower_id)

    class GoalUnfollowed(Aggregate.Event):
        org_id: str
        goal_id: str
        follower_id: str
        actor_id: str
        occurred_at: datetime

        def apply(self, graph: GoalSocialGraph) -> None:
            graph.followers.discard(self.follower_id)

    class CollaboratorTagged(Aggregate.Event):
        org_id: str
        goal_id: str
        collaborator_id: str
        actor_id: str
        occurred_at: datetime

        def apply(self, graph: GoalSocialGraph) -> None:
            graph.collaborators[self.collaborator_id] = self.actor_id

    def follow(self, person_id: str, occurred_at: datetime) -> bool:
        """Record that ``person_id`` follows the goal; return False if they already did."""
        occurred_at = check_event_time(occurred_at)
        if person_id in self.followers:
            return False
        self.trigger_event(self.GoalFollowed, **self._event_context(person_id, occurred_at), follower_id=person_id)
        return True

    def unfollow(self, person_id: str, occurred_at: datetime) -> bool:
        """Record that ``person_id`` stopped following the goal; return False if they did not follow it."""
        occurred_at = check_event_time(occurred_at)
        if person_id not in self.followers:
            return False
        self.trigger_event(self.GoalUnfollowed, **self._event_context(person_id, occurred_at), follower_id=person_id)
        return True

    def tag_collaborator(self, collaborator_id: str, tagged_by: str, occurred_at: datetime) -> bool:
        """Record that ``tagged_by`` tagged ``collaborator_id``; return False if they were already tagged."""
        occurred_at = check_event_time(occurred_at)
        if collaborator_id == tagged_by:
            raise SocialGraphError("person_id", "cannot tag yourself as a collaborator; tag another person")
        if collaborator_id in self.collaborators:
            return False
        self.trigger_event(
            self.CollaboratorTagged, **self._event_context(tagged_by, occurred_at), collaborator_id=collaborator_id
        )
        return True

    def _event_context(self, actor_id: str, occurred_at: datetime) -> dict[str, object]:
        return {"org_id": self.org_id, "goal_id": self.goal_id, "actor_id": actor_id, "occurred_at": occurred_at}
