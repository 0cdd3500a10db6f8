"""Goal visibility end to end: events published to the real broker, the worker process, and the inbox API.

One worker per database (SQLite, PostgreSQL) serves the whole module. It starts at the current
end of the shared topics, recorded as its read model's positions before it starts, so it applies
only what these tests publish. Each test uses its own organisation.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert, select

from spm_events.auth import issue_token
from spm_events.database import create_database_engine
from spm_events.envelope import Envelope, encode_envelope
from spm_events.readmodel import PositionedReadModel
from spm_events.registry import GOALS_TOPIC, SOCIAL_TOPIC, event_type_for
from spm_notifications.api import create_app
from spm_notifications.rules import (
    FOLLOWED_GOAL_CHECK_IN,
    GOAL_FOLLOWED,
    OWNED_GOAL_CHECK_IN,
    TAGGED,
    notification_id_for,
)
from spm_notifications.settings import READ_MODEL_FILE, NotificationsSettings
from spm_notifications.tables import InboxTables, open_read_model

pytestmark = pytest.mark.kafka

OLGA, CORA, DAN, COLIN = "olga", "cora", "dan", "colin"
FAY, CODY, OTTO, ADA = "fay", "cody", "otto", "ada"
GOAL_TEAM, CONTRIBUTING_TEAM, OTHER_TEAM = "platform", "growth", "sales"
TEAMS = {
    OLGA: (GOAL_TEAM,),
    CORA: (GOAL_TEAM,),
    DAN: (OTHER_TEAM,),
    COLIN: (),
    FAY: (GOAL_TEAM,),
    CODY: (CONTRIBUTING_TEAM,),
    OTTO: (OTHER_TEAM,),
    ADA: (OTHER_TEAM,),
}
ADMINS = {ADA}
# Followers who are not insiders, and which of them see a goal's check-ins at each visibility.
OUTSIDE_FOLLOWERS = (FAY, CODY, OTTO, ADA)
OUTSIDERS_WHO_SEE = {
    "organisation": {FAY, CODY, OTTO, ADA},
    "team": {FAY, CODY, ADA},
    "private": set(),
}
APPLY_SECONDS = 90.0
QUEUED_TOPICS = (GOALS_TOPIC, SOCIAL_TOPIC)

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
            TopicPartition(topic.name, partition) for topic in QUEUED_TOPICS for partition in range(topic.partitions)
        ]
        return {(tp.topic, tp.partition): offset for tp, offset in (await reader.end_offsets(partitions)).items()}
    finally:
        await reader.stop()


def start_at_topic_end(read_model: PositionedReadModel, bootstrap: str) -> None:
    """Record the last message now on each partition as applied, so a new worker resumes after it."""
    now = datetime.now(timezone.utc)
    rows = [
        {"consumer": read_model.consumer, "topic": topic, "partition": partition, "offset": end - 1, "updated_at": now}
        for (topic, partition), end in asyncio.run(_end_offsets(bootstrap)).items()
    ]
    with read_model.engine.begin() as connection:
        connection.execute(insert(read_model.positions), rows)


@dataclass
class LiveInbox:
    """A running worker, its read model and the inbox API on the same database."""

    kafka_bootstrap: str
    worker: Any
    engine: Engine
    read_model: PositionedReadModel
    tables: InboxTables
    client: TestClient
    secret: str

    def publish(self, envelopes: list[Envelope], poll) -> None:  # type: ignore[no-untyped-def]
        """Publish envelopes in order and wait until the worker has applied all of them."""
        sent = asyncio.run(_send(self.kafka_bootstrap, envelopes))

        def applied() -> bool:
            self.worker.check_running()
            recorded = self.read_model.recorded_offsets()
            return all(recorded.get(partition, -1) >= offset for partition, offset in sent.items())

        poll(applied, APPLY_SECONDS, f"the worker applied {len(envelopes)} published events")

    def headers(self, org_id: str, person_id: str) -> dict[str, str]:
        token = issue_token(self.secret, org_id, person_id, teams=TEAMS[person_id], admin=person_id in ADMINS)
        return {"Authorization": f"Bearer {token}"}

    def inbox(self, org_id: str, person_id: str) -> dict:  # type: ignore[type-arg]
        response = self.client.get("/inbox", params={"limit": 100}, headers=self.headers(org_id, person_id))
        assert response.status_code == 200, response.text
        body = response.json()
        # Follows also tell the goal's owners (goal_followed, covered by test_activities.py and
        # test_privacy.py). These tests are about check-ins and tags, so that item is left out here.
        followed = [item for item in body["items"] if item["kind"] == GOAL_FOLLOWED]
        body["items"] = [item for item in body["items"] if item["kind"] != GOAL_FOLLOWED]
        body["unread_count"] -= sum(1 for item in followed if not item["read"])
        return body

    def items(self, org_id: str, person_id: str) -> set[tuple[str, str]]:
        """Return (kind, notification id) of every item the person's inbox lists."""
        return {(item["kind"], item["notification_id"]) for item in self.inbox(org_id, person_id)["items"]}

    def stored_recipients(self, org_id: str) -> set[str]:
        inbox = self.tables.inbox
        with self.engine.connect() as connection:
            return set(connection.execute(select(inbox.c.recipient_id).where(inbox.c.org_id == org_id)).scalars())


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live(request, kafka_bootstrap, tmp_path_factory, worker_process_class) -> Iterator[LiveInbox]:  # type: ignore[no-untyped-def]
    data_dir = tmp_path_factory.mktemp(f"visibility-{request.param}")
    database_url = None if request.param == "sqlite" else request.getfixturevalue("postgres_url_factory")()
    processor_id = f"notifications-visibility-{uuid.uuid4().hex[:12]}"
    settings = NotificationsSettings(data_dir=data_dir, database_url=database_url, processor_id=processor_id)
    engine = create_database_engine(settings.sqlalchemy_url(READ_MODEL_FILE))
    read_model, tables = open_read_model(engine, processor_id)
    start_at_topic_end(read_model, kafka_bootstrap)
    worker = worker_process_class(data_dir, kafka_bootstrap, processor_id, database_url).start()
    try:
        yield LiveInbox(
            kafka_bootstrap=kafka_bootstrap,
            worker=worker,
            engine=engine,
            read_model=read_model,
            tables=tables,
            client=TestClient(create_app(settings)),
            secret=settings.jwt_secret.get_secret_value(),
        )
        assert worker.stop() == 0
    finally:
        worker.stop()
        engine.dispose()


