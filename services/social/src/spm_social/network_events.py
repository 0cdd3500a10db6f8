"""Maps the domain events of communities and people follows to the published spm.social.v1 integration events."""

from __future__ import annotations

from spm_events.schemas import (
    CommunityCreatedV1,
    CommunityDescribedV1,
    CommunityFollowedV1,
    CommunityGoalLinkedV1,
    CommunityGoalUnlinkedV1,
    CommunityMemberInvitedV1,
    CommunityMemberJoinedV1,
    CommunityMemberLeftV1,
    CommunityUnfollowedV1,
    Payload,
    PersonFollowedV1,
    PersonUnfollowedV1,
)
from spm_social.community import Community, CommunityCatalogue
from spm_social.person_graph import PersonFollowGraph


def is_network_event(domain_event: object) -> bool:
    """Tell whether the event belongs to a community, a community catalogue or a person's follow graph."""
    return isinstance(domain_event, (Community.Event, CommunityCatalogue.Event, PersonFollowGraph.Event))


def network_integration_payload(domain_event: object) -> Payload | None:
    """Return the payload of a community or person-follow event, or None for the events that are not published.

    The catalogue and a follow graph's ``Started`` are bookkeeping: consumers learn about a
    community from ``CommunityCreated`` and about a follow graph from its first ``PersonFollowed``.
    """
    if isinstance(domain_event, (CommunityCatalogue.Event, PersonFollowGraph.Started)):
        return None
    if isinstance(domain_event, PersonFollowGraph.PersonFollowed):
        return PersonFollowedV1(person_id=domain_event.person_id, follower_id=domain_event.follower_id)
    if isinstance(domain_event, PersonFollowGraph.PersonUnfollowed):
        return PersonUnfollowedV1(person_id=domain_event.person_id, follower_id=domain_event.follower_id)
    if isinstance(domain_event, Community.Event):
        return _community_payload(domain_event, str(domain_event.originator_id))
    raise TypeError(f"no integration event for domain event {type(domain_event).__qualname__}")


def _community_payload(domain_event: Community.Event, community_id: str) -> Payload:
    if isinstance(domain_event, Community.Created):
        return CommunityCreatedV1(
            community_id=community_id,
            name=domain_event.name,  # type: ignore[attr-defined]
            description=domain_event.description,  # type: ignore[attr-defined]
            owner_id=domain_event.actor_id,  # type: ignore[attr-defined]
        )
    if isinstance(domain_event, Community.Described):
        return CommunityDescribedV1(
            community_id=community_id, name=domain_event.name, description=domain_event.description
        )
    if isinstance(domain_event, Community.MemberJoined):
        return CommunityMemberJoinedV1(
            community_id=community_id, member_id=domain_event.member_id, role=domain_event.role
        )
    if isinstance(domain_event, Community.MemberLeft):
        return CommunityMemberLeftV1(community_id=community_id, member_id=domain_event.member_id)
    if isinstance(domain_event, Community.MemberInvited):
        return CommunityMemberInvitedV1(community_id=community_id, invitee_id=domain_event.invitee_id)
    if isinstance(domain_event, Community.Followed):
        return CommunityFollowedV1(community_id=community_id, follower_id=domain_event.follower_id)
    if isinstance(domain_event, Community.Unfollowed):
        return CommunityUnfollowedV1(community_id=community_id, follower_id=domain_event.follower_id)
    if isinstance(domain_event, Community.GoalLinked):
        return CommunityGoalLinkedV1(community_id=community_id, goal_id=domain_event.goal_id)
    if isinstance(domain_event, Community.GoalUnlinked):
        return CommunityGoalUnlinkedV1(community_id=community_id, goal_id=domain_event.goal_id)
    raise TypeError(f"no integration event for domain event {type(domain_event).__qualname__}")
