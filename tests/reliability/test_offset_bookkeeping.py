"""Processors lose nothing when the consumer group's committed offsets are wrong.

Two faust-streaming bugs can leave a group's committed offset past messages that were never
applied:

- faust-streaming/faust issue #606, "Wrong offset commit in case of gaps" (fix proposed in pull
  request #707, "never commit past an in-flight (unacked) message"): with agent concurrency above
  1, a slow message at the head of the acked run is committed over, and a restart skips it;
- faust-streaming/faust pull request #692, "Fix committed-offset bookkeeping advancing when commit
  fails" (for issue #316): a failed commit still advanced the consumer's record of committed
  offsets, so the retry was skipped.

The processors never resume from the group's committed offsets: on every assignment, and again
right after faust's recovery has sought to the committed offsets, they seek to the position recorded
in the same transaction as their read model, and their one agent runs with concurrency 1. The first test simulates the bugs' outcome by committing the group's
offsets past unapplied messages with a plain Kafka consumer; the second checks the concurrency.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import faust
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import OffsetAndMetadata
from stack import Offsets, Stack, check_stack, poll
from workload import Workload

from checker import CHECKED_TOPICS, PROCESSOR_TOPICS
from spm_goals.settings import GoalsSettings
from spm_goals.worker import create_collaborator_worker
from spm_local.suite import topic_end_offsets
from spm_notifications.settings import NotificationsSettings
from spm_notifications.worker import create_worker_app as create_notifications_worker
from spm_scoring.settings import ScoringSettings
from spm_scoring.worker import create_worker_app as create_scoring_worker
from spm_social.settings import SocialSettings
from spm_social.worker import create_feed_worker

pytestmark = pytest.mark.reliability

PROCESSORS = tuple(PROCESSOR_TOPICS)


async def commit_group_offsets(bootstrap: str, group_id: str, offsets: Offsets) -> Offsets:
    """Commit ``offsets`` for an empty consumer group, then read back and return what the group holds."""
    partitions = {TopicPartition(topic, partition): offset for (topic, partition), offset in offsets.items()}
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(list(partitions))
        await consumer.commit({partition: OffsetAndMetadata(offset, "") for partition, offset in partitions.items()})
        return {(partition.topic, partition.partition): await consumer.committed(partition) for partition in partitions}
    finally:
        await consumer.stop()


@pytest.mark.kafka
def test_group_offsets_committed_past_unapplied_messages(stack_factory) -> None:  # type: ignore[no-untyped-def]
    """Every processor applies messages that its consumer group already marked as committed."""
    stack: Stack = stack_factory()
    workload = Workload(
        urls={service: stack.url(service) for service in ("goals", "social")},
        org_id=f"reliability-offsets-{stack.run_id}",
        jwt_secret=stack.jwt_secret,
    )
    workload.register_people()
    for number in range(2):
        workload.run_round(number)
    stack.wait_until_caught_up()

    # SIGTERM, not SIGKILL: a worker that stops cleanly leaves its group, and only an empty group
    # accepts a commit from outside.
    for service in PROCESSORS:
        stack.terminate(f"{service}-worker")
    goals = [command.response for command in workload.accepted("create_goal")]
    key_results = [command.response for command in workload.accepted("add_key_result")]
    # The social read model already has these goals, so comments need no running social worker.
    for goal, key_result in zip(goals, key_results):
        owner = goal["owner_id"]
        path = f"/goals/{goal['goal_id']}/key-results/{key_result['key_result_id']}/check-ins"
        workload.send("check_in", "goals", path, owner, {"value": 90, "comment": "while the workers were down"})
        workload.send("comment", "social", f"/goals/{goal['goal_id']}/comments", owner, {"body": "still here"})
    assert workload.failed() == []
    poll(stack.relays_caught_up, 60, "the relays published the events sent while the workers were down")

    end_offsets = asyncio.run(topic_end_offsets(stack.kafka_bootstrap, CHECKED_TOPICS))
    for service in PROCESSORS:
        applied = stack.recorded_positions(service)
        ahead = {partition: end for partition, end in end_offsets.items() if partition[0] in PROCESSOR_TOPICS[service]}
        unapplied = sum(end - 1 - applied.get(partition, -1) for partition, end in ahead.items())
        assert unapplied > 0, f"the {service} worker has no unapplied message, so the test would prove nothing"
        committed = asyncio.run(commit_group_offsets(stack.kafka_bootstrap, stack.processor_id(service), ahead))
        assert committed == ahead, f"the {service} group did not keep the offsets committed past its unapplied messages"

    for service in PROCESSORS:
        stack.start_process(service, "worker")
    try:
        stack.wait_until_caught_up(timeout=90)
    except TimeoutError as error:
        # The checker below lists each event that was not applied, which is more specific than the timeout.
        print(f"not caught up: {error}")
    report = check_stack(stack, workload.org_id)
    print(report.summary())
    report.assert_clean()


@pytest.mark.parametrize("service", PROCESSORS)
def test_processor_agent_concurrency_is_one(tmp_path: Path, service: str) -> None:
    """Each worker's faust app has exactly one agent, and it runs one actor, never more."""
    data_dir = tmp_path / service
    bootstrap = "127.0.0.1:9"  # never contacted: the app is built, not started
    builders = {
        "goals": lambda: create_collaborator_worker(GoalsSettings(data_dir=data_dir, kafka_bootstrap=bootstrap)),
        "social": lambda: create_feed_worker(SocialSettings(data_dir=data_dir, kafka_bootstrap=bootstrap)),
        "scoring": lambda: create_scoring_worker(ScoringSettings(data_dir=data_dir, kafka_bootstrap=bootstrap)),
        "notifications": lambda: create_notifications_worker(
            NotificationsSettings(data_dir=data_dir, kafka_bootstrap=bootstrap)
        ),
    }
    app: faust.App = builders[service]()
    agents = list(app.agents.values())
    assert len(agents) == 1, f"the {service} worker has agents {list(app.agents)}"
    assert agents[0].concurrency == 1
