"""kill -9 of relays, processors and APIs under a running workload, each followed by the checker.

After every kill the killed process is restarted the way a supervisor would restart it, the
workload stops, the stack catches up, and the checker must find zero lost events, zero duplicated
effects and no out-of-order versions.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from pathlib import Path

import httpx
import pytest
from checker import CHECKED_TOPICS, PROCESSOR_TOPICS, CheckReport, StoredEvent, collect_truth, replay_differences
from stack import Offsets, Stack, check_stack, poll, start_workload
from workload import Command, Workload

from spm_events.relay import PAUSE_AFTER_PUBLISH_VARIABLE
from spm_local.suite import topic_end_offsets

pytestmark = [pytest.mark.reliability, pytest.mark.kafka]

# The goals read database is mostly the API's (goal index, Idempotency-Key records); its worker writes only this.
WORKER_ONLY_TABLES = {"goals": ("goal_collaborators",)}
# Tables an API writes, never rebuilt from events, so a replay leaves them empty.
API_WRITTEN_TABLES: dict[str, tuple[str, ...]] = {
    "social": ("people", "rate_limit_windows"),
    "notifications": (
        "person_preferences", "channel_preferences", "mutes", "webhooks", "deliveries", "delivery_attempts",
        "dispatcher_cursors",
    ),
    # The publisher's record of what it sent on spm.scores.v1: the rebuild runs with publishing off.
    "scoring": ("published_scores", "publisher_marks", "scoring_models", "active_models", "score_replays", "replay_results"),
}


def relay_status(stack: Stack, service: str) -> dict[str, int]:
    return httpx.get(f"{stack.url(service)}/internal/relay", timeout=5).json()


def finish_and_check(stack: Stack, workload: Workload) -> CheckReport:
    """Stop the workload, wait until the stack caught up, and run the checker over the workload's org."""
    workload.stop()
    assert workload.failed() == [], [vars(command) for command in workload.failed()[:3]]
    assert len(workload.accepted("check_in")) >= 3, "too few commands were accepted for the check to mean anything"
    stack.wait_until_caught_up()
    report = check_stack(stack, workload.org_id)
    print(report.summary())
    report.assert_clean()
    # Each command answered 201 stored exactly one published event; a 200 repeated an earlier one.
    assert report.stored == len([command for command in workload.accepted() if command.status == 201])
    return report


COMMAND_SERVICES = ("goals", "social")
# Social goes last: while it is down, follows wait for their goal and the workload stalls.
PROCESSORS = ("scoring", "notifications", "goals", "social")


