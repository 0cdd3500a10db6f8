"""The service processes of one fault test, each started on its own so that one can be killed and restarted.

spm_local.suite runs the same processes under honcho, which stops every process when one exits,
so a kill -9 of one process would end the whole suite. Here each process is a child of the test
with its own log file, and the layout and settings are the suite's. The notifications dispatcher is
not started: it reads the inbox and writes no read model the checker looks at.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import httpx
from sqlalchemy import MetaData, create_engine, insert, select

from checker import (
    PROCESSOR_TOPICS,
    CheckReport,
    ReadModelLocation,
    check,
    collect_read_models,
    collect_truth,
    consume_topics,
)
from workload import Workload

from spm_events.readmodel import define_position_tables
from spm_events.registry import GOALS_TOPIC, SOCIAL_TOPIC
from spm_local.ports import free_port
from spm_local.suite import topic_end_offsets

CHECKED_TOPICS = (GOALS_TOPIC.name, SOCIAL_TOPIC.name)
PROCESS_KINDS = {
    "goals": ("api", "relay", "worker"),
    "social": ("api", "relay", "worker"),
    "scoring": ("api", "worker"),
    "notifications": ("api", "worker"),
}
READ_MODEL_FILES = {
    "goals": "goals-read.db",
    "social": "social-read.db",
    "scoring": "scoring-read.db",
    "notifications": "notifications-read.db",
}
EVENT_STORE_FILES = {"goals": "goals-events.db", "social": "social-events.db"}
# The social worker records its positions under a fixed consumer name, the others under SPM_PROCESSOR_ID.
FIXED_CONSUMER_NAMES = {"social": "social-feed"}

Offsets = dict[tuple[str, int], int]

# aiokafka 0.14 logs this at INFO each time a consumer joins a new generation of its group.
JOINED_GROUP_LINE = re.compile(r"Joined group '(?P<group>[^']+)' \(generation (?P<generation>\d+)\)")


def poll(condition: Callable[[], bool], timeout: float, description: str, interval: float = 0.2) -> float:
    """Wait until ``condition`` returns true and return the seconds it took; raise TimeoutError at ``timeout``."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting until {description}")
        time.sleep(interval)
    return time.monotonic() - started


