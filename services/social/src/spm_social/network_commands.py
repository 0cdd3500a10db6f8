"""Use cases of communities and of following people, mixed into SocialApplication.

The mixins rely on the application's repository, ``save``, ``goal_audiences``, ``people`` (the
people directory) and its goal visibility check, so they live apart from the goal use cases only
to keep each module about one concept.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from spm_events.auth import Principal
from spm_social.community import Community, CommunityCatalogue, GoalLink, catalogue_id_for
from spm_social.directory_lookup import DirectoryLookups, find_person
from spm_social.person_graph import PersonFollowGraph, person_graph_id_for

logger = logging.getLogger(__name__)

# Same scheme as the goal graphs: one process serialises changes to one aggregate with a striped
# lock, and a version conflict with another replica is retried on fresh state, then rejected with 409.
LOCK_STRIPES = 64
MAX_SAVE_ATTEMPTS = 5
_aggregate_locks = [threading.Lock() for _ in range(LOCK_STRIPES)]


class CommunityNotFoundError(LookupError):
    """Raised for a community that does not exist in the caller's organisation."""

    def __init__(self, community_id: UUID) -> None:
        super().__init__(f"community {community_id} not found")
        self.community_id = community_id


class InvalidCommunityCursorError(ValueError):
    """Raised for a list cursor that names no community of the organisation."""


class ConcurrentUpdateError(RuntimeError):
    """Raised when an aggregate kept changing under a command for every save attempt."""


@dataclass(frozen=True)
class CommunitySummary:
    community_id: str
    name: str
    description: str
    created_by: str
    created_at: datetime
    owner_ids: list[str]
    member_count: int
    follower_count: int
    your_role: str | None
    invited: bool
    following: bool


@dataclass(frozen=True)
class CommunityDetail(CommunitySummary):
    linked_goals: list[GoalLink]
    pending_invitee_ids: list[str] | None


class SavesWithRetries:
    """Loads aggregates and saves a change with the striped lock and the retries on version conflicts."""

    repository: Any
    save: Callable[..., Any]

    def _load_aggregate(self, aggregate_id: UUID) -> Any:
        try:
            return self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None

    def _save_with_retries(self, lock_id: UUID, prepare: Callable[[], list[Aggregate] | None]) -> bool:
        """Call ``prepare`` on fresh state and save the aggregates it returns, or return False when it returns none."""
        with _aggregate_locks[lock_id.int % LOCK_STRIPES]:
            for attempt in range(1, MAX_SAVE_ATTEMPTS + 1):
                aggregates = prepare()
                if not aggregates:
                    return False
                try:
                    self.save(*aggregates)
                except IntegrityError:
                    logger.warning("aggregate changed by another process aggregate_id=%s attempt=%s", lock_id, attempt)
                    time.sleep(random.uniform(0.005, 0.02) * attempt)
                    continue
                logger.info("aggregate saved aggregate_id=%s version=%s", lock_id, aggregates[0].version)
                return True
        raise ConcurrentUpdateError(f"aggregate {lock_id} kept changing during {MAX_SAVE_ATTEMPTS} attempts")


