"""A rebalance storm: processor instances join and leave their consumer groups every few seconds under load.

While the workload runs, the test starts and stops instances of every processor (goals, social,
scoring and notifications workers) at random, keeping 1 to 3 of each. The instances of one
processor share its SPM_PROCESSOR_ID, so they form one consumer group and every change rebalances
it. Most removals are SIGTERM, some
SIGKILL. When the storm ends every group still has at least one instance, the stack must catch up,
the checker must find nothing lost or duplicated, and a rebuild from the topics must equal the
live read models.

SPM_STORM_SECONDS sets the storm's length (default 90), SPM_STORM_SEED replays the sequence of
changes of an earlier run, and SPM_STORM_DATABASE=sqlite runs the read models on SQLite files
instead of PostgreSQL databases.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from checker import PROCESSOR_TOPICS
from stack import Offsets, Stack, poll, start_workload
from test_kills import PROCESSORS, assert_replay_equals_live, finish_and_check

pytestmark = [pytest.mark.reliability, pytest.mark.kafka]

# The storm's length in `make test`. A long storm sets SPM_STORM_SECONDS, e.g. SPM_STORM_SECONDS=900.
CI_STORM_SECONDS = 90.0
# Seconds between two changes of one group, drawn uniformly from this range.
CHANGE_INTERVAL_SECONDS = (3.0, 5.0)
MAX_INSTANCES = 3
SIGKILL_SHARE = 0.25
# Low, so the group drops a member killed with SIGKILL after 8 s instead of the default 20 s.
SESSION_TIMEOUT_SECONDS = "8"
SAMPLE_INTERVAL_SECONDS = 1.0


def storm_seconds() -> float:
    value = os.environ.get("SPM_STORM_SECONDS")
    return float(value) if value else CI_STORM_SECONDS


def storm_seed() -> int:
    value = os.environ.get("SPM_STORM_SEED")
    return int(value) if value else random.SystemRandom().randrange(2**32)


@pytest.fixture
def storm_database_urls(request: pytest.FixtureRequest) -> dict[str, str]:
    """Return one new PostgreSQL database per service, or no URLs (SQLite files) with SPM_STORM_DATABASE=sqlite."""
    kind = os.environ.get("SPM_STORM_DATABASE", "postgresql")
    if kind == "sqlite":
        return {}
    if kind != "postgresql":
        raise ValueError(f"SPM_STORM_DATABASE={kind!r} is invalid; use postgresql (the default) or sqlite")
    create_database = request.getfixturevalue("postgres_url_factory")
    return {service: create_database() for service in ("goals", "social", "scoring", "notifications")}


@dataclass
class GroupChurn:
    """The instances of one processor's consumer group, and every change the storm made to it."""

    service: str
    running: list[str]
    started: list[str]
    changes: list[str] = field(default_factory=list)
    last_change_at: float = 0.0
    end_offsets_at_last_change: Offsets = field(default_factory=dict)

    def count(self, change: str) -> int:
        return sum(1 for made in self.changes if made == change)

    @property
    def made(self) -> int:
        """Return the number of changes made, leaving out skipped ones."""
        return len(self.changes) - self.count("skipped")


