"""The people directory: each organisation's people with their personal details, in social's read database.

It is the one place where display names and e-mail addresses live. Events name people by id only,
so the directory is not rebuilt from the topics: it is written through the API and erasing a person
here erases their details everywhere. A person's id is ``person_id_for(org, handle)``, so every
service and tool derives the same id from a handle without asking the directory.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    DateTime,
    Engine,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from spm_events.database import create_tables
from spm_events.people import person_id_for
from spm_social.teams import define_teams_table, find_unknown_team

logger = logging.getLogger(__name__)

MAX_HANDLE_LENGTH = 64
MAX_DISPLAY_NAME_LENGTH = 200
# The longest address SMTP can deliver to (RFC 5321: a 256-octet path less the angle brackets).
MAX_EMAIL_LENGTH = 254
MAX_TEAM_LENGTH = 200


@dataclass(frozen=True)
class PersonEntry:
    """One person of a batch upsert, as the client sent it."""

    handle: str
    display_name: str
    email: str
    team: str
    manager_handle: str | None


class PeopleBatchError(ValueError):
    """Raised for a batch that breaks a directory rule. ``row`` is the 0-based index of the person in the batch."""

    def __init__(self, row: int, field: str, message: str) -> None:
        super().__init__(message)
        self.row = row
        self.field = field
        self.message = message


@dataclass(frozen=True)
class BatchResult:
    created: int
    updated: int
    unchanged: int


def define_people_table(metadata: MetaData) -> Table:
    return Table(
        "people",
        metadata,
        Column("org_id", String(100), primary_key=True),
        Column("person_id", String(100), primary_key=True),
        Column("handle", String(MAX_HANDLE_LENGTH), nullable=False),
        Column("display_name", String(MAX_DISPLAY_NAME_LENGTH), nullable=False),
        Column("email", String(MAX_EMAIL_LENGTH), nullable=False),
        Column("team", String(MAX_TEAM_LENGTH), nullable=False),
        Column("manager_id", String(100), nullable=True),
        Column("active", Boolean, nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False),
        # Pages are read in handle order, so this constraint's index also serves the page query.
        UniqueConstraint("org_id", "handle", name="uq_people_org_handle"),
    )


class PeopleDirectory:
    """Reads and writes the ``people`` table of one database, creating it when missing."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        metadata = MetaData()
        self.table = define_people_table(metadata)
        self.teams = define_teams_table(metadata)
        create_tables(metadata, engine)

    def upsert_batch(self, org_id: str, entries: list[PersonEntry]) -> BatchResult:
        """Create or update every person of the batch in one transaction, or raise PeopleBatchError and write nothing.

        A person in the batch becomes active again if they were deactivated, because a directory
        sync sends only the people who are there.
        """
        with self.engine.begin() as connection:
            self._lock_org(connection, org_id)
            managers = self._manager_handles(connection, org_id)
            existing = self._rows_by_handle(connection, org_id, [entry.handle for entry in entries])
            check_batch(entries, managers)
            unknown_team = find_unknown_team(connection, self.teams, org_id, [entry.team for entry in entries])
            if unknown_team is not None:
                row, team = unknown_team
                raise PeopleBatchError(
                    row, "team", f"team {team!r} is not a team of the organisation; add it with POST /teams/batch first"
                )
            now = datetime.now(timezone.utc)
            rows = [self._row_of(org_id, entry, now) for entry in entries]
            changed = [row for row in rows if _differs(existing.get(str(row["handle"])), row)]
            if changed:
                connection.execute(self._upsert_statement(connection), changed)
        created = sum(1 for row in changed if row["handle"] not in existing)
        result = BatchResult(created=created, updated=len(changed) - created, unchanged=len(rows) - len(changed))
        logger.info(
            "people batch stored org_id=%s created=%s updated=%s unchanged=%s",
            org_id, result.created, result.updated, result.unchanged,
        )
        return result

    def page(self, org_id: str, limit: int, after_handle: str | None) -> list[dict[str, Any]]:
        """Return up to ``limit`` people of the org in handle order, starting after ``after_handle``."""
        people = self.table
        query = select(people).where(people.c.org_id == org_id)
        if after_handle is not None:
            query = query.where(people.c.handle > after_handle)
        query = query.order_by(people.c.handle).limit(limit)
        with self.engine.connect() as connection:
            return [dict(row) for row in connection.execute(query).mappings()]

    def find(self, org_id: str, handle: str) -> dict[str, Any] | None:
        people = self.table
        query = select(people).where(people.c.org_id == org_id, people.c.handle == handle)
        with self.engine.connect() as connection:
            row = connection.execute(query).mappings().first()
        return None if row is None else dict(row)

    def deactivate(self, org_id: str, handle: str) -> dict[str, Any] | None:
        """Mark the person inactive and return them, or return None when the org has no such handle."""
        people = self.table
        with self.engine.begin() as connection:
            connection.execute(
                update(people)
                .where(people.c.org_id == org_id, people.c.handle == handle, people.c.active.is_(True))
                .values(active=False, updated_at=datetime.now(timezone.utc))
            )
            row = connection.execute(
                select(people).where(people.c.org_id == org_id, people.c.handle == handle)
            ).mappings().first()
        if row is not None:
            logger.info("person deactivated org_id=%s person_id=%s", org_id, row["person_id"])
        return None if row is None else dict(row)

    def _lock_org(self, connection: Connection, org_id: str) -> None:
        """Serialise batches before they read, so two batches cannot each close half of a manager cycle.

        PostgreSQL takes a lock per organisation. SQLite's driver would begin the transaction only
        at the first write, so it starts it here with the database's write lock instead.
        """
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"people/{org_id}"})
        elif connection.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    def _manager_handles(self, connection: Connection, org_id: str) -> dict[str, str | None]:
        """Return every handle of the org with its manager's handle."""
        people = self.table
        rows = connection.execute(
            select(people.c.person_id, people.c.handle, people.c.manager_id).where(people.c.org_id == org_id)
        ).all()
        handle_of = {person_id: handle for person_id, handle, _ in rows}
        return {handle: handle_of.get(manager_id) if manager_id else None for _, handle, manager_id in rows}

    def _rows_by_handle(self, connection: Connection, org_id: str, handles: list[str]) -> dict[str, dict[str, Any]]:
        people = self.table
        rows = connection.execute(
            select(people).where(people.c.org_id == org_id, people.c.handle.in_(handles))
        ).mappings()
        return {row["handle"]: dict(row) for row in rows}

    def _row_of(self, org_id: str, entry: PersonEntry, now: datetime) -> dict[str, Any]:
        manager_id = None if entry.manager_handle is None else person_id_for(org_id, entry.manager_handle)
        return {
            "org_id": org_id,
            "person_id": person_id_for(org_id, entry.handle),
            "handle": entry.handle,
            "display_name": entry.display_name,
            "email": entry.email,
            "team": entry.team,
            "manager_id": manager_id,
            "active": True,
            "updated_at": now,
        }

    def _upsert_statement(self, connection: Connection):  # type: ignore[no-untyped-def]
        dialect_insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
        statement = dialect_insert(self.table)
        replaced = ("display_name", "email", "team", "manager_id", "active", "updated_at")
        return statement.on_conflict_do_update(
            index_elements=["org_id", "person_id"],
            set_={column: statement.excluded[column] for column in replaced},
        )


