"""The inbox read model's tables, kept in the same metadata as the Kafka position bookkeeping."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

from spm_events.readmodel import PositionedReadModel


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


@dataclass(frozen=True)
class InboxTables:
    goals: Table
    follow_changes: Table
    check_ins: Table
    inbox: Table


def define_inbox_tables(metadata: MetaData) -> InboxTables:
    goals = Table(
        "goals",
        metadata,
        Column("org_id", Id, primary_key=True),
        Column("goal_id", Id, primary_key=True),
        Column("title", String(500), nullable=False),
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
    check_ins = Table(
        "check_ins",
        metadata,
        Column("event_id", String(64), primary_key=True),
        Column("org_id", Id, nullable=False),
        Column("goal_id", Id, nullable=False),
        Column("actor_id", Id, nullable=False),
        Column("occurred_at", UtcDateTime, nullable=False),
        Index("ix_check_ins_goal_time", "org_id", "goal_id", "occurred_at"),
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
        UniqueConstraint("event_id", "recipient_id", "kind", name="uq_inbox_event_recipient_kind"),
        Index("ix_inbox_recipient_time", "org_id", "recipient_id", "occurred_at", "notification_id"),
        Index("ix_inbox_goal_recipient", "org_id", "goal_id", "recipient_id"),
    )
    return InboxTables(goals=goals, follow_changes=follow_changes, check_ins=check_ins, inbox=inbox)


def open_read_model(engine: Engine, consumer: str) -> tuple[PositionedReadModel, InboxTables]:
    """Define the inbox read model on a fresh metadata and create its tables if they do not exist yet."""
    metadata = MetaData()
    tables = define_inbox_tables(metadata)
    read_model = PositionedReadModel(engine, metadata, consumer)
    read_model.create_tables()
    return read_model, tables
