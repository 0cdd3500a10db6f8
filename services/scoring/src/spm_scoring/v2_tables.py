"""Tables of scoring model v2: event facts, org revisions, model revisions, replays and published scores.

``score_facts`` and ``org_revisions`` are rebuilt from the topics. The others hold what the
service itself decides (model revisions, replay results, which score states it has published);
a read model rebuilt into an empty database starts them empty.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

ID_LENGTH = 100
EVENT_ID_LENGTH = 64
SUBJECT_ID_LENGTH = 200


@dataclass(frozen=True)
class V2Tables:
    score_facts: Table
    org_revisions: Table
    scoring_models: Table
    active_models: Table
    score_replays: Table
    replay_results: Table
    published_scores: Table
    publisher_marks: Table


def define_v2_tables(metadata: MetaData) -> V2Tables:
    score_facts = Table(
        "score_facts",
        metadata,
        Column("org_id", String(ID_LENGTH), nullable=False),
        Column("event_id", String(EVENT_ID_LENGTH), primary_key=True),
        Column("event_type", String(200), nullable=False),
        Column("kind", String(40), nullable=False),
        Column("subject", String(200), nullable=False),
        Column("aggregate_version", BigInteger, nullable=False),
        Column("occurred_at", DateTime(timezone=True), nullable=False),
        Column("actor_id", String(ID_LENGTH), nullable=False),
        Column("goal_id", String(ID_LENGTH), nullable=True),
        Column("person_id", String(ID_LENGTH), nullable=True),
        Column("object_id", String(ID_LENGTH), nullable=True),
        # JSON with sorted keys: the fields of the kind that no query filters on.
        Column("details", Text, nullable=False),
        Index("ix_score_facts_org_time", "org_id", "occurred_at"),
        Index("ix_score_facts_org_goal", "org_id", "goal_id"),
    )
    # Counts the events applied per org. Cached scores and the publisher compare it to notice changes.
    org_revisions = Table(
        "org_revisions",
        metadata,
        Column("org_id", String(ID_LENGTH), primary_key=True),
        Column("revision", BigInteger, nullable=False),
    )
    scoring_models = Table(
        "scoring_models",
        metadata,
        Column("org_id", String(ID_LENGTH), nullable=False),
        Column("model_id", String(40), nullable=False),
        Column("revision", Integer, nullable=False),
        Column("definition", Text, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("created_by", String(ID_LENGTH), nullable=False),
        PrimaryKeyConstraint("org_id", "model_id"),
    )
    active_models = Table(
        "active_models",
        metadata,
        Column("org_id", String(ID_LENGTH), primary_key=True),
        Column("model_id", String(40), nullable=False),
        Column("activated_at", DateTime(timezone=True), nullable=False),
        Column("activated_by", String(ID_LENGTH), nullable=False),
    )
    score_replays = Table(
        "score_replays",
        metadata,
        Column("replay_id", String(EVENT_ID_LENGTH), primary_key=True),
        Column("org_id", String(ID_LENGTH), nullable=False),
        Column("model_id", String(40), nullable=False),
        Column("window", String(120), nullable=False),
        Column("as_of", DateTime(timezone=True), nullable=False),
        Column("org_revision", BigInteger, nullable=False),
        Column("requested_by", String(ID_LENGTH), nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Index("ix_score_replays_org", "org_id", "created_at"),
    )
    replay_results = Table(
        "replay_results",
        metadata,
        Column("replay_id", String(EVENT_ID_LENGTH), nullable=False),
        Column("subject_kind", String(20), nullable=False),
        Column("subject_id", String(SUBJECT_ID_LENGTH), nullable=False),
        Column("body", Text, nullable=False),
        PrimaryKeyConstraint("replay_id", "subject_kind", "subject_id"),
    )
    published_scores = Table(
        "published_scores",
        metadata,
        Column("org_id", String(ID_LENGTH), nullable=False),
        Column("subject_kind", String(20), nullable=False),
        Column("subject_id", String(SUBJECT_ID_LENGTH), nullable=False),
        Column("digest", String(64), nullable=False),
        Column("sequence", BigInteger, nullable=False),
        Column("event_id", String(EVENT_ID_LENGTH), nullable=False),
        Column("as_of", DateTime(timezone=True), nullable=False),
        PrimaryKeyConstraint("org_id", "subject_kind", "subject_id"),
    )
    publisher_marks = Table(
        "publisher_marks",
        metadata,
        Column("org_id", String(ID_LENGTH), primary_key=True),
        Column("revision", BigInteger, nullable=False),
    )
    return V2Tables(
        score_facts=score_facts,
        org_revisions=org_revisions,
        scoring_models=scoring_models,
        active_models=active_models,
        score_replays=score_replays,
        replay_results=replay_results,
        published_scores=published_scores,
        publisher_marks=publisher_marks,
    )