class CommunityCommands(SavesWithRetries):
    goal_audiences: Any
    people: DirectoryLookups | None
    _check_goal_is_visible: Callable[[Principal, str], None]

    def create_community(self, actor: Principal, name: str, description: str, occurred_at: datetime) -> CommunityDetail:
        """Create a community owned by the actor and list it in the organisation's catalogue, in one transaction."""
        created: list[Community] = []

        def prepare() -> list[Aggregate]:
            # A failed save has already taken the new community's events, so each attempt starts a new one.
            created[:] = [Community.start(actor.org_id, name, description, actor.person_id, occurred_at)]
            catalogue_id = catalogue_id_for(actor.org_id)
            catalogue = self._load_aggregate(catalogue_id) or CommunityCatalogue(org_id=actor.org_id)
            catalogue.add(str(created[0].id))
            return [created[0], catalogue]

        self._save_with_retries(catalogue_id_for(actor.org_id), prepare)
        logger.info("community created org_id=%s community_id=%s", actor.org_id, created[0].id)
        return self._detail(actor, created[0])

    def describe_community(
        self, actor: Principal, community_id: UUID, name: str | None, description: str | None, occurred_at: datetime
    ) -> bool:
        """Let an owner rename or describe the community. A name or description of None keeps the current value."""

        def describe(community: Community) -> bool:
            new_name = community.name if name is None else name
            new_description = community.description if description is None else description
            return community.describe(actor.person_id, new_name, new_description, occurred_at)

        return self._change_community(actor, community_id, describe)

    def join_community(self, actor: Principal, community_id: UUID, occurred_at: datetime) -> bool:
        return self._change_community(
            actor, community_id, lambda community: community.join(actor.person_id, occurred_at)
        )

    def leave_community(self, actor: Principal, community_id: UUID, occurred_at: datetime) -> bool:
        return self._change_community(
            actor, community_id, lambda community: community.leave(actor.person_id, occurred_at)
        )

    def invite_to_community(
        self, actor: Principal, community_id: UUID, invitee_id: str, occurred_at: datetime
    ) -> bool:
        """Let a member invite an active person of the directory. Return False if already a member or invited."""
        find_person(self.people, actor.org_id, invitee_id, must_be_active=True)
        return self._change_community(
            actor, community_id, lambda community: community.invite(actor.person_id, invitee_id, occurred_at)
        )

    def remove_community_member(
        self, actor: Principal, community_id: UUID, member_id: str, occurred_at: datetime
    ) -> bool:
        return self._change_community(
            actor, community_id, lambda community: community.remove_member(actor.person_id, member_id, occurred_at)
        )

    def follow_community(self, actor: Principal, community_id: UUID, occurred_at: datetime) -> bool:
        return self._change_community(
            actor, community_id, lambda community: community.follow(actor.person_id, occurred_at)
        )

    def unfollow_community(self, actor: Principal, community_id: UUID, occurred_at: datetime) -> bool:
        return self._change_community(
            actor, community_id, lambda community: community.unfollow(actor.person_id, occurred_at)
        )

    def link_community_goal(self, actor: Principal, community_id: UUID, goal_id: str, occurred_at: datetime) -> bool:
        """Link a goal the actor may see, rejecting a non-member before the goal is looked up."""

        def link(community: Community) -> bool:
            community.check_member(actor.person_id, "link goals")
            self._check_goal_is_visible(actor, goal_id)
            return community.link_goal(actor.person_id, goal_id, occurred_at)

        return self._change_community(actor, community_id, link)

    def unlink_community_goal(self, actor: Principal, community_id: UUID, goal_id: str, occurred_at: datetime) -> bool:
        """Unlink a goal the actor may see, so a hidden goal returns the same 404 as an unknown one."""
        self._check_goal_is_visible(actor, goal_id)
        return self._change_community(
            actor, community_id, lambda community: community.unlink_goal(actor.person_id, goal_id, occurred_at)
        )

    def get_community(self, reader: Principal, community_id: UUID) -> CommunityDetail:
        return self._detail(reader, self._load_community(reader.org_id, community_id))

    def list_communities(
        self, reader: Principal, limit: int, after_id: str | None
    ) -> tuple[list[CommunitySummary], str | None]:
        """Return up to ``limit`` communities in creation order after ``after_id``, and the cursor of the next page."""
        catalogue = self._load_aggregate(catalogue_id_for(reader.org_id))
        if catalogue is None:
            if after_id is not None:
                raise InvalidCommunityCursorError("invalid cursor; pass next_cursor from a previous page")
            return [], None
        try:
            page_ids = catalogue.page(limit + 1, after_id)
        except KeyError:
            raise InvalidCommunityCursorError("invalid cursor; pass next_cursor from a previous page") from None
        summaries = [self._summary(reader, self.repository.get(UUID(page_id))) for page_id in page_ids[:limit]]
        next_cursor = page_ids[limit - 1] if len(page_ids) > limit else None
        return summaries, next_cursor

    def _change_community(
        self, actor: Principal, community_id: UUID, change: Callable[[Community], bool]
    ) -> bool:
        def prepare() -> list[Aggregate] | None:
            community = self._load_community(actor.org_id, community_id)
            return [community] if change(community) else None

        return self._save_with_retries(community_id, prepare)

    def _load_community(self, org_id: str, community_id: UUID) -> Community:
        community = self._load_aggregate(community_id)
        if not isinstance(community, Community) or community.org_id != org_id:
            raise CommunityNotFoundError(community_id)
        return community

    def _summary(self, reader: Principal, community: Community) -> CommunitySummary:
        return CommunitySummary(
            community_id=str(community.id),
            name=community.name,
            description=community.description,
            created_by=community.created_by,
            created_at=community.created_at,
            owner_ids=community.owner_ids,
            member_count=len(community.members),
            follower_count=len(community.followers),
            your_role=community.members.get(reader.person_id),
            invited=reader.person_id in community.invitations,
            following=reader.person_id in community.followers,
        )

    def _detail(self, reader: Principal, community: Community) -> CommunityDetail:
        """Describe the community as the reader may see it: linked goals they may not see are left out entirely."""
        summary = self._summary(reader, community)
        links = sorted(community.linked_goals.values(), key=lambda link: (link.linked_at, link.goal_id))
        visible_links = [link for link in links if self._may_see_goal(reader, link.goal_id)]
        invitees = sorted(community.invitations) if summary.your_role is not None else None
        return CommunityDetail(**vars(summary), linked_goals=visible_links, pending_invitee_ids=invitees)

    def _may_see_goal(self, reader: Principal, goal_id: str) -> bool:
        audience = self.goal_audiences.audience_of(reader.org_id, goal_id)
        return audience is not None and audience.can_see(reader)


class PersonFollowCommands(SavesWithRetries):
    people: DirectoryLookups | None

    def follow_person(self, actor: Principal, person_id: str, occurred_at: datetime) -> bool:
        """Make the actor follow an active person of the directory. Return False if they already did."""
        find_person(self.people, actor.org_id, person_id, must_be_active=True)
        return self._change_person_graph(
            actor.org_id, person_id, lambda graph: graph.follow(actor.person_id, occurred_at)
        )

    def unfollow_person(self, actor: Principal, person_id: str, occurred_at: datetime) -> bool:
        """Make the actor stop following a person of the directory, deactivated or not. Return False if they did not."""
        find_person(self.people, actor.org_id, person_id)
        return self._change_person_graph(
            actor.org_id, person_id, lambda graph: graph.unfollow(actor.person_id, occurred_at)
        )

    def get_person_followers(self, reader: Principal, person_id: str) -> list[str]:
        """Return the ids of the people who follow a person of the directory, sorted."""
        find_person(self.people, reader.org_id, person_id)
        graph = self._load_aggregate(person_graph_id_for(reader.org_id, person_id))
        return sorted(graph.followers) if graph else []

    def _change_person_graph(
        self, org_id: str, person_id: str, change: Callable[[PersonFollowGraph], bool]
    ) -> bool:
        graph_id = person_graph_id_for(org_id, person_id)

        def prepare() -> list[Aggregate] | None:
            graph = self._load_aggregate(graph_id) or PersonFollowGraph(org_id=org_id, person_id=person_id)
            return [graph] if change(graph) else None

        return self._save_with_retries(graph_id, prepare)

