"""Tables of the social read model (social-read.db), defined with the position bookkeeping tables."""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Date,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Insert,
    Table,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite

from spm_events.readmodel import PositionedReadModel
from spm_events.visibility import VISIBILITIES
from spm_social.fanout import DEFAULT_READ_TIME_THRESHOLD
from spm_social.feedtables import define_feed_tables, one_of

logger = logging.getLogger(__name__)

# The consumer name under which the feed worker records its Kafka positions. It stays fixed when
# the faust app id changes, so positions belong to the read model rather than to a consumer group.
FEED_CONSUMER = "social-feed"
READ_TIME_THRESHOLD_SETTING = "read_time_threshold"

# Roles of the people who see a goal at every visibility (the goal's insiders).
OWNER = "owner"
CO_OWNER = "co_owner"
COLLABORATOR = "collaborator"
GOAL_PEOPLE_ROLES = (OWNER, CO_OWNER, COLLABORATOR)


@dataclass(frozen=True)
class SocialTables:
    known_goals: Table
    key_results: Table
    goal_visibility: Table
    goal_people: Table
    goal_teams: Table
    audience_changes: Table
    subscriptions: Table
    audience_groups: Table
    link_changes: Table
    goal_links: Table
    activities: Table
    channel_activities: Table
    feed_items: Table
    comments: Table
    reactions: Table
    communities: Table
    settings: Table


def define_social_tables(metadata: MetaData) -> SocialTables:
    known_goals = Table(
        "known_goals",
        metadata,
        Column("org_id", String(100), primary_key=True),
        Column("goal_id", String(100), primary_key=True),
        Column("title", String(500), nullable=False),
        Column("owner_id", String(100), nullable=False),
        Column("team", String(200), nullable=False),
        Column("period_start", Date, nullable=False),
        Column("period_end", Date, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
    )
    key_results = Table(
        "key_results",
        metadata,
        Column("org_id", String(100), primary_key=True),
        Column("key_result_id", String(100), primary_key=True),
        Column("goal_id", String(100), nullable=False),
        Column("title", String(500), nullable=False),
    )
    goal_visibility, goal_people, goal_teams = _define_goal_audience_tables(metadata)
    feed = define_feed_tables(metadata)
    return SocialTables(
        known_goals,
        key_results,
        goal_visibility,
        goal_people,
        goal_teams,
        **{field.name: getattr(feed, field.name) for field in fields(feed)},
    )


def _define_goal_audience_tables(metadata: MetaData) -> tuple[Table, Table, Table]:
    """Define the tables of who may see each goal, normalised so that a feed page can filter in SQL."""
    # One row per goal that any goal event named. Visibility and owners each keep the value of the
    # highest aggregate version applied, so their events may arrive in any order. ``created`` turns
    # true with the goal's GoalCreated, and until then the goal is hidden from everyone.
    goal_visibility = Table(
        "goal_visibility",
        metadata,
        Column("org_id", String(100), primary_key=True),
        Column("goal_id", String(100), primary_key=True),
        Column("created", Boolean, nullable=False),
        Column("visibility", String(20), nullable=True),
        Column("visibility_version", Integer, nullable=False),
        Column("owners_version", Integer, nullable=False),
        # A CHECK passes on NULL, so the visibility may stay unset until its first fact arrives.
        one_of("visibility", VISIBILITIES),
    )
    # The owner and co-owners of the winning owners fact, and every tagged collaborator.
    goal_people = Table(
        "goal_people",
        metadata,
        Column("org_id", String(100), primary_key=True),
        Column("goal_id", String(100), primary_key=True),
        Column("person_id", String(100), primary_key=True),
        Column("role", String(20), primary_key=True),
        one_of("role", GOAL_PEOPLE_ROLES),
    )
    # The goal's own team and its contributing teams, from its GoalCreated.
    goal_teams = Table(
        "goal_teams",
        metadata,
        Column("org_id", String(100), primary_key=True),
        Column("goal_id", String(100), primary_key=True),
        Column("team", String(200), primary_key=True),
    )
    return goal_visibility, goal_people, goal_teams


@dataclass(frozen=True)
class SocialReadModel:
    positioned: PositionedReadModel
    tables: SocialTables

    @property
    def engine(self) -> Engine:
        return self.positioned.engine


def open_read_model(
    engine: Engine, consumer: str = FEED_CONSUMER, read_time_threshold: int = DEFAULT_READ_TIME_THRESHOLD
) -> SocialReadModel:
    """Define the social tables and the position tables in one metadata and create any that are missing.

    ``read_time_threshold`` is stored when the read model is new. An existing read model keeps the
    value it was built with, because items already written depend on it.
    """
    metadata = MetaData()
    tables = define_social_tables(metadata)
    positioned = PositionedReadModel(engine, metadata, consumer)
    positioned.create_tables()
    with engine.begin() as connection:
        setting = {"name": READ_TIME_THRESHOLD_SETTING, "value": read_time_threshold}
        insert_ignoring_duplicates(connection, tables.settings, setting)
        stored = stored_read_time_threshold(connection, tables)
    if stored != read_time_threshold:
        logger.warning(
            "read model keeps read_time_threshold=%s, not %s; rebuild it to change the threshold",
            stored, read_time_threshold,
        )
    return SocialReadModel(positioned, tables)


def stored_read_time_threshold(connection: Connection, tables: SocialTables) -> int:
    """Return the number of people from which a subscriber group is read at read time in this read model."""
    settings = tables.settings
    value = connection.execute(
        select(settings.c.value).where(settings.c.name == READ_TIME_THRESHOLD_SETTING)
    ).scalar()
    return DEFAULT_READ_TIME_THRESHOLD if value is None else int(value)


def insert_ignoring_duplicates(connection: Connection, table: Table, values: dict[str, object]) -> bool:
    """Insert one row unless a row with the same primary key or unique columns exists; return whether it did."""
    return connection.execute(_insert_ignoring(connection, table), values).rowcount == 1


def insert_many_ignoring_duplicates(connection: Connection, table: Table, rows: list[dict[str, object]]) -> None:
    """Insert rows in one statement, skipping each whose primary key or unique columns exist already."""
    if not rows:
        return
    connection.execute(_insert_ignoring(connection, table), rows)


_INSERTS_IGNORING: dict[tuple[str, Table], Insert] = {}


def _insert_ignoring(connection: Connection, table: Table) -> Insert:
    # One statement object per table lets SQLAlchemy reuse its compiled form on every call.
    key = (connection.dialect.name, table)
    statement = _INSERTS_IGNORING.get(key)
    if statement is None:
        dialect_insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
        statement = _INSERTS_IGNORING[key] = dialect_insert(table).on_conflict_do_nothing()
    return statement
