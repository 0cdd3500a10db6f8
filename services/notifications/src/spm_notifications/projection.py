"""Applies goal and social events to the inbox read model, inside the transaction the worker opens."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any, Callable

from sqlalchemy import Connection, true, update

from spm_events.envelope import Envelope
from spm_events.registry import EVENT_TYPES, parse_payload
from spm_events.schemas import (
    CheckInRecordedV1,
    CollaboratorTaggedV1,
    GoalCreatedV1,
    GoalFollowedV1,
    GoalOwnersChangedV1,
    GoalUnfollowedV1,
    GoalVisibilityChangedV1,
)

from spm_notifications.audience import GoalAudiences
from spm_notifications.fanout import CheckInFanout
from spm_notifications.rules import TAGGED, CheckIn, tagged_recipients
from spm_notifications.tables import InboxTables, inbox_row, insert_ignoring_duplicates

logger = logging.getLogger(__name__)


class InboxProjection:
    """The handler given to ``PositionedReadModel.apply``: one event in, inbox rows out."""

    def __init__(self, tables: InboxTables, clock: Callable[[], datetime] | None = None) -> None:
        self.tables = tables
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.audiences = GoalAudiences(tables)
        self.fanout = CheckInFanout(tables, self.audiences, self.clock)
        self._appliers: dict[type, Callable[[Connection, Envelope, Any], None]] = {
            GoalCreatedV1: self._apply_goal_created,
            GoalOwnersChangedV1: self._apply_owners_changed,
            GoalVisibilityChangedV1: self._apply_visibility_changed,
            CheckInRecordedV1: self._apply_check_in_recorded,
            GoalFollowedV1: self._apply_follow_change,
            GoalUnfollowedV1: self._apply_follow_change,
            CollaboratorTaggedV1: self._apply_collaborator_tagged,
        }
        self._handled_types = {name for name, event_type in EVENT_TYPES.items() if event_type.model in self._appliers}

    def __call__(self, connection: Connection, envelope: Envelope) -> None:
        # Other event types, including ones added to the topics later, create no notification.
        if envelope.type not in self._handled_types:
            return
        payload = parse_payload(envelope)
        self._appliers[type(payload)](connection, envelope, payload)

    def _apply_goal_created(self, connection: Connection, envelope: Envelope, payload: GoalCreatedV1) -> None:
        goals, inbox = self.tables.goals, self.tables.inbox
        org_id, goal_id, version = envelope.orgid, payload.goal_id, envelope.aggregateversion
        insert_ignoring_duplicates(
            connection,
            goals,
            [{"org_id": org_id, "goal_id": goal_id, "title": payload.title, "owner_id": payload.owner_id}],
        )
        connection.execute(
            update(inbox)
            .where(inbox.c.org_id == org_id, inbox.c.goal_id == goal_id, inbox.c.goal_title.is_(None))
            .values(goal_title=payload.title)
        )
        self.audiences.record_teams(connection, org_id, goal_id, {payload.team, *payload.contributing_teams})
        self.audiences.record_visibility(connection, org_id, goal_id, version, payload.visibility)
        self.audiences.record_owners(connection, org_id, goal_id, version, payload.owner_id, payload.co_owner_ids)
        self._reconcile_check_ins_after(connection, org_id, goal_id, version)

    def _apply_owners_changed(self, connection: Connection, envelope: Envelope, payload: GoalOwnersChangedV1) -> None:
        org_id, goal_id, version = envelope.orgid, payload.goal_id, envelope.aggregateversion
        self.audiences.record_owners(connection, org_id, goal_id, version, payload.owner_id, payload.co_owner_ids)
        logger.info("goal owners changed goal_id=%s event_id=%s co_owners=%s",
                    goal_id, envelope.id, len(payload.co_owner_ids))
        self._reconcile_check_ins_after(connection, org_id, goal_id, version)

    def _apply_visibility_changed(
        self, connection: Connection, envelope: Envelope, payload: GoalVisibilityChangedV1
    ) -> None:
        org_id, goal_id, version = envelope.orgid, payload.goal_id, envelope.aggregateversion
        self.audiences.record_visibility(connection, org_id, goal_id, version, payload.visibility)
        logger.info("goal visibility changed goal_id=%s event_id=%s visibility=%s",
                    goal_id, envelope.id, payload.visibility)
        self._reconcile_check_ins_after(connection, org_id, goal_id, version)

    def _reconcile_check_ins_after(self, connection: Connection, org_id: str, goal_id: str, version: int) -> None:
        # A goal's events share one partition, so check-ins of a later version are normally read later
        # and this selects none. It matters when the projection is fed out of version order.
        check_ins = self.tables.check_ins
        self.fanout.reconcile(connection, org_id, goal_id, check_ins.c.aggregate_version > version)

    def _apply_collaborator_tagged(
        self, connection: Connection, envelope: Envelope, payload: CollaboratorTaggedV1
    ) -> None:
        org_id, goal_id, collaborator_id = envelope.orgid, payload.goal_id, payload.collaborator_id
        self.audiences.record_collaborator(connection, org_id, goal_id, collaborator_id)
        self._notify(connection, envelope, goal_id, TAGGED, tagged_recipients(collaborator_id, envelope.actorid))
        # A collaborator is an insider, who hears of check-ins recorded while the goal was private.
        if self.audiences.history(connection, org_id, goal_id).was_ever_private:
            self.fanout.reconcile(connection, org_id, goal_id, true(), person_id=collaborator_id)

    def _apply_check_in_recorded(
        self, connection: Connection, envelope: Envelope, payload: CheckInRecordedV1
    ) -> None:
        insert_ignoring_duplicates(
            connection,
            self.tables.check_ins,
            [{
                "event_id": envelope.id,
                "org_id": envelope.orgid,
                "goal_id": payload.goal_id,
                "actor_id": envelope.actorid,
                "occurred_at": envelope.time,
                "aggregate_version": envelope.aggregateversion,
            }],
        )
        check_in = CheckIn(envelope.id, envelope.actorid, envelope.time, envelope.aggregateversion)
        self.fanout.notify(connection, envelope.orgid, payload.goal_id, check_in)

    def _apply_follow_change(
        self, connection: Connection, envelope: Envelope, payload: GoalFollowedV1 | GoalUnfollowedV1
    ) -> None:
        insert_ignoring_duplicates(
            connection,
            self.tables.follow_changes,
            [{
                "event_id": envelope.id,
                "org_id": envelope.orgid,
                "goal_id": payload.goal_id,
                "person_id": payload.follower_id,
                "following": isinstance(payload, GoalFollowedV1),
                "occurred_at": envelope.time,
                "aggregate_version": envelope.aggregateversion,
            }],
        )
        # A follow change travels on the social topic and can be read after check-ins that happened
        # later in event time. Only check-ins at or after the change's time can be affected.
        check_ins = self.tables.check_ins
        self.fanout.reconcile(
            connection, envelope.orgid, payload.goal_id, check_ins.c.occurred_at >= envelope.time,
            person_id=payload.follower_id,
        )

    def _notify(self, connection: Connection, envelope: Envelope, goal_id: str, kind: str, recipients: set[str]) -> None:
        if not recipients:
            return
        title = self.fanout.goal_title(connection, envelope.orgid, goal_id)
        rows = [
            inbox_row(
                org_id=envelope.orgid,
                recipient_id=recipient,
                kind=kind,
                goal_id=goal_id,
                goal_title=title,
                actor_id=envelope.actorid,
                event_id=envelope.id,
                occurred_at=envelope.time,
                created_at=self.clock(),
            )
            for recipient in sorted(recipients)
        ]
        insert_ignoring_duplicates(connection, self.tables.inbox, rows)
        logger.debug("notified kind=%s goal_id=%s event_id=%s recipients=%s", kind, goal_id, envelope.id, len(rows))
