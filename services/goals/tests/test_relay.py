"""The goals relay against the real Kafka broker: envelopes on spm.goals.v1, and resuming after a restart."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Iterator

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from spm_events.database import create_database_engine
from spm_events.envelope import Envelope, InvalidEnvelopeError, decode_envelope, event_id_for
from spm_events.registry import GOALS_TOPIC
from spm_events.relay import RelayLockHeldError, RelayPositions, create_idempotent_producer
from spm_events.topics import ensure_topics
from spm_goals.application import GoalsApplication, NewKeyResult, NewObjective
from spm_goals.objective import Period
from spm_goals.relay import RELAY_NAME, create_goals_relay, run_goals_relay
from spm_goals.settings import EVENT_STORE_FILE, READ_DATABASE_FILE, GoalsSettings

pytestmark = pytest.mark.kafka

Q1 = Period("FY21-Q1", date(2020, 2, 1), date(2020, 4, 30))
PLANNED_AT = datetime(2020, 1, 20, 9, 0, tzinfo=timezone.utc)
KEY_RESULT_AT = datetime(2020, 1, 25, 14, 0, tzinfo=timezone.utc)
IN_Q1 = datetime(2020, 3, 2, 9, 30, tzinfo=timezone.utc)
DEADLINE_SECONDS = 60


@pytest.fixture
def settings(tmp_path: Path, kafka_bootstrap: str) -> GoalsSettings:
    return GoalsSettings(data_dir=tmp_path, database_url=None, kafka_bootstrap=kafka_bootstrap)


@pytest.fixture
def goals(settings: GoalsSettings) -> Iterator[GoalsApplication]:
    engine = create_database_engine(settings.sqlalchemy_url(READ_DATABASE_FILE))
    application = GoalsApplication(env=settings.event_store_env(EVENT_STORE_FILE), index_engine=engine)
    yield application
    application.close()
    engine.dispose()


@pytest.fixture
def org_id() -> str:
    return f"org-{uuid.uuid4()}"


def create_goal_with_check_in(goals: GoalsApplication, org_id: str, title: str) -> uuid.UUID:
    """Store ObjectiveCreated, KeyResultAdded and CheckInRecorded for a new goal and return its id."""
    new = NewObjective(
        title=title,
        team="Executive",
        period=Q1,
        owner_id="owner-1",
        parent_goal_id=None,
        contributing_teams=("Sales",),
        external_ref=f"{title}-ref",
        occurred_at=PLANNED_AT,
    )
    objective, _ = goals.create_objective(org_id, "actor-1", new)
    key_result = NewKeyResult(
        title="Run campaigns", metric="number", start_value=0, target_value=10, external_ref="KR1", occurred_at=KEY_RESULT_AT
    )
    _, added, _ = goals.add_key_result(org_id, objective.id, "actor-2", key_result)
    goals.record_check_in(
        org_id, objective.id, added.key_result_id, "actor-3", value=12, comment="ahead", occurred_at=IN_Q1
    )
    return objective.id


def published_position(settings: GoalsSettings) -> int:
    engine = create_database_engine(settings.sqlalchemy_url(READ_DATABASE_FILE))
    try:
        return RelayPositions(engine).read(RELAY_NAME)
    finally:
        engine.dispose()


async def relay_until_caught_up(settings: GoalsSettings, goals: GoalsApplication) -> None:
    """Run the relay until its recorded position reaches the newest notification, then stop it."""
    target = goals.max_notification_id()
    stop = asyncio.Event()
    relay = asyncio.create_task(run_goals_relay(settings, stop, batch_size=2))
    deadline = time.monotonic() + DEADLINE_SECONDS
    try:
        while await asyncio.to_thread(published_position, settings) < target:
            assert not relay.done(), relay.exception() if relay.done() else None
            assert time.monotonic() < deadline, "relay did not catch up in time"
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await asyncio.wait_for(relay, timeout=DEADLINE_SECONDS)


async def consume_org_envelopes(bootstrap: str, org_id: str) -> list[Envelope]:
    """Read spm.goals.v1 from the beginning up to its current end and return the envelopes of ``org_id``."""
    consumer = AIOKafkaConsumer(
        GOALS_TOPIC.name,
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    found: list[Envelope] = []
    deadline = time.monotonic() + DEADLINE_SECONDS
    try:
        while not consumer.assignment():
            assert time.monotonic() < deadline, f"no partitions of {GOALS_TOPIC.name} were assigned in time"
            await asyncio.sleep(0.1)
        partitions = sorted(consumer.assignment())
        end_offsets = await consumer.end_offsets(partitions)
        while not await reached_offsets(consumer, end_offsets):
            assert time.monotonic() < deadline, "did not reach the end of the topic in time"
            batches = await consumer.getmany(timeout_ms=500)
            for messages in batches.values():
                for message in messages:
                    try:
                        envelope = decode_envelope(message.value)
                    except InvalidEnvelopeError:
                        continue  # the topic is shared, and other tests may publish anything on it
                    if envelope.orgid == org_id:
                        assert message.key == envelope.subject.encode()
                        found.append(envelope)
    finally:
        await consumer.stop()
    return found


async def reached_offsets(consumer: AIOKafkaConsumer, end_offsets: dict[TopicPartition, int]) -> bool:
    for partition, end_offset in end_offsets.items():
        if await consumer.position(partition) < end_offset:
            return False
    return True


def test_relay_publishes_goal_events(settings: GoalsSettings, goals: GoalsApplication, org_id: str) -> None:
    goal_id = create_goal_with_check_in(goals, org_id, "G1")
    asyncio.run(relay_until_caught_up(settings, goals))
    envelopes = asyncio.run(consume_org_envelopes(settings.kafka_bootstrap, org_id))

    assert [envelope.type for envelope in envelopes] == [
        "spm.goals.GoalCreated.v1",
        "spm.goals.KeyResultAdded.v1",
        "spm.goals.CheckInRecorded.v1",
    ]
    assert {envelope.subject for envelope in envelopes} == {str(goal_id)}
    assert [envelope.aggregateversion for envelope in envelopes] == [1, 2, 3]
    assert [envelope.time for envelope in envelopes] == [PLANNED_AT, KEY_RESULT_AT, IN_Q1]
    assert [envelope.actorid for envelope in envelopes] == ["actor-1", "actor-2", "actor-3"]
    assert [envelope.id for envelope in envelopes] == [event_id_for(org_id, str(goal_id), version) for version in (1, 2, 3)]

    created, added, checked_in = (envelope.data for envelope in envelopes)
    assert created["goal_id"] == str(goal_id)
    assert created["period"] == {"name": "FY21-Q1", "start": "2020-02-01", "end": "2020-04-30"}
    assert created["contributing_teams"] == ["Sales"]
    assert created["external_ref"] == "G1-ref"
    assert added["metric"] == "number"
    assert added["target_value"] == 10
    assert checked_in["key_result_id"] == added["key_result_id"]
    assert checked_in["value"] == 12
    assert checked_in["progress"] == 1.2
    assert checked_in["comment"] == "ahead"
    assert published_position(settings) == goals.max_notification_id()


def test_relay_resumes_after_restart(settings: GoalsSettings, goals: GoalsApplication, org_id: str) -> None:
    first_goal = create_goal_with_check_in(goals, org_id, "G1")

    async def publish_one_batch() -> None:
        await ensure_topics(settings.kafka_bootstrap)
        engine = create_database_engine(settings.sqlalchemy_url(READ_DATABASE_FILE))
        producer = create_idempotent_producer(settings.kafka_bootstrap)
        await producer.start()
        try:
            relay = create_goals_relay(goals, engine, producer, batch_size=2)
            reached = await relay.publish_next_batch(relay.positions.read(RELAY_NAME))
            assert reached == 2
        finally:
            await producer.stop()
            engine.dispose()

    asyncio.run(publish_one_batch())
    assert published_position(settings) == 2

    second_goal = create_goal_with_check_in(goals, org_id, "G2")
    asyncio.run(relay_until_caught_up(settings, goals))
    envelopes = asyncio.run(consume_org_envelopes(settings.kafka_bootstrap, org_id))

    published = {(envelope.subject, envelope.aggregateversion) for envelope in envelopes}
    expected = {(str(goal_id), version) for goal_id in (first_goal, second_goal) for version in (1, 2, 3)}
    assert published == expected
    ids_by_event: dict[tuple[str, int], set[str]] = {}
    for envelope in envelopes:
        ids_by_event.setdefault((envelope.subject, envelope.aggregateversion), set()).add(envelope.id)
    assert all(len(ids) == 1 for ids in ids_by_event.values())
    assert published_position(settings) == goals.max_notification_id() == 6


def test_second_relay_on_same_data_is_refused(settings: GoalsSettings, goals: GoalsApplication, org_id: str) -> None:
    create_goal_with_check_in(goals, org_id, "G1")

    async def run_two_relays() -> None:
        stop = asyncio.Event()
        first = asyncio.create_task(run_goals_relay(settings, stop))
        deadline = time.monotonic() + DEADLINE_SECONDS
        try:
            while await asyncio.to_thread(published_position, settings) < goals.max_notification_id():
                assert time.monotonic() < deadline, "first relay did not publish in time"
                await asyncio.sleep(0.1)
            with pytest.raises(RelayLockHeldError):
                await run_goals_relay(settings, asyncio.Event())
        finally:
            stop.set()
            await asyncio.wait_for(first, timeout=DEADLINE_SECONDS)

    asyncio.run(run_two_relays())