@pytest.mark.parametrize("visibility", ["organisation", "team", "private"])
def test_inbox_by_visibility_and_relationship(live, events, poll, visibility: str) -> None:  # type: ignore[no-untyped-def]
    goal = f"goal-{uuid.uuid4()}"
    # The factory numbers a goal's versions in the order its events are built.
    goal_created = events.goal_created(
        goal, OLGA, title=f"A {visibility} goal", visibility=visibility, co_owner_ids=(CORA,),
        team=GOAL_TEAM, contributing_teams=(CONTRIBUTING_TEAM,),
    )
    by_co_owner = events.check_in(goal, CORA, 10)
    by_owner = events.check_in(goal, OLGA, 20)
    tag = events.tagged(goal, COLIN, OLGA, 8)
    follows = [events.followed(goal, person, minute) for minute, person in enumerate((*OUTSIDE_FOLLOWERS, COLIN), 1)]

    live.publish([goal_created, *follows, tag, by_co_owner, by_owner], poll)

    def follower_items(person_id: str) -> set[tuple[str, str]]:
        return {
            (FOLLOWED_GOAL_CHECK_IN, notification_id_for(by_co_owner.id, person_id)),
            (FOLLOWED_GOAL_CHECK_IN, notification_id_for(by_owner.id, person_id)),
        }

    expected = {
        OLGA: {(OWNED_GOAL_CHECK_IN, notification_id_for(by_co_owner.id, OLGA))},
        CORA: {(OWNED_GOAL_CHECK_IN, notification_id_for(by_owner.id, CORA))},
        COLIN: follower_items(COLIN) | {(TAGGED, notification_id_for(tag.id, COLIN))},
    }
    for person_id in OUTSIDE_FOLLOWERS:
        expected[person_id] = follower_items(person_id) if person_id in OUTSIDERS_WHO_SEE[visibility] else set()
    for person_id, items in expected.items():
        inbox = live.inbox(events.org_id, person_id)
        listed = {(item["kind"], item["notification_id"]) for item in inbox["items"]}
        assert listed == items, f"{person_id} on a {visibility} goal"
        assert inbox["unread_count"] == len(items), f"{person_id} on a {visibility} goal"
    if visibility == "private":
        assert live.stored_recipients(events.org_id) == {OLGA, CORA, COLIN}


