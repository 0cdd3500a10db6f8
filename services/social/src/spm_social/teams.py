"""Teams of the people directory: each team's name and parent team, written in batches by admins.

Team names are the ones goals and tokens use (a goal's ``team``, a token's ``teams`` claim), so a
team is identified by its name within the organisation. Once an organisation has any team, a
person's ``team`` in a people batch must name one of them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Column, Connection, DateTime, Engine, MetaData, String, Table, select, text
from sqlalchemy.dialects import postgresql, sqlite

from spm_events.auth import MAX_TEAM_NAME_LENGTH
from spm_events.database import create_tables

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TeamEntry:
    """One team of a batch upsert; ``parent_name`` None makes it a top-level team."""

    name: str
    parent_name: str | None


class TeamBatchError(ValueError):
    """Raised for a batch that breaks a team rule. ``row`` is the 0-based index of the team in the batch."""

    def __init__(self, row: int, field: str, message: str) -> None:
        super().__init__(message)
        self.row = row
        self.field = field
        self.message = message


@dataclass(frozen=True)
class TeamBatchResult:
    created: int
    updated: int
    unchanged: int


def define_teams_table(metadata: MetaData) -> Table:
    return Table(
        "teams",
        metadata,
        Column("org_id", String(100), primary_key=True),
        Column("name", String(MAX_TEAM_NAME_LENGTH), primary_key=True),
        Column("parent_name", String(MAX_TEAM_NAME_LENGTH), nullable=True),
        Column("updated_at", DateTime(timezone=True), nullable=False),
    )


def lock_org_directory(connection: Connection, org_id: str) -> None:
    """Serialise the org's people and team batches before they read.

    The key is the one the people batch locks, so a people batch never checks teams that a team
    batch is changing. SQLite's driver would begin the transaction only at the first write, so it
    starts it here with the database's write lock instead.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"people/{org_id}"})
    elif connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def find_unknown_team(
    connection: Connection, teams: Table, org_id: str, team_names: list[str]
) -> tuple[int, str] | None:
    """Return the index and name of the first name that is not a team of the org, or None.

    An organisation without teams has not started using them, so every name passes there.
    """
    wanted = sorted(set(team_names))
    known_query = select(teams.c.name).where(teams.c.org_id == org_id, teams.c.name.in_(wanted))
    known = set(connection.execute(known_query).scalars())
    if known == set(wanted):
        return None
    if not known and connection.execute(select(teams.c.name).where(teams.c.org_id == org_id).limit(1)).first() is None:
        return None
    return next((index, name) for index, name in enumerate(team_names) if name not in known)


class TeamDirectory:
    """Reads and writes the ``teams`` table of one database, creating it when missing."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        metadata = MetaData()
        self.table = define_teams_table(metadata)
        create_tables(metadata, engine)

    def upsert_batch(self, org_id: str, entries: list[TeamEntry]) -> TeamBatchResult:
        """Create or update every team of the batch in one transaction, or raise TeamBatchError and write nothing.

        A team of the batch gets the batch's parent, so leaving out ``parent_name`` makes an
        existing team top-level. Teams are never deleted, so no person's team can disappear.
        """
        teams = self.table
        with self.engine.begin() as connection:
            lock_org_directory(connection, org_id)
            rows = connection.execute(select(teams.c.name, teams.c.parent_name).where(teams.c.org_id == org_id)).all()
            existing = {name: parent_name for name, parent_name in rows}
            check_team_batch(entries, existing)
            now = datetime.now(timezone.utc)
            changed = [
                {"org_id": org_id, "name": entry.name, "parent_name": entry.parent_name, "updated_at": now}
                for entry in entries
                if entry.name not in existing or existing[entry.name] != entry.parent_name
            ]
            if changed:
                connection.execute(self._upsert_statement(connection), changed)
        created = sum(1 for row in changed if row["name"] not in existing)
        result = TeamBatchResult(created=created, updated=len(changed) - created, unchanged=len(entries) - len(changed))
        logger.info(
            "team batch stored org_id=%s created=%s updated=%s unchanged=%s",
            org_id, result.created, result.updated, result.unchanged,
        )
        return result

    def page(self, org_id: str, limit: int, after_name: str | None) -> list[dict[str, Any]]:
        """Return up to ``limit`` teams of the org in name order, starting after ``after_name``."""
        teams = self.table
        query = select(teams.c.name, teams.c.parent_name).where(teams.c.org_id == org_id)
        if after_name is not None:
            query = query.where(teams.c.name > after_name)
        query = query.order_by(teams.c.name).limit(limit)
        with self.engine.connect() as connection:
            return [dict(row) for row in connection.execute(query).mappings()]

    def _upsert_statement(self, connection: Connection):  # type: ignore[no-untyped-def]
        dialect_insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
        statement = dialect_insert(self.table)
        return statement.on_conflict_do_update(
            index_elements=["org_id", "name"],
            set_={column: statement.excluded[column] for column in ("parent_name", "updated_at")},
        )


def check_team_batch(entries: list[TeamEntry], directory_parents: dict[str, str | None]) -> None:
    """Raise TeamBatchError for a repeated name, an unknown parent or a cycle of parents.

    ``directory_parents`` maps each team already stored to its parent, and the batch replaces the
    parents of the teams it names. The stored teams have no cycle, so a new cycle passes through
    a team of the batch, and following each one's chain of parents finds it.
    """
    row_of_name: dict[str, int] = {}
    for row, entry in enumerate(entries):
        if entry.name in row_of_name:
            raise TeamBatchError(row, "name", f"team {entry.name!r} repeats row {row_of_name[entry.name]}")
        row_of_name[entry.name] = row
    parents = dict(directory_parents)
    parents.update({entry.name: entry.parent_name for entry in entries})
    for row, entry in enumerate(entries):
        if entry.parent_name is not None and entry.parent_name not in parents:
            raise TeamBatchError(
                row,
                "parent_name",
                f"parent_name {entry.parent_name!r} is neither in this batch nor among the organisation's teams; "
                "send the parent in the same batch or an earlier one",
            )
    for row, entry in enumerate(entries):
        seen = {entry.name}
        parent = entry.parent_name
        while parent is not None and parent not in seen:
            seen.add(parent)
            parent = parents.get(parent)
        # A chain that runs into a cycle elsewhere is reported on the row of a team in that cycle.
        if parent == entry.name:
            raise TeamBatchError(
                row,
                "parent_name",
                f"parent_name {entry.parent_name!r} makes a cycle: the chain of parents of {entry.name!r} "
                f"leads back to {entry.name!r}",
            )