async def create_consumer(bootstrap: str) -> AIOKafkaConsumer:
    """Start a consumer without a group on the running event loop, for reading topic ends."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    return consumer


class Storm:
    """A driver that starts and stops worker instances of each consumer group, choosing every change with a seeded generator.

    The seed fixes the sequence of random draws. Which instances have joined their group by the
    time of a change depends on the machine's speed, so two runs with one seed can still differ.
    """

    def __init__(self, stack: Stack, seed: int, worker_env: dict[str, str]) -> None:
        self.stack = stack
        self.random = random.Random(seed)
        self.worker_env = worker_env
        self.groups = {
            service: GroupChurn(service, running=[f"{service}-worker"], started=[f"{service}-worker"])
            for service in PROCESSORS
        }
        self.max_running = {service: 1 for service in PROCESSORS}
        # One consumer for the whole storm, so reading the topic ends after each change costs one request.
        self.loop = asyncio.new_event_loop()
        self.offsets_consumer = self.loop.run_until_complete(create_consumer(stack.kafka_bootstrap))
        self.partitions = [TopicPartition(topic, partition) for topic, partition in stack.start_offsets]

    def run(self, seconds: float, is_healthy: Callable[[], None]) -> None:
        """Change each group on its own random schedule for ``seconds``, calling ``is_healthy`` (which raises) before each change."""
        try:
            started = time.monotonic()
            deadline = started + seconds
            next_change_at = {service: started + self.random.uniform(*CHANGE_INTERVAL_SECONDS) for service in PROCESSORS}
            while True:
                service = min(next_change_at, key=next_change_at.__getitem__)
                change_at = next_change_at[service]
                if change_at >= deadline:
                    return
                # A fixed schedule of faults, not a wait for a condition.
                time.sleep(max(0.0, change_at - time.monotonic()))
                is_healthy()
                self.change(service)
                next_change_at[service] = change_at + self.random.uniform(*CHANGE_INTERVAL_SECONDS)
        finally:
            self.loop.run_until_complete(self.offsets_consumer.stop())
            self.loop.close()

    def change(self, service: str) -> None:
        """Add an instance to the group or remove one of its instances; the group keeps 1 to MAX_INSTANCES.

        An instance is removed only while another one has joined the group, so each removal hands
        partitions from a live member to another live member. On a loaded 2-core machine a worker
        took 10 to 15 s from its start to its first join. An instance removed before that dies of
        SIGTERM before faust installs its signal handlers, and the group does not rebalance. When
        the group is full and fewer than two of its instances have joined, the change is skipped.
        """
        group = self.groups[service]
        removable = [name for name in group.running if self.stack.joined_generations(name)]
        can_add = len(group.running) < MAX_INSTANCES
        can_remove = len(removable) >= 2
        if not (can_add or can_remove):
            group.changes.append("skipped")
            self.log_change(group, "-")
            return
        if can_add and (not can_remove or self.random.random() < 0.5):
            name = f"{service}-worker-{len(group.started) + 1}"
            self.stack.start_process(service, "worker", self.worker_env, name=name)
            group.running.append(name)
            group.started.append(name)
            group.changes.append("added")
            self.max_running[service] = max(self.max_running[service], len(group.running))
        else:
            name = removable[self.random.randrange(len(removable))]
            group.running.remove(name)
            signum = signal.SIGKILL if self.random.random() < SIGKILL_SHARE else signal.SIGTERM
            self.stack.retire(name, signum)
            group.changes.append(signum.name)
        group.last_change_at = time.monotonic()
        end_offsets = self.loop.run_until_complete(self.offsets_consumer.end_offsets(self.partitions))
        group.end_offsets_at_last_change = {(tp.topic, tp.partition): end for tp, end in end_offsets.items()}
        self.log_change(group, name)

    def log_change(self, group: GroupChurn, name: str) -> None:
        """Append the change to storm.log with the wall-clock time, to match it with the worker logs."""
        with open(self.stack.state_dir / "storm.log", "a") as log:
            log.write(f"{datetime.now().isoformat(sep=' ', timespec='milliseconds')} {group.service} "
                      f"{group.changes[-1]} {name} running={','.join(group.running)}\n")


class LagMonitor(threading.Thread):
    """A thread that samples every processor's applied positions and the topic ends once a second, and times each message's wait.

    A message counts as waiting from the first sample in which it was the newest message of its
    partition and not applied, until the first sample in which the processor had applied it. So
    each wait is measured to within about one sample interval.
    """

    def __init__(self, stack: Stack, interval: float = SAMPLE_INTERVAL_SECONDS) -> None:
        super().__init__(daemon=True, name="lag-monitor")
        self.stack = stack
        self.interval = interval
        self.stop_requested = threading.Event()
        self.error: BaseException | None = None
        self.samples = 0
        self.max_wait = {service: 0.0 for service in PROCESSORS}
        # Wall-clock time at which the message of max_wait was first seen unapplied, to find it in the logs.
        self.max_wait_from = {service: "-" for service in PROCESSORS}
        self.max_lag = {service: 0 for service in PROCESSORS}
        # (service, topic, partition) -> (first seen at, offset) of messages not yet applied, oldest first
        self.waiting: dict[tuple[str, str, int], deque[tuple[float, int]]] = {}

    def run(self) -> None:
        try:
            asyncio.run(self.sample_until_stopped())
        except BaseException as error:  # noqa: BLE001 - handed to the test thread by stop()
            self.error = error

    def stop(self) -> None:
        self.stop_requested.set()
        self.join(30)
        if self.error is not None:
            raise self.error

    async def sample_until_stopped(self) -> None:
        partitions = [TopicPartition(topic, partition) for topic, partition in self.stack.start_offsets]
        consumer = AIOKafkaConsumer(bootstrap_servers=self.stack.kafka_bootstrap)
        await consumer.start()
        try:
            async with httpx.AsyncClient(timeout=5) as client:
                while not self.stop_requested.is_set():
                    end_offsets = {(tp.topic, tp.partition): end for tp, end in (await consumer.end_offsets(partitions)).items()}
                    for service in PROCESSORS:
                        response = await client.get(f"{self.stack.url(service)}/internal/positions")
                        response.raise_for_status()
                        applied = {(row["topic"], row["partition"]): row["offset"] for row in response.json()["positions"]}
                        self.record(service, end_offsets, applied, time.monotonic())
                    self.samples += 1
                    await asyncio.sleep(self.interval)
        finally:
            await consumer.stop()

    def record(self, service: str, end_offsets: Offsets, applied: Offsets, now: float) -> None:
        lag = 0
        for (topic, partition), end in end_offsets.items():
            if topic not in PROCESSOR_TOPICS[service]:
                continue
            newest = end - 1
            applied_offset = applied.get((topic, partition), -1)
            lag += max(0, newest - applied_offset)
            waiting = self.waiting.setdefault((service, topic, partition), deque())
            if newest > applied_offset and (not waiting or waiting[-1][1] < newest):
                waiting.append((now, newest))
            while waiting and waiting[0][1] <= applied_offset:
                first_seen_at, _ = waiting.popleft()
                if now - first_seen_at > self.max_wait[service]:
                    self.max_wait[service] = now - first_seen_at
                    first_seen = datetime.now() - timedelta(seconds=now - first_seen_at)
                    self.max_wait_from[service] = first_seen.isoformat(sep=" ", timespec="seconds")
        self.max_lag[service] = max(self.max_lag[service], lag)

    def still_waiting(self, service: str) -> int:
        return sum(len(waiting) for (waiting_service, _, _), waiting in self.waiting.items() if waiting_service == service)


def rebalances(stack: Stack, group: GroupChurn) -> int:
    """Return how many generations of the group any of its instances joined after the first, from their logs."""
    generations = {
        generation
        for name in group.started
        for group_id, generation in stack.joined_generations(name)
        if group_id == stack.processor_id(group.service)
    }
    return len(generations - {min(generations, default=0)})


# The suite's 600 s test timeout would cut a long storm short: allow the storm plus 15 minutes.
@pytest.mark.timeout(storm_seconds() + 900)
def test_rebalance_storm(stack_factory, storm_database_urls: dict[str, str], tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Instances of every consumer group come and go for SPM_STORM_SECONDS under load, and nothing is lost or doubled."""
    seconds = storm_seconds()
    seed = storm_seed()
    database = "PostgreSQL" if storm_database_urls else "SQLite"
    print(f"rebalance storm: seed {seed} (SPM_STORM_SEED), {seconds:.0f}s, read models on {database}")
    worker_env = {"SPM_CONSUMER_SESSION_TIMEOUT_SECONDS": SESSION_TIMEOUT_SECONDS}
    stack = stack_factory(
        database_urls=storm_database_urls,
        extra_env={f"{service}-worker": worker_env for service in PROCESSORS},
    )
    workload = start_workload(stack)
    poll(lambda: len(workload.accepted("comment")) >= 2, 120, "the workload's first rounds were accepted")
    monitor = LagMonitor(stack)
    monitor.start()
    storm = Storm(stack, seed, worker_env)

    def is_healthy() -> None:
        stack.check_running()
        assert workload.is_alive(), f"the workload stopped: {workload.error!r}"
        assert monitor.is_alive(), f"the lag monitor stopped: {monitor.error!r}"

    storm.run(seconds, is_healthy)

    caught_up_after: dict[str, float] = {}

    def every_group_caught_up() -> bool:
        stack.check_running()
        for service, group in storm.groups.items():
            if service not in caught_up_after and stack.processor_caught_up(service, group.end_offsets_at_last_change):
                caught_up_after[service] = time.monotonic() - group.last_change_at
        return len(caught_up_after) == len(storm.groups)

    poll(every_group_caught_up, 240, "every group applied every message published before its last change")
    exit_statuses = stack.wait_until_retired_exited()
    finish_and_check(stack, workload)
    poll(lambda: all(monitor.still_waiting(service) == 0 for service in PROCESSORS), 30,
         "the lag monitor saw every message applied")
    monitor.stop()

    for service, group in storm.groups.items():
        assert group.running, f"the {service} group has no instance left"
        print(
            f"{service} group: {group.made} changes ({group.count('added')} added, {group.count('SIGTERM')} SIGTERM, "
            f"{group.count('SIGKILL')} SIGKILL, {group.count('skipped')} skipped), up to {storm.max_running[service]} instances, "
            f"{rebalances(stack, group)} rebalances; max message wait {monitor.max_wait[service]:.1f}s "
            f"(from {monitor.max_wait_from[service]}), "
            f"max lag {monitor.max_lag[service]} messages; last change -> caught up in {caught_up_after[service]:.1f}s"
        )
    print(f"lag monitor: {monitor.samples} samples; workload: {workload.rounds} rounds")

    terminated = {name: status for name, status in exit_statuses.items() if status != -signal.SIGKILL}
    assert all(status == 0 for status in terminated.values()), f"instances stopped with SIGTERM exited with {terminated}"
    for service, group in storm.groups.items():
        # Changes that fall into one rebalance are merged into it, so fewer rebalances than changes is normal.
        minimum = max(3, group.made // 4)
        assert rebalances(stack, group) >= minimum, (
            f"the {service} group rebalanced {rebalances(stack, group)} times for {group.made} changes; "
            f"expected at least {minimum}"
        )

    assert_replay_equals_live(stack, workload.org_id, tmp_path / "replay")
