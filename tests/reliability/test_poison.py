"""Poison messages on every consumed topic: each is dead-lettered with its reason, and its partition keeps moving.

While the workload runs, the test writes a set of messages that no processor can apply onto every
partition of spm.goals.v1 and spm.social.v1, between the workload's real events. Every processor
that consumes the topic must record each of them in its ``dead_letters`` table with a reason. It
must publish each once to spm.deadletter.v1, with headers that name the consumer, the source
position and the reason. Then it must move its recorded position past the message and apply the
real events after it. No process may exit, and the checker must find nothing lost or duplicated.

An envelope of an event type the registry does not list is the exception. The processors skip
such events by design, because a newer producer may publish types that this contract version
does not know. So the test requires that each processor records it as processed and does not
dead-letter it.

The test runs on a broker of its own. Every processor on a shared broker would read the poison
messages too, and the checker of a test running at the same time counts each dead letter as a
lost event.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from checker import (
    CHECKED_TOPICS,
    PROCESSOR_TOPICS,
    TopicRecord,
    check,
    collect_read_models,
    collect_truth,
    consume_topics,
)
from sqlalchemy import MetaData, create_engine, select
from stack import Stack, poll, start_workload

from spm_events.readmodel import define_dead_letter_table, define_position_tables
from spm_events.registry import DEADLETTER_TOPIC, GOALS_TOPIC, SOCIAL_TOPIC, TOPICS
from spm_events.settings import DEVELOPMENT_JWT_SECRET
from spm_events.topics import ensure_topics
from spm_local.kafka import LocalBroker
from spm_local.suite import topic_end_offsets

pytestmark = [pytest.mark.reliability, pytest.mark.kafka]

# A known event type on each topic whose payload every processor of that topic validates.
KNOWN_TYPES = {
    GOALS_TOPIC.name: "spm.goals.GoalCreated.v1",
    SOCIAL_TOPIC.name: "spm.social.CollaboratorTagged.v1",
}
# faust-streaming 0.15.3's default producer_max_request_size: a dead letter above it goes without its value.
PRODUCER_MAX_REQUEST_SIZE = 1_000_000
# Above that limit and below Kafka's default message.max.bytes (1,048,588 bytes), so the broker
# accepts the message.
HUGE_STRING_LENGTH = 1_010_000
# Above the largest value of a signed 64-bit integer column.
HUGE_VERSION = 2**64


@dataclass(frozen=True)
class Poison:
    """A message that no processor can apply, and what its dead-letter reason must contain."""

    kind: str
    value: bytes | None
    reason_fragments: tuple[str, ...]
    # False for an unknown event type: processors skip it as processed instead.
    dead_lettered: bool = True
    event_id: str | None = None


@dataclass(frozen=True)
class PlacedPoison:
    poison: Poison
    topic: str
    partition: int
    offset: int

    @property
    def source(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"


@dataclass(frozen=True)
class DeadLetter:
    consumer: str
    source: str
    reason: bytes
    key: bytes | None
    value: bytes | None
    # The spm-value-omitted header: the size of a value too large to publish again.
    value_omitted: bytes | None


def valid_data(topic: str, name: str) -> dict[str, object]:
    """Return a payload that passes the schema of ``KNOWN_TYPES[topic]``."""
    if topic == GOALS_TOPIC.name:
        return {
            "goal_id": name,
            "title": "Poison goal",
            "owner_id": "poison-owner",
            "team": "Poison",
            "period": {"name": "run", "start": "2024-01-01", "end": "2024-03-31"},
        }
    return {"goal_id": name, "collaborator_id": "poison-person"}


def envelope(org_id: str, event_type: str, data: dict[str, object], **attributes: object) -> tuple[str, bytes]:
    """Return the event id and JSON bytes of an envelope with a fresh id; ``attributes`` replace envelope fields."""
    event_id = str(uuid.uuid4())
    document: dict[str, object] = {
        "specversion": "1.0",
        "id": event_id,
        "source": "/spm/poison",
        "type": event_type,
        "subject": f"poison-{event_id}",
        "time": datetime.now(timezone.utc).isoformat(),
        "dataschema": "urn:spm:schema:poison",
        "datacontenttype": "application/json",
        "orgid": org_id,
        "actorid": "poison-producer",
        "aggregateversion": 1,
        "data": data,
    }
    document.update(attributes)
    return event_id, json.dumps(document).encode()


def poisons_for(topic: str, org_id: str) -> list[Poison]:
    """Build the poison messages of one partition of ``topic``, each with fresh event ids."""
    known_type = KNOWN_TYPES[topic]
    unknown_id, unknown = envelope(org_id, f"spm.{TOPICS[topic].producer}.GoalTeleported.v9", {"goal_id": "poison"})
    broken_id, broken = envelope(org_id, known_type, {"goal_id": 7})
    early_id, early = envelope(org_id, known_type, valid_data(topic, "poison-early"), time="0001-01-01T00:00:00+01:00")
    huge_version_id, huge_version = envelope(org_id, known_type, valid_data(topic, "poison-version"),
                                             aggregateversion=HUGE_VERSION)
    _, nul_id = envelope(org_id, known_type, valid_data(topic, "poison-nul"), id="poison\u0000id")
    huge_field = "title" if topic == GOALS_TOPIC.name else "collaborator_id"
    huge_data = {**valid_data(topic, "poison-huge"), huge_field: "x" * HUGE_STRING_LENGTH}
    huge_id, huge = envelope(org_id, known_type, huge_data)
    return [
        Poison("bytes that are not JSON", b"\xff\xfe{not json", ("invalid envelope", "Invalid JSON")),
        Poison("JSON that is not an envelope", b'{"hello": "world"}', ("invalid envelope", "Field required")),
        Poison("unknown event type", unknown, (), dead_lettered=False, event_id=unknown_id),
        Poison("payload that breaks its schema", broken, (f"ValidationError in event {broken_id}", "goal_id"),
               event_id=broken_id),
        Poison("empty value", b"", ("invalid envelope: the message value is empty",)),
        Poison("null value (tombstone)", None, ("invalid envelope: the message value is null",)),
        Poison("event time out of range in UTC", early, ("invalid envelope", "time 0001-01-01T00:00:00+01:00 is out of range"),
               event_id=early_id),
        Poison("aggregate version above 64 bits", huge_version, ("invalid envelope", "aggregateversion"),
               event_id=huge_version_id),
        Poison("NUL character in the event id", nul_id, ("invalid envelope", "control characters")),
        Poison("string of about 1 MB", huge, (f"ValidationError in event {huge_id}", huge_field, "at most"),
               event_id=huge_id),
    ]


# --- producing and reading topics ----------------------------------------------------------------


async def produce_poisons(bootstrap: str, org_id: str) -> list[PlacedPoison]:
    """Write the poison set onto every partition of both consumed topics and return where each landed."""
    end_offsets = await topic_end_offsets(bootstrap, CHECKED_TOPICS)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    placed: list[PlacedPoison] = []
    try:
        for topic, partition in sorted(end_offsets):
            for poison in poisons_for(topic, org_id):
                metadata = await producer.send_and_wait(
                    topic, poison.value, key=f"poison-{poison.kind}".encode(), partition=partition
                )
                placed.append(PlacedPoison(poison, topic, partition, metadata.offset))
    finally:
        await producer.stop()
    return placed


async def read_dead_letters(bootstrap: str) -> list[DeadLetter]:
    """Read every message of the dead-letter topic, from its first offset to its end."""
    partitions = [TopicPartition(DEADLETTER_TOPIC.name, partition) for partition in range(DEADLETTER_TOPIC.partitions)]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                                max_partition_fetch_bytes=4 * 1024 * 1024)
    await consumer.start()
    letters: list[DeadLetter] = []
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end_offsets = await consumer.end_offsets(partitions)
        pending = {tp for tp in partitions if await consumer.position(tp) < end_offsets[tp]}
        while pending:
            batches = await consumer.getmany(*pending, timeout_ms=2000)
            for messages in batches.values():
                for message in messages:
                    headers = dict(message.headers)
                    letters.append(DeadLetter(
                        consumer=headers.get("spm-consumer", b"").decode(),
                        source=headers.get("spm-source", b"").decode(),
                        reason=headers.get("spm-reason", b""),
                        key=message.key,
                        value=message.value,
                        value_omitted=headers.get("spm-value-omitted"),
                    ))
            pending = {tp for tp in pending if await consumer.position(tp) < end_offsets[tp]}
    finally:
        await consumer.stop()
    return letters


def org_records(stack: Stack, org_id: str) -> list[TopicRecord]:
    return consume_topics(stack.kafka_bootstrap, CHECKED_TOPICS, org_id, stack.start_offsets)


def every_partition_has_event_after(stack: Stack, org_id: str, offsets: dict[tuple[str, int], int]) -> bool:
    """Return whether each partition in ``offsets`` contains an event of ``org_id`` above the given offset."""
    stack.check_running()
    latest: dict[tuple[str, int], int] = {}
    for record in org_records(stack, org_id):
        partition = (record.topic, record.partition)
        latest[partition] = max(latest.get(partition, -1), record.offset)
    return all(latest.get(partition, -1) > offset for partition, offset in offsets.items())


def every_processor_passed(stack: Stack, offsets: dict[tuple[str, int], int]) -> bool:
    """Return whether every processor's recorded position is at or past ``offsets`` on the partitions it consumes."""
    stack.check_running()
    for service, topics in PROCESSOR_TOPICS.items():
        applied = stack.applied_positions(service)
        if any(applied.get(partition, -1) < offset for partition, offset in offsets.items() if partition[0] in topics):
            return False
    return True


