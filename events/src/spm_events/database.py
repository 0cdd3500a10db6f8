"""SQLAlchemy engines for read models and relay positions, on SQLite or PostgreSQL alike."""

from __future__ import annotations

import logging
import time
from typing import Callable, TypeVar

from sqlalchemy import Engine, MetaData, create_engine, event
from sqlalchemy.exc import DBAPIError

logger = logging.getLogger(__name__)

T = TypeVar("T")


def create_database_engine(url: str) -> Engine:
    """Create an engine. SQLite files get WAL mode, so API readers do not block the writing worker."""
    if not url.startswith("sqlite"):
        # Without a connect timeout, a server that accepts connections but never responds hangs the process.
        return create_engine(url, pool_pre_ping=True, future=True, connect_args={"connect_timeout": 10})
    engine = create_engine(url, future=True, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _configure_sqlite(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    return engine


def create_tables(metadata: MetaData, engine: Engine, attempts: int = 5) -> None:
    """Create the tables of ``metadata`` that are missing, tolerating another process doing the same.

    An API, its relay and its worker start together against one database, and ``create_all``
    checks for a table and then creates it, so two of them can both see it missing. The loser
    gets "already exists" and tries again, and the second check finds the table.
    """
    retry_creation_race(lambda: metadata.create_all(engine), "read-model tables", attempts)


def retry_creation_race(create: Callable[[], T], tables_name: str, attempts: int = 5) -> T:
    """Call ``create``, which creates tables if they are missing, again when another process raced it.

    On PostgreSQL the loser of two concurrent ``CREATE TABLE IF NOT EXISTS`` can still fail, with a
    unique violation on ``pg_type``. The ``eventsourcing`` recorders raise their own error types
    for it, and SQLAlchemy raises a ``DBAPIError``.
    """
    from eventsourcing.persistence import DatabaseError as EventStoreDatabaseError  # noqa: PLC0415

    for attempt in range(1, attempts):
        try:
            return create()
        except (DBAPIError, EventStoreDatabaseError) as error:
            logger.info("creating %s raced another process (attempt %s): %s", tables_name, attempt, getattr(error, "orig", error))
            time.sleep(0.1 * attempt)
    return create()
