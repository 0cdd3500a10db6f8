"""The index of goal ids per organisation, kept in the read database and derived from the notification log.

Listing an organisation's goals needs their ids, which the event store cannot select by org.
Before each lookup the index catches up on the ObjectiveCreated notifications stored after the
highest notification id it holds, so it never misses a goal that was saved, even when a process
stopped right after a save. Rows are inserted with "on conflict do nothing", so API processes
that catch up at the same time do no harm, and deleting the table only makes the next lookup
rebuild it.
"""

from __future__ import annotations

import logging
import uuid
from typing import Callable, Sequence

from eventsourcing.persistence import Notification
from sqlalchemy import BigInteger, Column, Engine, MetaData, String, Table, func, select
from sqlalchemy.dialects import postgresql, sqlite

from spm_events.database import create_tables

logger = logging.getLogger(__name__)

# (after notification id, limit) -> ObjectiveCreated notifications with ids above it, ascending.
ReadCreatedNotifications = Callable[[int, int], Sequence[Notification]]
# Notification -> (goal id, org id)
ReadGoalOrg = Callable[[Notification], tuple[uuid.UUID, str]]

CATCH_UP_BATCH_SIZE = 500


class ObjectiveIndex:
    def __init__(self, engine: Engine, read_created: ReadCreatedNotifications, read_goal_org: ReadGoalOrg) -> None:
        self.engine = engine
        self.read_created = read_created
        self.read_goal_org = read_goal_org
        metadata = MetaData()
        self.table = Table(
            "goal_index",
            metadata,
            Column("goal_id", String(36), primary_key=True),
            Column("org_id", String(100), nullable=False, index=True),
            Column("notification_id", BigInteger, nullable=False, index=True),
        )
        create_tables(metadata, engine)

    def goal_ids(self, org_id: str) -> list[uuid.UUID]:
        """Return the ids of every goal of ``org_id`` stored so far."""
        self.catch_up()
        with self.engine.connect() as connection:
            rows = connection.execute(select(self.table.c.goal_id).where(self.table.c.org_id == org_id))
            return [uuid.UUID(goal_id) for (goal_id,) in rows]

    def catch_up(self) -> None:
        """Index the ObjectiveCreated notifications stored after the highest one indexed."""
        position = self._indexed_position()
        while True:
            notifications = self.read_created(position, CATCH_UP_BATCH_SIZE)
            if not notifications:
                return
            rows = []
            for notification in notifications:
                goal_id, org_id = self.read_goal_org(notification)
                rows.append({"goal_id": str(goal_id), "org_id": org_id, "notification_id": notification.id})
            self._insert_missing(rows)
            position = notifications[-1].id
            logger.info("goal index reached notification_id=%s (%s goals added)", position, len(rows))
            if len(notifications) < CATCH_UP_BATCH_SIZE:
                return

    def _indexed_position(self) -> int:
        with self.engine.connect() as connection:
            return connection.execute(select(func.max(self.table.c.notification_id))).scalar() or 0

    def _insert_missing(self, rows: list[dict[str, object]]) -> None:
        dialect_insert = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        statement = dialect_insert(self.table).values(rows).on_conflict_do_nothing(index_elements=["goal_id"])
        with self.engine.begin() as connection:
            connection.execute(statement)
