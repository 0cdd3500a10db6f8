"""Score changes published on the real broker's spm.scores.v1, from a real SQLite read model."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from spm_events.envelope import Envelope, decode_envelope, encode_envelope
from spm_events.registry import SCORES_TOPIC, parse_payload
from spm_events.relay import create_idempotent_producer
from spm_events.schemas import ScoreChangedV1
from spm_scoring.model_store import ModelStore
from spm_scoring.publisher import ScorePublisher
from spm_scoring.scoreboard import Scoreboard

pytestmark = pytest.mark.kafka

T0 = datetime(2021, 3, 1, 9, 0, tzinfo=timezone.utc)
DAY = timedelta(days=1)
READ_SECONDS = 30.0

Offsets = dict[int, int]


def end_offsets(bootstrap: str) -> Offsets:
    async def read() -> Offsets:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            partitions = [TopicPartition(SCORES_TOPIC.name, number) for number in range(SCORES_TOPIC.partitions)]
            ends = await consumer.end_offsets(partitions)
            return {partition.partition: offset for partition, offset in ends.items()}
        finally:
            await consumer.stop()

    return asyncio.run(read())


def read_org_events(bootstrap: str, org_id: str, since: Offsets, expected: int) -> list[Envelope]:
    """Read the org's score events published after ``since`` until ``expected`` arrived or the deadline passed."""

    async def read() -> list[Envelope]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        await consumer.start()
        found: list[Envelope] = []
        try:
            partitions = [TopicPartition(SCORES_TOPIC.name, number) for number in sorted(since)]
            consumer.assign(partitions)
            for partition in partitions:
                consumer.seek(partition, since[partition.partition])
            deadline = time.monotonic() + READ_SECONDS
            while time.monotonic() < deadline and len(found) < expected:
                batches = await consumer.getmany(timeout_ms=500)
                for messages in batches.values():
                    for message in messages:
                        envelope = decode_envelope(message.value)
                        if envelope.orgid == org_id:
                            found.append(envelope)
            return found
        finally:
            await consumer.stop()

    return asyncio.run(read())


def publish_once(bootstrap: str, publisher: ScorePublisher) -> int:
    async def run() -> int:
        producer = create_idempotent_producer(bootstrap)
        await producer.start()
        try:
            return await publisher.publish_once(producer)
        finally:
            await producer.stop()

    return asyncio.run(run())


def send_without_recording(bootstrap: str, envelopes: list[Envelope]) -> None:
    async def run() -> None:
        producer = create_idempotent_producer(bootstrap)
        await producer.start()
        try:
            for envelope in envelopes:
                await producer.send_and_wait(SCORES_TOPIC.name, key=envelope.subject.encode(), value=encode_envelope(envelope))
        finally:
            await producer.stop()

    asyncio.run(run())


@pytest.fixture
def publisher(sqlite_store) -> ScorePublisher:  # type: ignore[no-untyped-def]
    return ScorePublisher(
        sqlite_store.engine, sqlite_store.tables, Scoreboard(sqlite_store.engine, sqlite_store.tables),
        ModelStore(sqlite_store.engine, sqlite_store.tables.v2),
    )


@pytest.fixture
def scenario(sqlite_feeder, org_events):  # type: ignore[no-untyped-def]
    sqlite_feeder.apply(
        [
            org_events.goal_created("g1", owner="alice", team="search", at=T0),
            org_events.key_result_added("g1", "k1", actor="alice", at=T0),
            org_events.check_in("g1", "k1", actor="bob", progress=0.4, at=T0 + 2 * DAY),
            org_events.kudos_given("g1", giver="alice", receiver="bob", at=T0 + 3 * DAY),
        ]
    )
    return org_events


def test_every_subject_is_published_once(kafka_bootstrap, publisher, scenario) -> None:  # type: ignore[no-untyped-def]
    since = end_offsets(kafka_bootstrap)

    sent = publish_once(kafka_bootstrap, publisher)
    again = publish_once(kafka_bootstrap, publisher)
    events = read_org_events(kafka_bootstrap, scenario.org_id, since, expected=sent)

    # alice and bob, the team search, the goal g1.
    assert sent == 4
    assert again == 0
    assert sorted(event.subject for event in events) == sorted(
        ["person:alice", "person:bob", "team:search", f"goal:{scenario.goal_id('g1')}"]
    )
    bob = next(event for event in events if event.subject == "person:bob")
    payload = parse_payload(bob)
    assert isinstance(payload, ScoreChangedV1)
    assert (payload.model_id, payload.window) == ("v2", "28d")
    assert payload.as_of == T0 + 3 * DAY == bob.time
    assert [score.kind for score in payload.scores] == ["performance", "collaboration"]
    assert payload.scores[1].score is not None and payload.scores[1].score > 0
    assert bob.type == "spm.scoring.ScoreChanged.v1"
    assert bob.aggregateversion == 1


def test_only_changed_subjects_are_published(kafka_bootstrap, publisher, sqlite_feeder, scenario) -> None:  # type: ignore[no-untyped-def]
    publish_once(kafka_bootstrap, publisher)
    since = end_offsets(kafka_bootstrap)
    sqlite_feeder.apply([scenario.kudos_given("g1", giver="alice", receiver="bob", at=T0 + 3 * DAY)])

    sent = publish_once(kafka_bootstrap, publisher)
    events = read_org_events(kafka_bootstrap, scenario.org_id, since, expected=sent)

    # A second kudos of the same pair at the same time changes bob's and alice's kudos and the goal's.
    assert sorted(event.subject for event in events) == sorted(["person:alice", "person:bob", f"goal:{scenario.goal_id('g1')}"])
    assert {event.aggregateversion for event in events} == {2}


def test_republished_state_keeps_its_event_id(kafka_bootstrap, publisher, scenario) -> None:  # type: ignore[no-untyped-def]
    batch = publisher.collect()
    # The broker acknowledged these, but the worker stopped before it recorded them.
    send_without_recording(kafka_bootstrap, [change.envelope for change in batch.changes])
    since = end_offsets(kafka_bootstrap)

    sent = publish_once(kafka_bootstrap, publisher)
    events = read_org_events(kafka_bootstrap, scenario.org_id, since, expected=sent)

    assert sent == len(batch.changes) == 4
    assert {event.id for event in events} == {change.envelope.id for change in batch.changes}
