"""Once across a crash: the worker is killed with SIGKILL while events are still being published, then restarted.

The restarted worker resumes from the positions recorded with its read model, so the inbox ends
up exactly the expected set: nothing lost, nothing doubled, and the nudge due during the run
fired once.
"""

from __future__ import annotations

import asyncio
import threading
import uuid

import pytest
from activity_events import DAY, ActivityEvents
from aiokafka import AIOKafkaProducer
from test_inbox_visibility import start_at_topic_end
from test_inbox_worker import WorkerReadModel, merge

from spm_events.envelope import Envelope, encode_envelope
from spm_events.registry import event_type_for
from spm_notifications.rules import (
    FOLLOWED_GOAL_CHECK_IN,
    GOAL_COMMENTED,
    GOAL_FOLLOWED,
    MENTIONED,
    NUDGE_TAG_PENDING,
    OWNED_GOAL_CHECK_IN,
    TAGGED,
    nudge_cause_id,
)

pytestmark = pytest.mark.kafka

OLGA, CORA, ALEX, FAY, FINN, TINA, OTTO = "olga", "cora", "alex", "fay", "finn", "tina", "otto"
Offsets = dict[tuple[str, int], int]


class Publisher(threading.Thread):
    """Publishes envelopes in small chunks with a pause between them, the way live traffic trickles in."""

    def __init__(self, bootstrap: str, envelopes: list[Envelope], chunk: int = 10, pause: float = 0.3) -> None:
        super().__init__(daemon=True)
        self.bootstrap, self.envelopes, self.chunk, self.pause = bootstrap, envelopes, chunk, pause
        self.sent: Offsets = {}
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._publish())
        except BaseException as error:  # noqa: BLE001 - handed to the test thread
            self.error = error

    async def _publish(self) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", enable_idempotence=True)
        await producer.start()
        try:
            for start in range(0, len(self.envelopes), self.chunk):
                for envelope in self.envelopes[start:start + self.chunk]:
                    topic = event_type_for(envelope.type).topic.name
                    metadata = await producer.send_and_wait(
                        topic, key=envelope.subject.encode(), value=encode_envelope(envelope)
                    )
                    self.sent[(metadata.topic, metadata.partition)] = metadata.offset
                await asyncio.sleep(self.pause)
        finally:
            await producer.stop()


def test_worker_killed_while_events_flow_notifies_exactly_once(  # type: ignore[no-untyped-def]
    kafka_bootstrap, worker_factory, events, poll
) -> None:
    more = ActivityEvents(events)
    goal, followed_goal = f"goal-{uuid.uuid4()}", f"goal-{uuid.uuid4()}"
    tag = events.tagged(goal, TINA, OLGA, 3)
    setup = [
        events.goal_created(goal, OLGA),
        events.goal_created(followed_goal, CORA),
        more.key_result_added(goal, "kr-1", OLGA, 1),
        events.followed(goal, FAY, 1),
        events.followed(goal, FINN, 2),
        tag,
    ]
    check_ins = [more.check_in(goal, "kr-1", ALEX, 10 + index) for index in range(150)]
    follows = [events.followed(followed_goal, f"person-{index}", 10 + index) for index in range(150)]
    comments = [more.comment(goal, f"comment-{index}", ALEX, 10 + index, mentioned=(FAY,)) for index in range(0, 150, 10)]
    flowing: list[Envelope] = []
    for index in range(150):
        flowing += [check_ins[index], follows[index]]
        if index % 10 == 0:
            flowing.append(comments[index // 10])
    # Four days after the tag: its nudge falls due while the worker is catching up.
    flowing.append(events.followed(f"goal-{uuid.uuid4()}", OTTO, 4 * DAY))

    expected = {(OLGA, OWNED_GOAL_CHECK_IN, c.id) for c in check_ins}
    expected |= {(person, FOLLOWED_GOAL_CHECK_IN, c.id) for c in check_ins for person in (FAY, FINN)}
    expected |= {(CORA, GOAL_FOLLOWED, f.id) for f in follows}
    expected |= {(OLGA, GOAL_COMMENTED, c.id) for c in comments} | {(FAY, MENTIONED, c.id) for c in comments}
    expected |= {(OLGA, GOAL_FOLLOWED, setup[3].id), (OLGA, GOAL_FOLLOWED, setup[4].id), (TINA, TAGGED, tag.id)}
    expected |= {(TINA, NUDGE_TAG_PENDING, nudge_cause_id(NUDGE_TAG_PENDING, tag.id))}

    worker = worker_factory("restart")
    read_model = WorkerReadModel(worker)
    start_at_topic_end(read_model.read_model, kafka_bootstrap)
    first = Publisher(kafka_bootstrap, setup, chunk=len(setup), pause=0)
    first.start()
    first.join()
    assert first.error is None, first.error
    worker.start()
    poll(lambda: read_model.caught_up_with(first.sent), 120.0, "the worker applied the setup")

    publisher = Publisher(kafka_bootstrap, flowing)
    publisher.start()
    poll(lambda: len(read_model.inbox_rows(events.org_id)) >= 60, 120.0, "notifications of the flowing events appear")
    assert publisher.is_alive(), "the publisher finished before the kill, so the kill proved nothing"
    worker.kill()
    applied_before_kill = len(read_model.inbox_rows(events.org_id))
    worker.start()
    publisher.join(timeout=300)
    assert publisher.error is None, publisher.error
    assert applied_before_kill < len(expected)
    everything_sent = merge(first.sent, publisher.sent)
    poll(lambda: read_model.caught_up_with(everything_sent), 180.0, "the restarted worker caught up")

    rows = read_model.inbox_rows(events.org_id)
    assert len(rows) == len(expected)
    assert read_model.notification_facts(events.org_id) == expected
    assert worker.stop() == 0
