"""The relay: follows a service's notification log and publishes each event to Kafka.

The event store is the outbox. The relay publishes a batch with an idempotent producer
(acks=all), waits for the broker to acknowledge every message, and only then records the
notification id it reached, in the service's own database. A crash in between publishes the
batch again on restart; consumers drop the repeats by event id.

Test hook: when SPM_FAULT_PAUSE_AFTER_PUBLISH names a file path, the relay writes that file (the
position it is about to record) after the broker acknowledged a batch and then waits, without
recording the position, until it is killed. Fault tests use it to kill a relay exactly between
publishing and recording. Leave it unset in every real deployment.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import logging
import os
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator, Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from eventsourcing.persistence import PersistenceError
from sqlalchemy import BigInteger, Column, Connection, DateTime, Engine, MetaData, String, Table, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError

from spm_events.database import create_tables
from spm_events.envelope import Envelope, encode_envelope
from spm_events.registry import event_type_for

logger = logging.getLogger(__name__)

# A batch of (notification id, envelope or None); None marks an internal event that is not published.
NotificationBatch = Sequence[tuple[int, Envelope | None]]
ReadNotifications = Callable[[int, int], NotificationBatch]


class RelayPositions:
    """The notification id each relay has published up to, stored in the service's database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        metadata = MetaData()
        self.table = Table(
            "relay_positions",
            metadata,
            Column("relay", String(100), primary_key=True),
            Column("position", BigInteger, nullable=False),
            Column("updated_at", DateTime(timezone=True), nullable=False),
        )
        create_tables(metadata, engine)

    def read(self, relay: str) -> int:
        with self.engine.connect() as connection:
            position = connection.execute(select(self.table.c.position).where(self.table.c.relay == relay)).scalar()
        return position or 0

    def record(self, relay: str, position: int) -> None:
        now = datetime.now(timezone.utc)
        dialect_insert = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        statement = dialect_insert(self.table).values(relay=relay, position=position, updated_at=now)
        statement = statement.on_conflict_do_update(
            index_elements=[self.table.c.relay], set_={"position": position, "updated_at": now}
        )
        with self.engine.begin() as connection:
            connection.execute(statement)


class RelayLockHeldError(RuntimeError):
    """Raised when another relay of the same service is already active."""


class RelayLease:
    """Proof that this process holds its relay lock, checked again before every batch.

    A PostgreSQL advisory lock belongs to a database session and ends with it, for example when the
    server restarts. ``confirm`` notices a lost session, takes the lock again on a new one, and raises
    RelayLockHeldError when another relay took it in between. A file lock lasts as long as the process
    keeps its file open, so ``confirm`` does nothing for it.
    """

    def __init__(self, engine: Engine | None, relay: str, key: int = 0) -> None:
        self.engine = engine
        self.relay = relay
        self.key = key
        self.connection: Connection | None = None

    def acquire(self) -> None:
        """Take the advisory lock on a new session, or raise RelayLockHeldError if another session has it."""
        assert self.engine is not None
        connection = self.engine.connect()
        try:
            acquired = connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key}).scalar()
        except Exception:
            connection.close()
            raise
        if not acquired:
            connection.close()
            raise RelayLockHeldError(f"relay {self.relay!r} is already running against this database")
        self.connection = connection

    def confirm(self) -> None:
        """Check that the lock is still held, taking it again if its session was lost.

        Raises the database's error while the server cannot be reached, so the caller retries later.
        """
        if self.engine is None:
            return
        if self.connection is not None:
            try:
                self.connection.execute(text("SELECT 1")).scalar()
                return
            except DBAPIError as error:
                logger.warning("relay=%s lost the session that held its lock: %r", self.relay, error)
                self._close_quietly()
        self.acquire()
        logger.warning("relay=%s acquired its lock again on a new database session", self.relay)

    def release(self) -> None:
        if self.connection is None:
            return
        try:
            self.connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
        except DBAPIError as error:
            # A lost session has released the lock already.
            logger.info("relay=%s could not release its lock: %r", self.relay, error)
        self._close_quietly()

    def _close_quietly(self) -> None:
        connection, self.connection = self.connection, None
        if connection is None:
            return
        try:
            connection.close()
        except DBAPIError:
            pass


@contextmanager
def single_active_relay(engine: Engine, relay: str, lock_dir: Path) -> Iterator[RelayLease]:
    """Hold the lock that keeps one relay per service active: a PostgreSQL advisory lock or a file lock."""
    if engine.dialect.name == "postgresql":
        key = int.from_bytes(hashlib.sha256(relay.encode()).digest()[:8], "big", signed=True)
        lease = RelayLease(engine, relay, key)
        lease.acquire()
        try:
            yield lease
        finally:
            lease.release()
        return
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / f"{relay}.relay.lock", "w") as lock_file:
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RelayLockHeldError(f"relay {relay!r} is already running in this data directory") from None
        yield RelayLease(None, relay)


