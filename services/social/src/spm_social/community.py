"""Communities: people gathered around objectives, with owner and member roles, invitations, followers and linked goals.

Each community is one aggregate, and each organisation has one ``CommunityCatalogue`` that lists
its communities in creation order, so listing them needs no read model.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from spm_social.graph_rules import SocialGraphError, check_event_time

OWNER = "owner"
MEMBER = "member"
MAX_NAME_LENGTH = 200
MAX_DESCRIPTION_LENGTH = 5000

# Catalogue ids derive from the organisation, so the first community of an org needs no lookup.
CATALOGUE_ID_NAMESPACE = UUID("9d2e6c41-7b3a-5f08-8c1d-4e6f0a2b3c5d")


class CommunityPermissionError(PermissionError):
    """Raised when the actor's role in the community does not allow the command. Nothing is recorded."""


class LastOwnerError(RuntimeError):
    """Raised when the last owner tries to leave while other members remain. Nothing is recorded."""


@dataclass(frozen=True)
class GoalLink:
    goal_id: str
    linked_by: str
    linked_at: datetime


def catalogue_id_for(org_id: str) -> UUID:
    """Return the id of the catalogue of one organisation's communities."""
    return uuid5(CATALOGUE_ID_NAMESPACE, org_id)


def check_name_and_description(name: str, description: str) -> tuple[str, str]:
    """Return the stripped name and description, raising SocialGraphError naming the field that is out of bounds."""
    name = name.strip()
    if not 1 <= len(name) <= MAX_NAME_LENGTH:
        raise SocialGraphError("name", f"name must have 1 to {MAX_NAME_LENGTH} characters besides spaces")
    if len(description) > MAX_DESCRIPTION_LENGTH:
        raise SocialGraphError("description", f"description must have at most {MAX_DESCRIPTION_LENGTH} characters")
    return name, description


