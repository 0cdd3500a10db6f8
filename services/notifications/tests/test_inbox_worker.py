"""The worker process against the real broker: exact recipients, redelivery, kill -9, poison messages."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy import select

from spm_events.database import create_database_engine
from spm_events.envelope import Envelope, encode_envelope
from spm_events.registry import DEADLETTER_TOPIC, GOALS_TOPIC, SOCIAL_TOPIC, event_type_for
from spm_notifications.rules import (
    FOLLOWED_GOAL_CHECK_IN,
    GOAL_FOLLOWED,
    OWNED_GOAL_CHECK_IN,
    TAGGED,
    notification_id_for,
)
from spm_notifications.settings import READ_MODEL_FILE
from spm_notifications.tables import open_read_model

pytestmark = pytest.mark.kafka

OWNER, ACTOR, FAY, FINN, TINA = "owner", "alex", "fay", "finn", "tina"

Offsets = dict[tuple[str, int], int]


async def _send(bootstrap: str, messages: list[tuple[str, bytes, bytes]]) -> Offsets:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        last: Offsets = {}
        for topic, key, value in messages:
            metadata = await producer.send_and_wait(topic, key=key, value=value)
            last[(metadata.topic, metadata.partition)] = metadata.offset
        return last
    finally:
        await producer.stop()


async def _message_count(bootstrap: str) -> int:
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await reader.start()
    try:
        # The registry's partition counts, because a consumer with no subscription may hold no
        # metadata for these topics, and partitions_for_topic then returns None.
        partitions = [
            TopicPartition(topic.name, partition)
            for topic in (GOALS_TOPIC, SOCIAL_TOPIC)
            for partition in range(topic.partitions)
        ]
        return sum((await reader.end_offsets(partitions)).values())
    finally:
        await reader.stop()


@pytest.fixture
def catch_up_seconds(kafka_bootstrap: str) -> float:
    """Return the deadline for a fresh worker to read both shared topics from the start.

    Every worker in these tests starts from offset 0 of topics that other test runs also fill, so the
    deadline grows with their size: a minute plus one second per 50 messages. That rate is an estimate,
    several times below what one worker applied on a 2-core VM.
    """
    return 60.0 + asyncio.run(_message_count(kafka_bootstrap)) / 50


def publish(bootstrap: str, envelopes: list[Envelope]) -> Offsets:
    """Publish envelopes the way a relay does (topic from the registry, keyed by subject); return the last offsets."""
    messages = [
        (event_type_for(envelope.type).topic.name, envelope.subject.encode(), encode_envelope(envelope))
        for envelope in envelopes
    ]
    return asyncio.run(_send(bootstrap, messages))


def publish_raw(bootstrap: str, topic: str, key: bytes, value: bytes) -> Offsets:
    return asyncio.run(_send(bootstrap, [(topic, key, value)]))


class WorkerReadModel:
    """The test's own connection to the SQLite read model a worker process writes."""

    def __init__(self, worker) -> None:  # type: ignore[no-untyped-def]
        worker.data_dir.mkdir(parents=True, exist_ok=True)
        self.worker = worker
        self.engine = create_database_engine(f"sqlite:///{worker.data_dir / READ_MODEL_FILE}")
        # Creating the tables before the worker starts keeps the two processes from racing to create them.
        self.read_model, self.tables = open_read_model(self.engine, worker.env["SPM_PROCESSOR_ID"])

    def caught_up_with(self, sent: Offsets) -> bool:
        self.worker.check_running()
        recorded = self.read_model.recorded_offsets()
        return all(recorded.get(partition, -1) >= offset for partition, offset in sent.items())

    def inbox_rows(self, org_id: str) -> list[dict]:
        inbox = self.tables.inbox
        with self.engine.connect() as connection:
            rows = connection.execute(select(inbox).where(inbox.c.org_id == org_id).order_by(inbox.c.notification_id))
            return [dict(row._mapping) for row in rows]

    def notification_facts(self, org_id: str) -> set[tuple[str, str, str]]:
        return {(row["recipient_id"], row["kind"], row["event_id"]) for row in self.inbox_rows(org_id)}


def merge(*offsets: Offsets) -> Offsets:
    merged: Offsets = {}
    for part in offsets:
        for partition, offset in part.items():
            merged[partition] = max(offset, merged.get(partition, -1))
    return merged


