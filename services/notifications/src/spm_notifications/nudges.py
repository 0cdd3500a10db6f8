"""Nudges: notifications about something that did not happen in time, driven by event time.

Each organisation has a stream clock, the latest event time applied for it (table
``event_clocks``). A nudge that waits for a deadline is a row of ``nudge_timers``. It fires when
the clock of its organisation reaches the deadline, not when the wall clock does. A timer's id is
derived from the event that started the wait, and the nudge is stored under that id, so a replay
or a restart recreates the same timer and the inbox's unique key keeps one notification.

Timers are derived again from the whole history of their key result or tag whenever an event of
that history is applied. An event read late (a check-in dated before a deadline that has already
fired) therefore cancels the timer and withdraws its nudge.

TODO: a quiet organisation's clock does not advance, so its due nudges wait until its next event.
A wall-clock tick would need a rule for how far event time may run ahead of the stream.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Callable

from sqlalchemy import Connection, delete, select, update

from spm_notifications.fanout import ActivityFanout, write_notifications
from spm_notifications.rules import (
    CONFIDENCE_ACTIVITY,
    NUDGE_ACTOR,
    NUDGE_CHECK_IN_DUE,
    NUDGE_CONFIDENCE_FALLING,
    NUDGE_TAG_PENDING,
    Activity,
    CollaboratorChange,
    KeyResultCheckIn,
    check_in_deadlines,
    falling_confidence_streaks,
    latest_at,
    nudge_cause_id,
    tag_deadlines,
)
from spm_notifications.tables import InboxTables, inbox_row, insert_ignoring_duplicates, upsert

logger = logging.getLogger(__name__)

PENDING, FIRED, SKIPPED = "pending", "fired", "skipped"
ACTIVE = "active"


class Nudges:
    def __init__(self, tables: InboxTables, fanout: ActivityFanout, clock: Callable[[], datetime]) -> None:
        self.tables = tables
        self.activity = tables.activity
        self.fanout = fanout
        self.clock = clock

    # --- facts ---

    def key_result_added(
        self, connection: Connection, org_id: str, goal_id: str, key_result_id: str, added: KeyResultCheckIn
    ) -> None:
        insert_ignoring_duplicates(connection, self.activity.key_results, [{
            "org_id": org_id, "key_result_id": key_result_id, "goal_id": goal_id, "event_id": added.event_id,
            "actor_id": added.actor_id, "occurred_at": added.occurred_at, "aggregate_version": added.aggregate_version,
        }])
        self._derive_key_result(connection, org_id, goal_id, key_result_id)

    def check_in_recorded(
        self, connection: Connection, org_id: str, goal_id: str, key_result_id: str, check_in: KeyResultCheckIn
    ) -> None:
        insert_ignoring_duplicates(connection, self.activity.key_result_check_ins, [{
            "event_id": check_in.event_id, "org_id": org_id, "goal_id": goal_id, "key_result_id": key_result_id,
            "actor_id": check_in.actor_id, "occurred_at": check_in.occurred_at,
            "aggregate_version": check_in.aggregate_version, "confidence": check_in.confidence,
        }])
        self._derive_key_result(connection, org_id, goal_id, key_result_id)

    def tag_changed(self, connection: Connection, org_id: str, goal_id: str, person_id: str) -> None:
        """Derive again the tag timers of one person on one goal from their tag history."""
        changes = self.activity.collaborator_changes
        rows = connection.execute(
            select(changes).where(changes.c.org_id == org_id, changes.c.goal_id == goal_id, changes.c.person_id == person_id)
        )
        history = [
            CollaboratorChange(row.event_id, row.person_id, row.change, row.occurred_at, row.aggregate_version, row.actor_id)
            for row in rows
        ]
        expected = {
            nudge_cause_id(NUDGE_TAG_PENDING, cause): (deadline.due_at, person)
            for cause, (person, deadline) in tag_deadlines(history).items()
        }
        self._reconcile_timers(connection, org_id, goal_id, NUDGE_TAG_PENDING, f"{goal_id}|{person_id}", expected)

    def _derive_key_result(self, connection: Connection, org_id: str, goal_id: str, key_result_id: str) -> None:
        key_results, check_ins = self.activity.key_results, self.activity.key_result_check_ins
        rows = connection.execute(
            select(check_ins).where(check_ins.c.org_id == org_id, check_ins.c.key_result_id == key_result_id)
        )
        history = [
            KeyResultCheckIn(row.event_id, row.actor_id, row.occurred_at, row.aggregate_version, row.confidence)
            for row in rows
        ]
        self._reconcile_confidence(connection, org_id, goal_id, key_result_id, history)
        added = connection.execute(
            select(key_results).where(key_results.c.org_id == org_id, key_results.c.key_result_id == key_result_id)
        ).first()
        if added is None:
            # Check-ins of a key result whose KeyResultAdded has not been read start no wait.
            return
        start = KeyResultCheckIn(added.event_id, added.actor_id, added.occurred_at, added.aggregate_version, None)
        expected = {
            nudge_cause_id(NUDGE_CHECK_IN_DUE, deadline.cause_event_id): (deadline.due_at, None)
            for deadline in check_in_deadlines(start, history)
        }
        self._reconcile_timers(connection, org_id, goal_id, NUDGE_CHECK_IN_DUE, key_result_id, expected)

    def _reconcile_confidence(
        self, connection: Connection, org_id: str, goal_id: str, key_result_id: str, history: list[KeyResultCheckIn]
    ) -> None:
        """Keep one confidence nudge per falling streak of the key result, each an activity sent to followers."""
        activities = self.activity.activities
        expected = {
            nudge_cause_id(NUDGE_CONFIDENCE_FALLING, check_in.event_id): check_in
            for check_in in falling_confidence_streaks(history)
        }
        existing = set(connection.execute(
            select(activities.c.event_id).where(
                activities.c.org_id == org_id,
                activities.c.source == CONFIDENCE_ACTIVITY,
                activities.c.ref_id == key_result_id,
            )
        ).scalars())
        self.fanout.withdraw(connection, org_id, existing - expected.keys())
        for event_id in sorted(expected.keys() - existing):
            check_in = expected[event_id]
            activity = Activity(
                event_id=event_id,
                source=CONFIDENCE_ACTIVITY,
                goal_id=goal_id,
                actor_id=check_in.actor_id,
                occurred_at=check_in.occurred_at,
                goal_version=check_in.aggregate_version,
            )
            self.fanout.record(connection, org_id, activity, ref_id=key_result_id)

    def _reconcile_timers(
        self,
        connection: Connection,
        org_id: str,
        goal_id: str,
        kind: str,
        subject_id: str,
        expected: dict[str, tuple[datetime, str | None]],
    ) -> None:
        """Make the subject's timers of one kind exactly ``expected``: timer id -> (due at, recipient or None)."""
        timers, inbox = self.activity.nudge_timers, self.tables.inbox
        scope = (timers.c.org_id == org_id, timers.c.kind == kind, timers.c.subject_id == subject_id)
        existing = set(connection.execute(select(timers.c.timer_id).where(*scope)).scalars())
        stale = sorted(existing - expected.keys())
        if stale:
            connection.execute(delete(timers).where(*scope, timers.c.timer_id.in_(stale)))
            connection.execute(delete(inbox).where(inbox.c.org_id == org_id, inbox.c.event_id.in_(stale)))
            logger.info("cancelled nudges kind=%s subject_id=%s count=%s", kind, subject_id, len(stale))
        insert_ignoring_duplicates(connection, timers, [
            {"timer_id": timer_id, "org_id": org_id, "goal_id": goal_id, "kind": kind, "subject_id": subject_id,
             "person_id": expected[timer_id][1], "due_at": expected[timer_id][0], "state": PENDING}
            for timer_id in sorted(expected.keys() - existing)
        ])

    # --- the clock ---

    def advance(self, connection: Connection, org_id: str, event_time: datetime) -> None:
        """Move the organisation's stream clock to ``event_time`` if that is later, then fire every timer now due."""
        clocks = self.activity.event_clocks
        current = connection.execute(select(clocks.c.event_time).where(clocks.c.org_id == org_id)).scalar()
        if current is None or event_time > current:
            upsert(connection, clocks, {"org_id": org_id, "event_time": event_time})
            current = event_time
        self._fire_due(connection, org_id, current)

    def rejudge(self, connection: Connection, org_id: str, goal_id: str, since: datetime) -> None:
        """Judge the goal's timers due at or after ``since`` again, after a change of its owners or status.

        Their nudges are withdrawn and the timers fire again at once if they are still due, so the
        owner and status in force at each deadline decide, whatever order the events were read in.
        """
        timers, inbox = self.activity.nudge_timers, self.tables.inbox
        affected = (timers.c.org_id == org_id, timers.c.goal_id == goal_id, timers.c.due_at >= since,
                    timers.c.state != PENDING)
        timer_ids = sorted(connection.execute(select(timers.c.timer_id).where(*affected)).scalars())
        if not timer_ids:
            return
        connection.execute(delete(inbox).where(inbox.c.org_id == org_id, inbox.c.event_id.in_(timer_ids)))
        connection.execute(update(timers).where(*affected).values(state=PENDING))

    def _fire_due(self, connection: Connection, org_id: str, now: datetime) -> None:
        timers = self.activity.nudge_timers
        due = connection.execute(
            select(timers)
            .where(timers.c.org_id == org_id, timers.c.state == PENDING, timers.c.due_at <= now)
            .order_by(timers.c.due_at, timers.c.timer_id)
        ).all()
        for timer in due:
            recipient = timer.person_id or self._owner_at(connection, org_id, timer.goal_id, timer.due_at)
            status = self._status_at(connection, org_id, timer.goal_id, timer.due_at)
            if recipient is None or (timer.kind == NUDGE_CHECK_IN_DUE and status is None):
                # The goal's GoalCreated has not been read, so the timer waits until it is.
                continue
            if timer.kind == NUDGE_CHECK_IN_DUE and status != ACTIVE:
                state = SKIPPED
            else:
                state = FIRED
                row = inbox_row(
                    org_id=org_id,
                    recipient_id=recipient,
                    kind=timer.kind,
                    goal_id=timer.goal_id,
                    goal_title=self.fanout.goal_title(connection, org_id, timer.goal_id),
                    actor_id=NUDGE_ACTOR,
                    event_id=timer.timer_id,
                    occurred_at=timer.due_at,
                    created_at=self.clock(),
                )
                write_notifications(connection, self.tables, [row])
            connection.execute(update(timers).where(timers.c.timer_id == timer.timer_id).values(state=state))
            logger.info("nudge due kind=%s goal_id=%s state=%s", timer.kind, timer.goal_id, state)

    def _owner_at(self, connection: Connection, org_id: str, goal_id: str, moment: datetime) -> str | None:
        owners = latest_at(self.fanout.audiences.history(connection, org_id, goal_id).owners_changes, moment)
        return None if owners is None else owners.owner_id

    def _status_at(self, connection: Connection, org_id: str, goal_id: str, moment: datetime) -> str | None:
        changes = self.activity.goal_status_changes
        row = connection.execute(
            select(changes.c.status)
            .where(changes.c.org_id == org_id, changes.c.goal_id == goal_id, changes.c.occurred_at <= moment)
            .order_by(changes.c.occurred_at.desc(), changes.c.aggregate_version.desc())
            .limit(1)
        ).first()
        return None if row is None else row.status