def _differs(existing: dict[str, Any] | None, row: dict[str, Any]) -> bool:
    if existing is None:
        return True
    return any(existing[column] != row[column] for column in ("display_name", "email", "team", "manager_id", "active"))


def check_batch(entries: list[PersonEntry], directory_managers: dict[str, str | None]) -> None:
    """Raise PeopleBatchError for a repeated handle, an unknown manager or a manager cycle.

    ``directory_managers`` maps each handle already in the directory to its manager's handle, and
    the batch replaces the managers of the people it names. The directory has no cycle before the
    batch, so a new cycle passes through a person of the batch, and following each one's chain finds it.
    """
    row_of_handle: dict[str, int] = {}
    for row, entry in enumerate(entries):
        if entry.handle in row_of_handle:
            raise PeopleBatchError(row, "handle", f"handle {entry.handle!r} repeats row {row_of_handle[entry.handle]}")
        row_of_handle[entry.handle] = row
    managers = dict(directory_managers)
    managers.update({entry.handle: entry.manager_handle for entry in entries})
    for row, entry in enumerate(entries):
        if entry.manager_handle is not None and entry.manager_handle not in managers:
            raise PeopleBatchError(
                row,
                "manager_handle",
                f"manager_handle {entry.manager_handle!r} is neither in this batch nor in the directory; "
                "send the manager in the same batch or an earlier one",
            )
    for row, entry in enumerate(entries):
        seen = {entry.handle}
        manager = entry.manager_handle
        while manager is not None and manager not in seen:
            seen.add(manager)
            manager = managers.get(manager)
        # A chain that runs into a cycle elsewhere is reported on the row of a person in that cycle.
        if manager == entry.handle:
            raise PeopleBatchError(
                row,
                "manager_handle",
                f"manager_handle {entry.manager_handle!r} makes a cycle: the chain of managers of "
                f"{entry.handle!r} leads back to {entry.handle!r}",
            )