def test_relays_killed_between_publish_and_record(stack_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Each relay publishes a batch, the broker acknowledges it, and the relay dies before recording its position."""
    markers = {service: tmp_path / f"{service}-relay-published" for service in COMMAND_SERVICES}
    stack = stack_factory(extra_env={
        f"{service}-relay": {PAUSE_AFTER_PUBLISH_VARIABLE: str(marker)} for service, marker in markers.items()
    })
    workload = start_workload(stack)

    # Social events follow goals events (a follow waits until the social read model has the goal), so goals pauses first.
    for service in COMMAND_SERVICES:
        relay = f"{service}-relay"
        poll(markers[service].exists, 120, f"the {relay} published a batch and paused")
        published_to = int(markers[service].read_text().split()[1])
        recorded = relay_status(stack, service)["published_position"]
        assert recorded < published_to, f"the {relay} recorded position {recorded} before the kill"
        stack.kill(relay)
        stack.start_process(service, "relay")
        poll(lambda: relay_status(stack, service)["published_position"] >= published_to, 60,
             f"the restarted {relay} published past position {published_to}")
    rounds_after_restart = workload.rounds + 2
    poll(lambda: workload.rounds >= rounds_after_restart, 120, "the workload ran two more rounds")

    report = finish_and_check(stack, workload)
    assert report.republished >= 2, "the batches published before the kills were not published again"


def test_processors_killed_mid_batch(stack_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Every faust worker dies with messages fetched but not applied, and restarts with the same SPM_PROCESSOR_ID.

    Each worker in turn is frozen (SIGSTOP) while the workload builds a backlog of messages, thawed, and killed (SIGKILL) as soon as it applied one more message, so it dies in the middle
    of its backlog. Afterwards a rebuild of every read model from the topics equals the live one.
    """
    stack = stack_factory()
    workload = start_workload(stack, rounds_per_second=4.0, check_ins_per_round=5)
    poll(lambda: len(workload.accepted("comment")) >= 3, 120, "the workload's first rounds were accepted")

    restarted_at: dict[str, float] = {}
    end_offsets_at_restart: dict[str, Offsets] = {}
    behind_at_kill: dict[str, int] = {}
    for service in PROCESSORS:
        for _attempt in range(3):
            behind_at_kill[service] = kill_mid_backlog(stack, service, workload)
            stack.start_process(service, "worker")
            restarted_at[service] = time.monotonic()
            end_offsets_at_restart[service] = asyncio.run(topic_end_offsets(stack.kafka_bootstrap, CHECKED_TOPICS))
            if behind_at_kill[service] > 0:
                break
        assert behind_at_kill[service] > 0, f"the {service} worker applied its whole backlog before each of three kills"
    workload.stop()

    caught_up_after: dict[str, float] = {}

    def every_worker_caught_up() -> bool:
        stack.check_running()
        for service in PROCESSORS:
            if service not in caught_up_after and stack.processor_caught_up(service, end_offsets_at_restart[service]):
                caught_up_after[service] = time.monotonic() - restarted_at[service]
        return len(caught_up_after) == len(PROCESSORS)

    poll(every_worker_caught_up, 240, "every restarted worker applied every message published before its restart")
    for service in PROCESSORS:
        print(f"{service} worker: processor restart -> caught up in {caught_up_after[service]:.1f}s "
              f"({behind_at_kill[service]} messages behind at the kill)")

    finish_and_check(stack, workload)
    assert_replay_equals_live(stack, workload.org_id, tmp_path / "replay")


def test_apis_killed_mid_request(stack_factory) -> None:  # type: ignore[no-untyped-def]
    """Each API dies while a request is in flight; the client retries against the restarted API.

    Goals commands are retried with the same Idempotency-Key, follows and tags because a repeat
    writes nothing. Every command answered 201 must be stored exactly once.
    """
    stack = stack_factory()
    workload = start_workload(stack, rounds_per_second=4.0)
    poll(lambda: len(workload.accepted("comment")) >= 2, 120, "the workload's first rounds were accepted")

    def interrupted(service: str) -> list[Command]:
        return [command for command in list(workload.commands) if command.interrupted and command.service == service]

    for service in COMMAND_SERVICES:
        api = f"{service}-api"
        for _ in range(5):
            poll(lambda: workload.in_flight == service, 30, f"a request to the {api} is in flight", interval=0.001)
            stack.kill(api)
            stack.start_process(service, "api")
            stack.wait_until_healthy()
            if interrupted(service):
                break
        assert interrupted(service), f"no request to the {api} was cut off by five kills"

    report = finish_and_check(stack, workload)
    truth = collect_truth(stack.event_store("goals"), stack.event_store("social"), workload.org_id)
    for command in workload.accepted():
        if command.status != 201:
            continue
        matching = [event for event in truth if stored_by(event, command)]
        assert len(matching) == 1, f"{command.kind} {command.response} is stored {len(matching)} times"
    for service in COMMAND_SERVICES:
        cut_off = ", ".join(f"{command.kind} (attempts {command.attempts}, status {command.status})" for command in interrupted(service))
        print(f"{service} API: requests cut off by the kill: {cut_off}; {report.stored} events stored")


# Backlog to build before a kill. While the social worker is frozen, follows wait for their goal, so
# the workload adds only the seven goals events of one round.
BACKLOG = {"social": 5, "scoring": 40, "notifications": 40, "goals": 40}


def kill_mid_backlog(stack: Stack, service: str, workload: Workload) -> int:
    """Freeze the worker until a backlog builds, thaw it, and kill it once it applied a message of it.

    Return how many messages of the backlog were still unapplied at the kill.
    """
    worker = f"{service}-worker"

    def backlog_built() -> bool:
        if lag(stack, service) >= BACKLOG[service]:
            return True
        if service == "social":
            # The workload stalls at its first social command of a round, which waits for the frozen
            # worker to learn the round's goal, so the test adds goals events itself.
            check_in_on_latest_key_result(workload)
        return False

    stack.pause(worker)
    try:
        poll(backlog_built, 60, f"{BACKLOG[service]} messages wait for the frozen {worker}")
        frozen_at = stack.recorded_positions(service)
        backlog_end = asyncio.run(topic_end_offsets(stack.kafka_bootstrap, PROCESSOR_TOPICS[service]))
    finally:
        stack.resume(worker)
    # 90 s: a worker restarted by an earlier attempt gets its partitions only once the killed
    # member's session timed out (SPM_CONSUMER_SESSION_TIMEOUT_SECONDS, 20 s by default).
    poll(lambda: stack.recorded_positions(service) != frozen_at, 90, f"the thawed {worker} applied a message",
         interval=0.001)
    stack.kill(worker)
    applied = stack.recorded_positions(service)
    return sum(max(0, end - 1 - applied.get(partition, -1)) for partition, end in backlog_end.items())


def check_in_on_latest_key_result(workload: Workload) -> None:
    """Record a check-in, as the workload's owner would, on the key result the workload added last."""
    latest = workload.accepted("add_key_result")[-1]
    path = f"{latest.path}/{latest.response['key_result_id']}/check-ins"
    workload.send("check_in", "goals", path, latest.actor, {"value": 50, "comment": "while social is frozen", "confidence": 0.8})


def lag(stack: Stack, service: str) -> int:
    """Return how many messages of the processor's topics it has not applied yet."""
    end_offsets = asyncio.run(topic_end_offsets(stack.kafka_bootstrap, PROCESSOR_TOPICS[service]))
    applied = stack.applied_positions(service)
    return sum(max(0, end - 1 - applied.get(partition, -1)) for partition, end in end_offsets.items() if end > 0)


def assert_replay_equals_live(stack: Stack, org_id: str, replay_dir: Path) -> None:
    """Rebuild every read model from the topics into empty databases and compare it with the live one."""
    replay = Stack(replay_dir, stack.kafka_bootstrap, stack.jwt_secret, run_id=f"replay-{uuid.uuid4().hex[:8]}")
    # The rebuilt scoring model must not publish its scores a second time.
    replay.start_workers(stack.start_offsets, extra_env={"SPM_PUBLISH_SCORES": "false"})
    try:
        started = time.monotonic()
        end_offsets = asyncio.run(topic_end_offsets(stack.kafka_bootstrap, CHECKED_TOPICS))
        for service in PROCESSORS:
            poll(lambda: replay.check_running() or replay.processor_caught_up(service, end_offsets, from_database=True),
                 240, f"the replayed {service} read model applied every message")
        print(f"replay of every read model from the topics: {time.monotonic() - started:.1f}s")
        for service in PROCESSORS:
            differences = replay_differences(stack.database(service), replay.database(service), org_id,
                                             ignore_tables=API_WRITTEN_TABLES.get(service, ()),
                                             only_tables=WORKER_ONLY_TABLES.get(service))
            assert differences == [], f"the replayed {service} read model differs from the live one: {differences}"
    finally:
        replay.stop()


def stored_by(event: StoredEvent, command: Command) -> bool:
    """Return whether ``event`` is the one ``command`` (answered 201) stored."""
    data, response = event.data, command.response
    match command.kind:
        case "create_goal":
            return event.event_type == "spm.goals.GoalCreated.v1" and data["goal_id"] == response["goal_id"]
        case "add_key_result":
            return event.event_type == "spm.goals.KeyResultAdded.v1" and data["key_result_id"] == response["key_result_id"]
        case "check_in":
            return event.event_type == "spm.goals.CheckInRecorded.v1" and data["check_in_id"] == response["check_in_id"]
        case "follow":
            return event.event_type == "spm.social.GoalFollowed.v1" and (data["goal_id"], data["follower_id"]) == (
                response["goal_id"], response["follower_id"])
        case "tag":
            return event.event_type == "spm.social.CollaboratorTagged.v1" and (data["goal_id"], data["collaborator_id"]) == (
                response["goal_id"], response["collaborator_id"])
        case "comment":
            return event.event_type == "spm.social.CommentPosted.v1" and data["comment_id"] == response["comment_id"]
    raise AssertionError(f"unknown command kind {command.kind}")


SOAK_VICTIMS = (
    "goals-relay", "scoring-worker", "goals-api", "social-relay", "notifications-worker", "social-api",
    "goals-worker", "social-worker",
)


# The suite's 600 s test timeout would cut a long soak short: allow the soak plus 15 minutes.
@pytest.mark.timeout(float(os.environ.get("SPM_SOAK_SECONDS") or 30) + 900)
def test_soak_with_rolling_kills(stack_factory, soak_seconds: float, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """For SPM_SOAK_SECONDS, kill -9 one process after another under the workload; then check and replay."""
    stack = stack_factory()
    workload = start_workload(stack)
    deadline = time.monotonic() + soak_seconds
    kills = 0
    while time.monotonic() < deadline:
        victim = SOAK_VICTIMS[kills % len(SOAK_VICTIMS)]
        next_round = workload.rounds + 5
        poll(lambda: workload.rounds >= next_round or not workload.is_alive(), 300, "the workload ran five more rounds")
        assert workload.is_alive(), f"the workload stopped: {workload.error!r}"
        service, kind = victim.split("-")
        stack.kill(victim)
        stack.start_process(service, kind)
        kills += 1
    print(f"soak: {kills} kills in {soak_seconds:.0f}s, {workload.rounds} workload rounds")
    finish_and_check(stack, workload)
    assert_replay_equals_live(stack, workload.org_id, tmp_path / "replay")
