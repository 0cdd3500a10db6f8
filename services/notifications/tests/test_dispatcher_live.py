"""The dispatcher process on the real broker: worker, dispatcher and a webhook receiver, with a kill -9 mid-batch.

Events go to Kafka, the worker process writes the inbox, and ``spm-notifications-dispatcher`` sends
each notification to a slow HTTP receiver on 127.0.0.1. The dispatcher is killed with SIGKILL while
deliveries are in flight and started again. Every delivery id must reach the receiver, and the only
ids it may see twice are those it had received before the kill that were not yet recorded as sent:
the window between a receiver's response and the dispatcher's write.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timezone
from typing import Iterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from fastapi.testclient import TestClient
from sqlalchemy import insert, select

from spm_events.auth import issue_token
from spm_events.database import create_database_engine
from spm_events.envelope import Envelope, encode_envelope
from spm_events.registry import GOALS_TOPIC, SOCIAL_TOPIC, event_type_for
from spm_notifications.api import create_app
from spm_notifications.delivery.signing import verify
from spm_notifications.rules import notification_id_for
from spm_notifications.settings import READ_MODEL_FILE, NotificationsSettings
from spm_notifications.tables import open_read_model
from spm_notifications.webhook_store import delivery_id_for
from notify_delivery_support import DispatcherProcess, WebhookReceiver

pytestmark = pytest.mark.kafka

OWNER, ACTOR, FAY = "owner", "alex", "fay"
GOAL_COUNT = 30
CONCURRENCY = 2
APPLY_SECONDS = 120.0

Offsets = dict[tuple[str, int], int]


async def _send(bootstrap: str, envelopes: list[Envelope]) -> Offsets:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        last: Offsets = {}
        for envelope in envelopes:
            topic = event_type_for(envelope.type).topic.name
            metadata = await producer.send_and_wait(topic, key=envelope.subject.encode(), value=encode_envelope(envelope))
            last[(metadata.topic, metadata.partition)] = metadata.offset
        return last
    finally:
        await producer.stop()


async def _end_offsets(bootstrap: str) -> Offsets:
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await reader.start()
    try:
        partitions = [
            TopicPartition(topic.name, partition)
            for topic in (GOALS_TOPIC, SOCIAL_TOPIC)
            for partition in range(topic.partitions)
        ]
        return {(tp.topic, tp.partition): offset for tp, offset in (await reader.end_offsets(partitions)).items()}
    finally:
        await reader.stop()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    # Each response takes 50 ms, so 30 deliveries at 2 in flight take about a second: time to kill mid-batch.
    receiver = WebhookReceiver(delay_seconds=0.05).start()
    yield receiver
    receiver.stop()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_dispatcher_kill_and_restart_delivers_once(  # type: ignore[no-untyped-def]
    request, backend, kafka_bootstrap, tmp_path, worker_process_class, make_events, receiver, poll
) -> None:
    processor_id = f"notifications-dispatch-{uuid.uuid4().hex[:12]}"
    database_url = None if backend == "sqlite" else request.getfixturevalue("postgres_url_factory")()
    settings = NotificationsSettings(
        data_dir=tmp_path, database_url=database_url, processor_id=processor_id, webhook_allowed_networks="127.0.0.1/32"
    )
    engine = create_database_engine(settings.sqlalchemy_url(READ_MODEL_FILE))
    read_model, tables = open_read_model(engine, processor_id)
    now = datetime.now(timezone.utc)
    with engine.begin() as connection:
        connection.execute(insert(read_model.positions), [
            {"consumer": processor_id, "topic": topic, "partition": partition, "offset": end - 1, "updated_at": now}
            for (topic, partition), end in asyncio.run(_end_offsets(kafka_bootstrap)).items()
        ])
    worker = worker_process_class(tmp_path, kafka_bootstrap, processor_id, database_url).start()
    org_id = f"org-{uuid.uuid4().hex[:12]}"
    secret = settings.jwt_secret.get_secret_value()
    api = TestClient(create_app(settings))
    response = api.post(
        "/webhooks", json={"url": receiver.url},
        headers={"Authorization": f"Bearer {issue_token(secret, org_id, FAY)}"},
    )
    assert response.status_code == 201, response.text
    webhook = response.json()
    dispatcher_env = {
        "SPM_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.1/32",
        "SPM_DISPATCHER_POLL_INTERVAL_SECONDS": "0.2",
        "SPM_DISPATCHER_BATCH_SIZE": "4",
        "SPM_WEBHOOK_CONCURRENCY": str(CONCURRENCY),
        "SPM_PROCESSOR_ID": processor_id,
    }
    if database_url is not None:
        dispatcher_env["SPM_DATABASE_URL"] = database_url
    dispatcher = DispatcherProcess(tmp_path, dispatcher_env)
    deliveries = tables.inbox.metadata.tables["deliveries"]
    try:
        dispatcher.start()
        events = make_events(org_id)
        tags = []
        envelopes = []
        for index in range(GOAL_COUNT):
            tag = events.tagged(f"goal-{index}", FAY, ACTOR, 10 + index)
            tags.append(tag)
            envelopes += [events.goal_created(f"goal-{index}", OWNER, title=f"Goal {index}"), tag]
        asyncio.run(_send(kafka_bootstrap, envelopes))
        expected = {
            delivery_id_for(notification_id_for(tag.id, FAY), "webhook", webhook["webhook_id"]) for tag in tags
        }

        def some_delivered() -> bool:
            worker.check_running()
            dispatcher.check_running()
            return len(receiver.delivery_ids()) >= 8

        poll(some_delivered, APPLY_SECONDS, "the receiver got 8 deliveries")
        dispatcher.kill()
        received_before_kill = set(receiver.delivery_ids())
        with engine.connect() as connection:
            recorded_sent = set(
                connection.execute(select(deliveries.c.delivery_id).where(deliveries.c.status == "sent")).scalars()
            )
        in_window = received_before_kill - recorded_sent
        assert len(received_before_kill) < GOAL_COUNT, "the kill came after the whole batch; nothing was mid-batch"

        dispatcher.start()

        def all_recorded() -> bool:
            worker.check_running()
            dispatcher.check_running()
            with engine.connect() as connection:
                sent = set(
                    connection.execute(select(deliveries.c.delivery_id).where(deliveries.c.status == "sent")).scalars()
                )
            return sent == expected

        poll(all_recorded, APPLY_SECONDS, f"all {GOAL_COUNT} deliveries are recorded as sent")
        assert dispatcher.stop() == 0
    finally:
        dispatcher.stop()
        worker.stop()

    ids = receiver.delivery_ids()
    assert set(ids) == expected
    repeated = {delivery_id for delivery_id in ids if ids.count(delivery_id) > 1}
    assert repeated <= in_window
    assert len(in_window) <= CONCURRENCY
    for request in receiver.received:
        timestamp = int(request.headers["X-SPM-Timestamp"])
        assert verify(webhook["secret"], timestamp, request.body, request.headers["X-SPM-Signature"])
    engine.dispose()


def test_second_dispatcher_exits(tmp_path, poll) -> None:  # type: ignore[no-untyped-def]
    env = {"SPM_DISPATCHER_POLL_INTERVAL_SECONDS": "0.2"}
    first = DispatcherProcess(tmp_path, env).start()
    try:
        poll(lambda: "dispatcher started" in first.log_path.read_text(), 60.0, "the first dispatcher started")
        second = DispatcherProcess(tmp_path, env)
        second.log_path = tmp_path / "second-dispatcher.log"
        second.start()
        assert second.process is not None
        assert second.process.wait(timeout=60) == 1
        assert "already running" in second.log_path.read_text()
        first.check_running()
    finally:
        assert first.stop() == 0
