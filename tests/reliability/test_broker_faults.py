"""Broker faults under load: the only broker killed for 30 s, and one broker of three killed.

Each test runs the service processes against a broker or cluster of its own, because it kills
brokers that other tests would share. While a broker is down the test keeps sending goals commands
and requires every one to be accepted: the APIs only append to their event stores, and the relays
publish once the broker is back. Each test ends with the checker over the stores, the topics and
the read models, and prints the recovery times it measured.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Iterator

import pytest

from checker import CHECKED_TOPICS, check, collect_read_models, collect_truth, consume_topics
from cluster import MIN_INSYNC_REPLICAS, REPLICATION_FACTOR, LocalCluster
from stack import Stack, poll
from workload import Command, Workload

from spm_events.registry import TOPICS
from spm_events.settings import DEVELOPMENT_JWT_SECRET
from spm_events.topics import ensure_topics
from spm_local.kafka import LocalBroker

pytestmark = [pytest.mark.reliability, pytest.mark.kafka]

# The broker outage the guarantees are stated for; SPM_RELIABILITY_OUTAGE_SECONDS shortens or lengthens it.
OUTAGE_SECONDS = float(os.environ.get("SPM_RELIABILITY_OUTAGE_SECONDS", "30"))
# How long one broker of the cluster stays down while commands keep arriving.
CLUSTER_NODE_DOWN_SECONDS = 20.0


def start_stack(state_dir: Path, bootstrap: str) -> Stack:
    stack = Stack(state_dir=state_dir, kafka_bootstrap=bootstrap, jwt_secret=DEVELOPMENT_JWT_SECRET, run_id=uuid.uuid4().hex[:8])
    stack.start()
    stack.wait_until_healthy()
    return stack


def send_goal_commands(prober: Workload, number: int) -> list[Command]:
    """Create a goal, add a key result and record a check-in: the commands an outage must not stop."""
    owner = prober.people[number % len(prober.people)]
    today = date.today()
    goal = prober.send("create_goal", "goals", "/goals", owner, {
        "title": f"Outage goal {number}",
        "team": "Reliability",
        "period": {"name": "run", "start": str(today - timedelta(days=30)), "end": str(today + timedelta(days=60))},
    })
    if not goal.accepted:
        return [goal]
    goal_id = goal.response["goal_id"]
    key_result = prober.send("add_key_result", "goals", f"/goals/{goal_id}/key-results", owner, {
        "title": "Keep writing", "metric": "number", "start_value": 0, "target_value": 10,
    })
    if not key_result.accepted:
        return [goal, key_result]
    check_in = prober.send(
        "check_in", "goals", f"/goals/{goal_id}/key-results/{key_result.response['key_result_id']}/check-ins", owner,
        {"value": 5, "comment": "during the fault", "confidence": 0.7},
    )
    return [goal, key_result, check_in]


def send_during(prober: Workload, seconds: float, first_number: int) -> list[Command]:
    """Send rounds of goals commands for ``seconds``, about one round a second, and return every command."""
    commands: list[Command] = []
    number = first_number
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        round_started = time.monotonic()
        commands += send_goal_commands(prober, number)
        number += 1
        time.sleep(max(0.0, 1.0 - (time.monotonic() - round_started)))
    return commands


def new_prober(stack: Stack, org_id: str) -> Workload:
    """A workload that is never started: its ``send`` is used from the test thread, and never retries for long."""
    urls = {service: stack.url(service) for service in ("goals", "social")}
    return Workload(urls=urls, org_id=org_id, jwt_secret=DEVELOPMENT_JWT_SECRET, retry_for_seconds=5.0)


def assert_checker_clean(stack: Stack, org_id: str, accepted_goal_ids: set[str]) -> None:
    truth = collect_truth(stack.event_store("goals"), stack.event_store("social"), org_id)
    stored_goal_ids = {event.aggregate_id for event in truth if event.store == "goals"}
    assert accepted_goal_ids - stored_goal_ids == set(), "accepted goals missing from the goals event store"
    records = consume_topics(stack.kafka_bootstrap, CHECKED_TOPICS, org_id, stack.start_offsets)
    read_models = collect_read_models(stack.read_model_locations(), org_id)
    report = check(truth, records, read_models)
    print(f"checker: {report.stored} stored events, {report.on_topic} topic messages, {report.republished} republished")
    report.assert_clean()


def goal_ids(commands: list[Command]) -> set[str]:
    return {command.response["goal_id"] for command in commands if command.kind == "create_goal" and command.accepted}


def describe_failures(commands: list[Command]) -> str:
    return "; ".join(f"{command.kind} {command.path}: {command.status} {command.response}" for command in commands[:5])


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[LocalBroker]:
    broker = LocalBroker(tmp_path / "kafka").start()
    try:
        asyncio.run(ensure_topics(broker.bootstrap))
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    local_cluster = LocalCluster(tmp_path / "cluster").start()
    try:
        local_cluster.create_topics()
        yield local_cluster
    finally:
        local_cluster.stop()


def test_broker_outage_under_load(own_broker: LocalBroker, tmp_path: Path) -> None:
    org_id = f"org-outage-{uuid.uuid4().hex[:8]}"
    stack = start_stack(tmp_path / "stack", own_broker.bootstrap)
    try:
        workload = Workload(urls={s: stack.url(s) for s in ("goals", "social")}, org_id=org_id, jwt_secret=DEVELOPMENT_JWT_SECRET)
        workload.register_people()
        workload.start()
        poll(lambda: workload.rounds >= 2 or workload.error is not None, 120, "the workload finished two rounds")
        prober = new_prober(stack, org_id)

        assert own_broker.process is not None
        os.killpg(own_broker.process.pid, signal.SIGKILL)
        own_broker.process.wait()
        during_outage = send_during(prober, OUTAGE_SECONDS, first_number=0)
        rejected = [command for command in during_outage if not command.accepted]
        assert during_outage, "no command was sent during the outage"
        assert rejected == [], f"goals commands rejected while the broker was down: {describe_failures(rejected)}"
        caught_up_during_outage = stack.relays_caught_up()

        restart_began = time.monotonic()
        own_broker.start()
        broker_back = time.monotonic()
        stack.wait_until_caught_up()
        lag_zero_seconds = time.monotonic() - broker_back
        workload.stop()
        stack.wait_until_caught_up()
        stack.check_running()

        print(
            f"broker outage {OUTAGE_SECONDS:.0f}s: {len(during_outage)} goals commands accepted during it; "
            f"broker restart took {broker_back - restart_began:.1f}s; broker back -> lag zero in {lag_zero_seconds:.1f}s"
        )
        assert not caught_up_during_outage, "the relays reported every event published while the broker was down"
        assert workload.failed() == [], f"workload commands failed: {describe_failures(workload.failed())}"
        assert_checker_clean(stack, org_id, goal_ids(workload.commands) | goal_ids(during_outage))
    finally:
        stack.stop()


def test_cluster_broker_killed_under_load(cluster: LocalCluster, tmp_path: Path) -> None:
    settings = cluster.topic_settings()
    assert set(settings) == {topic.name for topic in TOPICS.values()}
    for topic, described in settings.items():
        assert described == (REPLICATION_FACTOR, str(MIN_INSYNC_REPLICAS)), f"{topic}: (replication factor, min.insync.replicas)"

    org_id = f"org-cluster-{uuid.uuid4().hex[:8]}"
    stack = start_stack(tmp_path / "stack", cluster.bootstrap)
    try:
        workload = Workload(urls={s: stack.url(s) for s in ("goals", "social")}, org_id=org_id, jwt_secret=DEVELOPMENT_JWT_SECRET)
        workload.register_people()
        workload.start()
        poll(lambda: workload.rounds >= 2 or workload.error is not None, 120, "the workload finished two rounds")
        prober = new_prober(stack, org_id)

        cluster.kill(1)
        killed = time.monotonic()
        while_down = send_during(prober, CLUSTER_NODE_DOWN_SECONDS, first_number=0)
        rejected = [command for command in while_down if not command.accepted]
        assert while_down, "no command was sent while the broker was down"
        assert rejected == [], f"goals commands rejected with one broker down: {describe_failures(rejected)}"
        # Two in-sync replicas remain, so acks=all writes succeed and the relays publish without the dead broker.
        published_seconds = poll(stack.relays_caught_up, 120, "the relays published every event with one broker down")
        published_while_down = time.monotonic() - killed

        cluster.restart(1)
        restarted = time.monotonic()
        replicated_seconds = cluster.wait_until_fully_replicated(CHECKED_TOPICS)
        workload.stop()
        stack.wait_until_caught_up()
        caught_up_seconds = time.monotonic() - restarted
        stack.check_running()

        print(
            f"one of three brokers down {CLUSTER_NODE_DOWN_SECONDS:.0f}s: {len(while_down)} goals commands accepted; "
            f"relays published them {published_while_down:.1f}s after the kill (waited {published_seconds:.1f}s after the "
            f"sends); broker back -> in sync {replicated_seconds:.1f}s, every processor caught up {caught_up_seconds:.1f}s"
        )
        assert workload.failed() == [], f"workload commands failed: {describe_failures(workload.failed())}"
        assert_checker_clean(stack, org_id, goal_ids(workload.commands) | goal_ids(while_down))
    finally:
        stack.stop()
