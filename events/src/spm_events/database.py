"""SQLAlchemy engines for read models and relay positions, on SQLite or PostgreSQL alike."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine, event


def create_database_engine(url: str) -> Engine:
    """Create an engine; SQLite files get WAL mode so API readers never block the writing worker."""
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True, future=True)
    engine = create_engine(url, future=True, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _configure_sqlite(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    return engine