class Community(Aggregate):
    """One community of an organisation. Every change is an event with its event time and actor."""

    @classmethod
    def start(cls, org_id: str, name: str, description: str, actor_id: str, occurred_at: datetime) -> Community:
        """Create a community whose creator is its first member, as owner."""
        name, description = check_name_and_description(name, description)
        occurred_at = check_event_time(occurred_at)
        return cls(org_id=org_id, name=name, description=description, actor_id=actor_id, occurred_at=occurred_at)

    @event("Created")
    def __init__(self, org_id: str, name: str, description: str, actor_id: str, occurred_at: datetime) -> None:
        self.org_id = org_id
        self.name = name
        self.description = description
        self.created_by = actor_id
        self.created_at = occurred_at
        self.members: dict[str, str] = {actor_id: OWNER}
        self.invitations: dict[str, str] = {}
        self.followers: set[str] = set()
        self.linked_goals: dict[str, GoalLink] = {}

    class Described(Aggregate.Event):
        org_id: str
        name: str
        description: str
        actor_id: str
        occurred_at: datetime

        def apply(self, community: Community) -> None:
            community.name = self.name
            community.description = self.description

    class MemberJoined(Aggregate.Event):
        org_id: str
        member_id: str
        role: str
        actor_id: str
        occurred_at: datetime

        def apply(self, community: Community) -> None:
            community.members[self.member_id] = self.role
            community.invitations.pop(self.member_id, None)

    class MemberLeft(Aggregate.Event):
        """The member left, or an owner (the actor) removed them."""

        org_id: str
        member_id: str
        actor_id: str
        occurred_at: datetime

        def apply(self, community: Community) -> None:
            community.members.pop(self.member_id, None)

    class MemberInvited(Aggregate.Event):
        org_id: str
        invitee_id: str
        actor_id: str
        occurred_at: datetime

        def apply(self, community: Community) -> None:
            community.invitations[self.invitee_id] = self.actor_id

    class Followed(Aggregate.Event):
        org_id: str
        follower_id: str
        actor_id: str
        occurred_at: datetime

        def apply(self, community: Community) -> None:
            community.followers.add(self.follower_id)

    class Unfollowed(Aggregate.Event):
        org_id: str
        follower_id: str
        actor_id: str
        occurred_at: datetime

        def apply(self, community: Community) -> None:
            community.followers.discard(self.follower_id)

    class GoalLinked(Aggregate.Event):
        org_id: str
        goal_id: str
        actor_id: str
        occurred_at: datetime

        def apply(self, community: Community) -> None:
            community.linked_goals[self.goal_id] = GoalLink(self.goal_id, self.actor_id, self.occurred_at)

    class GoalUnlinked(Aggregate.Event):
        org_id: str
        goal_id: str
        actor_id: str
        occurred_at: datetime

        def apply(self, community: Community) -> None:
            community.linked_goals.pop(self.goal_id, None)

    @property
    def owner_ids(self) -> list[str]:
        return sorted(person_id for person_id, role in self.members.items() if role == OWNER)

    def describe(self, actor_id: str, name: str, description: str, occurred_at: datetime) -> bool:
        """Give the community a new name and description. Return False if both are unchanged."""
        occurred_at = check_event_time(occurred_at)
        self._check_owner(actor_id, "describe the community")
        name, description = check_name_and_description(name, description)
        if (name, description) == (self.name, self.description):
            return False
        self.trigger_event(self.Described, **self._context(actor_id, occurred_at), name=name, description=description)
        return True

    def join(self, person_id: str, occurred_at: datetime) -> bool:
        """Make the person a member. Return False if they already are.

        No invitation is needed. The first person to join a community that has no members becomes
        its owner, so an emptied community can be taken over again.
        """
        occurred_at = check_event_time(occurred_at)
        if person_id in self.members:
            return False
        role = MEMBER if self.members else OWNER
        self.trigger_event(self.MemberJoined, **self._context(person_id, occurred_at), member_id=person_id, role=role)
        return True

    def leave(self, person_id: str, occurred_at: datetime) -> bool:
        """Remove the person from the members. Return False if they are not a member."""
        occurred_at = check_event_time(occurred_at)
        if person_id not in self.members:
            return False
        if self.owner_ids == [person_id] and len(self.members) > 1:
            raise LastOwnerError(
                "you are the community's last owner and other members remain; "
                "remove the other members first, then leave"
            )
        self.trigger_event(self.MemberLeft, **self._context(person_id, occurred_at), member_id=person_id)
        return True

    def remove_member(self, actor_id: str, member_id: str, occurred_at: datetime) -> bool:
        """Let an owner remove another member. Return False if the person is not a member."""
        occurred_at = check_event_time(occurred_at)
        self._check_owner(actor_id, "remove members")
        if member_id == actor_id:
            raise SocialGraphError("person_id", "cannot remove yourself from the community; leave it instead")
        if member_id not in self.members:
            return False
        self.trigger_event(self.MemberLeft, **self._context(actor_id, occurred_at), member_id=member_id)
        return True

    def invite(self, actor_id: str, invitee_id: str, occurred_at: datetime) -> bool:
        """Let a member invite a person. Return False if the person is already a member or invited."""
        occurred_at = check_event_time(occurred_at)
        self.check_member(actor_id, "invite people")
        if invitee_id in self.members or invitee_id in self.invitations:
            return False
        self.trigger_event(self.MemberInvited, **self._context(actor_id, occurred_at), invitee_id=invitee_id)
        return True

    def follow(self, person_id: str, occurred_at: datetime) -> bool:
        """Make the person follow the community. Return False if they already do."""
        occurred_at = check_event_time(occurred_at)
        if person_id in self.followers:
            return False
        self.trigger_event(self.Followed, **self._context(person_id, occurred_at), follower_id=person_id)
        return True

    def unfollow(self, person_id: str, occurred_at: datetime) -> bool:
        """Make the person stop following the community. Return False if they did not follow it."""
        occurred_at = check_event_time(occurred_at)
        if person_id not in self.followers:
            return False
        self.trigger_event(self.Unfollowed, **self._context(person_id, occurred_at), follower_id=person_id)
        return True

    def link_goal(self, actor_id: str, goal_id: str, occurred_at: datetime) -> bool:
        """Let a member link a goal to the community. Return False if it is already linked."""
        occurred_at = check_event_time(occurred_at)
        self.check_member(actor_id, "link goals")
        if goal_id in self.linked_goals:
            return False
        self.trigger_event(self.GoalLinked, **self._context(actor_id, occurred_at), goal_id=goal_id)
        return True

    def unlink_goal(self, actor_id: str, goal_id: str, occurred_at: datetime) -> bool:
        """Let an owner, or the member who linked the goal, unlink it. Return False if it is not linked."""
        occurred_at = check_event_time(occurred_at)
        link = self.linked_goals.get(goal_id)
        if link is None:
            return False
        if self.members.get(actor_id) != OWNER and not (actor_id in self.members and link.linked_by == actor_id):
            raise CommunityPermissionError(
                "only an owner of the community, or the member who linked the goal, may unlink it; ask an owner"
            )
        self.trigger_event(self.GoalUnlinked, **self._context(actor_id, occurred_at), goal_id=goal_id)
        return True

    def check_member(self, person_id: str, action: str) -> None:
        """Raise CommunityPermissionError unless the person is a member; ``action`` completes "only members may ..."."""
        if person_id not in self.members:
            raise CommunityPermissionError(f"only members of the community may {action}; join the community first")

    def _check_owner(self, person_id: str, action: str) -> None:
        if self.members.get(person_id) != OWNER:
            raise CommunityPermissionError(f"only owners of the community may {action}; ask an owner")

    def _context(self, actor_id: str, occurred_at: datetime) -> dict[str, object]:
        return {"org_id": self.org_id, "actor_id": actor_id, "occurred_at": occurred_at}


class CommunityCatalogue(Aggregate):
    """The ids of one organisation's communities in creation order. Its events are not published."""

    @staticmethod
    def create_id(org_id: str) -> UUID:
        return catalogue_id_for(org_id)

    @event("Started")
    def __init__(self, org_id: str) -> None:
        self.org_id = org_id
        self.community_ids: list[str] = []

    class CommunityListed(Aggregate.Event):
        community_id: str

        def apply(self, catalogue: CommunityCatalogue) -> None:
            catalogue.community_ids.append(self.community_id)

    def add(self, community_id: str) -> None:
        self.trigger_event(self.CommunityListed, community_id=community_id)

    def page(self, limit: int, after_id: str | None) -> list[str]:
        """Return up to ``limit`` community ids after ``after_id``, or the first ones when it is None.

        Raises KeyError for an ``after_id`` that the catalogue does not list.
        """
        start = 0
        if after_id is not None:
            try:
                start = self.community_ids.index(after_id) + 1
            except ValueError:
                raise KeyError(after_id) from None
        return self.community_ids[start : start + limit]
