"""The inbox HTTP API over a real read-model database, filled through the same projection the worker uses."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient

from spm_events.auth import issue_token
from spm_notifications.api import create_app
from spm_notifications.rules import FOLLOWED_GOAL_CHECK_IN, TAGGED, notification_id_for
from spm_notifications.settings import NotificationsSettings

GOAL = "goal-inbox"
OWNER, ACTOR, FAY, TINA = "owner", "alex", "fay", "tina"
CONSUMER = "notifications-test"


@pytest.fixture
def settings(database_url: str, tmp_path) -> NotificationsSettings:  # type: ignore[no-untyped-def]
    if database_url.startswith("sqlite"):
        return NotificationsSettings(data_dir=tmp_path, database_url=None, processor_id=CONSUMER, max_body_bytes=1024)
    return NotificationsSettings(data_dir=tmp_path, database_url=database_url, processor_id=CONSUMER, max_body_bytes=1024)


@pytest.fixture
def client(settings: NotificationsSettings) -> TestClient:
    return TestClient(create_app(settings))


@pytest.fixture
def token_for(settings: NotificationsSettings, org_id: str):  # type: ignore[no-untyped-def]
    def issue(person_id: str, org: str | None = None) -> dict[str, str]:
        token = issue_token(settings.jwt_secret.get_secret_value(), org or org_id, person_id)
        return {"Authorization": f"Bearer {token}"}

    return issue


@pytest.fixture
def filled_inbox(client, store, events):  # type: ignore[no-untyped-def]
    """Fill the inbox: Fay follows the goal and gets two check-ins and one tag, and Tina gets one tag."""
    envelopes = [
        events.goal_created(GOAL, OWNER, title="Grow revenue"),
        events.followed(GOAL, FAY, 1),
        events.check_in(GOAL, ACTOR, 10),
        events.tagged(GOAL, FAY, ACTOR, 20),
        events.check_in(GOAL, ACTOR, 30),
        events.tagged(GOAL, TINA, ACTOR, 40),
    ]
    store.apply(*envelopes)
    return {envelope.type.split(".")[2] + str(index): envelope for index, envelope in enumerate(envelopes)}


def test_inbox_lists_newest_first(client, token_for, filled_inbox) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/inbox", headers=token_for(FAY))

    assert response.status_code == 200
    body = response.json()
    assert [item["kind"] for item in body["items"]] == [FOLLOWED_GOAL_CHECK_IN, TAGGED, FOLLOWED_GOAL_CHECK_IN]
    assert [item["occurred_at"][:16] for item in body["items"]] == ["2020-03-02T09:30", "2020-03-02T09:20", "2020-03-02T09:10"]
    assert body["unread_count"] == 3
    assert body["next_cursor"] is None


def test_inbox_item_has_message_and_ids(client, token_for, filled_inbox) -> None:  # type: ignore[no-untyped-def]
    tag = filled_inbox["CollaboratorTagged3"]

    items = client.get("/inbox", headers=token_for(FAY)).json()["items"]

    assert items[1] == {
        "notification_id": notification_id_for(tag.id, FAY),
        "kind": TAGGED,
        "goal_id": GOAL,
        "goal_title": "Grow revenue",
        "actor_id": ACTOR,
        "message": 'You were tagged on "Grow revenue"',
        "occurred_at": "2020-03-02T09:20:00Z",
        "read": False,
        "count": 1,
        "actor_ids": [ACTOR],
        "community_id": None,
        "group_key": None,
    }
    assert items[0]["message"] == 'A check-in was recorded on "Grow revenue", a goal you follow'


def test_inbox_pages_with_cursor(client, store, events, token_for) -> None:  # type: ignore[no-untyped-def]
    tags = [events.tagged(f"goal-{index}", FAY, ACTOR, minute) for index, minute in enumerate([5, 4, 4, 4, 1])]
    store.apply(*tags)

    seen: list[str] = []
    pages = 0
    cursor = None
    while True:
        params = {"limit": 2} | ({"before": cursor} if cursor else {})
        body = client.get("/inbox", params=params, headers=token_for(FAY)).json()
        seen += [item["notification_id"] for item in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break

    assert pages == 3
    assert len(seen) == 5
    assert set(seen) == {notification_id_for(tag.id, FAY) for tag in tags}


def test_unread_only_hides_read_items(client, token_for, filled_inbox) -> None:  # type: ignore[no-untyped-def]
    first = client.get("/inbox", headers=token_for(FAY)).json()["items"][0]

    marked = client.post(f"/inbox/{first['notification_id']}/read", headers=token_for(FAY))
    unread = client.get("/inbox", params={"unread_only": "true"}, headers=token_for(FAY)).json()
    everything = client.get("/inbox", headers=token_for(FAY)).json()

    assert marked.status_code == 200
    assert marked.json()["read"] is True
    assert first["notification_id"] not in [item["notification_id"] for item in unread["items"]]
    assert len(unread["items"]) == 2
    assert unread["unread_count"] == 2
    assert everything["items"][0]["read"] is True


def test_marking_read_twice_succeeds(client, token_for, filled_inbox) -> None:  # type: ignore[no-untyped-def]
    notification_id = client.get("/inbox", headers=token_for(FAY)).json()["items"][0]["notification_id"]

    first = client.post(f"/inbox/{notification_id}/read", headers=token_for(FAY))
    second = client.post(f"/inbox/{notification_id}/read", headers=token_for(FAY))

    assert first.status_code == 200
    assert second.status_code == 200
    assert client.get("/inbox", headers=token_for(FAY)).json()["unread_count"] == 2


def test_other_persons_notification_is_404(client, token_for, filled_inbox) -> None:  # type: ignore[no-untyped-def]
    tinas = client.get("/inbox", headers=token_for(TINA)).json()["items"][0]["notification_id"]

    response = client.post(f"/inbox/{tinas}/read", headers=token_for(FAY))

    assert response.status_code == 404
    assert "GET /inbox" in response.json()["detail"]
    assert client.get("/inbox", headers=token_for(TINA)).json()["unread_count"] == 1


def test_unknown_notification_is_404(client, token_for, filled_inbox) -> None:  # type: ignore[no-untyped-def]
    response = client.post(f"/inbox/{uuid.uuid4()}/read", headers=token_for(FAY))

    assert response.status_code == 404


def test_other_org_sees_nothing(client, token_for, filled_inbox) -> None:  # type: ignore[no-untyped-def]
    fays = client.get("/inbox", headers=token_for(FAY)).json()["items"][0]["notification_id"]
    other_org = token_for(FAY, org="another-org")

    listed = client.get("/inbox", headers=other_org).json()
    marked = client.post(f"/inbox/{fays}/read", headers=other_org)

    assert listed == {"items": [], "unread_count": 0, "next_cursor": None}
    assert marked.status_code == 404


def test_read_all_marks_only_own_unread(client, token_for, filled_inbox) -> None:  # type: ignore[no-untyped-def]
    first = client.post("/inbox/read-all", headers=token_for(FAY))
    second = client.post("/inbox/read-all", headers=token_for(FAY))

    assert first.status_code == 200
    assert first.json() == {"marked": 3}
    assert second.json() == {"marked": 0}
    assert client.get("/inbox", headers=token_for(FAY)).json()["unread_count"] == 0
    assert client.get("/inbox", headers=token_for(TINA)).json()["unread_count"] == 1


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/inbox"), ("POST", "/inbox/read-all"), ("POST", f"/inbox/{uuid.uuid4()}/read")],
)
def test_routes_without_token_are_401(client, method: str, path: str) -> None:  # type: ignore[no-untyped-def]
    missing = client.request(method, path)
    invalid = client.request(method, path, headers={"Authorization": "Bearer not-a-token"})

    assert missing.status_code == 401
    assert invalid.status_code == 401


def test_token_signed_with_other_secret_is_401(client) -> None:  # type: ignore[no-untyped-def]
    forged = issue_token("another-secret-that-is-long-enough-for-hs256", "org", FAY)

    response = client.get("/inbox", headers={"Authorization": f"Bearer {forged}"})

    assert response.status_code == 401


def test_oversized_body_is_413(client, token_for) -> None:  # type: ignore[no-untyped-def]
    response = client.post(
        "/inbox/read-all",
        content=b'{"padding": "' + b"x" * 2048 + b'"}',
        headers=token_for(FAY) | {"Content-Type": "application/json"},
    )

    assert response.status_code == 413


def test_invalid_cursor_is_422_naming_before(client, token_for) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/inbox", params={"before": "not-a-cursor"}, headers=token_for(FAY))

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "before"]


@pytest.mark.parametrize("limit", [0, 101])
def test_limit_out_of_range_is_422(client, token_for, limit: int) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/inbox", params={"limit": limit}, headers=token_for(FAY))

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "limit"]


def test_healthz_needs_no_token(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_positions_report_last_applied_offsets(client, filled_inbox) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/internal/positions")

    assert response.status_code == 200
    assert response.json() == {
        "consumer": CONSUMER,
        "positions": [{"topic": "spm.test.v1", "partition": 0, "offset": 5}],
    }
