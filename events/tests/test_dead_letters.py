"""Messages a processor cannot apply: the read model dead-letters them, the processor publishes them.

A failure that belongs to one message (a value the schema, the handler or the database rejects)
must dead-letter that message. Any other database error must reach the caller, which retries it.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timezone
from pathlib import Path

import faust
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from faust.types import Message
from sqlalchemy import Column, Connection, Integer, MetaData, String, Table, create_engine, insert, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from spm_events.envelope import Envelope, encode_envelope
from spm_events.processor import _publish_dead_letter
from spm_events.readmodel import KafkaPosition, Outcome, PositionedReadModel

POSITION = KafkaPosition("spm.goals.v1", 0, 7)


def example_envelope() -> Envelope:
    return Envelope(
        id=str(uuid.uuid4()),
        source="/spm/goals",
        type="spm.goals.GoalCreated.v1",
        subject="goal-1",
        time=datetime(2024, 3, 1, tzinfo=timezone.utc),
        dataschema="urn:spm:schema:goals.GoalCreated:1",
        orgid="acme",
        actorid="ana",
        aggregateversion=1,
        data={},
    )


@pytest.fixture
def versions(tmp_path: Path) -> tuple[PositionedReadModel, Table]:
    """Return a read model on a SQLite file with one table that stores each event's aggregate version."""
    engine: Engine = create_engine(f"sqlite:///{tmp_path / 'read.db'}")
    metadata = MetaData()
    table = Table("versions", metadata, Column("version", Integer, nullable=False))
    read_model = PositionedReadModel(engine, metadata, "test-consumer")
    read_model.create_tables()
    return read_model, table


def processed_count(read_model: PositionedReadModel) -> int:
    with read_model.engine.connect() as connection:
        return len(connection.execute(select(read_model.processed.c.event_id)).all())


def test_unexpected_handler_error_dead_letters(versions: tuple[PositionedReadModel, Table]) -> None:
    read_model, _ = versions

    def read_missing_field(connection: Connection, envelope: Envelope) -> None:
        envelope.data["title"]

    envelope = example_envelope()
    outcome, reason = read_model.apply(POSITION, encode_envelope(envelope), read_missing_field)

    assert outcome is Outcome.DEAD_LETTERED
    assert reason == f"KeyError in event {envelope.id}: 'title'"
    assert processed_count(read_model) == 0
    assert read_model.recorded_offsets() == {}


def test_database_error_is_raised(versions: tuple[PositionedReadModel, Table]) -> None:
    read_model, _ = versions

    def query_missing_table(connection: Connection, envelope: Envelope) -> None:
        connection.execute(text("SELECT version FROM missing_table"))

    with pytest.raises(OperationalError):
        read_model.apply(POSITION, encode_envelope(example_envelope()), query_missing_table)
    assert read_model.recorded_offsets() == {}


@pytest.fixture
def postgres_versions(postgres_url_factory) -> tuple[PositionedReadModel, Table]:  # type: ignore[no-untyped-def]
    """Return a read model on a new PostgreSQL database with a table of 32-bit versions and short names."""
    engine: Engine = create_engine(postgres_url_factory())
    metadata = MetaData()
    table = Table(
        "versions", metadata, Column("version", Integer, nullable=False), Column("name", String(8), nullable=False)
    )
    read_model = PositionedReadModel(engine, metadata, "test-consumer")
    read_model.create_tables()
    return read_model, table


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("version", "name", "expected_cause"),
    [(2**40, "short", "out of range"), (1, "far too long for eight", "too long"), (1, "nul\x00", "NUL")],
    ids=["integer-out-of-range", "string-too-long", "nul-character"],
)
def test_postgres_rejected_value_dead_letters(
    postgres_versions: tuple[PositionedReadModel, Table], version: int, name: str, expected_cause: str
) -> None:
    read_model, table = postgres_versions

    def store(connection: Connection, envelope: Envelope) -> None:
        connection.execute(insert(table).values(version=version, name=name))

    envelope = example_envelope()
    outcome, reason = read_model.apply(POSITION, encode_envelope(envelope), store)

    assert outcome is Outcome.DEAD_LETTERED
    assert reason is not None
    assert reason.startswith(f"value rejected by the database in event {envelope.id}: ")
    assert expected_cause in reason
    assert processed_count(read_model) == 0
    assert read_model.recorded_offsets() == {}


