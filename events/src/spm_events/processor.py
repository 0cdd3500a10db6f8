"""faust-streaming glue for processors whose read models record their own Kafka positions.

faust-streaming 0.15.3 can record an offset as committed when the commit failed, and with agent
concurrency above 1 it can commit past a message still in flight. So the consumer group's
committed offsets are never trusted here: on every assignment each partition is sought to the
position recorded with the read model, also after faust's own seek to the committed offsets, and
the agent that writes runs with concurrency 1.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Awaitable, Callable, Iterable, TypeVar

import faust
from aiokafka.errors import KafkaError, MessageSizeTooLargeError
from faust.exceptions import ProducerSendError
from faust.types import TP
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from spm_events.readmodel import Handler, KafkaPosition, Outcome, PositionedReadModel
from spm_events.registry import DEADLETTER_TOPIC
from spm_events.settings import ServiceSettings, prepare_data_dir

logger = logging.getLogger(__name__)

Result = TypeVar("Result")


def create_processor_app(app_id: str, settings: ServiceSettings) -> faust.App:
    """Create a faust app with no web server, no local table store and no leader topic."""
    # faust keeps its state directory under SPM_DATA_DIR even when the read model is on PostgreSQL.
    prepare_data_dir(settings.data_dir)
    return faust.App(
        app_id,
        broker=[f"kafka://{server.strip()}" for server in settings.kafka_bootstrap.split(",")],
        store="memory://",
        web_enabled=False,
        datadir=str(settings.data_dir / f"{app_id}-faust"),
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        broker_commit_every=100,
        producer_acks=-1,
        # faust's default session timeout is 60 s, so a restarted processor waited a minute for its partitions.
        broker_session_timeout=settings.consumer_session_timeout_seconds,
    )


def attach_read_model(
    app: faust.App,
    read_model: PositionedReadModel,
    topic_names: Iterable[str],
    handler: Handler,
) -> None:
    """Feed every message of ``topic_names`` to ``handler`` through ``read_model``'s position bookkeeping."""
    topic_names = tuple(topic_names)
    source = app.topic(*topic_names, key_serializer="raw", value_serializer="raw")
    dead_letter_topic = app.topic(DEADLETTER_TOPIC.name, key_serializer="raw", value_serializer="raw")
    applied_count = 0

    seek_installed = False

    async def seek_to_recorded_positions(partitions: Iterable[TP]) -> None:
        recorded = await asyncio.to_thread(read_model.recorded_offsets)
        for partition in partitions:
            if partition.topic not in topic_names:
                continue
            applied = recorded.get((partition.topic, partition.partition))
            next_offset = 0 if applied is None else applied + 1
            logger.info(
                "resuming consumer=%s topic=%s partition=%s at offset=%s",
                read_model.consumer, partition.topic, partition.partition, next_offset,
            )
            await app.consumer.seek(partition, next_offset)

    @app.on_partitions_assigned.connect
    async def resume_from_recorded_positions(sender: faust.App, assigned: set[TP], **_: object) -> None:
        nonlocal seek_installed
        if not seek_installed:
            _seek_again_after_committed_seek(app.consumer, seek_to_recorded_positions)
            seek_installed = True
        await seek_to_recorded_positions(assigned)

    async def apply_messages(stream: faust.StreamT) -> None:
        nonlocal applied_count
        async for event in stream.events():
            message = event.message
            position = KafkaPosition(message.topic, message.partition, message.offset)
            try:
                outcome, reason = await _retry_database_errors(
                    app, read_model, position, "applying", lambda: read_model.apply(position, message.value, handler)
                )
                if outcome is Outcome.DEAD_LETTERED:
                    await _publish_dead_letter(dead_letter_topic, read_model.consumer, position, message, reason or "")
                    await _retry_database_errors(
                        app, read_model, position, "recording the dead letter of",
                        lambda: read_model.record_dead_letter(position, reason or ""),
                    )
            except _WorkerStopping:
                return
            if outcome is Outcome.APPLIED:
                applied_count += 1
                if applied_count % 500 == 0:
                    logger.info("consumer=%s applied=%s", read_model.consumer, applied_count)

    app.agent(source, name=f"{read_model.consumer}-apply", concurrency=1)(apply_messages)


