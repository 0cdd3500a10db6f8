"""The scoring read model's tables. Every row carries org_id, and times are event times in UTC."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
)

from spm_scoring.v2_tables import define_v2_tables

ID_LENGTH = 100
EVENT_ID_LENGTH = 64


class ScoringTables:
    """The read model's tables on a fresh MetaData, so each read model can add its position tables."""

    def __init__(self) -> None:
        self.metadata = MetaData()
        self.goals = Table(
            "goals",
            self.metadata,
            Column("org_id", String(ID_LENGTH), nullable=False),
            Column("goal_id", String(ID_LENGTH), nullable=False),
            Column("owner_id", String(ID_LENGTH), nullable=False),
            Column("team", String(200), nullable=False),
            Column("title", String(500), nullable=False),
            Column("created_at", DateTime(timezone=True), nullable=False),
            PrimaryKeyConstraint("org_id", "goal_id"),
            Index("ix_goals_owner", "org_id", "owner_id"),
        )

        self.key_results = Table(
            "key_results",
            self.metadata,
            Column("org_id", String(ID_LENGTH), nullable=False),
            Column("key_result_id", String(ID_LENGTH), nullable=False),
            Column("goal_id", String(ID_LENGTH), nullable=False),
            Column("added_at", DateTime(timezone=True), nullable=False),
            PrimaryKeyConstraint("org_id", "key_result_id"),
            Index("ix_key_results_goal", "org_id", "goal_id"),
        )

        self.check_ins = Table(
            "check_ins",
            self.metadata,
            Column("org_id", String(ID_LENGTH), nullable=False),
            Column("event_id", String(EVENT_ID_LENGTH), primary_key=True),
            Column("key_result_id", String(ID_LENGTH), nullable=False),
            Column("goal_id", String(ID_LENGTH), nullable=False),
            Column("actor_id", String(ID_LENGTH), nullable=False),
            Column("progress", Float, nullable=False),
            Column("occurred_at", DateTime(timezone=True), nullable=False),
            # Orders check-ins that share a time, so "latest progress" never depends on arrival order.
            Column("aggregate_version", BigInteger, nullable=False),
            Index("ix_check_ins_key_result", "org_id", "key_result_id", "occurred_at"),
            Index("ix_check_ins_actor", "org_id", "actor_id"),
        )

        self.interactions = Table(
            "interactions",
            self.metadata,
            Column("org_id", String(ID_LENGTH), nullable=False),
            Column("event_id", String(EVENT_ID_LENGTH), nullable=False),
            Column("person_id", String(ID_LENGTH), nullable=False),
            Column("kind", String(40), nullable=False),
            Column("other_person_id", String(ID_LENGTH), nullable=False),
            Column("goal_id", String(ID_LENGTH), nullable=False),
            Column("goal_team", String(200), nullable=False),
            Column("weight", Integer, nullable=False),
            Column("occurred_at", DateTime(timezone=True), nullable=False),
            UniqueConstraint("event_id", "person_id", "kind"),
            Index("ix_interactions_person_time", "org_id", "person_id", "occurred_at"),
            Index("ix_interactions_org_time", "org_id", "occurred_at"),
            Index("ix_interactions_other", "org_id", "other_person_id"),
        )

        # Activities whose goal has not arrived yet. They become interactions when GoalCreated is applied.
        self.pending_activities = Table(
            "pending_activities",
            self.metadata,
            Column("org_id", String(ID_LENGTH), nullable=False),
            Column("event_id", String(EVENT_ID_LENGTH), primary_key=True),
            Column("goal_id", String(ID_LENGTH), nullable=False),
            Column("kind", String(20), nullable=False),
            Column("actor_id", String(ID_LENGTH), nullable=False),
            Column("target_id", String(ID_LENGTH), nullable=True),
            Column("occurred_at", DateTime(timezone=True), nullable=False),
            Index("ix_pending_activities_goal", "org_id", "goal_id"),
        )

        self.org_clock = Table(
            "org_clock",
            self.metadata,
            Column("org_id", String(ID_LENGTH), primary_key=True),
            Column("latest_event_time", DateTime(timezone=True), nullable=False),
        )

        self.v2 = define_v2_tables(self.metadata)
