"""Keeps each check-in's notifications in line with every fact recorded so far.

Follows, owner sets, visibility and collaborator tags can be read after the check-ins they
decide, because they travel on two topics (and a projection may be fed in any order). Each such
fact re-derives the notifications of the check-ins it can affect, so the inbox ends up the same
whatever order the events were read in.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Callable

from sqlalchemy import ColumnElement, Connection, delete, select, update

from spm_notifications.audience import GoalAudiences
from spm_notifications.rules import CHECK_IN_KINDS, CheckIn, FollowChange, check_in_notifications
from spm_notifications.tables import InboxTables, inbox_row, insert_ignoring_duplicates

logger = logging.getLogger(__name__)


class CheckInFanout:
    def __init__(self, tables: InboxTables, audiences: GoalAudiences, clock: Callable[[], datetime]) -> None:
        self.tables = tables
        self.audiences = audiences
        self.clock = clock

    def notify(self, connection: Connection, org_id: str, goal_id: str, check_in: CheckIn) -> None:
        """Insert the notifications of a check-in applied for the first time."""
        expected = self._expected(connection, org_id, goal_id, [check_in], person_id=None)
        self._insert(connection, org_id, goal_id, expected)

    def reconcile(
        self,
        connection: Connection,
        org_id: str,
        goal_id: str,
        selected: ColumnElement[bool],
        person_id: str | None = None,
    ) -> None:
        """Add, re-kind or withdraw the notifications of the goal's check-ins matching ``selected``.

        With ``person_id``, only that person's notifications are touched. A withdrawn notification
        loses its read mark, but one whose kind changes keeps it.
        """
        check_ins, inbox = self.tables.check_ins, self.tables.inbox
        of_goal = (check_ins.c.org_id == org_id, check_ins.c.goal_id == goal_id, selected)
        selected_check_ins = [
            CheckIn(row.event_id, row.actor_id, row.occurred_at, row.aggregate_version)
            for row in connection.execute(select(check_ins).where(*of_goal))
        ]
        if not selected_check_ins:
            return
        expected = self._expected(connection, org_id, goal_id, selected_check_ins, person_id)
        existing_query = select(inbox.c.notification_id, inbox.c.event_id, inbox.c.recipient_id, inbox.c.kind).where(
            inbox.c.org_id == org_id,
            inbox.c.goal_id == goal_id,
            inbox.c.kind.in_(CHECK_IN_KINDS),
            inbox.c.event_id.in_(select(check_ins.c.event_id).where(*of_goal)),
        )
        if person_id is not None:
            existing_query = existing_query.where(inbox.c.recipient_id == person_id)
        existing = {(row.event_id, row.recipient_id): row for row in connection.execute(existing_query)}

        withdrawn = [row.notification_id for key, row in existing.items() if key not in expected]
        if withdrawn:
            connection.execute(delete(inbox).where(inbox.c.notification_id.in_(withdrawn)))
            logger.info("withdrew check-in notifications goal_id=%s count=%s", goal_id, len(withdrawn))
        for key, row in existing.items():
            if key in expected and expected[key][0] != row.kind:
                connection.execute(
                    update(inbox).where(inbox.c.notification_id == row.notification_id).values(kind=expected[key][0])
                )
        missing = {key: value for key, value in expected.items() if key not in existing}
        self._insert(connection, org_id, goal_id, missing)
        logger.debug("reconciled check-in notifications goal_id=%s check_ins=%s added=%s withdrawn=%s",
                     goal_id, len(selected_check_ins), len(missing), len(withdrawn))

    def _insert(
        self, connection: Connection, org_id: str, goal_id: str, notifications: dict[tuple[str, str], tuple[str, CheckIn]]
    ) -> None:
        if not notifications:
            return
        title = self.goal_title(connection, org_id, goal_id)
        rows = [
            inbox_row(
                org_id=org_id,
                recipient_id=recipient_id,
                kind=kind,
                goal_id=goal_id,
                goal_title=title,
                actor_id=check_in.actor_id,
                event_id=check_in.event_id,
                occurred_at=check_in.occurred_at,
                created_at=self.clock(),
            )
            for (_, recipient_id), (kind, check_in) in sorted(notifications.items())
        ]
        insert_ignoring_duplicates(connection, self.tables.inbox, rows)

    def _expected(
        self, connection: Connection, org_id: str, goal_id: str, check_ins: list[CheckIn], person_id: str | None
    ) -> dict[tuple[str, str], tuple[str, CheckIn]]:
        """Return (event id, recipient) -> (kind, check-in) for every notification the rules call for."""
        history = self.audiences.history(connection, org_id, goal_id)
        until = max(check_in.occurred_at for check_in in check_ins)
        follow_changes = self._follow_changes(connection, org_id, goal_id, person_id, until)
        expected: dict[tuple[str, str], tuple[str, CheckIn]] = {}
        for check_in in check_ins:
            recipients = check_in_notifications(
                check_in, follow_changes, history.owners_changes, history.visibility_changes, history.collaborator_ids
            )
            for recipient_id, kind in recipients.items():
                if person_id is None or recipient_id == person_id:
                    expected[(check_in.event_id, recipient_id)] = (kind, check_in)
        return expected

    def _follow_changes(
        self, connection: Connection, org_id: str, goal_id: str, person_id: str | None, until: datetime
    ) -> list[FollowChange]:
        follow_changes = self.tables.follow_changes
        query = select(follow_changes).where(
            follow_changes.c.org_id == org_id, follow_changes.c.goal_id == goal_id, follow_changes.c.occurred_at <= until
        )
        if person_id is not None:
            query = query.where(follow_changes.c.person_id == person_id)
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

    def goal_title(self, connection: Connection, org_id: str, goal_id: str) -> str | None:
        goals = self.tables.goals
        return connection.execute(
            select(goals.c.title).where(goals.c.org_id == org_id, goals.c.goal_id == goal_id)
        ).scalar()

