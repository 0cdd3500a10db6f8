"""Read models that record, in the same transaction as each change, the Kafka position they applied.

A message at or below the recorded offset of its partition is skipped. An event id applied before
is skipped too, because a relay may publish an event twice. So delivering anything twice changes
nothing, and a processor restarted from its recorded positions loses nothing.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from typing import Callable

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import DataError, SQLAlchemyError

from spm_events.database import create_tables
from spm_events.envelope import Envelope, InvalidEnvelopeError, decode_envelope

logger = logging.getLogger(__name__)


def define_position_tables(metadata: MetaData) -> tuple[Table, Table]:
    positions = Table(
        "consumer_positions",
        metadata,
        Column("consumer", String(100), primary_key=True),
        Column("topic", String(200), primary_key=True),
        Column("partition", Integer, primary_key=True),
        Column("offset", BigInteger, nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False),
    )
    processed = Table(
        "processed_events",
        metadata,
        Column("consumer", String(100), primary_key=True),
        Column("event_id", String(64), primary_key=True),
        Column("topic", String(200), nullable=False),
        Column("partition", Integer, nullable=False),
        Column("offset", BigInteger, nullable=False),
    )
    return positions, processed


def define_dead_letter_table(metadata: MetaData) -> Table:
    return Table(
        "dead_letters",
        metadata,
        Column("consumer", String(100), primary_key=True),
        Column("topic", String(200), primary_key=True),
        Column("partition", Integer, primary_key=True),
        Column("offset", BigInteger, primary_key=True),
        Column("reason", Text, nullable=False),
        Column("recorded_at", DateTime(timezone=True), nullable=False),
    )


class Outcome(Enum):
    APPLIED = "applied"
    SEEN_OFFSET = "seen_offset"
    SEEN_EVENT = "seen_event"
    DEAD_LETTERED = "dead_lettered"


@dataclass(frozen=True)
class KafkaPosition:
    topic: str
    partition: int
    offset: int


Handler = Callable[[Connection, Envelope], None]


class InvalidEventError(ValueError):
    """Raised by a handler for an event it cannot apply; the message is dead-lettered, not retried."""


class _Rejected(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PositionedReadModel:
    """A read model's database plus the bookkeeping of which Kafka positions it applied."""

    def __init__(self, engine: Engine, metadata: MetaData, consumer: str) -> None:
        self.engine = engine
        self.metadata = metadata
        self.consumer = consumer
        self.positions, self.processed = define_position_tables(metadata)
        self.dead_letters = define_dead_letter_table(metadata)
        digest = hashlib.sha256(f"spm-read-model:{consumer}".encode()).digest()
        self.lock_key = int.from_bytes(digest[:8], "big", signed=True)

    def create_tables(self) -> None:
        create_tables(self.metadata, self.engine)

    def recorded_offsets(self) -> dict[tuple[str, int], int]:
        """Return the last applied offset per (topic, partition) for this consumer."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(self.positions.c.topic, self.positions.c.partition, self.positions.c.offset).where(
                    self.positions.c.consumer == self.consumer
                )
            )
            return {(row.topic, row.partition): row.offset for row in rows}

    def apply(self, position: KafkaPosition, raw_value: bytes | None, handler: Handler) -> tuple[Outcome, str | None]:
        """Apply one Kafka message in one transaction and return the outcome.

        For a message that cannot be applied this returns ``Outcome.DEAD_LETTERED`` with the reason
        and records nothing: the caller publishes it to the dead-letter topic first, then calls
        ``record_dead_letter``, so a crash in between publishes it again rather than losing it.
        """
        try:
            with self.engine.begin() as connection:
                self._wait_for_other_instances(connection)
                applied_offset = self._applied_offset(connection, position)
                if applied_offset is not None and position.offset <= applied_offset:
                    return Outcome.SEEN_OFFSET, None
                outcome = self._apply_new_message(connection, position, raw_value, handler)
                self._record_offset(connection, position, applied_offset is None)
                return outcome, None
        except _Rejected as rejection:
            reason = rejection.reason
        except DataError as error:
            # Raised outside the handler too, e.g. by the lookup of an event id the database cannot store.
            reason = f"value rejected by the database at offset {position.offset}: {error.orig}"
        logger.warning(
            "cannot apply message consumer=%s topic=%s partition=%s offset=%s reason=%s",
            self.consumer, position.topic, position.partition, position.offset, reason,
        )
        return Outcome.DEAD_LETTERED, reason

    def record_dead_letter(self, position: KafkaPosition, reason: str) -> None:
        """Record a dead-lettered message and move this consumer's position past it."""
        with self.engine.begin() as connection:
            self._wait_for_other_instances(connection)
            applied_offset = self._applied_offset(connection, position)
            if applied_offset is not None and position.offset <= applied_offset:
                return
            connection.execute(
                insert(self.dead_letters).values(
                    consumer=self.consumer,
                    topic=position.topic,
                    partition=position.partition,
                    offset=position.offset,
                    reason=reason[:2000],
                    recorded_at=datetime.now(timezone.utc),
                )
            )
            self._record_offset(connection, position, applied_offset is None)

    def _apply_new_message(
        self, connection: Connection, position: KafkaPosition, raw_value: bytes | None, handler: Handler
    ) -> Outcome:
        if raw_value is None:
            raise _Rejected("invalid envelope: the message value is null (a tombstone)")
        if not raw_value:
            raise _Rejected("invalid envelope: the message value is empty")
        try:
            envelope = decode_envelope(raw_value)
        except InvalidEnvelopeError as error:
            raise _Rejected(f"invalid envelope: {error}") from None
        already_seen = connection.execute(
            select(self.processed.c.event_id).where(
                self.processed.c.consumer == self.consumer, self.processed.c.event_id == envelope.id
            )
        ).first()
        if already_seen:
            return Outcome.SEEN_EVENT
        try:
            handler(connection, envelope)
        except DataError as error:
            # The database rejected a value of this message (a string over its column's length, an
            # integer out of range, a NUL character): retrying cannot succeed, so it is dead-lettered.
            raise _Rejected(f"value rejected by the database in event {envelope.id}: {error.orig}") from None
        except SQLAlchemyError:
            # Any other database error (lost connection, locked file, a unique key taken by another
            # instance of this processor) is no fault of the message, so the processor retries it.
            raise
        except Exception as error:  # noqa: BLE001 - any other failure belongs to this one message
            # Raised to the faust agent instead, it would make faust restart the agent and go on
            # after the message without a dead letter.
            raise _Rejected(f"{type(error).__name__} in event {envelope.id}: {error}") from None
        connection.execute(
            insert(self.processed).values(
                consumer=self.consumer,
                event_id=envelope.id,
                topic=position.topic,
                partition=position.partition,
                offset=position.offset,
            )
        )
        return Outcome.APPLIED

    def _wait_for_other_instances(self, connection: Connection) -> None:
        """Hold this consumer's PostgreSQL advisory lock until the transaction ends.

        Handlers read rows that messages of other partitions write (a tag reads its goal's title).
        Two instances of one processor applying at the same time under READ COMMITTED would each
        miss the other's uncommitted rows, so on PostgreSQL their transactions run one at a time.
        SQLite already allows one writer at a time.
        """
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": self.lock_key})

    def _applied_offset(self, connection: Connection, position: KafkaPosition) -> int | None:
        return connection.execute(
            select(self.positions.c.offset).where(
                self.positions.c.consumer == self.consumer,
                self.positions.c.topic == position.topic,
                self.positions.c.partition == position.partition,
            )
        ).scalar()

    def _record_offset(self, connection: Connection, position: KafkaPosition, is_first: bool) -> None:
        now = datetime.now(timezone.utc)
        if is_first:
            connection.execute(
                insert(self.positions).values(
                    consumer=self.consumer,
                    topic=position.topic,
                    partition=position.partition,
                    offset=position.offset,
                    updated_at=now,
                )
            )
            return
        connection.execute(
            update(self.positions)
            .where(
                self.positions.c.consumer == self.consumer,
                self.positions.c.topic == position.topic,
                self.positions.c.partition == position.partition,
            )
            .values(offset=position.offset, updated_at=now)
        )
