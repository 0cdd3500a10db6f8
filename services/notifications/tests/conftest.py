"""Fixtures of the notifications tests: event builders, a read model on SQLite or PostgreSQL, a worker process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Iterator

import pytest
from sqlalchemy import Engine

from spm_events.database import create_database_engine
from spm_events.envelope import Envelope
from spm_events.readmodel import KafkaPosition, Outcome, PositionedReadModel
from spm_events.registry import new_envelope
from spm_events.schemas import (
    CheckInRecordedV1,
    CollaboratorTaggedV1,
    GoalCreatedV1,
    GoalFollowedV1,
    GoalOwnersChangedV1,
    GoalUnfollowedV1,
    GoalVisibilityChangedV1,
    PeriodV1,
)
from spm_notifications.projection import InboxProjection
from spm_notifications.tables import InboxTables, open_read_model

# The delivery tests import notify_delivery_support from this directory, which pytest's
# --import-mode=importlib does not put on sys.path.
TESTS_DIR = str(Path(__file__).resolve().parent)
if TESTS_DIR not in sys.path:
    sys.path.insert(0, TESTS_DIR)

START = datetime(2020, 3, 2, 9, 0, tzinfo=timezone.utc)


def at(minutes: int) -> datetime:
    """Return an event time ``minutes`` after a fixed start in March 2020."""
    return START + timedelta(minutes=minutes)


class EventFactory:
    """Builds envelopes of one organisation, numbering each aggregate's versions like a command service."""

    def __init__(self, org_id: str, first_version: int = 1) -> None:
        self.org_id = org_id
        self._versions: dict[str, int] = defaultdict(lambda: first_version - 1)

    def _envelope(self, payload, subject: str, actor_id: str, occurred_at: datetime) -> Envelope:  # type: ignore[no-untyped-def]
        self._versions[subject] += 1
        return new_envelope(
            payload,
            subject=subject,
            org_id=self.org_id,
            actor_id=actor_id,
            aggregate_version=self._versions[subject],
            time=occurred_at,
        )

    def goal_created(
        self,
        goal_id: str,
        owner_id: str,
        title: str = "Ship the inbox",
        minute: int = 0,
        *,
        visibility: str | None = None,
        co_owner_ids: tuple[str, ...] = (),
        team: str = "platform",
        contributing_teams: tuple[str, ...] = (),
    ) -> Envelope:
        payload = GoalCreatedV1(
            goal_id=goal_id,
            title=title,
            owner_id=owner_id,
            team=team,
            contributing_teams=contributing_teams,
            co_owner_ids=co_owner_ids,
            visibility=visibility,
            period=PeriodV1(name="FY20-Q1", start=START.date(), end=START.date() + timedelta(days=90)),
        )
        return self._envelope(payload, goal_id, owner_id, at(minute))

    def owners_changed(
        self, goal_id: str, owner_id: str, co_owner_ids: tuple[str, ...], actor_id: str, minute: int
    ) -> Envelope:
        payload = GoalOwnersChangedV1(goal_id=goal_id, owner_id=owner_id, co_owner_ids=co_owner_ids)
        return self._envelope(payload, goal_id, actor_id, at(minute))

    def visibility_changed(
        self, goal_id: str, visibility: str, previous_visibility: str, actor_id: str, minute: int
    ) -> Envelope:
        payload = GoalVisibilityChangedV1(
            goal_id=goal_id, visibility=visibility, previous_visibility=previous_visibility
        )
        return self._envelope(payload, goal_id, actor_id, at(minute))

    def check_in(self, goal_id: str, actor_id: str, minute: int) -> Envelope:
        payload = CheckInRecordedV1(
            goal_id=goal_id,
            key_result_id=f"{goal_id}-kr",
            check_in_id=str(uuid.uuid4()),
            value=0.5,
            progress=0.5,
        )
        return self._envelope(payload, goal_id, actor_id, at(minute))

    def followed(self, goal_id: str, person_id: str, minute: int) -> Envelope:
        payload = GoalFollowedV1(goal_id=goal_id, follower_id=person_id)
        return self._envelope(payload, f"social-{goal_id}", person_id, at(minute))

    def unfollowed(self, goal_id: str, person_id: str, minute: int) -> Envelope:
        payload = GoalUnfollowedV1(goal_id=goal_id, follower_id=person_id)
        return self._envelope(payload, f"social-{goal_id}", person_id, at(minute))

    def tagged(self, goal_id: str, collaborator_id: str, actor_id: str, minute: int) -> Envelope:
        payload = CollaboratorTaggedV1(goal_id=goal_id, collaborator_id=collaborator_id)
        return self._envelope(payload, f"social-{goal_id}", actor_id, at(minute))


