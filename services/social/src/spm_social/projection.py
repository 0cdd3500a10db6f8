"""The feed builder: applies goal and social events to the read model and fans feed items out.

Fan-out happens when an event is applied, to the audience the goal has at that point of the
stream, so reading a feed is one indexed query per page.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable
from uuid import UUID, uuid5

from sqlalchemy import Connection, delete, select

from spm_events.envelope import Envelope
from spm_events.registry import EVENT_TYPES
from spm_events.schemas import (
    CheckInRecordedV1,
    CollaboratorTaggedV1,
    GoalCreatedV1,
    GoalFollowedV1,
    GoalUnfollowedV1,
    KeyResultAddedV1,
    Payload,
)
from spm_social.readmodel import SocialTables, insert_ignoring_duplicates

logger = logging.getLogger(__name__)

# Feed item ids are derived from the recipient and the event, so rebuilding the read model from
# the topics gives every item the id it had before and cursors stay valid.
FEED_ITEM_NAMESPACE = UUID("8b5d6c2e-1f3a-5b7c-8d9e-0a1b2c3d4e5f")
MAX_SUMMARY_LENGTH = 1200

# Each applier takes the payload model it is registered for.
Apply = Callable[[Connection, Envelope, Any], None]


def feed_item_id(person_id: str, event_id: str) -> str:
    return str(uuid5(FEED_ITEM_NAMESPACE, f"{person_id}/{event_id}"))


@dataclass(frozen=True)
class GoalFacts:
    """The goal details stored in the read model; title and owner are None until its GoalCreated is applied."""

    goal_id: str
    title: str | None
    owner_id: str | None

    @property
    def display_title(self) -> str:
        return self.title or self.goal_id


class FeedProjection:
    """The read-model handler for spm.goals.v1 and spm.social.v1 messages."""

    def __init__(self, tables: SocialTables, clock: Callable[[], datetime] | None = None) -> None:
        self.tables = tables
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self._appliers: dict[type[Payload], Apply] = {
            GoalCreatedV1: self._apply_goal_created,
            KeyResultAddedV1: self._apply_key_result_added,
            CheckInRecordedV1: self._apply_check_in_recorded,
            GoalFollowedV1: self._apply_goal_followed,
            GoalUnfollowedV1: self._apply_goal_unfollowed,
            CollaboratorTaggedV1: self._apply_collaborator_tagged,
        }

    def __call__(self, connection: Connection, envelope: Envelope) -> None:
        event_type = EVENT_TYPES.get(envelope.type)
        apply = self._appliers.get(event_type.model) if event_type else None
        if apply is None:
            # Other event types and newer versions on these topics are not part of the feed.
            logger.debug("ignoring event_id=%s type=%s", envelope.id, envelope.type)
            return
        # A payload that does not match its schema raises ValidationError, a ValueError, so the
        # read model dead-letters the message instead of retrying it forever.
        payload = event_type.model.model_validate(envelope.data)
        apply(connection, envelope, payload)

    def _apply_goal_created(self, connection: Connection, envelope: Envelope, payload: GoalCreatedV1) -> None:
        org_id = envelope.orgid
        insert_ignoring_duplicates(
            connection,
            self.tables.known_goals,
            {
                "org_id": org_id,
                "goal_id": payload.goal_id,
                "title": payload.title,
                "owner_id": payload.owner_id,
                "team": payload.team,
                "period_start": payload.period.start,
                "period_end": payload.period.end,
                "created_at": envelope.time,
            },
        )
        self._add_audience(connection, org_id, payload.goal_id, payload.owner_id, "owner")
        goal = GoalFacts(payload.goal_id, payload.title, payload.owner_id)
        self._add_item(connection, envelope, payload.owner_id, "goal_created", goal, f"Goal created: {payload.title}")

    def _apply_key_result_added(self, connection: Connection, envelope: Envelope, payload: KeyResultAddedV1) -> None:
        insert_ignoring_duplicates(
            connection,
            self.tables.key_results,
            {
                "org_id": envelope.orgid,
                "key_result_id": payload.key_result_id,
                "goal_id": payload.goal_id,
                "title": payload.title,
            },
        )
        goal = self._goal(connection, envelope.orgid, payload.goal_id)
        summary = f"Key result added to '{goal.display_title}': {payload.title}"
        for person_id in self._audience(connection, envelope.orgid, payload.goal_id):
            self._add_item(connection, envelope, person_id, "key_result_added", goal, summary, payload.key_result_id)

    def _apply_check_in_recorded(self, connection: Connection, envelope: Envelope, payload: CheckInRecordedV1) -> None:
        key_results = self.tables.key_results
        key_result_title = connection.execute(
            select(key_results.c.title).where(
                key_results.c.org_id == envelope.orgid, key_results.c.key_result_id == payload.key_result_id
            )
        ).scalar()
        goal = self._goal(connection, envelope.orgid, payload.goal_id)
        summary = f"Check-in on '{key_result_title or payload.key_result_id}': progress {payload.progress:.0%}"
        for person_id in self._audience(connection, envelope.orgid, payload.goal_id):
            self._add_item(connection, envelope, person_id, "check_in_recorded", goal, summary, payload.key_result_id)

    def _apply_goal_followed(self, connection: Connection, envelope: Envelope, payload: GoalFollowedV1) -> None:
        self._add_audience(connection, envelope.orgid, payload.goal_id, payload.follower_id, "follower")
        goal = self._goal(connection, envelope.orgid, payload.goal_id)
        # The owner gets an item about each new follower, except about their own follow.
        if goal.owner_id is None or goal.owner_id in (payload.follower_id, envelope.actorid):
            return
        summary = f"Your goal '{goal.display_title}' has a new follower"
        self._add_item(connection, envelope, goal.owner_id, "goal_followed", goal, summary)

    def _apply_goal_unfollowed(self, connection: Connection, envelope: Envelope, payload: GoalUnfollowedV1) -> None:
        audience = self.tables.goal_audience
        connection.execute(
            delete(audience).where(
                audience.c.org_id == envelope.orgid,
                audience.c.goal_id == payload.goal_id,
                audience.c.person_id == payload.follower_id,
                audience.c.relation == "follower",
            )
        )

    def _apply_collaborator_tagged(
        self, connection: Connection, envelope: Envelope, payload: CollaboratorTaggedV1
    ) -> None:
        self._add_audience(connection, envelope.orgid, payload.goal_id, payload.collaborator_id, "collaborator")
        goal = self._goal(connection, envelope.orgid, payload.goal_id)
        tagged_summary = f"You were tagged as a collaborator on '{goal.display_title}'"
        self._add_item(connection, envelope, payload.collaborator_id, "collaborator_tagged", goal, tagged_summary)
        if goal.owner_id is not None and goal.owner_id != payload.collaborator_id:
            owner_summary = f"A collaborator was tagged on your goal '{goal.display_title}'"
            self._add_item(connection, envelope, goal.owner_id, "collaborator_tagged", goal, owner_summary)

    def _add_audience(self, connection: Connection, org_id: str, goal_id: str, person_id: str, relation: str) -> None:
        insert_ignoring_duplicates(
            connection,
            self.tables.goal_audience,
            {"org_id": org_id, "goal_id": goal_id, "person_id": person_id, "relation": relation},
        )

    def _audience(self, connection: Connection, org_id: str, goal_id: str) -> list[str]:
        # NOTE: this is the audience at processing time. The two topics are consumed independently,
        # so a rebuild that interleaves a follow and a check-in differently can fan out differently.
        audience = self.tables.goal_audience
        rows = connection.execute(
            select(audience.c.person_id)
            .where(audience.c.org_id == org_id, audience.c.goal_id == goal_id)
            .distinct()
            .order_by(audience.c.person_id)
        )
        return list(rows.scalars())

    def _goal(self, connection: Connection, org_id: str, goal_id: str) -> GoalFacts:
        goals = self.tables.known_goals
        row = connection.execute(
            select(goals.c.title, goals.c.owner_id).where(goals.c.org_id == org_id, goals.c.goal_id == goal_id)
        ).first()
        if row is None:
            return GoalFacts(goal_id, None, None)
        return GoalFacts(goal_id, row.title, row.owner_id)

    def _add_item(
        self,
        connection: Connection,
        envelope: Envelope,
        person_id: str,
        kind: str,
        goal: GoalFacts,
        summary: str,
        key_result_id: str | None = None,
    ) -> None:
        insert_ignoring_duplicates(
            connection,
            self.tables.feed_items,
            {
                "item_id": feed_item_id(person_id, envelope.id),
                "org_id": envelope.orgid,
                "person_id": person_id,
                "event_id": envelope.id,
                "kind": kind,
                "goal_id": goal.goal_id,
                "goal_title": goal.title,
                "key_result_id": key_result_id,
                "actor_id": envelope.actorid,
                "summary": summary[:MAX_SUMMARY_LENGTH],
                "occurred_at": envelope.time,
                "indexed_at": self.clock(),
            },
        )
