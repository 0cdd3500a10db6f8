"""Writes the scoring read model from goal and social events, inside the transaction of each message.

Model v1 reads the goal, check-in and interaction rows; model v2 reads the score facts that
``fact_from_envelope`` derives. Both are written in the same transaction.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime

from sqlalchemy import Connection, case, delete, insert, select, text
from sqlalchemy.dialects import postgresql, sqlite

from spm_events.envelope import Envelope
from spm_events.readmodel import InvalidEventError
from spm_events.registry import EVENT_TYPES, parse_payload
from spm_events.schemas import (
    CheckInRecordedV1,
    CollaboratorTaggedV1,
    GoalCreatedV1,
    GoalFollowedV1,
    KeyResultAddedV1,
)
from spm_scoring.activities import ActivityKind, Goal, GoalActivity, as_utc, interactions_for
from spm_scoring.fact_store import bump_org_revision, record_fact
from spm_scoring.facts import fact_from_envelope
from spm_scoring.tables import ScoringTables

logger = logging.getLogger(__name__)


class ScoringProjection:
    """The handler that ``PositionedReadModel.apply`` calls for each new event."""

    def __init__(self, tables: ScoringTables) -> None:
        self.tables = tables

    def __call__(self, connection: Connection, envelope: Envelope) -> None:
        if envelope.type not in EVENT_TYPES:
            # A newer producer may publish types this contract version does not know; they do not score.
            logger.debug("ignoring unknown event type=%s event_id=%s", envelope.type, envelope.id)
            return
        payload = parse_payload(envelope)
        occurred_at = as_utc(envelope.time)
        self._advance_org_clock(connection, envelope.orgid, occurred_at)
        bump_org_revision(connection, self.tables.v2, envelope.orgid)
        fact = fact_from_envelope(envelope, payload, occurred_at)
        if fact is not None:
            record_fact(connection, self.tables.v2, fact)
        if isinstance(payload, GoalCreatedV1):
            self._record_goal(connection, envelope, payload, occurred_at)
        elif isinstance(payload, KeyResultAddedV1):
            self._record_key_result(connection, envelope, payload, occurred_at)
        elif isinstance(payload, CheckInRecordedV1):
            self._record_check_in(connection, envelope, payload, occurred_at)
        elif isinstance(payload, CollaboratorTaggedV1):
            activity = _activity(envelope, payload.goal_id, ActivityKind.TAG, envelope.actorid, payload.collaborator_id)
            self._credit_or_defer(connection, activity)
        elif isinstance(payload, GoalFollowedV1):
            activity = _activity(envelope, payload.goal_id, ActivityKind.FOLLOW, payload.follower_id, None)
            self._credit_or_defer(connection, activity)
        # GoalUnfollowed only advances the clock: followers_gained counts follow events, not followers.

    def _advance_org_clock(self, connection: Connection, org_id: str, occurred_at: datetime) -> None:
        table = self.tables.org_clock
        dialect_insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
        statement = dialect_insert(table).values(org_id=org_id, latest_event_time=occurred_at)
        later = case(
            (statement.excluded.latest_event_time > table.c.latest_event_time, statement.excluded.latest_event_time),
            else_=table.c.latest_event_time,
        )
        connection.execute(
            statement.on_conflict_do_update(index_elements=[table.c.org_id], set_={"latest_event_time": later})
        )

    def _record_goal(
        self, connection: Connection, envelope: Envelope, payload: GoalCreatedV1, occurred_at: datetime
    ) -> None:
        self._lock_goal(connection, envelope.orgid, payload.goal_id)
        if self._find_goal(connection, envelope.orgid, payload.goal_id) is not None:
            raise InvalidEventError(f"goal_id={payload.goal_id} was already created by another event")
        connection.execute(
            insert(self.tables.goals).values(
                org_id=envelope.orgid,
                goal_id=payload.goal_id,
                owner_id=payload.owner_id,
                team=payload.team,
                title=payload.title,
                created_at=occurred_at,
            )
        )
        goal = Goal(envelope.orgid, payload.goal_id, payload.owner_id, payload.team)
        self._credit_pending_activities(connection, goal)

    def _record_key_result(
        self, connection: Connection, envelope: Envelope, payload: KeyResultAddedV1, occurred_at: datetime
    ) -> None:
        table = self.tables.key_results
        existing = connection.execute(
            select(table.c.goal_id).where(
                table.c.org_id == envelope.orgid, table.c.key_result_id == payload.key_result_id
            )
        ).first()
        if existing is not None:
            raise InvalidEventError(f"key_result_id={payload.key_result_id} was already added by another event")
        connection.execute(
            insert(table).values(
                org_id=envelope.orgid,
                key_result_id=payload.key_result_id,
                goal_id=payload.goal_id,
                added_at=occurred_at,
            )
        )

    def _record_check_in(
        self, connection: Connection, envelope: Envelope, payload: CheckInRecordedV1, occurred_at: datetime
    ) -> None:
        connection.execute(
            insert(self.tables.check_ins).values(
                org_id=envelope.orgid,
                event_id=envelope.id,
                key_result_id=payload.key_result_id,
                goal_id=payload.goal_id,
                actor_id=envelope.actorid,
                progress=payload.progress,
                occurred_at=occurred_at,
                aggregate_version=envelope.aggregateversion,
            )
        )
        activity = _activity(envelope, payload.goal_id, ActivityKind.CHECK_IN, envelope.actorid, None)
        self._credit_or_defer(connection, activity)

    def _credit_or_defer(self, connection: Connection, activity: GoalActivity) -> None:
        self._lock_goal(connection, activity.org_id, activity.goal_id)
        goal = self._find_goal(connection, activity.org_id, activity.goal_id)
        if goal is not None:
            self._insert_interactions(connection, activity, goal)
            return
        # NOTE: an activity whose goal never arrives in this org stays pending and never scores.
        logger.debug(
            "deferring event_id=%s until goal_id=%s is created org_id=%s",
            activity.event_id, activity.goal_id, activity.org_id,
        )
        connection.execute(
            insert(self.tables.pending_activities).values(
                org_id=activity.org_id,
                event_id=activity.event_id,
                goal_id=activity.goal_id,
                kind=activity.kind.value,
                actor_id=activity.actor_id,
                target_id=activity.target_id,
                occurred_at=activity.occurred_at,
            )
        )

    def _credit_pending_activities(self, connection: Connection, goal: Goal) -> None:
        table = self.tables.pending_activities
        for_goal = (table.c.org_id == goal.org_id) & (table.c.goal_id == goal.goal_id)
        rows = connection.execute(select(table).where(for_goal)).all()
        for row in rows:
            activity = GoalActivity(
                org_id=row.org_id,
                event_id=row.event_id,
                goal_id=row.goal_id,
                kind=ActivityKind(row.kind),
                actor_id=row.actor_id,
                target_id=row.target_id,
                occurred_at=as_utc(row.occurred_at),
            )
            self._insert_interactions(connection, activity, goal)
        if rows:
            connection.execute(delete(table).where(for_goal))
            logger.info("credited pending=%s events for goal_id=%s org_id=%s", len(rows), goal.goal_id, goal.org_id)

    def _insert_interactions(self, connection: Connection, activity: GoalActivity, goal: Goal) -> None:
        rows = [
            {
                "org_id": interaction.org_id,
                "event_id": interaction.event_id,
                "person_id": interaction.person_id,
                "kind": interaction.kind.value,
                "other_person_id": interaction.other_person_id,
                "goal_id": interaction.goal_id,
                "goal_team": interaction.goal_team,
                "weight": interaction.weight,
                "occurred_at": interaction.occurred_at,
            }
            for interaction in interactions_for(activity, goal)
        ]
        if rows:
            connection.execute(insert(self.tables.interactions), rows)

    def _find_goal(self, connection: Connection, org_id: str, goal_id: str) -> Goal | None:
        table = self.tables.goals
        row = connection.execute(
            select(table.c.owner_id, table.c.team).where(table.c.org_id == org_id, table.c.goal_id == goal_id)
        ).first()
        return None if row is None else Goal(org_id, goal_id, row.owner_id, row.team)

    def _lock_goal(self, connection: Connection, org_id: str, goal_id: str) -> None:
        """Serialise a goal's creation with the activities waiting for it when workers share PostgreSQL.

        Without the lock, an activity could miss a goal committed by another worker in the same
        moment and stay pending for ever. SQLite needs none: the org clock upsert that runs first in
        the transaction already holds the database's single write lock.
        """
        if connection.dialect.name != "postgresql":
            return
        digest = hashlib.sha256(f"spm-scoring:{org_id}:{goal_id}".encode()).digest()
        connection.execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": int.from_bytes(digest[:8], "big", signed=True)}
        )


def _activity(
    envelope: Envelope, goal_id: str, kind: ActivityKind, actor_id: str, target_id: str | None
) -> GoalActivity:
    return GoalActivity(
        org_id=envelope.orgid,
        event_id=envelope.id,
        goal_id=goal_id,
        kind=kind,
        actor_id=actor_id,
        target_id=target_id,
        occurred_at=as_utc(envelope.time),
    )