# --- reading the read models ---------------------------------------------------------------------


def read_model_rows(stack: Stack, service: str) -> tuple[dict[str, str], set[str]]:
    """Return the processor's dead letters as {source: reason} and the event ids it recorded as processed."""
    url = stack.database(service)
    engine = create_engine(url if url.startswith("postgresql") else f"sqlite:///{Path(url).resolve()}")
    metadata = MetaData()
    dead_letters = define_dead_letter_table(metadata)
    _, processed = define_position_tables(metadata)
    consumer = stack.consumer_name(service)
    try:
        with engine.connect() as connection:
            letters = connection.execute(
                select(dead_letters.c.topic, dead_letters.c.partition, dead_letters.c.offset, dead_letters.c.reason)
                .where(dead_letters.c.consumer == consumer)
            )
            reasons = {f"{row.topic}/{row.partition}/{row.offset}": row.reason for row in letters}
            event_ids = connection.execute(select(processed.c.event_id).where(processed.c.consumer == consumer))
            return reasons, set(event_ids.scalars())
    finally:
        engine.dispose()


# --- the test --------------------------------------------------------------------------------------


@pytest.fixture
def poison_stack(tmp_path: Path) -> Iterator[Stack]:
    """Start a broker of the test's own and a stack of service processes on it."""
    broker = LocalBroker(tmp_path / "kafka").start()
    stack = Stack(tmp_path / "stack", broker.bootstrap, DEVELOPMENT_JWT_SECRET, run_id=uuid.uuid4().hex[:8])
    try:
        asyncio.run(ensure_topics(broker.bootstrap))
        stack.start()
        stack.wait_until_healthy()
        yield stack
    finally:
        stack.stop()
        broker.stop()


