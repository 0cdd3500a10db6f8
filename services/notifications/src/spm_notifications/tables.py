"""The inbox read model's tables, kept in the same metadata as the Kafka position bookkeeping."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    DateTime,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.types import TypeDecorator

from spm_events.readmodel import PositionedReadModel

from spm_notifications.rules import notification_id_for

if TYPE_CHECKING:
    from spm_notifications.activity_tables import ActivityTables


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime stored in UTC.

    SQLite drops the offset of a stored datetime, so values are converted to UTC on the way in and
    read back as UTC. The same stored text then sorts and compares correctly on SQLite and PostgreSQL.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} has no timezone. Pass an aware datetime")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


Id = String(100)
Visibility = String(20)

OWNER_ROLE = "owner"
CO_OWNER_ROLE = "co_owner"
COLLABORATOR_ROLE = "collaborator"


@dataclass(frozen=True)
class InboxTables:
    goals: Table
    follow_changes: Table
    inbox: Table
    goal_audiences: Table
    goal_people: Table
    goal_teams: Table
    goal_visibility_changes: Table
    goal_owner_changes: Table
    # Activities, tag and membership changes, key results and nudge timers (activity_tables.py).
    activity: ActivityTables


def define_inbox_tables(metadata: MetaData) -> InboxTables:
    goals = Table(
        "goals",
        metadata,
        Column("org_id", Id, primary_key=True),
        Column("goal_id", Id, primary_key=True),
        Column("title", String(500), nullable=False),
        # The owner named at creation. The current owners are in goal_people.
        Column("owner_id", Id, nullable=False),
    )
    # Every GoalFollowed and GoalUnfollowed, kept so that a check-in is matched to the people who
    # followed the goal at the check-in's event time, whichever topic the worker happens to read first.
    follow_changes = Table(
        "follow_changes",
        metadata,
        Column("event_id", String(64), primary_key=True),
        Column("org_id", Id, nullable=False),
        Column("goal_id", Id, nullable=False),
        Column("person_id", Id, nullable=False),
        Column("following", Boolean, nullable=False),
        Column("occurred_at", UtcDateTime, nullable=False),
        Column("aggregate_version", Integer, nullable=False),
        Index("ix_follow_changes_goal_person", "org_id", "goal_id", "person_id"),
    )
    inbox = Table(
        "inbox",
        metadata,
        Column("notification_id", String(36), primary_key=True),
        Column("org_id", Id, nullable=False),
        Column("recipient_id", Id, nullable=False),
        Column("kind", String(50), nullable=False),
        Column("goal_id", Id, nullable=False),
        # Null until the goal's GoalCreated is applied, because spm.social.v1 may be read ahead of spm.goals.v1.
        Column("goal_title", String(500), nullable=True),
        Column("actor_id", Id, nullable=False),
        Column("event_id", String(64), nullable=False),
        Column("occurred_at", UtcDateTime, nullable=False),
        Column("created_at", UtcDateTime, nullable=False),
        Column("read_at", UtcDateTime, nullable=True),
        # The community of a community_goal_linked notification; null for other kinds.
        Column("community_id", Id, nullable=True),
        # Notifications of one recipient with the same key are shown as one inbox item (rules.group_key_for).
        Column("group_key", String(300), nullable=True),
        # Assigned at insert from the inbox_sequence counter, so it grows in commit order. The live
        # stream uses it as the SSE event id and the dispatcher as its cursor.
        Column("sequence", BigInteger, nullable=False),
        Index("ux_inbox_sequence", "sequence", unique=True),
        UniqueConstraint("event_id", "recipient_id", "kind", name="uq_inbox_event_recipient_kind"),
        Index("ix_inbox_recipient_time", "org_id", "recipient_id", "occurred_at", "notification_id"),
        Index("ix_inbox_goal_recipient", "org_id", "goal_id", "recipient_id"),
        Index("ix_inbox_recipient_group", "org_id", "recipient_id", "group_key"),
    )
    audience = define_audience_tables(metadata)
    # Imported here because activity_tables imports this module's column types.
    from spm_notifications.activity_tables import define_activity_tables

    activity = define_activity_tables(metadata)
    return InboxTables(goals=goals, follow_changes=follow_changes, inbox=inbox, activity=activity, **audience)


def define_audience_tables(metadata: MetaData) -> dict[str, Table]:
    """Define the tables that record who may see each goal.

    Every owner set and visibility a goal event carried is kept by aggregate version, so a
    check-in is judged by the facts in force at its own version, whatever order they were read
    in. goal_audiences and goal_people hold the current facts (the highest version, plus every
    tagged collaborator) that inbox queries filter on.
    """
    goal_visibility_changes = Table(
        "goal_visibility_changes",
        metadata,
        Column("org_id", Id, primary_key=True),
        Column("goal_id", Id, primary_key=True),
        Column("aggregate_version", Integer, primary_key=True),
        Column("visibility", Visibility, nullable=False),
        # Event time of the goal event, which judges social events (they carry no goal version).
        Column("occurred_at", UtcDateTime, nullable=True),
    )
    goal_owner_changes = Table(
        "goal_owner_changes",
        metadata,
        Column("org_id", Id, primary_key=True),
        Column("goal_id", Id, primary_key=True),
        Column("aggregate_version", Integer, primary_key=True),
        Column("person_id", Id, primary_key=True),
        Column("role", String(20), nullable=False),
        Column("occurred_at", UtcDateTime, nullable=True),
    )
    # One row per goal once any visibility is known. A goal without a row is visible to its insiders only.
    goal_audiences = Table(
        "goal_audiences",
        metadata,
        Column("org_id", Id, primary_key=True),
        Column("goal_id", Id, primary_key=True),
        Column("visibility", Visibility, nullable=False),
        Column("aggregate_version", Integer, nullable=False),
    )
    # The goal's insiders now: its owner and co-owners at the highest version, and every tagged collaborator.
    goal_people = Table(
        "goal_people",
        metadata,
        Column("org_id", Id, primary_key=True),
        Column("goal_id", Id, primary_key=True),
        Column("person_id", Id, primary_key=True),
        Column("role", String(20), primary_key=True),
    )
    # The goal's owning team and its contributing teams, which see a goal of visibility "team".
    goal_teams = Table(
        "goal_teams",
        metadata,
        Column("org_id", Id, primary_key=True),
        Column("goal_id", Id, primary_key=True),
        Column("team", String(200), primary_key=True),
    )
    return {
        "goal_audiences": goal_audiences,
        "goal_people": goal_people,
        "goal_teams": goal_teams,
        "goal_visibility_changes": goal_visibility_changes,
        "goal_owner_changes": goal_owner_changes,
    }


def insert_ignoring_duplicates(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert rows, skipping each one whose primary or unique key is already taken.

    Rows of the inbox table get their ``sequence`` here, so every insert path numbers its rows.
    """
    if not rows:
        return
    if table.name == "inbox":
        rows = _with_inbox_sequences(connection, table, rows)
    dialect_insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    connection.execute(dialect_insert(table).on_conflict_do_nothing(), rows)