@dataclass
class Stack:
    state_dir: Path
    kafka_bootstrap: str
    jwt_secret: str
    run_id: str
    database_urls: dict[str, str] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    # Processes stopped on purpose by retire(). check_running() ignores them, and stop() still reaps them.
    retired: dict[str, subprocess.Popen] = field(default_factory=dict)
    start_offsets: Offsets = field(default_factory=dict)

    # --- settings ---

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def processor_id(self, service: str) -> str:
        return f"spm-{service}-{self.run_id}"

    def consumer_name(self, service: str) -> str:
        return FIXED_CONSUMER_NAMES.get(service, self.processor_id(service))

    def data_dir(self, service: str) -> Path:
        return self.state_dir / service

    def database(self, service: str) -> str:
        """Return the read model's database: the PostgreSQL URL if set, else its SQLite file path."""
        return self.database_urls.get(service) or str(self.data_dir(service) / READ_MODEL_FILES[service])

    def event_store(self, service: str) -> str:
        return self.database_urls.get(service) or str(self.data_dir(service) / EVENT_STORE_FILES[service])

    def read_model_locations(self) -> list[ReadModelLocation]:
        return [ReadModelLocation(service, self.database(service), self.consumer_name(service)) for service in PROCESSOR_TOPICS]

    def environment(self, service: str, extra: dict[str, str] | None = None) -> dict[str, str]:
        settings = {
            "SPM_DATA_DIR": str(self.data_dir(service)),
            "SPM_KAFKA_BOOTSTRAP": self.kafka_bootstrap,
            "SPM_HTTP_PORT": str(self.ports[service]),
            "SPM_JWT_SECRET": self.jwt_secret,
            "SPM_PROCESSOR_ID": self.processor_id(service),
            # The workload sends more commands per person than the default limit of 60 per 10 s allows.
            "SPM_RATE_LIMIT_COMMANDS": "100000",
            "SPM_LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
        }
        if service in self.database_urls:
            settings["SPM_DATABASE_URL"] = self.database_urls[service]
        if service == "notifications":
            settings["SPM_SOCIAL_API_URL"] = self.url("social")
        return {**os.environ, **settings, **(extra or {})}

    # --- processes ---

    def start(self, extra_env: dict[str, dict[str, str]] | None = None) -> Stack:
        """Start every process; ``extra_env`` adds settings per process name, e.g. ``{"goals-relay": {...}}``."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.ports = {service: free_port() for service in PROCESS_KINDS}
        # The broker is shared with other tests: every processor starts at the current topic ends, so
        # it applies only this run's events. The org of a run is new, so nothing of it lies before.
        self.start_offsets = asyncio.run(topic_end_offsets(self.kafka_bootstrap, CHECKED_TOPICS))
        for service in PROCESSOR_TOPICS:
            seed_positions(self.database(service), self.consumer_name(service), self.start_offsets, PROCESSOR_TOPICS[service])
        for service, kinds in PROCESS_KINDS.items():
            for kind in kinds:
                self.start_process(service, kind, (extra_env or {}).get(f"{service}-{kind}"))
        return self

    def start_workers(self, start_offsets: Offsets, extra_env: dict[str, str] | None = None) -> Stack:
        """Start only the processors, from ``start_offsets``: a rebuild of every read model into empty databases."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.ports = {service: free_port() for service in PROCESS_KINDS}
        self.start_offsets = dict(start_offsets)
        for service in PROCESSOR_TOPICS:
            seed_positions(self.database(service), self.consumer_name(service), self.start_offsets, PROCESSOR_TOPICS[service])
            self.start_process(service, "worker", extra_env)
        return self

    def recorded_positions(self, service: str) -> Offsets:
        """Read the processor's applied offsets straight from its read model, for stacks without APIs."""
        url = self.database(service)
        engine = create_engine(url if url.startswith("postgresql") else f"sqlite:///{Path(url).resolve()}")
        metadata = MetaData()
        positions, _ = define_position_tables(metadata)
        try:
            with engine.connect() as connection:
                rows = connection.execute(
                    select(positions.c.topic, positions.c.partition, positions.c.offset)
                    .where(positions.c.consumer == self.consumer_name(service))
                )
                return {(row.topic, row.partition): row.offset for row in rows}
        finally:
            engine.dispose()

    def start_process(
        self, service: str, kind: str, extra_env: dict[str, str] | None = None, name: str | None = None
    ) -> None:
        """Start one process; a ``name`` other than ``<service>-<kind>`` starts one more instance, e.g. ``scoring-worker-2``."""
        name = name or f"{service}-{kind}"
        existing = self.processes.get(name)
        if existing is not None and existing.poll() is None:
            raise RuntimeError(f"process {name} is still running (pid {existing.pid}); kill it first")
        self.data_dir(service).mkdir(parents=True, exist_ok=True)
        executable = Path(sys.executable).parent / f"spm-{service}-{kind}"
        with open(self.state_dir / f"{name}.log", "ab") as log_file:
            self.processes[name] = subprocess.Popen(
                [str(executable)],
                cwd=self.data_dir(service),
                env=self.environment(service, extra_env),
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self, name: str) -> None:
        """Kill one process with SIGKILL, as a crash or an OOM kill would, and reap it."""
        process = self.processes[name]
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)

    def terminate(self, name: str, timeout: float = 60.0) -> None:
        """Stop one process cleanly with SIGTERM and wait until it exited."""
        process = self.processes[name]
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=timeout)

    def retire(self, name: str, signum: signal.Signals) -> None:
        """Send ``signum`` to one process without waiting for it to exit, and stop counting it as a running process.

        A process retired with SIGKILL is reaped at once. One retired with SIGTERM shuts down in the
        background, and ``wait_until_retired_exited`` returns its exit status.
        """
        process = self.processes.pop(name)
        self.retired[name] = process
        os.killpg(process.pid, signum)
        if signum == signal.SIGKILL:
            process.wait(timeout=30)

    def wait_until_retired_exited(self, timeout: float = 60.0) -> dict[str, int]:
        """Wait until every retired process exited and return the exit status of each."""

        def still_running() -> list[str]:
            return [name for name, process in self.retired.items() if process.poll() is None]

        try:
            poll(lambda: not still_running(), timeout, "every retired process exited")
        except TimeoutError as error:
            raise TimeoutError(f"{error}; still running: {still_running()}") from None
        return {name: process.returncode for name, process in self.retired.items()}

    def joined_generations(self, name: str) -> list[tuple[str, int]]:
        """Return (consumer group, generation) for every group generation the process joined, from its log."""
        text = (self.state_dir / f"{name}.log").read_text(errors="replace")
        return [(match["group"], int(match["generation"])) for match in JOINED_GROUP_LINE.finditer(text)]

    def pause(self, name: str) -> None:
        """Freeze one process with SIGSTOP; it keeps its sockets but handles nothing until resumed."""
        os.killpg(self.processes[name].pid, signal.SIGSTOP)

    def resume(self, name: str) -> None:
        os.killpg(self.processes[name].pid, signal.SIGCONT)

    def stop(self) -> None:
        every_process = [*self.processes.values(), *self.retired.values()]
        for process in every_process:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for process in every_process:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def check_running(self) -> None:
        exited = {name: process.returncode for name, process in self.processes.items() if process.poll() is not None}
        if exited:
            raise RuntimeError(f"processes exited unexpectedly: {exited}; see the logs in {self.state_dir}")

    def log_tail(self, name: str, lines: int = 30) -> str:
        text = (self.state_dir / f"{name}.log").read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    # --- waiting ---

    def wait_until_healthy(self, timeout: float = 180.0) -> None:
        def healthy() -> bool:
            self.check_running()
            with httpx.Client(timeout=2) as client:
                for service in PROCESS_KINDS:
                    try:
                        if client.get(f"{self.url(service)}/healthz").status_code != 200:
                            return False
                    except httpx.TransportError:
                        return False
            return True

        poll(healthy, timeout, "every API answers /healthz", interval=0.5)

    def relays_caught_up(self) -> bool:
        with httpx.Client(timeout=5) as client:
            for service in ("goals", "social"):
                relay = client.get(f"{self.url(service)}/internal/relay").json()
                if relay["published_position"] < relay["max_notification_id"]:
                    return False
        return True

    def applied_positions(self, service: str) -> Offsets:
        with httpx.Client(timeout=5) as client:
            status = client.get(f"{self.url(service)}/internal/positions").json()
        return {(row["topic"], row["partition"]): row["offset"] for row in status["positions"]}

    def processor_caught_up(self, service: str, end_offsets: Offsets, from_database: bool = False) -> bool:
        applied = self.recorded_positions(service) if from_database else self.applied_positions(service)
        for (topic, partition), end_offset in end_offsets.items():
            if topic in PROCESSOR_TOPICS[service] and end_offset > 0 and applied.get((topic, partition), -1) < end_offset - 1:
                return False
        return True

    def wait_until_caught_up(self, timeout: float = 240.0) -> Offsets:
        """Wait until the relays published every stored event and every processor applied every message."""
        poll(lambda: self.check_running() or self.relays_caught_up(), timeout, "the relays published every stored event")
        end_offsets = asyncio.run(topic_end_offsets(self.kafka_bootstrap, CHECKED_TOPICS))
        for service in PROCESSOR_TOPICS:
            poll(
                lambda: self.check_running() or self.processor_caught_up(service, end_offsets),
                timeout,
                f"the {service} processor applied every message up to {end_offsets}",
            )
        return end_offsets