def _seek_again_after_committed_seek(consumer: object, seek_to_recorded: Callable[[Iterable[TP]], Awaitable[None]]) -> None:
    """Follow each of faust's seeks to the group's committed offsets with a seek to the recorded positions.

    After each assignment, faust-streaming 0.15.3's recovery service calls ``consumer.perform_seek()``,
    which seeks every partition to the group's committed offset and undoes the seek made in the
    ``on_partitions_assigned`` handler. A committed offset past messages the read model never applied
    would then skip them, so the wrapper seeks to the recorded positions right after it.
    """
    seek_to_committed = consumer.perform_seek  # type: ignore[attr-defined]

    async def perform_seek() -> None:
        await seek_to_committed()
        await seek_to_recorded(consumer.assignment())  # type: ignore[attr-defined]

    consumer.perform_seek = perform_seek  # type: ignore[attr-defined]


async def _publish_dead_letter(
    dead_letter_topic: faust.TopicT, consumer: str, position: KafkaPosition, message: faust.types.Message, reason: str
) -> None:
    """Publish a message that cannot be applied to the dead-letter topic and wait until the broker acknowledged it.

    The caller records the dead letter only after this returns, so the position never moves past
    a message whose dead letter is not on the topic. Kafka errors are retried until they pass. A
    value too large to publish again is left out, header ``spm-value-omitted`` gives its size, and
    the message stays at its source position. faust-streaming 0.15.3's producer sends at most
    1,000,000 bytes (``producer_max_request_size``), while a Kafka broker accepts 1,048,588 by
    default (``message.max.bytes``), so a message read from a topic can be too large to send.
    """
    headers = {
        "spm-consumer": consumer.encode(),
        "spm-source": f"{position.topic}/{position.partition}/{position.offset}".encode(),
        "spm-reason": reason.encode()[:1000],
    }
    value = message.value
    delay = 0.1
    while True:
        try:
            delivery = await dead_letter_topic.send(key=message.key, value=value, headers=headers, force=True)
            await delivery
            return
        except (KafkaError, ProducerSendError) as error:
            too_large = isinstance(error, MessageSizeTooLargeError) or isinstance(error.__cause__, MessageSizeTooLargeError)
            if too_large and value is not None:
                logger.warning(
                    "dead letter of consumer=%s topic=%s partition=%s offset=%s is too large to publish "
                    "(%s bytes); publishing it without its value",
                    consumer, position.topic, position.partition, position.offset, len(value),
                )
                headers["spm-value-omitted"] = str(len(value)).encode()
                value = None
                continue
            logger.warning(
                "publishing dead letter of consumer=%s topic=%s partition=%s offset=%s failed, retrying in %.1fs: %r",
                consumer, position.topic, position.partition, position.offset, delay, error,
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


class _WorkerStopping(Exception):
    """Raised instead of another retry once the worker is stopping."""


async def _retry_database_errors(
    app: faust.App, read_model: PositionedReadModel, position: KafkaPosition, action: str, call: Callable[[], Result]
) -> Result:
    """Run ``call`` in a thread, retrying database errors (a locked SQLite file, a restarted PostgreSQL) until they pass.

    The partition waits meanwhile, because skipping the message would lose it. Every SQLAlchemy
    error counts as a database error, including a connection pool timeout, which wraps no driver
    error. Once the worker is stopping it raises ``_WorkerStopping`` with the message not recorded,
    so a stop is not held up by a database that stays down.
    """
    delay = 0.1
    while True:
        try:
            return await asyncio.to_thread(call)
        except SQLAlchemyError as error:
            # The driver's message, without the statement and its parameters, which hold event data.
            cause = error.orig if isinstance(error, DBAPIError) else error
            logger.warning(
                "database error %s consumer=%s topic=%s partition=%s offset=%s, retrying in %.1fs: %s",
                action, read_model.consumer, position.topic, position.partition, position.offset, delay, cause,
            )
        if app.should_stop:
            logger.info("worker stopping, message left for the next start: consumer=%s topic=%s partition=%s offset=%s",
                        read_model.consumer, position.topic, position.partition, position.offset)
            raise _WorkerStopping()
        await asyncio.sleep(delay)
        delay = min(delay * 2, 5.0)


def run_worker(app: faust.App, log_level: str = "info") -> None:
    """Run the faust worker in the foreground until SIGTERM or SIGINT, without faust's web server.

    The worker command's ``--with-web`` default overrides ``web_enabled=False`` in faust-streaming
    0.15.3 and would bind 0.0.0.0:6066, so ``--without-web`` is passed explicitly.
    """
    sys.argv = [app.conf.id, "worker", "--without-web", "--loglevel", log_level.lower()]
    app.main()
