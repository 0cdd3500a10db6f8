"""Keeps each activity's notifications in line with every fact recorded so far.

Follows, owner sets, visibility, collaborator tags and community memberships can be read after
the activities they decide, because they travel on two topics (and a projection may be fed in any
order). Each such fact re-derives the notifications of the activities it can affect, so the inbox
ends up the same whatever order the events were read in.

Every inbox row is inserted by ``write_notifications``.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Callable, Iterable

from sqlalchemy import ColumnElement, Connection, delete, select, update

from spm_notifications.audience import GoalAudiences
from spm_notifications.rules import (
    ACTIVITY_KINDS,
    Activity,
    FollowChange,
    GoalFacts,
    activity_recipients,
    group_key_for,
)
from spm_notifications.tables import InboxTables, inbox_row, insert_ignoring_duplicates

logger = logging.getLogger(__name__)

Expected = dict[tuple[str, str], tuple[str, Activity]]


def write_notifications(connection: Connection, tables: InboxTables, rows: list[dict[str, Any]]) -> None:
    """Insert inbox rows built by ``inbox_row``. A row whose (event, recipient, kind) is stored already is skipped."""
    insert_ignoring_duplicates(connection, tables.inbox, sorted(rows, key=lambda row: row["notification_id"]))


class ActivityFanout:
    def __init__(self, tables: InboxTables, audiences: GoalAudiences, clock: Callable[[], datetime]) -> None:
        self.tables = tables
        self.audiences = audiences
        self.clock = clock

    def record(self, connection: Connection, org_id: str, activity: Activity, ref_id: str | None = None) -> None:
        """Store an activity applied for the first time and insert its notifications."""
        insert_ignoring_duplicates(connection, self.tables.activity.activities, [{
            "event_id": activity.event_id,
            "org_id": org_id,
            "goal_id": activity.goal_id,
            "source": activity.source,
            "actor_id": activity.actor_id,
            "occurred_at": activity.occurred_at,
            "goal_version": activity.goal_version,
            "people": " ".join(sorted(activity.people)),
            "community_id": activity.community_id,
            "detail": activity.detail,
            "ref_id": ref_id,
        }])
        expected = self._expected(connection, org_id, activity.goal_id, [activity], person_id=None)
        self._insert(connection, org_id, activity.goal_id, expected)

    def withdraw(self, connection: Connection, org_id: str, event_ids: Iterable[str]) -> None:
        """Forget activities and delete their notifications (a deleted comment, a confidence streak undone)."""
        event_ids = sorted(event_ids)
        if not event_ids:
            return
        activities, inbox = self.tables.activity.activities, self.tables.inbox
        connection.execute(delete(inbox).where(inbox.c.org_id == org_id, inbox.c.event_id.in_(event_ids)))
        connection.execute(
            delete(activities).where(activities.c.org_id == org_id, activities.c.event_id.in_(event_ids))
        )

    def reconcile(
        self,
        connection: Connection,
        org_id: str,
        goal_id: str,
        selected: ColumnElement[bool],
        person_id: str | None = None,
    ) -> None:
        """Add, re-kind or withdraw the notifications of the goal's activities matching ``selected``.

        With ``person_id``, only that person's notifications are touched. A withdrawn notification
        loses its read mark, but one whose kind changes keeps it.
        """
        activities, inbox = self.tables.activity.activities, self.tables.inbox
        of_goal = (activities.c.org_id == org_id, activities.c.goal_id == goal_id, selected)
        selected_activities = [
            _activity_from_row(row) for row in connection.execute(select(activities).where(*of_goal))
        ]
        if not selected_activities:
            return
        expected = self._expected(connection, org_id, goal_id, selected_activities, person_id)
        existing_query = select(
            inbox.c.notification_id, inbox.c.event_id, inbox.c.recipient_id, inbox.c.kind, inbox.c.occurred_at
        ).where(
            inbox.c.org_id == org_id,
            inbox.c.goal_id == goal_id,
            inbox.c.kind.in_(ACTIVITY_KINDS),
            inbox.c.event_id.in_(select(activities.c.event_id).where(*of_goal)),
        )
        if person_id is not None:
            existing_query = existing_query.where(inbox.c.recipient_id == person_id)
        existing = {(row.event_id, row.recipient_id): row for row in connection.execute(existing_query)}

        withdrawn = [row.notification_id for key, row in existing.items() if key not in expected]
        if withdrawn:
            connection.execute(delete(inbox).where(inbox.c.notification_id.in_(sorted(withdrawn))))
            logger.info("withdrew notifications goal_id=%s count=%s", goal_id, len(withdrawn))
        for key, row in existing.items():
            if key in expected and expected[key][0] != row.kind:
                kind = expected[key][0]
                connection.execute(
                    update(inbox)
                    .where(inbox.c.notification_id == row.notification_id)
                    .values(kind=kind, group_key=group_key_for(kind, goal_id, row.occurred_at))
                )
        missing = {key: value for key, value in expected.items() if key not in existing}
        self._insert(connection, org_id, goal_id, missing)
        logger.debug("reconciled notifications goal_id=%s activities=%s added=%s withdrawn=%s",
                     goal_id, len(selected_activities), len(missing), len(withdrawn))

    def _insert(self, connection: Connection, org_id: str, goal_id: str, notifications: Expected) -> None:
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
                actor_id=activity.actor_id,
                event_id=activity.event_id,
                occurred_at=activity.occurred_at,
                created_at=self.clock(),
                community_id=activity.community_id,
                group_key=group_key_for(kind, goal_id, activity.occurred_at),
            )
            for (_, recipient_id), (kind, activity) in notifications.items()
        ]
        write_notifications(connection, self.tables, rows)

    def _expected(
        self, connection: Connection, org_id: str, goal_id: str, activities: list[Activity], person_id: str | None
    ) -> Expected:
        """Return (event id, recipient) -> (kind, activity) for every notification the rules call for."""
        facts = self.facts(connection, org_id, goal_id, activities, person_id)
        expected: Expected = {}
        for activity in activities:
            for recipient_id, kind in activity_recipients(activity, facts).items():
                if person_id is None or recipient_id == person_id:
                    expected[(activity.event_id, recipient_id)] = (kind, activity)
        return expected

    def facts(
        self, connection: Connection, org_id: str, goal_id: str, activities: list[Activity], person_id: str | None
    ) -> GoalFacts:
        history = self.audiences.history(connection, org_id, goal_id)
        until = max(activity.occurred_at for activity in activities)
        follow_changes = self.tables.follow_changes
        follows = select(follow_changes).where(
            follow_changes.c.org_id == org_id, follow_changes.c.goal_id == goal_id, follow_changes.c.occurred_at <= until
        )
        members = self.tables.activity.member_changes
        community_ids = sorted({activity.community_id for activity in activities if activity.community_id})
        memberships = select(members).where(
            members.c.org_id == org_id, members.c.community_id.in_(community_ids), members.c.occurred_at <= until
        )
        if person_id is not None:
            follows = follows.where(follow_changes.c.person_id == person_id)
            memberships = memberships.where(members.c.person_id == person_id)
        member_changes: dict[str, list[FollowChange]] = {community_id: [] for community_id in community_ids}
        if community_ids:
            for row in connection.execute(memberships):
                member_changes[row.community_id].append(
                    FollowChange(row.event_id, row.person_id, row.member, row.occurred_at, row.aggregate_version)
                )
        return GoalFacts(
            follow_changes=[
                FollowChange(row.event_id, row.person_id, row.following, row.occurred_at, row.aggregate_version)
                for row in connection.execute(follows)
            ],
            owners_changes=history.owners_changes,
            visibility_changes=history.visibility_changes,
            collaborator_ids=history.collaborator_ids,
            member_changes=member_changes,
        )

    def goal_title(self, connection: Connection, org_id: str, goal_id: str) -> str | None:
        goals = self.tables.goals
        return connection.execute(
            select(goals.c.title).where(goals.c.org_id == org_id, goals.c.goal_id == goal_id)
        ).scalar()


def _activity_from_row(row: Any) -> Activity:
    return Activity(
        event_id=row.event_id,
        source=row.source,
        goal_id=row.goal_id,
        actor_id=row.actor_id,
        occurred_at=row.occurred_at,
        goal_version=row.goal_version,
        people=frozenset(row.people.split()) if row.people else frozenset(),
        community_id=row.community_id,
        detail=row.detail,
    )