class IdempotentProducer(AIOKafkaProducer):
    """An idempotent producer (acks=all) that can make an unstarted copy of itself.

    After a long broker outage an idempotent producer can be left in a state it never leaves
    (OutOfOrderSequenceNumber on every send, seen with aiokafka 0.14), so the relay replaces it.
    """

    def __init__(self, bootstrap: str) -> None:
        super().__init__(
            bootstrap_servers=bootstrap,
            enable_idempotence=True,
            acks="all",
            linger_ms=5,
            request_timeout_ms=30000,
        )
        self.bootstrap = bootstrap

    def fresh_copy(self) -> IdempotentProducer:
        return IdempotentProducer(self.bootstrap)


def create_idempotent_producer(bootstrap: str) -> IdempotentProducer:
    return IdempotentProducer(bootstrap)


PAUSE_AFTER_PUBLISH_VARIABLE = "SPM_FAULT_PAUSE_AFTER_PUBLISH"


async def _pause_after_publish(relay: str, reached: int, marker: Path) -> None:
    """Write ``marker`` and wait until the process is killed; a test hook, see the module docstring."""
    logger.warning("relay=%s published up to position=%s and pauses before recording it (%s is set)",
                   relay, reached, PAUSE_AFTER_PUBLISH_VARIABLE)
    marker.write_text(f"{relay} {reached}\n")
    while True:
        await asyncio.sleep(3600)


class Relay:
    def __init__(
        self,
        name: str,
        read_notifications: ReadNotifications,
        positions: RelayPositions,
        producer: AIOKafkaProducer,
        batch_size: int = 200,
        idle_poll_seconds: float = 0.05,
        failures_before_new_producer: int = 5,
        lease: RelayLease | None = None,
    ) -> None:
        self.name = name
        self.lease = lease
        self.read_notifications = read_notifications
        self.positions = positions
        self.producer = producer
        self.batch_size = batch_size
        self.idle_poll_seconds = idle_poll_seconds
        self.failures_before_new_producer = failures_before_new_producer

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until ``stop`` is set; resume from the recorded position."""
        position = await asyncio.to_thread(self.positions.read, self.name)
        logger.info("relay=%s resuming after notification_id=%s", self.name, position)
        retry_delay = self.idle_poll_seconds
        consecutive_failures = 0
        original_producer = self.producer
        try:
            while not stop.is_set():
                try:
                    if self.lease is not None:
                        await asyncio.to_thread(self.lease.confirm)
                    published_to = await self.publish_next_batch(position)
                except (DBAPIError, PersistenceError) as error:
                    # The database is unreachable (a restarting PostgreSQL, a locked file): nothing new was
                    # recorded, so the batch is read and published again once it is back.
                    retry_delay = min(retry_delay * 2, 5.0)
                    logger.warning("relay=%s database error after position=%s, retrying in %.1fs: %r",
                                   self.name, position, retry_delay, error)
                    await asyncio.sleep(retry_delay)
                    continue
                except KafkaError as error:
                    # Nothing was recorded, so the whole batch is published again once the broker is back.
                    consecutive_failures += 1
                    retry_delay = min(retry_delay * 2, 5.0)
                    logger.warning("relay=%s publish failed after position=%s (failure %s), retrying in %.1fs: %r",
                                   self.name, position, consecutive_failures, retry_delay, error)
                    await asyncio.sleep(retry_delay)
                    if consecutive_failures % self.failures_before_new_producer == 0:
                        await self._replace_producer()
                    continue
                consecutive_failures = 0
                retry_delay = self.idle_poll_seconds
                if published_to == position:
                    try:
                        await asyncio.wait_for(stop.wait(), timeout=self.idle_poll_seconds)
                    except asyncio.TimeoutError:
                        pass
                position = published_to
        finally:
            if self.producer is not original_producer:
                await self.producer.stop()

    async def _replace_producer(self) -> None:
        if not isinstance(self.producer, IdempotentProducer):
            return
        replacement = self.producer.fresh_copy()
        try:
            await replacement.start()
        except KafkaError as error:
            logger.warning("relay=%s could not start a new producer yet: %r", self.name, error)
            await replacement.stop()
            return
        old_producer, self.producer = self.producer, replacement
        logger.warning("relay=%s replaced its Kafka producer after repeated failures", self.name)
        try:
            await old_producer.stop()
        except KafkaError as error:
            logger.info("relay=%s old producer stopped with %r", self.name, error)

    async def publish_next_batch(self, position: int) -> int:
        """Publish the notifications after ``position`` (one batch) and return the position reached."""
        batch = await asyncio.to_thread(self.read_notifications, position, self.batch_size)
        if not batch:
            return position
        acknowledgements = []
        for _notification_id, envelope in batch:
            if envelope is None:
                continue
            topic = event_type_for(envelope.type).topic.name
            acknowledgements.append(
                await self.producer.send(topic, key=envelope.subject.encode(), value=encode_envelope(envelope))
            )
        await asyncio.gather(*acknowledgements)
        reached = batch[-1][0]
        if acknowledgements and os.environ.get(PAUSE_AFTER_PUBLISH_VARIABLE):
            await _pause_after_publish(self.name, reached, Path(os.environ[PAUSE_AFTER_PUBLISH_VARIABLE]))
        await asyncio.to_thread(self.positions.record, self.name, reached)
        logger.info("relay=%s published=%s position=%s", self.name, len(acknowledgements), reached)
        return reached
