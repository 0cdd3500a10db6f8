"""Applies goal and social events to the inbox read model, inside the transaction the worker opens."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any, Callable

from sqlalchemy import Connection, Table, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from spm_events.envelope import Envelope
from spm_events.registry import EVENT_TYPES, parse_payload
from spm_events.schemas import (
    CheckInRecordedV1,
    CollaboratorTaggedV1,
    GoalCreatedV1,
    GoalFollowedV1,
    GoalUnfollowedV1,
)

from spm_notifications.rules import (
    FOLLOWED_GOAL_CHECK_IN,
    TAGGED,
    FollowChange,
    check_in_recipients,
    notification_id_for,
    tagged_recipients,
)
from spm_notifications.tables import InboxTables

logger = logging.getLogger(__name__)


def _insert_ignoring_duplicates(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    dialect_insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    connection.execute(dialect_insert(table).on_conflict_do_nothing(), rows)


class InboxProjection:
    """The handler given to ``PositionedReadModel.apply``: one event in, inbox rows out."""

    def __init__(self, tables: InboxTables, clock: Callable[[], datetime] | None = None) -> None:
        self.tables = tables
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self._appliers: dict[type, Callable[[Connection, Envelope, Any], None]] = {
            GoalCreatedV1: self._apply_goal_created,
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
        _insert_ignoring_duplicates(
            connection,
            goals,
            [{"org_id": envelope.orgid, "goal_id": payload.goal_id, "title": payload.title, "owner_id": payload.owner_id}],
        )
        connection.execute(
            update(inbox)
            .where(inbox.c.org_id == envelope.orgid, inbox.c.goal_id == payload.goal_id, inbox.c.goal_title.is_(None))
            .values(goal_title=payload.title)
        )

    def _apply_collaborator_tagged(
        self, connection: Connection, envelope: Envelope, payload: CollaboratorTaggedV1
    ) -> None:
        recipients = tagged_recipients(payload.collaborator_id, envelope.actorid)
        self._notify(connection, envelope, payload.goal_id, TAGGED, recipients)

    def _apply_check_in_recorded(
        self, connection: Connection, envelope: Envelope, payload: CheckInRecordedV1
    ) -> None:
        _insert_ignoring_duplicates(
            connection,
            self.tables.check_ins,
            [{
                "event_id": envelope.id,
                "org_id": envelope.orgid,
                "goal_id": payload.goal_id,
                "actor_id": envelope.actorid,
                "occurred_at": envelope.time,
            }],
        )
        changes = self._follow_changes(connection, envelope.orgid, payload.goal_id, until=envelope.time)
        recipients = check_in_recipients(changes, envelope.time, envelope.actorid)
        self._notify(connection, envelope, payload.goal_id, FOLLOWED_GOAL_CHECK_IN, recipients)

    def _apply_follow_change(
        self, connection: Connection, envelope: Envelope, payload: GoalFollowedV1 | GoalUnfollowedV1
    ) -> None:
        _insert_ignoring_duplicates(
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
        self._reconcile_check_in_notifications(
            connection, envelope.orgid, payload.goal_id, payload.follower_id, since=envelope.time
        )

    def _reconcile_check_in_notifications(
        self, connection: Connection, org_id: str, goal_id: str, person_id: str, since: datetime
    ) -> None:
        """Make one person's check-in notifications of one goal match their follow history.

        A follow change can be read after check-ins that happened later in event time, because the
        two travel on different topics. Only check-ins at or after the change's time can be affected.
        """
        check_ins, inbox = self.tables.check_ins, self.tables.inbox
        changes = self._follow_changes(connection, org_id, goal_id, person_id=person_id)
        later_check_ins = connection.execute(
            select(check_ins).where(
                check_ins.c.org_id == org_id, check_ins.c.goal_id == goal_id, check_ins.c.occurred_at >= since
            )
        ).all()
        expected = {
            check_in.event_id: check_in
            for check_in in later_check_ins
            if person_id in check_in_recipients(changes, check_in.occurred_at, check_in.actor_id)
        }
        existing = set(
            connection.execute(
                select(inbox.c.event_id).where(
                    inbox.c.org_id == org_id,
                    inbox.c.goal_id == goal_id,
                    inbox.c.recipient_id == person_id,
                    inbox.c.kind == FOLLOWED_GOAL_CHECK_IN,
                    inbox.c.occurred_at >= since,
                )
            ).scalars()
        )
        withdrawn = existing - expected.keys()
        if withdrawn:
            connection.execute(
                delete(inbox).where(
                    inbox.c.org_id == org_id,
                    inbox.c.recipient_id == person_id,
                    inbox.c.kind == FOLLOWED_GOAL_CHECK_IN,
                    inbox.c.event_id.in_(withdrawn),
                )
            )
            logger.info("withdrew check-in notifications goal_id=%s count=%s after a follow change",
                        goal_id, len(withdrawn))
        title = self._goal_title(connection, org_id, goal_id)
        rows = [
            self._inbox_row(org_id, goal_id, title, FOLLOWED_GOAL_CHECK_IN, event_id, check_in.actor_id,
                            check_in.occurred_at, person_id)
            for event_id, check_in in expected.items()
            if event_id not in existing
        ]
        _insert_ignoring_duplicates(connection, inbox, rows)

    def _notify(self, connection: Connection, envelope: Envelope, goal_id: str, kind: str, recipients: set[str]) -> None:
        if not recipients:
            return
        title = self._goal_title(connection, envelope.orgid, goal_id)
        rows = [
            self._inbox_row(envelope.orgid, goal_id, title, kind, envelope.id, envelope.actorid, envelope.time, recipient)
            for recipient in sorted(recipients)
        ]
        _insert_ignoring_duplicates(connection, self.tables.inbox, rows)
        logger.debug("notified kind=%s goal_id=%s event_id=%s recipients=%s", kind, goal_id, envelope.id, len(rows))

    def _inbox_row(
        self,
        org_id: str,
        goal_id: str,
        goal_title: str | None,
        kind: str,
        event_id: str,
        actor_id: str,
        occurred_at: datetime,
        recipient_id: str,
    ) -> dict[str, Any]:
        return {
            "notification_id": notification_id_for(event_id, recipient_id),
            "org_id": org_id,
            "recipient_id": recipient_id,
            "kind": kind,
            "goal_id": goal_id,
            "goal_title": goal_title,
            "actor_id": actor_id,
            "event_id": event_id,
            "occurred_at": occurred_at,
            "created_at": self.clock(),
            "read_at": None,
        }

    def _goal_title(self, connection: Connection, org_id: str, goal_id: str) -> str | None:
        goals = self.tables.goals
        return connection.execute(
            select(goals.c.title).where(goals.c.org_id == org_id, goals.c.goal_id == goal_id)
        ).scalar()

    def _follow_changes(
        self,
        connection: Connection,
        org_id: str,
        goal_id: str,
        person_id: str | None = None,
        until: datetime | None = None,
    ) -> list[FollowChange]:
        follow_changes = self.tables.follow_changes
        query = select(follow_changes).where(follow_changes.c.org_id == org_id, follow_changes.c.goal_id == goal_id)
        if person_id is not None:
            query = query.where(follow_changes.c.person_id == person_id)
        if until is not None:
            query = query.where(follow_changes.c.occurred_at <= until)
        return [
            FollowChange(
                event_id=row.event_id,
                person_id=row.person_id,
                following=row.following,
                occurred_at=row.occurred_at,
                aggregate_version=row.aggregate_version,
            )
            for row in connection.execute(query)
        ]