def test_worker_notifies_exact_recipients_once(  # type: ignore[no-untyped-def]
    kafka_bootstrap, worker_factory, events, poll, catch_up_seconds
) -> None:
    goal = f"goal-{uuid.uuid4()}"
    # The factory numbers a goal's versions in build order, and the check-in must come after GoalCreated.
    goal_created = events.goal_created(goal, OWNER)
    check_in = events.check_in(goal, ACTOR, 10)
    tag = events.tagged(goal, TINA, ACTOR, 11)
    scenario = [
        goal_created,
        events.followed(goal, FAY, 1),
        events.followed(goal, ACTOR, 2),
        events.followed(goal, FINN, 3),
        events.unfollowed(goal, FINN, 4),
        check_in,
        tag,
        events.tagged(goal, ACTOR, ACTOR, 12),
    ]
    expected = {
        (FAY, FOLLOWED_GOAL_CHECK_IN, check_in.id),
        (OWNER, OWNED_GOAL_CHECK_IN, check_in.id),
        (TINA, TAGGED, tag.id),
    }
    # Each follow tells the owner; Finn's later unfollow does not take that back.
    expected |= {(OWNER, GOAL_FOLLOWED, follow.id) for follow in scenario[1:4]}
    worker = worker_factory("worker")
    read_model = WorkerReadModel(worker)

    sent = publish(kafka_bootstrap, scenario)
    worker.start()
    poll(lambda: read_model.caught_up_with(sent), catch_up_seconds, "the worker applied the scenario")

    assert read_model.notification_facts(events.org_id) == expected
    first_rows = read_model.inbox_rows(events.org_id)
    expected_ids = {notification_id_for(event_id, person) for person, _, event_id in expected}
    assert {row["notification_id"] for row in first_rows} == expected_ids

    redelivered = publish(kafka_bootstrap, scenario)
    poll(lambda: read_model.caught_up_with(redelivered), catch_up_seconds, "the worker applied the redelivery")

    assert read_model.inbox_rows(events.org_id) == first_rows
    assert worker.stop() == 0


def test_worker_killed_loses_and_doubles_nothing(  # type: ignore[no-untyped-def]
    kafka_bootstrap, worker_factory, events, poll, catch_up_seconds
) -> None:
    goal = f"goal-{uuid.uuid4()}"
    setup = [events.goal_created(goal, OWNER), events.followed(goal, FAY, 1), events.followed(goal, FINN, 2)]
    before_kill = [events.check_in(goal, ACTOR, 10 + minute) for minute in range(300)]
    after_kill = [events.check_in(goal, ACTOR, 400 + minute) for minute in range(50)]
    after_kill += [events.tagged(goal, TINA, ACTOR, 500 + minute) for minute in range(10)]
    expected = {
        (person, FOLLOWED_GOAL_CHECK_IN, check_in.id)
        for check_in in before_kill + after_kill[:50]
        for person in (FAY, FINN)
    }
    expected |= {(OWNER, OWNED_GOAL_CHECK_IN, check_in.id) for check_in in before_kill + after_kill[:50]}
    expected |= {(TINA, TAGGED, tag.id) for tag in after_kill[50:]}
    expected |= {(OWNER, GOAL_FOLLOWED, follow.id) for follow in setup[1:]}
    worker = worker_factory("worker")
    read_model = WorkerReadModel(worker)

    sent_before = publish(kafka_bootstrap, setup + before_kill)
    worker.start()
    poll(lambda: read_model.inbox_rows(events.org_id), catch_up_seconds, "the first notifications appear")
    worker.kill()
    applied_before_kill = len(read_model.inbox_rows(events.org_id))
    assert applied_before_kill < 3 * len(before_kill), "the worker finished before the kill, so the kill proved nothing"
    sent_after = publish(kafka_bootstrap, after_kill)
    worker.start()
    everything_sent = merge(sent_before, sent_after)
    poll(lambda: read_model.caught_up_with(everything_sent), catch_up_seconds, "the restarted worker caught up")

    rows = read_model.inbox_rows(events.org_id)
    assert len(rows) == len(expected)
    assert read_model.notification_facts(events.org_id) == expected


