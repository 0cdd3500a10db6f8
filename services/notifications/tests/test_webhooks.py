"""Webhooks end to end in one process: the API registers, the dispatcher sends to a real HTTP receiver on 127.0.0.1.

The dispatcher runs with a settable clock, so retries, backoff and quiet hours are checked by
moving the clock rather than by sleeping.
"""

from __future__ import annotations

import asyncio
import random
from datetime import datetime, timezone
from typing import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from spm_events.auth import issue_token
from spm_notifications.api import create_app
from spm_notifications.delivery.signing import verify
from spm_notifications.delivery.webhooks import TargetPolicy, parse_networks
from spm_notifications.dispatcher import Dispatcher, DispatcherConfig
from spm_notifications.rules import FOLLOWED_GOAL_CHECK_IN, TAGGED, notification_id_for
from spm_notifications.settings import NotificationsSettings
from spm_notifications.webhook_store import delivery_id_for
from notify_delivery_support import SettableClock, WebhookReceiver

OWNER, ACTOR, FAY, TINA = "owner", "alex", "fay", "tina"
CONSUMER = "notifications-test"
LOCAL = "127.0.0.1/32"


@pytest.fixture
def settings(database_url: str, tmp_path) -> NotificationsSettings:  # type: ignore[no-untyped-def]
    url = None if database_url.startswith("sqlite") else database_url
    return NotificationsSettings(
        data_dir=tmp_path, database_url=url, processor_id=CONSUMER, webhook_allowed_networks=LOCAL
    )


@pytest.fixture
def client(settings: NotificationsSettings, store) -> TestClient:  # type: ignore[no-untyped-def]
    # ``store`` first, so the read model on this database exists before the app opens it.
    return TestClient(create_app(settings))


@pytest.fixture
def headers(org_id: str, settings: NotificationsSettings):  # type: ignore[no-untyped-def]
    def issue(person_id: str) -> dict[str, str]:
        token = issue_token(settings.jwt_secret.get_secret_value(), org_id, person_id)
        return {"Authorization": f"Bearer {token}"}

    return issue


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(datetime(2026, 6, 10, 12, 0, tzinfo=timezone.utc))


def make_dispatcher(store, clock, max_attempts: int = 3) -> Dispatcher:  # type: ignore[no-untyped-def]
    config = DispatcherConfig(
        max_attempts=max_attempts,
        backoff_base_seconds=10.0,
        backoff_max_seconds=60.0,
        webhook_timeout_seconds=5.0,
        target_policy=TargetPolicy(parse_networks(LOCAL)),
    )
    return Dispatcher(store.engine, store.tables, config, directory=None, clock=clock, rng=random.Random(7))


def run_round(dispatcher: Dispatcher) -> int:
    async def round_trip() -> int:
        async with httpx.AsyncClient() as http:
            return await dispatcher.run_once(http)

    return asyncio.run(round_trip())


def register(client, headers, person_id: str, url: str, **fields) -> dict:  # type: ignore[no-untyped-def]
    response = client.post("/webhooks", headers=headers(person_id), json={"url": url, **fields})
    assert response.status_code == 201, response.text
    return response.json()


def test_webhook_delivers_signed_json(client, headers, store, events, receiver, clock) -> None:  # type: ignore[no-untyped-def]
    webhook = register(client, headers, FAY, receiver.url)
    store.apply(events.goal_created("goal-a", OWNER, title="Grow revenue"))
    tag = events.tagged("goal-a", FAY, ACTOR, 10)
    store.apply(tag)

    run_round(make_dispatcher(store, clock))

    assert len(receiver.received) == 1
    request = receiver.received[0]
    notification_id = notification_id_for(tag.id, FAY)
    expected_delivery_id = delivery_id_for(notification_id, "webhook", webhook["webhook_id"])
    assert request.headers["X-SPM-Delivery-Id"] == expected_delivery_id
    assert verify(webhook["secret"], int(request.headers["X-SPM-Timestamp"]), request.body, request.headers["X-SPM-Signature"])
    assert not verify("whsec_wrong", int(request.headers["X-SPM-Timestamp"]), request.body, request.headers["X-SPM-Signature"])
    body = request.json
    assert body["delivery_id"] == expected_delivery_id
    assert body["notification_id"] == notification_id
    assert body["kind"] == TAGGED
    assert body["goal_id"] == "goal-a"
    assert body["recipient_id"] == FAY
    assert "Grow revenue" in body["message"]

    log = client.get(f"/webhooks/{webhook['webhook_id']}/deliveries", headers=headers(FAY)).json()
    assert [item["status"] for item in log["items"]] == ["sent"]
    assert [attempt["status_code"] for attempt in log["items"][0]["attempts"]] == [200]