def upsert(connection: Connection, table: Table, row: dict[str, Any]) -> None:
    """Insert a row, or overwrite the non-key columns of the row with the same primary key."""
    dialect_insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    statement = dialect_insert(table).values(row)
    key_columns = [column.name for column in table.primary_key.columns]
    changes = {name: statement.excluded[name] for name in row if name not in key_columns}
    connection.execute(statement.on_conflict_do_update(index_elements=key_columns, set_=changes))


def define_inbox_sequence_table(metadata: MetaData) -> Table:
    # One row with the last sequence handed out. Updating it locks the row until commit, so on
    # PostgreSQL two writers number their rows in the order they commit. A reader that follows
    # "sequence > cursor" then never skips a row committed late with a lower number.
    return Table(
        "inbox_sequence",
        metadata,
        Column("name", String(20), primary_key=True),
        Column("value", BigInteger, nullable=False),
    )


def _with_inbox_sequences(connection: Connection, inbox: Table, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    counter = inbox.metadata.tables["inbox_sequence"]
    last = connection.execute(
        update(counter)
        .where(counter.c.name == "inbox")
        .values(value=counter.c.value + len(rows))
        .returning(counter.c.value)
    ).scalar_one()
    first = last - len(rows) + 1
    # Rows that turn out to be duplicates leave gaps, which readers of the sequence tolerate.
    return [{**row, "sequence": first + offset} for offset, row in enumerate(rows)]


def open_read_model(engine: Engine, consumer: str) -> tuple[PositionedReadModel, InboxTables]:
    """Define the inbox read model on a fresh metadata and create its tables if they do not exist yet."""
    metadata = MetaData()
    tables = define_inbox_tables(metadata)
    counter = define_inbox_sequence_table(metadata)
    # Imported here because delivery_tables imports this module's column types.
    from spm_notifications.delivery_tables import define_delivery_tables

    define_delivery_tables(metadata)
    read_model = PositionedReadModel(engine, metadata, consumer)
    read_model.create_tables()
    with engine.begin() as connection:
        insert_ignoring_duplicates(connection, counter, [{"name": "inbox", "value": 0}])
    return read_model, tables


def inbox_row(
    *,
    org_id: str,
    recipient_id: str,
    kind: str,
    goal_id: str,
    goal_title: str | None,
    actor_id: str,
    event_id: str,
    occurred_at: datetime,
    created_at: datetime,
    community_id: str | None = None,
    group_key: str | None = None,
) -> dict[str, Any]:
    """Build an unread inbox row. Its id derives from the event and the recipient, so a second insert is a duplicate."""
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
        "created_at": created_at,
        "read_at": None,
        "community_id": community_id,
        "group_key": group_key,
    }