def test_poison_message_does_not_stall_partition(  # type: ignore[no-untyped-def]
    kafka_bootstrap, worker_factory, events, poll, catch_up_seconds
) -> None:
    goal = f"goal-{uuid.uuid4()}"
    worker = worker_factory("worker")
    read_model = WorkerReadModel(worker)
    consumer = worker.env["SPM_PROCESSOR_ID"]

    follow = events.followed(goal, FAY, 1)
    sent_setup = publish(kafka_bootstrap, [events.goal_created(goal, OWNER), follow])
    poison = publish_raw(kafka_bootstrap, GOALS_TOPIC.name, goal.encode(), b"\xff\x00 definitely not an envelope")
    ((poison_topic, poison_partition), poison_offset), = poison.items()
    check_in = events.check_in(goal, ACTOR, 10)
    sent_after = publish(kafka_bootstrap, [check_in])
    worker.start()

    assert (poison_topic, poison_partition) in sent_after, "the check-in must land in the poison message's partition"
    everything_sent = merge(sent_setup, poison, sent_after)
    poll(lambda: read_model.caught_up_with(everything_sent), catch_up_seconds, "the worker passed the poison message")
    dead_letters = read_model.read_model.dead_letters
    with read_model.engine.connect() as connection:
        dead = connection.execute(
            select(dead_letters).where(
                dead_letters.c.consumer == consumer,
                dead_letters.c.topic == poison_topic,
                dead_letters.c.partition == poison_partition,
                dead_letters.c.offset == poison_offset,
            )
        ).all()
    assert len(dead) == 1
    assert dead[0].reason.startswith("invalid envelope")
    assert read_model.notification_facts(events.org_id) == {
        (FAY, FOLLOWED_GOAL_CHECK_IN, check_in.id),
        (OWNER, OWNED_GOAL_CHECK_IN, check_in.id),
        (OWNER, GOAL_FOLLOWED, follow.id),
    }
    source = f"{poison_topic}/{poison_partition}/{poison_offset}".encode()
    poll(
        lambda: asyncio.run(_dead_letter_topic_has(kafka_bootstrap, consumer.encode(), source)),
        30.0,
        "the poison message is on spm.deadletter.v1",
    )


async def _dead_letter_topic_has(bootstrap: str, consumer: bytes, source: bytes) -> bool:
    """Read spm.deadletter.v1 from the start, looking for one consumer's copy of one source message."""
    reader = AIOKafkaConsumer(
        DEADLETTER_TOPIC.name, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await reader.start()
    try:
        end = await reader.end_offsets(await _assigned(reader))
        while True:
            batches = await reader.getmany(timeout_ms=1000)
            for records in batches.values():
                for record in records:
                    headers = dict(record.headers)
                    if headers.get("spm-consumer") == consumer and headers.get("spm-source") == source:
                        return True
            positions = {partition: await reader.position(partition) for partition in end}
            if all(positions[partition] >= offset for partition, offset in end.items()):
                return False
    finally:
        await reader.stop()


async def _assigned(reader: AIOKafkaConsumer):  # type: ignore[no-untyped-def]
    while not reader.assignment():
        await asyncio.sleep(0.1)
    return list(reader.assignment())


def test_fresh_worker_rebuilds_same_inbox(  # type: ignore[no-untyped-def]
    kafka_bootstrap, worker_factory, events, poll, catch_up_seconds
) -> None:
    goal = f"goal-{uuid.uuid4()}"
    scenario = [
        events.goal_created(goal, OWNER, title="Grow revenue"),
        events.check_in(goal, ACTOR, 10),
        events.tagged(goal, TINA, ACTOR, 11),
        events.followed(goal, FAY, 1),
        events.followed(goal, FINN, 2),
        events.unfollowed(goal, FINN, 5),
        events.check_in(goal, ACTOR, 20),
    ]
    live, rebuilt = worker_factory("live"), worker_factory("rebuilt")
    live_model, rebuilt_model = WorkerReadModel(live), WorkerReadModel(rebuilt)

    sent = publish(kafka_bootstrap, scenario)
    live.start()
    rebuilt.start()
    poll(lambda: live_model.caught_up_with(sent), catch_up_seconds, "the live worker applied the scenario")
    poll(lambda: rebuilt_model.caught_up_with(sent), catch_up_seconds, "the rebuilding worker applied the scenario")

    def without_wall_clock(rows: list[dict]) -> list[dict]:
        # The sequence numbers rows in the order one database inserted them, across organisations.
        return [{key: value for key, value in row.items() if key not in ("created_at", "sequence")} for row in rows]

    live_rows = without_wall_clock(live_model.inbox_rows(events.org_id))
    # Two check-in notifications each for the owner and Fay, Tina's tag, and the owner told of two follows.
    assert len(live_rows) == 7
    assert live_rows == without_wall_clock(rebuilt_model.inbox_rows(events.org_id))