def test_webhook_secret_shown_once(client, headers, receiver) -> None:  # type: ignore[no-untyped-def]
    webhook = register(client, headers, FAY, receiver.url)

    listed = client.get("/webhooks", headers=headers(FAY)).json()["webhooks"]

    assert webhook["secret"].startswith("whsec_")
    assert [item["webhook_id"] for item in listed] == [webhook["webhook_id"]]
    assert "secret" not in listed[0]


def test_webhook_slack_body(client, headers, store, events, receiver, clock) -> None:  # type: ignore[no-untyped-def]
    register(client, headers, FAY, receiver.url, format="slack")
    store.apply(events.goal_created("goal-a", OWNER, title="Grow revenue"), events.tagged("goal-a", FAY, ACTOR, 10))

    run_round(make_dispatcher(store, clock))

    body = receiver.received[0].json
    assert body["text"] == 'You were tagged on "Grow revenue"'
    assert body["blocks"][0]["type"] == "section"
    assert body["blocks"][0]["text"]["text"] == body["text"]


def test_webhook_retries_5xx_then_dead_letters(client, headers, store, events, receiver, clock) -> None:  # type: ignore[no-untyped-def]
    receiver.default_status = 503
    webhook = register(client, headers, FAY, receiver.url)
    store.apply(events.goal_created("goal-a", OWNER), events.tagged("goal-a", FAY, ACTOR, 10))
    dispatcher = make_dispatcher(store, clock, max_attempts=3)

    run_round(dispatcher)
    run_round(dispatcher)
    assert len(receiver.received) == 1, "a retry went out before its backoff passed"

    clock.advance(seconds=10)
    run_round(dispatcher)
    clock.advance(seconds=20)
    run_round(dispatcher)
    clock.advance(hours=1)
    run_round(dispatcher)

    ids = receiver.delivery_ids()
    assert len(ids) == 3
    assert len(set(ids)) == 1
    log = client.get(f"/webhooks/{webhook['webhook_id']}/deliveries", headers=headers(FAY)).json()
    item = log["items"][0]
    assert item["status"] == "dead"
    assert [attempt["status_code"] for attempt in item["attempts"]] == [503, 503, 503]
    assert item["last_error"] == "receiver returned HTTP 503"
    first, second, third = (datetime.fromisoformat(attempt["attempted_at"]) for attempt in item["attempts"])
    # Backoff with jitter: 5-10 s after the first attempt, 10-20 s after the second.
    assert (second - first).total_seconds() >= 5
    assert (third - second).total_seconds() >= 10


def test_webhook_recovers_after_5xx(client, headers, store, events, receiver, clock) -> None:  # type: ignore[no-untyped-def]
    receiver.statuses = [500, 429]
    webhook = register(client, headers, FAY, receiver.url)
    store.apply(events.goal_created("goal-a", OWNER), events.tagged("goal-a", FAY, ACTOR, 10))
    dispatcher = make_dispatcher(store, clock, max_attempts=5)

    for _ in range(3):
        run_round(dispatcher)
        clock.advance(minutes=5)

    item = client.get(f"/webhooks/{webhook['webhook_id']}/deliveries", headers=headers(FAY)).json()["items"][0]
    assert item["status"] == "sent"
    assert [attempt["status_code"] for attempt in item["attempts"]] == [500, 429, 200]


@pytest.mark.parametrize("status_code", [400, 404, 410])
def test_webhook_4xx_is_not_retried(client, headers, store, events, receiver, clock, status_code) -> None:  # type: ignore[no-untyped-def]
    receiver.default_status = status_code
    webhook = register(client, headers, FAY, receiver.url)
    store.apply(events.goal_created("goal-a", OWNER), events.tagged("goal-a", FAY, ACTOR, 10))
    dispatcher = make_dispatcher(store, clock, max_attempts=5)

    run_round(dispatcher)
    clock.advance(hours=2)
    run_round(dispatcher)

    assert len(receiver.received) == 1
    item = client.get(f"/webhooks/{webhook['webhook_id']}/deliveries", headers=headers(FAY)).json()["items"][0]
    assert item["status"] == "dead"
    assert item["last_status_code"] == status_code