@pytest.fixture
def org_id() -> str:
    return f"org-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def events(org_id: str) -> EventFactory:
    return EventFactory(org_id)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'notifications-read.db'}"
    return request.getfixturevalue("postgres_url_factory")()


@dataclass
class ReadModelUnderTest:
    engine: Engine
    read_model: PositionedReadModel
    tables: InboxTables
    projection: InboxProjection
    next_offset: int = 0

    def apply(self, *envelopes: Envelope) -> list[Outcome]:
        """Apply envelopes as consecutive messages of one partition, the way the worker does."""
        return [self.apply_raw(envelope.model_dump_json().encode()) for envelope in envelopes]

    def apply_raw(self, value: bytes) -> Outcome:
        position = KafkaPosition("spm.test.v1", 0, self.next_offset)
        self.next_offset += 1
        outcome, reason = self.read_model.apply(position, value, self.projection)
        if outcome is Outcome.DEAD_LETTERED:
            self.read_model.record_dead_letter(position, reason or "")
        return outcome


@pytest.fixture
def open_store() -> Iterator[Callable[[str], ReadModelUnderTest]]:
    """Return a callable that opens the inbox read model at a database URL. Its engines are disposed at the end."""
    engines: list[Engine] = []

    def open_at(url: str) -> ReadModelUnderTest:
        engine = create_database_engine(url)
        engines.append(engine)
        read_model, tables = open_read_model(engine, "notifications-test")
        return ReadModelUnderTest(engine, read_model, tables, InboxProjection(tables))

    yield open_at
    for engine in engines:
        engine.dispose()


@pytest.fixture
def store(open_store: Callable[[str], ReadModelUnderTest], database_url: str) -> ReadModelUnderTest:
    return open_store(database_url)


def wait_until(condition: Callable[[], object], timeout: float, description: str) -> object:
    """Poll ``condition`` until it returns a truthy value, failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting until {description}")
        time.sleep(0.2)


@pytest.fixture
def poll() -> Callable[[Callable[[], object], float, str], object]:
    return wait_until


class WorkerProcess:
    """The ``spm-notifications-worker`` console script run as a child process with its own data directory."""

    def __init__(
        self, data_dir: Path, kafka_bootstrap: str, processor_id: str, database_url: str | None = None
    ) -> None:
        self.data_dir = data_dir
        self.log_path = data_dir / "worker.log"
        self.env = {
            **os.environ,
            "SPM_DATA_DIR": str(data_dir),
            "SPM_KAFKA_BOOTSTRAP": kafka_bootstrap,
            "SPM_PROCESSOR_ID": processor_id,
            # Kafka's default group.min.session.timeout.ms is 6 s. A short session lets a restarted worker rejoin quickly.
            "SPM_CONSUMER_SESSION_TIMEOUT_SECONDS": "8",
            "PYTHONUNBUFFERED": "1",
        }
        self.env.pop("SPM_DATABASE_URL", None)
        if database_url is not None:
            self.env["SPM_DATABASE_URL"] = database_url
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        executable = Path(sys.executable).parent / "spm-notifications-worker"
        with open(self.log_path, "ab") as log_file:
            self.process = subprocess.Popen(
                [str(executable)], cwd=self.data_dir, env=self.env, stdout=log_file, stderr=subprocess.STDOUT
            )
        return self

    def kill(self) -> None:
        """Stop the worker the hard way (SIGKILL), as a crash or an OOM kill would."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> int | None:
        """Stop the worker with SIGTERM (SIGKILL after 30 s) and return its exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def check_running(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-3000:]
            raise AssertionError(f"worker exited with code {self.process.returncode}:\n{tail}")


@pytest.fixture
def worker_factory(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Callable[[str], WorkerProcess]]:
    """Return a callable that builds a worker for one data directory name. Every worker is stopped at the end."""
    workers: list[WorkerProcess] = []

    def build(name: str) -> WorkerProcess:
        worker = WorkerProcess(tmp_path / name, kafka_bootstrap, f"notifications-test-{uuid.uuid4().hex[:12]}")
        workers.append(worker)
        return worker

    yield build
    for worker in workers:
        worker.stop()


@pytest.fixture
def make_events() -> Callable[..., EventFactory]:
    """Return the event builder class, for tests that need a second organisation."""
    return EventFactory


@pytest.fixture(scope="session")
def worker_process_class() -> type[WorkerProcess]:
    """Return the worker process class, for fixtures that start and stop a worker of a wider scope themselves."""
    return WorkerProcess
