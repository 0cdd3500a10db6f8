"""The feed worker against the real broker: it runs as its own process, as in production."""

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import func, select

from spm_events.database import create_database_engine
from spm_events.envelope import Envelope, encode_envelope
from spm_events.readmodel import KafkaPosition
from spm_events.registry import event_type_for
from spm_events.topics import ensure_topics
from spm_social.readmodel import SocialReadModel, open_read_model
from spm_social.settings import READ_MODEL_FILE, SocialSettings
from spm_social.views import SocialViews

pytestmark = pytest.mark.kafka

# The worker starts from offset 0 of shared topics, so it first works through every earlier test's events.
CATCH_UP_SECONDS = 180.0
STOP_SECONDS = 30.0


class WorkerProcess:
    """The spm-social-worker console script, started with its own app id and data directory."""

    def __init__(self, data_dir: Path, bootstrap: str, app_id: str) -> None:
        self.data_dir = data_dir
        self.log_path = data_dir / "worker.log"
        self.env = {name: value for name, value in os.environ.items() if not name.startswith("SPM_")}
        self.env |= {
            "SPM_DATA_DIR": str(data_dir),
            "SPM_KAFKA_BOOTSTRAP": bootstrap,
            "SPM_PROCESSOR_ID": app_id,
            "SPM_LOG_LEVEL": "INFO",
        }
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        executable = Path(sys.executable).parent / "spm-social-worker"
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen([str(executable)], env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def stop(self) -> int | None:
        if self.process is None:
            return None
        process, self.process = self.process, None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    def check_running(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            pytest.fail(f"worker exited with {self.process.returncode}:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture
def worker_data_dir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def worker(worker_data_dir: Path, kafka_bootstrap: str) -> Iterator[WorkerProcess]:
    asyncio.run(ensure_topics(kafka_bootstrap))
    process = WorkerProcess(worker_data_dir, kafka_bootstrap, f"spm-social-test-{uuid.uuid4().hex[:12]}")
    yield process
    process.stop()


@pytest.fixture
def worker_read_model(worker_data_dir: Path) -> Iterator[SocialReadModel]:
    settings = SocialSettings(data_dir=worker_data_dir, database_url=None)
    engine = create_database_engine(settings.sqlalchemy_url(READ_MODEL_FILE))
    yield open_read_model(engine)
    engine.dispose()


def publish(bootstrap: str, *envelopes: Envelope) -> list[KafkaPosition]:
    """Publish envelopes to their registry topics, keyed by subject as the relays do, and return their positions."""

    async def send_all() -> list[KafkaPosition]:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
        await producer.start()
        try:
            positions = []
            for envelope in envelopes:
                metadata = await producer.send_and_wait(
                    event_type_for(envelope.type).topic.name,
                    key=envelope.subject.encode(),
                    value=encode_envelope(envelope),
                )
                positions.append(KafkaPosition(metadata.topic, metadata.partition, metadata.offset))
            return positions
        finally:
            await producer.stop()

    return asyncio.run(send_all())


def wait_until(condition: Callable[[], bool], worker: WorkerProcess, description: str) -> None:
    deadline = time.monotonic() + CATCH_UP_SECONDS
    while not condition():
        worker.check_running()
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {CATCH_UP_SECONDS}s waiting until {description}:\n{worker.log_tail()}")
        time.sleep(0.2)


def applied_up_to(read_model: SocialReadModel, positions: list[KafkaPosition]) -> Callable[[], bool]:
    def condition() -> bool:
        recorded = read_model.positioned.recorded_offsets()
        return all(recorded.get((p.topic, p.partition), -1) >= p.offset for p in positions)

    return condition


def feed_event_ids(read_model: SocialReadModel, org_id: str, person_id: str) -> list[str]:
    items = read_model.tables.feed_items
    with read_model.engine.connect() as connection:
        rows = connection.execute(
            select(items.c.event_id).where(items.c.org_id == org_id, items.c.person_id == person_id)
        )
        return sorted(rows.scalars())


def org_snapshot(read_model: SocialReadModel, org_id: str) -> dict[str, object]:
    """Rows of the test's organisation, with indexed_at so a rewritten feed item shows up."""
    tables = read_model.tables
    with read_model.engine.connect() as connection:
        items = connection.execute(
            select(tables.feed_items.c.item_id, tables.feed_items.c.indexed_at).where(
                tables.feed_items.c.org_id == org_id
            )
        ).all()
        audience = connection.execute(
            select(tables.audience_changes).where(tables.audience_changes.c.org_id == org_id)
        ).all()
    return {"feed_items": sorted(items), "audience_changes": sorted(audience)}


def processed_count(read_model: SocialReadModel, event_ids: list[str]) -> int:
    processed = read_model.positioned.processed
    with read_model.engine.connect() as connection:
        return connection.execute(
            select(func.count()).select_from(processed).where(processed.c.event_id.in_(event_ids))
        ).scalar()


def dead_letter_count(read_model: SocialReadModel, positions: list[KafkaPosition]) -> int:
    dead_letters = read_model.positioned.dead_letters
    with read_model.engine.connect() as connection:
        return sum(
            connection.execute(
                select(func.count()).select_from(dead_letters).where(
                    dead_letters.c.topic == p.topic,
                    dead_letters.c.partition == p.partition,
                    dead_letters.c.offset == p.offset,
                )
            ).scalar()
            for p in positions
        )


def test_worker_builds_feed_once_across_redelivery_and_restart(
    kafka_bootstrap: str, worker: WorkerProcess, worker_read_model: SocialReadModel, events, org_id: str
) -> None:
    read_model = worker_read_model
    # Event ids derive from the aggregate id, and goal ids are globally unique in production, so
    # every run needs its own goal id: the worker reads earlier runs' events from the shared topics.
    goal_id = f"goal-{uuid.uuid4().hex}"
    worker.start()

    # Given a goal with a key result, a follower, and a second follower who left again.
    goal_events = [
        events.goal_created(goal_id, "owner-1", day=1),
        events.key_result_added(goal_id, "kr-1", "owner-1", day=1, hour=10),
    ]
    social_events = [
        events.goal_followed(goal_id, "follower-1", day=2),
        events.goal_followed(goal_id, "follower-2", day=2, hour=10),
        events.goal_unfollowed(goal_id, "follower-2", day=2, hour=11),
    ]
    goal_positions = publish(kafka_bootstrap, *goal_events)
    wait_until(applied_up_to(read_model, goal_positions), worker, "the goal events are consumed")
    assert SocialViews(read_model).audience_of(org_id, goal_id) is not None
    social_positions = publish(kafka_bootstrap, *social_events)
    wait_until(applied_up_to(read_model, social_positions), worker, "the follows are applied")

    # When the owner checks in, the follower gets an item and the one who left gets none.
    check_in = events.check_in_recorded(goal_id, "kr-1", "owner-1", day=3)
    check_in_positions = publish(kafka_bootstrap, check_in)
    wait_until(
        lambda: check_in.id in feed_event_ids(read_model, org_id, "follower-1"),
        worker,
        "the follower's feed contains the check-in",
    )
    assert feed_event_ids(read_model, org_id, "follower-1") == [check_in.id]
    assert feed_event_ids(read_model, org_id, "follower-2") == []
    owner_hears_of = [*goal_events, *social_events[:2], check_in]
    assert feed_event_ids(read_model, org_id, "owner-1") == sorted(envelope.id for envelope in owner_hears_of)
    everything = [*goal_events, *social_events, check_in]
    all_positions = goal_positions + social_positions + check_in_positions
    before_redelivery = org_snapshot(read_model, org_id)

    # Redelivery: the same events again at new offsets, as a relay that crashed before recording would publish.
    redelivered = publish(kafka_bootstrap, *everything)
    wait_until(applied_up_to(read_model, redelivered), worker, "the redelivered events are consumed")

    assert org_snapshot(read_model, org_id) == before_redelivery
    assert processed_count(read_model, [envelope.id for envelope in everything]) == len(everything)
    assert dead_letter_count(read_model, all_positions + redelivered) == 0

    # Restart: stop the worker, publish while it is down, start it again with the same read model.
    assert worker.stop() == 0
    positions_at_stop = read_model.positioned.recorded_offsets()
    later_check_in = events.check_in_recorded(goal_id, "kr-1", "owner-1", day=4)
    publish(kafka_bootstrap, later_check_in)
    worker.start()
    wait_until(
        lambda: later_check_in.id in feed_event_ids(read_model, org_id, "follower-1"),
        worker,
        "the check-in published while the worker was down reaches the feed",
    )

    assert feed_event_ids(read_model, org_id, "follower-1") == sorted([check_in.id, later_check_in.id])
    assert feed_event_ids(read_model, org_id, "follower-2") == []
    after_restart = org_snapshot(read_model, org_id)
    assert set(before_redelivery["feed_items"]) <= set(after_restart["feed_items"])
    assert len(after_restart["feed_items"]) == len(before_redelivery["feed_items"]) + 2
    assert processed_count(read_model, [envelope.id for envelope in everything]) == len(everything)
    resumed = read_model.positioned.recorded_offsets()
    assert all(resumed[partition] >= offset for partition, offset in positions_at_stop.items())