def test_webhook_connection_error_is_retried(client, headers, store, events, receiver, clock) -> None:  # type: ignore[no-untyped-def]
    webhook = register(client, headers, FAY, receiver.url)
    receiver.stop()
    store.apply(events.goal_created("goal-a", OWNER), events.tagged("goal-a", FAY, ACTOR, 10))
    dispatcher = make_dispatcher(store, clock, max_attempts=2)

    run_round(dispatcher)
    clock.advance(minutes=5)
    run_round(dispatcher)

    item = client.get(f"/webhooks/{webhook['webhook_id']}/deliveries", headers=headers(FAY)).json()["items"][0]
    assert item["status"] == "dead"
    assert len(item["attempts"]) == 2
    assert item["attempts"][0]["status_code"] is None
    assert item["attempts"][0]["error"].startswith("connection failed")


def test_webhook_held_in_quiet_hours(client, headers, store, events, receiver, clock) -> None:  # type: ignore[no-untyped-def]
    # 12:00 UTC is 14:00 in Berlin in June; quiet 13:00-15:00 Berlin ends at 13:00 UTC.
    client.patch("/preferences", headers=headers(FAY), json={
        "time_zone": "Europe/Berlin", "quiet_hours": {"start": "13:00", "end": "15:00"},
    })
    register(client, headers, FAY, receiver.url)
    store.apply(events.goal_created("goal-a", OWNER), events.tagged("goal-a", FAY, ACTOR, 10))
    dispatcher = make_dispatcher(store, clock)

    run_round(dispatcher)
    clock.advance(minutes=59)
    run_round(dispatcher)
    assert receiver.received == []

    clock.advance(minutes=1)
    run_round(dispatcher)
    assert len(receiver.received) == 1


def test_webhook_kinds_filter(client, headers, store, events, receiver, clock) -> None:  # type: ignore[no-untyped-def]
    register(client, headers, FAY, receiver.url, kinds=[FOLLOWED_GOAL_CHECK_IN])
    store.apply(
        events.goal_created("goal-a", OWNER),
        events.followed("goal-a", FAY, 1),
        events.tagged("goal-a", FAY, ACTOR, 10),
        events.check_in("goal-a", ACTOR, 20),
    )

    run_round(make_dispatcher(store, clock))

    assert [request.json["kind"] for request in receiver.received] == [FOLLOWED_GOAL_CHECK_IN]


def test_webhook_respects_mute_and_switch(client, headers, store, events, receiver, clock) -> None:  # type: ignore[no-untyped-def]
    register(client, headers, FAY, receiver.url)
    client.put("/preferences/mutes/goals/goal-a", headers=headers(FAY))
    client.patch("/preferences", headers=headers(FAY), json={"channels": {TAGGED: {"webhook": False}}})
    store.apply(
        events.goal_created("goal-a", OWNER),
        events.goal_created("goal-b", OWNER),
        events.followed("goal-a", FAY, 1),
        events.tagged("goal-b", FAY, ACTOR, 10),
        events.check_in("goal-a", ACTOR, 20),
    )

    run_round(make_dispatcher(store, clock))

    assert receiver.received == []


def test_webhook_skips_goal_turned_private(client, headers, store, events, receiver, clock) -> None:  # type: ignore[no-untyped-def]
    """Fay follows an open goal and gets a check-in. The goal turns private before the send, so nothing goes out."""
    webhook = register(client, headers, FAY, receiver.url)
    store.apply(
        events.goal_created("goal-a", OWNER, visibility="organisation"),
        events.followed("goal-a", FAY, 1),
        events.check_in("goal-a", ACTOR, 10),
    )
    dispatcher = make_dispatcher(store, clock)
    dispatcher.plan()

    store.apply(events.visibility_changed("goal-a", "private", "organisation", OWNER, 20))
    run_round(dispatcher)

    assert receiver.received == []
    item = client.get(f"/webhooks/{webhook['webhook_id']}/deliveries", headers=headers(FAY)).json()["items"][0]
    assert item["status"] == "dropped"


