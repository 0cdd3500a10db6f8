"""Tables of the social read model (social-read.db), defined with the position bookkeeping tables."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Connection,
    Date,
    DateTime,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)
from sqlalchemy.dialects import postgresql, sqlite

from spm_events.readmodel import PositionedReadModel
from spm_events.visibility import VISIBILITIES
from spm_social.fanout import AUDIENCE_CHANGES, FAN_OUT_KINDS

# The consumer name under which the feed worker records its Kafka positions. It stays fixed when
# the faust app id changes, so positions belong to the read model rather than to a consumer group.
FEED_CONSUMER = "social-feed"

# Roles of the people who see a goal at every visibility (the goal's insiders).
OWNER = "owner"
CO_OWNER = "co_owner"
COLLABORATOR = "collaborator"
GOAL_PEOPLE_ROLES = (OWNER, CO_OWNER, COLLABORATOR)


def _one_of(column: str, values: tuple[str, ...]) -> CheckConstraint:
    return CheckConstraint(f"{column} IN ({', '.join(repr(value) for value in values)})")


@dataclass(frozen=True)
class SocialTables:
    known_goals: Table
    key_results: Table
    audience_changes: Table
    fan_out_events: Table
    feed_items: Table
    goal_visibility: Table
    goal_people: Table
    goal_teams: Table


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
    # Every follow, unfollow and tag with its event time, so the audience at any time can be
    # recomputed when an event arrives late.
    audience_changes = Table(
        "audience_changes",
        metadata,
        Column("org_id", String(100), primary_key=True),
        Column("event_id", String(64), primary_key=True),
        Column("goal_id", String(100), nullable=False),
        Column("person_id", String(100), nullable=False),
        Column("change", String(20), nullable=False),
        Column("actor_id", String(100), nullable=False),
        Column("occurred_at", DateTime(timezone=True), nullable=False),
        Column("aggregate_version", Integer, nullable=False),
        _one_of("change", AUDIENCE_CHANGES),
        Index("ix_audience_changes_goal", "org_id", "goal_id", "person_id"),
    )
    # The goal events that fan out to the audience, kept so that a late follow or tag can backfill.
    fan_out_events = Table(
        "fan_out_events",
        metadata,
        Column("org_id", String(100), primary_key=True),
        Column("event_id", String(64), primary_key=True),
        Column("goal_id", String(100), nullable=False),
        Column("kind", String(50), nullable=False),
        Column("actor_id", String(100), nullable=False),
        Column("key_result_id", String(100), nullable=True),
        Column("progress", Float, nullable=True),
        Column("occurred_at", DateTime(timezone=True), nullable=False),
        _one_of("kind", FAN_OUT_KINDS),
        Index("ix_fan_out_events_goal", "org_id", "goal_id", "key_result_id"),
    )
    feed_items = Table(
        "feed_items",
        metadata,
        Column("item_id", String(64), primary_key=True),
        Column("org_id", String(100), nullable=False),
        Column("person_id", String(100), nullable=False),
        Column("event_id", String(64), nullable=False),
        Column("kind", String(50), nullable=False),
        Column("goal_id", String(100), nullable=False),
        Column("goal_title", String(500), nullable=True),
        Column("key_result_id", String(100), nullable=True),
        Column("actor_id", String(100), nullable=False),
        Column("summary", String(1200), nullable=False),
        Column("occurred_at", DateTime(timezone=True), nullable=False),
        Column("indexed_at", DateTime(timezone=True), nullable=False),
        UniqueConstraint("person_id", "event_id", name="uq_feed_items_person_event"),
        Index("ix_feed_items_page", "org_id", "person_id", "occurred_at", "item_id"),
        Index("ix_feed_items_goal", "org_id", "goal_id", "person_id"),
    )
    goal_visibility, goal_people, goal_teams = _define_goal_audience_tables(metadata)
    return SocialTables(
        known_goals, key_results, audience_changes, fan_out_events, feed_items, goal_visibility, goal_people, goal_teams
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
        _one_of("visibility", VISIBILITIES),
    )
    # The owner and co-owners of the winning owners fact, and every tagged collaborator.
    goal_people = Table(
        "goal_people",
        metadata,
        Column("org_id", String(100), primary_key=True),
        Column("goal_id", String(100), primary_key=True),
        Column("person_id", String(100), primary_key=True),
        Column("role", String(20), primary_key=True),
        _one_of("role", GOAL_PEOPLE_ROLES),
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


def open_read_model(engine: Engine, consumer: str = FEED_CONSUMER) -> SocialReadModel:
    """Define the social tables and the position tables in one metadata and create any that are missing."""
    metadata = MetaData()
    tables = define_social_tables(metadata)
    positioned = PositionedReadModel(engine, metadata, consumer)
    positioned.create_tables()
    return SocialReadModel(positioned, tables)


def insert_ignoring_duplicates(connection: Connection, table: Table, values: dict[str, object]) -> None:
    """Insert one row unless a row with the same primary key or unique columns exists."""
    insert_many_ignoring_duplicates(connection, table, [values])


def insert_many_ignoring_duplicates(connection: Connection, table: Table, rows: list[dict[str, object]]) -> None:
    """Insert rows in one statement, skipping each whose primary key or unique columns exist already."""
    if not rows:
        return
    dialect_insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    connection.execute(dialect_insert(table).on_conflict_do_nothing(), rows)