@pytest.mark.postgres
def test_postgres_nul_in_event_id_dead_letters(postgres_versions: tuple[PositionedReadModel, Table]) -> None:
    """An id PostgreSQL cannot store fails the event id lookup before any handler runs."""
    read_model, _ = postgres_versions
    raw = encode_envelope(example_envelope()).replace(b'"id":"', b'"id":"nul\\u0000', 1)

    outcome, reason = read_model.apply(POSITION, raw, lambda connection, envelope: None)

    assert outcome is Outcome.DEAD_LETTERED
    assert reason is not None
    assert reason.startswith("invalid envelope")
    assert "control characters" in reason
    assert read_model.recorded_offsets() == {}


@pytest.mark.parametrize(
    ("value", "expected_reason"),
    [(None, "invalid envelope: the message value is null (a tombstone)"), (b"", "invalid envelope: the message value is empty")],
    ids=["tombstone", "empty"],
)
def test_empty_value_reason(versions: tuple[PositionedReadModel, Table], value: bytes | None, expected_reason: str) -> None:
    read_model, _ = versions

    outcome, reason = read_model.apply(POSITION, value, lambda connection, envelope: None)

    assert outcome is Outcome.DEAD_LETTERED
    assert reason == expected_reason


async def publish_and_read(bootstrap: str, values: list[bytes]) -> list[tuple[bytes | None, dict[str, bytes]]]:
    """Publish one dead letter per value to a new topic and return each message's value and headers."""
    topic_name = f"spm-test-deadletter-{uuid.uuid4().hex[:12]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic_name, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    app = faust.App(f"dead-letter-test-{uuid.uuid4().hex[:8]}", broker=f"kafka://{bootstrap}", store="memory://",
                    web_enabled=False, producer_acks=-1)
    topic = app.topic(topic_name, key_serializer="raw", value_serializer="raw")
    try:
        for offset, value in enumerate(values):
            message = Message(topic=POSITION.topic, partition=0, offset=offset, timestamp=0.0, timestamp_type=0,
                              headers=[], key=b"goal-1", value=value, checksum=None)
            await _publish_dead_letter(topic, "test-consumer", KafkaPosition(POSITION.topic, 0, offset), message, "bad")
    finally:
        await app.producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        partition = TopicPartition(topic_name, 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        # The messages were acknowledged before _publish_dead_letter returned, so one fetch finds them.
        batches = await consumer.getmany(partition, timeout_ms=10_000)
        return [(message.value, dict(message.headers)) for message in batches.get(partition, [])]
    finally:
        await consumer.stop()
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            await admin.delete_topics([topic_name])
        finally:
            await admin.close()


@pytest.mark.kafka
def test_oversized_dead_letter_omits_value(kafka_bootstrap: str) -> None:
    # Above faust-streaming's default producer_max_request_size of 1,000,000 bytes.
    oversized = b"x" * 1_010_000

    published = asyncio.run(publish_and_read(kafka_bootstrap, [oversized, b"not json"]))

    assert len(published) == 2
    (first_value, first_headers), (second_value, second_headers) = published
    assert first_value is None
    assert first_headers["spm-value-omitted"] == b"1010000"
    assert first_headers["spm-source"] == b"spm.goals.v1/0/0"
    assert second_value == b"not json"
    assert "spm-value-omitted" not in second_headers
    assert second_headers["spm-reason"] == b"bad"