def test_webhook_of_other_person_not_used(client, headers, store, events, receiver, clock) -> None:  # type: ignore[no-untyped-def]
    webhook = register(client, headers, TINA, receiver.url)
    store.apply(events.goal_created("goal-a", OWNER), events.tagged("goal-a", FAY, ACTOR, 10))

    run_round(make_dispatcher(store, clock))

    assert receiver.received == []
    assert client.get(f"/webhooks/{webhook['webhook_id']}/deliveries", headers=headers(FAY)).status_code == 404
    assert client.delete(f"/webhooks/{webhook['webhook_id']}", headers=headers(FAY)).status_code == 404


def test_deleted_webhook_gets_nothing(client, headers, store, events, receiver, clock) -> None:  # type: ignore[no-untyped-def]
    webhook = register(client, headers, FAY, receiver.url)
    store.apply(events.goal_created("goal-a", OWNER), events.tagged("goal-a", FAY, ACTOR, 10))
    dispatcher = make_dispatcher(store, clock)
    dispatcher.plan()

    assert client.delete(f"/webhooks/{webhook['webhook_id']}", headers=headers(FAY)).status_code == 204
    run_round(dispatcher)

    assert receiver.received == []
    assert client.get("/webhooks", headers=headers(FAY)).json() == {"webhooks": []}


def test_planning_twice_delivers_once(client, headers, store, events, receiver, clock) -> None:  # type: ignore[no-untyped-def]
    register(client, headers, FAY, receiver.url)
    store.apply(events.goal_created("goal-a", OWNER), events.tagged("goal-a", FAY, ACTOR, 10))
    first = make_dispatcher(store, clock)
    first.plan()
    # A second dispatcher that starts from cursor 0, as after losing the cursor, plans the same ids.
    deliveries = first.delivery.dispatcher_cursors
    with store.engine.begin() as connection:
        connection.execute(deliveries.delete())

    run_round(make_dispatcher(store, clock))
    run_round(make_dispatcher(store, clock))

    assert len(receiver.received) == 1


@pytest.mark.parametrize(
    ("url", "text"),
    [
        ("ftp://127.0.0.1/hook", "scheme 'ftp' is not allowed"),
        ("file:///etc/passwd", "scheme 'file' is not allowed"),
        ("http://169.254.169.254/latest/meta-data", "non-public address"),
        ("http://10.1.2.3/hook", "non-public address"),
        ("http://[::1]/hook", "non-public address"),
        ("http://user:pass@127.0.0.1/hook", "user name or password"),
        ("http:///hook", "no host"),
    ],
)
def test_webhook_rejects_unsafe_urls(client, headers, url, text) -> None:  # type: ignore[no-untyped-def]
    response = client.post("/webhooks", headers=headers(FAY), json={"url": url})

    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail[0]["loc"] == ["body", "url"]
    assert text in detail[0]["msg"]
    assert client.get("/webhooks", headers=headers(FAY)).json() == {"webhooks": []}


def test_loopback_needs_allowlist(tmp_path, headers) -> None:  # type: ignore[no-untyped-def]
    strict = TestClient(create_app(NotificationsSettings(data_dir=tmp_path, database_url=None, processor_id=CONSUMER)))

    response = strict.post("/webhooks", headers=headers(FAY), json={"url": "http://127.0.0.1:9/hook"})

    assert response.status_code == 422
    assert "SPM_WEBHOOK_ALLOWED_NETWORKS" in response.json()["detail"][0]["msg"]


def test_webhook_rejects_unknown_kind_and_format(client, headers, receiver) -> None:  # type: ignore[no-untyped-def]
    unknown_kind = client.post("/webhooks", headers=headers(FAY), json={"url": receiver.url, "kinds": ["gossip"]})
    unknown_format = client.post("/webhooks", headers=headers(FAY), json={"url": receiver.url, "format": "xml"})

    assert unknown_kind.status_code == 422
    assert unknown_kind.json()["detail"][0]["loc"] == ["body", "kinds"]
    assert unknown_format.status_code == 422
    assert unknown_format.json()["detail"][0]["loc"] == ["body", "format"]
    assert client.get("/webhooks", headers=headers(FAY)).json() == {"webhooks": []}