def test_hidden_notification_answers_like_unknown(live, events, poll) -> None:  # type: ignore[no-untyped-def]
    goal = f"goal-{uuid.uuid4()}"
    check_in = events.check_in(goal, OLGA, 10)
    live.publish([
        events.goal_created(goal, OLGA, visibility="team", team=GOAL_TEAM),
        events.followed(goal, OTTO, 1),
        check_in,
    ], poll)
    hidden_id, unknown_id = notification_id_for(check_in.id, OTTO), str(uuid.uuid4())
    otto = live.headers(events.org_id, OTTO)

    hidden = live.client.post(f"/inbox/{hidden_id}/read", headers=otto)
    unknown = live.client.post(f"/inbox/{unknown_id}/read", headers=otto)
    marked = live.client.post("/inbox/read-all", headers=otto)

    assert OTTO in live.stored_recipients(events.org_id)
    assert hidden.status_code == unknown.status_code == 404
    assert hidden.json() == {"detail": unknown.json()["detail"].replace(unknown_id, hidden_id)}
    assert marked.json() == {"marked": 0}


def test_goal_turned_private_hides_then_restores(live, events, poll) -> None:  # type: ignore[no-untyped-def]
    goal = f"goal-{uuid.uuid4()}"
    goal_created = events.goal_created(goal, OLGA, visibility="organisation", co_owner_ids=(CORA,), team=GOAL_TEAM)
    before = events.check_in(goal, CORA, 10)
    live.publish([
        goal_created,
        events.followed(goal, FAY, 1),
        events.followed(goal, OTTO, 2),
        events.followed(goal, COLIN, 3),
        events.tagged(goal, COLIN, OLGA, 4),
        before,
    ], poll)
    fay_item = (FOLLOWED_GOAL_CHECK_IN, notification_id_for(before.id, FAY))
    otto_item = (FOLLOWED_GOAL_CHECK_IN, notification_id_for(before.id, OTTO))
    assert live.items(events.org_id, FAY) == {fay_item}
    assert live.inbox(events.org_id, OTTO)["unread_count"] == 1
    read = live.client.post(f"/inbox/{fay_item[1]}/read", headers=live.headers(events.org_id, FAY))
    assert read.status_code == 200

    turned_private = events.visibility_changed(goal, "private", "organisation", OLGA, 20)
    while_private = events.check_in(goal, OLGA, 30)
    live.publish([turned_private, while_private], poll)

    assert live.inbox(events.org_id, FAY) == {"items": [], "unread_count": 0, "next_cursor": None}
    assert live.inbox(events.org_id, OTTO) == {"items": [], "unread_count": 0, "next_cursor": None}
    hidden = live.client.post(f"/inbox/{otto_item[1]}/read", headers=live.headers(events.org_id, OTTO))
    assert hidden.status_code == 404
    assert live.items(events.org_id, OLGA) == {(OWNED_GOAL_CHECK_IN, notification_id_for(before.id, OLGA))}
    assert live.items(events.org_id, CORA) == {(OWNED_GOAL_CHECK_IN, notification_id_for(while_private.id, CORA))}
    assert (FOLLOWED_GOAL_CHECK_IN, notification_id_for(while_private.id, COLIN)) in live.items(events.org_id, COLIN)

    live.publish([events.visibility_changed(goal, "team", "private", OLGA, 40)], poll)

    assert live.items(events.org_id, FAY) == {fay_item}
    assert live.items(events.org_id, OTTO) == set()

    live.publish([events.visibility_changed(goal, "organisation", "team", OLGA, 50)], poll)

    fay_inbox, otto_inbox = live.inbox(events.org_id, FAY), live.inbox(events.org_id, OTTO)
    assert [(item["notification_id"], item["read"]) for item in fay_inbox["items"]] == [(fay_item[1], True)]
    assert fay_inbox["unread_count"] == 0
    assert [(item["notification_id"], item["read"]) for item in otto_inbox["items"]] == [(otto_item[1], False)]
    assert otto_inbox["unread_count"] == 1