def start_workload(stack: Stack, org_id: str | None = None, **options: float) -> Workload:
    """Register the workload's people on the stack's APIs and start sending commands for a new org."""
    workload = Workload(
        urls={service: stack.url(service) for service in ("goals", "social")},
        org_id=org_id or f"reliability-{uuid.uuid4().hex[:10]}",
        jwt_secret=stack.jwt_secret,
        **options,  # type: ignore[arg-type]
    )
    workload.register_people()
    workload.start()
    return workload


def check_stack(stack: Stack, org_id: str) -> CheckReport:
    """Run the checker over one stack's stores, the topics from the stack's start, and its read models."""
    truth = collect_truth(stack.event_store("goals"), stack.event_store("social"), org_id)
    records = consume_topics(stack.kafka_bootstrap, CHECKED_TOPICS, org_id, stack.start_offsets)
    read_models = collect_read_models(stack.read_model_locations(), org_id)
    return check(truth, records, read_models)


def seed_positions(database: str, consumer: str, offsets: Offsets, topics: tuple[str, ...]) -> None:
    """Record ``offsets`` as already applied, so the processor starts at them instead of offset 0."""
    url = database if database.startswith(("postgresql", "sqlite")) else f"sqlite:///{Path(database).resolve()}"
    if not database.startswith("postgresql"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url)
    metadata = MetaData()
    positions, _ = define_position_tables(metadata)
    metadata.create_all(engine, tables=[positions])
    now = datetime.now(timezone.utc)
    rows = [
        {"consumer": consumer, "topic": topic, "partition": partition, "offset": end - 1, "updated_at": now}
        for (topic, partition), end in offsets.items()
        if topic in topics and end > 0
    ]
    with engine.begin() as connection:
        if rows:
            connection.execute(insert(positions), rows)
    engine.dispose()
