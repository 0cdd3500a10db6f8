"""Two instances of one processor applying messages at the same time to one PostgreSQL read model.

During a rebalance, or with several replicas, two instances apply messages of different partitions
at once. A handler that reads what a message of another partition wrote must still see it.
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import datetime, timezone

import pytest
from sqlalchemy import Column, Connection, MetaData, String, Table, create_engine, insert, select, text, update

from spm_events.envelope import Envelope, encode_envelope
from spm_events.readmodel import KafkaPosition, Outcome, PositionedReadModel

pytestmark = pytest.mark.postgres

CONSUMER = "spm-notifications-test"
DEADLINE_SECONDS = 30


def envelope(event_type: str, subject: str) -> bytes:
    return encode_envelope(Envelope(
        id=str(uuid.uuid4()),
        source="/spm/test",
        type=event_type,
        subject=subject,
        time=datetime(2024, 3, 1, tzinfo=timezone.utc),
        dataschema="urn:spm:schema:test:1",
        orgid="acme",
        actorid="ana",
        aggregateversion=1,
        data={},
    ))


def open_instance(url: str) -> tuple[PositionedReadModel, Table, Table]:
    metadata = MetaData()
    goals = Table("goals", metadata, Column("goal_id", String(40), primary_key=True), Column("title", String(100)))
    inbox = Table("inbox", metadata, Column("goal_id", String(40), primary_key=True), Column("title", String(100)))
    read_model = PositionedReadModel(create_engine(url), metadata, CONSUMER)
    read_model.create_tables()
    return read_model, goals, inbox


def waiting_advisory_locks(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(
                text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
            ).scalar_one()
    finally:
        engine.dispose()


def test_instances_apply_one_at_a_time(postgres_url_factory) -> None:  # type: ignore[no-untyped-def]
    """A tag applied while another instance's GoalCreated is uncommitted waits for its commit and reads the title."""
    url = postgres_url_factory()
    first, goals, inbox = open_instance(url)
    second, _, _ = open_instance(url)
    goal_created_written = threading.Event()
    release_goal_created = threading.Event()
    outcomes: dict[str, Outcome] = {}

    def apply_goal_created(connection: Connection, _: Envelope) -> None:
        connection.execute(insert(goals).values(goal_id="goal-1", title="Grow revenue"))
        connection.execute(update(inbox).where(inbox.c.goal_id == "goal-1").values(title="Grow revenue"))
        goal_created_written.set()
        release_goal_created.wait(DEADLINE_SECONDS)

    def apply_tag(connection: Connection, _: Envelope) -> None:
        title = connection.execute(select(goals.c.title).where(goals.c.goal_id == "goal-1")).scalar()
        connection.execute(insert(inbox).values(goal_id="goal-1", title=title))

    def run(name: str, read_model: PositionedReadModel, position: KafkaPosition, value: bytes, handler) -> None:  # type: ignore[no-untyped-def]
        outcomes[name] = read_model.apply(position, value, handler)[0]

    goal_thread = threading.Thread(target=run, args=(
        "goal", first, KafkaPosition("spm.goals.v1", 0, 10), envelope("spm.goals.GoalCreated.v1", "goal-1"), apply_goal_created,
    ))
    tag_thread = threading.Thread(target=run, args=(
        "tag", second, KafkaPosition("spm.social.v1", 1, 20), envelope("spm.social.CollaboratorTagged.v1", "social-1"), apply_tag,
    ))
    goal_thread.start()
    assert goal_created_written.wait(DEADLINE_SECONDS)
    tag_thread.start()

    # The tag's transaction must wait for the uncommitted GoalCreated rather than read past it.
    deadline = time.monotonic() + DEADLINE_SECONDS
    while waiting_advisory_locks(url) == 0:
        assert tag_thread.is_alive(), "the tag was applied while GoalCreated was still uncommitted"
        assert time.monotonic() < deadline, "the tag's transaction never waited for the lock"
        time.sleep(0.05)
    release_goal_created.set()
    goal_thread.join(DEADLINE_SECONDS)
    tag_thread.join(DEADLINE_SECONDS)

    assert outcomes == {"goal": Outcome.APPLIED, "tag": Outcome.APPLIED}
    with first.engine.connect() as connection:
        rows = connection.execute(select(inbox.c.goal_id, inbox.c.title)).all()
    assert [tuple(row) for row in rows] == [("goal-1", "Grow revenue")]
    assert first.recorded_offsets() == {("spm.goals.v1", 0): 10, ("spm.social.v1", 1): 20}