def test_poison_messages_on_every_consumed_topic(poison_stack: Stack) -> None:
    """Each poison message is dead-lettered by every processor of its topic, which then applies the events after it."""
    stack = poison_stack
    workload = start_workload(stack, org_id=f"reliability-poison-{stack.run_id}")
    partitions = sorted(asyncio.run(topic_end_offsets(stack.kafka_bootstrap, CHECKED_TOPICS)))

    # Real events first, on every partition, so each poison message sits between real events.
    poll(lambda: every_partition_has_event_after(stack, workload.org_id, {partition: -1 for partition in partitions}),
         90, "the workload wrote an event onto every partition of both topics", interval=1.0)
    placed = asyncio.run(produce_poisons(stack.kafka_bootstrap, f"poison-{workload.org_id}"))
    produced_at = time.monotonic()
    last_poison = {(item.topic, item.partition): item.offset for item in placed}
    print(f"{len(placed)} poison messages produced onto {len(last_poison)} partitions")
    passed_after = poll(lambda: every_processor_passed(stack, last_poison), 90,
                        "every processor recorded a position at or past the last poison message of each partition")
    print(f"last poison message produced -> every processor past it on every partition in {passed_after:.1f}s")
    poll(lambda: every_partition_has_event_after(stack, workload.org_id, last_poison),
         90, "the workload wrote an event after the poison messages onto every partition", interval=1.0)

    workload.stop()
    assert workload.failed() == [], [vars(command) for command in workload.failed()[:3]]
    end_offsets = stack.wait_until_caught_up(timeout=90)
    print(f"last poison message produced -> workload stopped and every processor caught up in "
          f"{time.monotonic() - produced_at:.1f}s")
    stack.check_running()
    for service in PROCESSOR_TOPICS:
        # faust restarts a crashed agent and goes on after the message it was applying, so a crash
        # shows only in the log.
        assert "Crashed reason=" not in (stack.state_dir / f"{service}-worker.log").read_text(errors="replace"), (
            f"the {service} worker's agent crashed; see {stack.state_dir / f'{service}-worker.log'}"
        )

    letters = asyncio.run(read_dead_letters(stack.kafka_bootstrap))
    letters_by_consumer_source = defaultdict(list)
    for letter in letters:
        letters_by_consumer_source[(letter.consumer, letter.source)].append(letter)
    records = org_records(stack, workload.org_id)

    for service, topics in PROCESSOR_TOPICS.items():
        consumer = stack.consumer_name(service)
        reasons, processed = read_model_rows(stack, service)
        expected = [item for item in placed if item.topic in topics and item.poison.dead_lettered]
        assert set(reasons) == {item.source for item in expected}, (
            f"the {service} processor dead-lettered {sorted(set(reasons) - {item.source for item in expected})} "
            f"besides the poison, and missed {sorted({item.source for item in expected} - set(reasons))}"
        )
        for item in expected:
            where = f"{item.poison.kind} at {item.source}, {service} processor"
            reason = reasons[item.source]
            for fragment in item.poison.reason_fragments:
                assert fragment in reason, f"{where}: dead-letter reason {reason[:300]!r} lacks {fragment!r}"
            published = letters_by_consumer_source[(consumer, item.source)]
            assert len(published) == 1, f"{where}: {len(published)} messages on {DEADLETTER_TOPIC.name}"
            [letter] = published
            # The processor cuts the header to 1,000 bytes of the reason.
            assert letter.reason == reason.encode()[:1000], (
                f"{where}: header spm-reason {letter.reason[:200]!r} differs from the recorded reason {reason[:200]!r}"
            )
            assert letter.key == f"poison-{item.poison.kind}".encode(), f"{where}: dead letter key {letter.key!r}"
            if item.poison.value is not None and len(item.poison.value) > PRODUCER_MAX_REQUEST_SIZE:
                assert letter.value is None, f"{where}: the dead letter carries the value of {len(item.poison.value)} bytes"
                assert letter.value_omitted == str(len(item.poison.value)).encode(), (
                    f"{where}: header spm-value-omitted is {letter.value_omitted!r}"
                )
            else:
                assert letter.value == item.poison.value, f"{where}: the dead letter's value differs from the message"
                assert letter.value_omitted is None, f"{where}: header spm-value-omitted is {letter.value_omitted!r}"
        for item in placed:
            if item.topic in topics and not item.poison.dead_lettered:
                assert item.poison.event_id in processed, (
                    f"the {service} processor did not record the {item.poison.kind} at {item.source} as processed"
                )
        for topic, partition in partitions:
            if topic not in topics:
                continue
            after = [record for record in records
                     if (record.topic, record.partition) == (topic, partition) and record.offset > last_poison[(topic, partition)]]
            assert after, f"no real event follows the poison messages on {topic}/{partition}"
            missing = [record.event_id for record in after if record.event_id not in processed]
            assert missing == [], f"the {service} processor did not apply events after the poison on {topic}/{partition}: {missing}"
        applied_positions = stack.applied_positions(service)
        for (topic, partition), end_offset in end_offsets.items():
            if topic in topics:
                assert applied_positions[(topic, partition)] == end_offset - 1, (
                    f"the {service} processor's position on {topic}/{partition} is {applied_positions[(topic, partition)]}, "
                    f"not the last offset {end_offset - 1}"
                )
        print(f"{service} processor: {len(expected)} poison messages dead-lettered, "
              f"{sum(1 for item in placed if item.topic in topics and not item.poison.dead_lettered)} unknown types skipped")

    expected_letters = {
        (stack.consumer_name(service), item.source)
        for service, topics in PROCESSOR_TOPICS.items()
        for item in placed
        if item.topic in topics and item.poison.dead_lettered
    }
    stray = [(letter.consumer, letter.source) for letter in letters if (letter.consumer, letter.source) not in expected_letters]
    assert stray == [], f"dead letters of messages that were not to be dead-lettered: {stray[:10]}"

    # The checker counts every dead letter as a lost event. Those checked above are the poison
    # messages, which are no stored events, so only the others may count.
    truth = collect_truth(stack.event_store("goals"), stack.event_store("social"), workload.org_id)
    read_models = collect_read_models(stack.read_model_locations(), workload.org_id)
    for service, topics in PROCESSOR_TOPICS.items():
        poison_letters = sum(1 for item in placed if item.topic in topics and item.poison.dead_lettered)
        read_models.dead_lettered[service] -= poison_letters
    report = check(truth, records, read_models)
    print(report.summary())
    report.assert_clean()
    assert report.stored == len([command for command in workload.accepted() if command.status == 201])
