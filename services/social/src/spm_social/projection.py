"""The feed builder: records goal and social events in the read model and keeps the feed items in line.

Each event is stored as a fact first (known goals, key results, audience changes, fan-out events).
Then the feed items it can affect are recomputed from the stored facts by event time, so the
feeds do not depend on how the worker interleaves spm.goals.v1 and spm.social.v1, and reading a
feed stays one indexed query per page.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any, Callable

from sqlalchemy import Connection

from spm_events.envelope import Envelope
from spm_events.registry import EVENT_TYPES
from spm_events.schemas import (
    CheckInRecordedV1,
    CollaboratorTaggedV1,
    GoalCreatedV1,
    GoalFollowedV1,
    GoalOwnersChangedV1,
    GoalUnfollowedV1,
    GoalVisibilityChangedV1,
    KeyResultAddedV1,
    Payload,
)
from spm_social.fanout import (
    CHECK_IN_RECORDED,
    FOLLOWED,
    GOAL_CREATED,
    KEY_RESULT_ADDED,
    TAGGED,
    UNFOLLOWED,
)
from spm_social.feedsync import ItemScope, reconcile_feed_items
from spm_social.readmodel import SocialTables, insert_ignoring_duplicates
from spm_social.visibility import record_collaborator, record_goal_created, record_owners, record_visibility

logger = logging.getLogger(__name__)

# Each applier takes the payload model it is registered for.
Apply = Callable[[Connection, Envelope, Any], None]


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
            GoalOwnersChangedV1: self._apply_goal_owners_changed,
            GoalVisibilityChangedV1: self._apply_goal_visibility_changed,
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
        insert_ignoring_duplicates(
            connection,
            self.tables.known_goals,
            {
                "org_id": envelope.orgid,
                "goal_id": payload.goal_id,
                "title": payload.title,
                "owner_id": payload.owner_id,
                "team": payload.team,
                "period_start": payload.period.start,
                "period_end": payload.period.end,
                "created_at": envelope.time,
            },
        )
        record_goal_created(
            connection,
            self.tables,
            envelope.orgid,
            payload.goal_id,
            visibility=payload.visibility,
            owner_id=payload.owner_id,
            co_owner_ids=payload.co_owner_ids,
            teams=(payload.team, *payload.contributing_teams),
            aggregate_version=envelope.aggregateversion,
        )
        self._record_goal_event(connection, envelope, payload.goal_id, GOAL_CREATED)
        # Social events may have arrived before the goal. The owner, and the title in every
        # summary, are known only from here on, so all the goal's items are recomputed.
        self._reconcile(connection, envelope, payload.goal_id, ItemScope())

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
        self._record_goal_event(connection, envelope, payload.goal_id, KEY_RESULT_ADDED, payload.key_result_id)
        # Check-ins stored before their key result show its id in place of its title until now.
        self._reconcile(connection, envelope, payload.goal_id, ItemScope(key_result_id=payload.key_result_id))

    def _apply_check_in_recorded(self, connection: Connection, envelope: Envelope, payload: CheckInRecordedV1) -> None:
        self._record_goal_event(
            connection, envelope, payload.goal_id, CHECK_IN_RECORDED, payload.key_result_id, payload.progress
        )
        self._reconcile(connection, envelope, payload.goal_id, ItemScope(event_ids=frozenset({envelope.id})))

    def _apply_goal_followed(self, connection: Connection, envelope: Envelope, payload: GoalFollowedV1) -> None:
        self._record_audience_change(connection, envelope, payload.goal_id, payload.follower_id, FOLLOWED)

    def _apply_goal_unfollowed(self, connection: Connection, envelope: Envelope, payload: GoalUnfollowedV1) -> None:
        self._record_audience_change(connection, envelope, payload.goal_id, payload.follower_id, UNFOLLOWED)

    def _apply_collaborator_tagged(
        self, connection: Connection, envelope: Envelope, payload: CollaboratorTaggedV1
    ) -> None:
        record_collaborator(connection, self.tables, envelope.orgid, payload.goal_id, payload.collaborator_id)
        self._record_audience_change(connection, envelope, payload.goal_id, payload.collaborator_id, TAGGED)

    # Owners and visibility change who may read the goal's items, not which items exist: the feed
    # query checks the current audience at read time, so no item is recomputed here.
    def _apply_goal_owners_changed(
        self, connection: Connection, envelope: Envelope, payload: GoalOwnersChangedV1
    ) -> None:
        record_owners(
            connection,
            self.tables,
            envelope.orgid,
            payload.goal_id,
            payload.owner_id,
            payload.co_owner_ids,
            envelope.aggregateversion,
        )

    def _apply_goal_visibility_changed(
        self, connection: Connection, envelope: Envelope, payload: GoalVisibilityChangedV1
    ) -> None:
        record_visibility(
            connection, self.tables, envelope.orgid, payload.goal_id, payload.visibility, envelope.aggregateversion
        )

    def _record_goal_event(
        self,
        connection: Connection,
        envelope: Envelope,
        goal_id: str,
        kind: str,
        key_result_id: str | None = None,
        progress: float | None = None,
    ) -> None:
        insert_ignoring_duplicates(
            connection,
            self.tables.fan_out_events,
            {
                "org_id": envelope.orgid,
                "event_id": envelope.id,
                "goal_id": goal_id,
                "kind": kind,
                "actor_id": envelope.actorid,
                "key_result_id": key_result_id,
                "progress": progress,
                "occurred_at": envelope.time,
            },
        )

    def _record_audience_change(
        self, connection: Connection, envelope: Envelope, goal_id: str, person_id: str, change: str
    ) -> None:
        insert_ignoring_duplicates(
            connection,
            self.tables.audience_changes,
            {
                "org_id": envelope.orgid,
                "event_id": envelope.id,
                "goal_id": goal_id,
                "person_id": person_id,
                "change": change,
                "actor_id": envelope.actorid,
                "occurred_at": envelope.time,
                "aggregate_version": envelope.aggregateversion,
            },
        )
        # The change can add or remove the person's items for goal events at any time after it,
        # including events applied before it arrived.
        self._reconcile(connection, envelope, goal_id, ItemScope(person_id=person_id))
        # The notifications about this change itself (to the owner and the tagged person).
        self._reconcile(connection, envelope, goal_id, ItemScope(event_ids=frozenset({envelope.id})))

    def _reconcile(self, connection: Connection, envelope: Envelope, goal_id: str, scope: ItemScope) -> None:
        reconcile_feed_items(connection, self.tables, envelope.orgid, goal_id, scope, self.clock())