def test_owner_change_moves_owner_notifications(live, events, poll) -> None:  # type: ignore[no-untyped-def]
    goal = f"goal-{uuid.uuid4()}"
    goal_created = events.goal_created(goal, OLGA, visibility="private", co_owner_ids=(CORA,))
    first = events.check_in(goal, OLGA, 10)
    live.publish([goal_created, first], poll)
    assert live.items(events.org_id, CORA) == {(OWNED_GOAL_CHECK_IN, notification_id_for(first.id, CORA))}

    owners_changed = events.owners_changed(goal, OLGA, (DAN,), OLGA, 20)
    by_dan, by_olga = events.check_in(goal, DAN, 30), events.check_in(goal, OLGA, 40)
    live.publish([owners_changed, by_dan, by_olga], poll)

    assert live.items(events.org_id, OLGA) == {(OWNED_GOAL_CHECK_IN, notification_id_for(by_dan.id, OLGA))}
    assert live.items(events.org_id, DAN) == {(OWNED_GOAL_CHECK_IN, notification_id_for(by_olga.id, DAN))}
    assert live.inbox(events.org_id, CORA) == {"items": [], "unread_count": 0, "next_cursor": None}


def test_topic_order_does_not_change_inbox(live, make_events, poll) -> None:  # type: ignore[no-untyped-def]
    goal = "goal-order"

    def scenario(org_id: str) -> tuple[list[Envelope], list[Envelope]]:
        events = make_events(org_id)
        goal_events = [
            events.goal_created(goal, OLGA, visibility="private", co_owner_ids=(CORA,), team=GOAL_TEAM),
            events.check_in(goal, OLGA, 10),
            events.visibility_changed(goal, "team", "private", OLGA, 15),
            events.check_in(goal, CORA, 20),
        ]
        social_events = [
            events.followed(goal, FAY, 1),
            events.followed(goal, OTTO, 2),
            events.followed(goal, COLIN, 3),
            events.tagged(goal, COLIN, CORA, 4),
            events.unfollowed(goal, FAY, 18),
        ]
        return goal_events, social_events

    goals_first_org, social_first_org = f"org-{uuid.uuid4().hex[:12]}", f"org-{uuid.uuid4().hex[:12]}"
    goal_events, social_events = scenario(goals_first_org)
    live.publish(goal_events, poll)
    live.publish(social_events, poll)
    goal_events, social_events = scenario(social_first_org)
    live.publish(social_events, poll)
    live.publish(goal_events, poll)

    def answers(org_id: str, person_id: str) -> tuple[list[tuple[str, str]], int]:
        inbox = live.inbox(org_id, person_id)
        return [(item["kind"], item["occurred_at"]) for item in inbox["items"]], inbox["unread_count"]

    expected = {
        OLGA: ([(OWNED_GOAL_CHECK_IN, "2020-03-02T09:20:00Z")], 1),
        CORA: ([(OWNED_GOAL_CHECK_IN, "2020-03-02T09:10:00Z")], 1),
        COLIN: ([(FOLLOWED_GOAL_CHECK_IN, "2020-03-02T09:20:00Z"), (FOLLOWED_GOAL_CHECK_IN, "2020-03-02T09:10:00Z"),
                 (TAGGED, "2020-03-02T09:04:00Z")], 3),
        FAY: ([], 0),
        OTTO: ([], 0),
    }
    for person_id, answer in expected.items():
        assert answers(goals_first_org, person_id) == answer, person_id
        assert answers(social_first_org, person_id) == answer, person_id
    assert OTTO in live.stored_recipients(social_first_org)
