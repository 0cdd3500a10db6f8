import base64
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

HeadersFor = Callable[..., dict[str, str]]


@pytest.fixture
def followed_goal(apply_envelopes: Callable[..., None], events) -> list:
    """A goal with one follower and five check-ins; two of them share an event time."""
    envelopes = [
        events.goal_created("goal-1", "owner-1", day=1),
        events.key_result_added("goal-1", "kr-1", "owner-1", day=1, hour=10),
        events.goal_followed("goal-1", "follower-1", day=2),
        events.check_in_recorded("goal-1", "kr-1", "owner-1", day=3),
        events.check_in_recorded("goal-1", "kr-1", "owner-1", day=5),
        events.check_in_recorded("goal-1", "kr-1", "owner-1", day=5),
        events.check_in_recorded("goal-1", "kr-1", "owner-1", day=4),
        events.check_in_recorded("goal-1", "kr-1", "owner-1", day=6),
    ]
    apply_envelopes(*envelopes)
    return envelopes


def test_feed_orders_newest_first(
    client: TestClient, followed_goal: list, auth_headers: HeadersFor
) -> None:
    check_ins = followed_goal[3:]
    expected = sorted(check_ins, key=lambda envelope: (envelope.time, envelope.id))
    expected_event_ids = [envelope.id for envelope in reversed(expected)]

    response = client.get("/feed", params={"limit": 100}, headers=auth_headers("follower-1"))

    assert response.status_code == 200
    body = response.json()
    assert [item["event_id"] for item in body["items"]] == expected_event_ids
    assert body["next_cursor"] is None
    first = body["items"][0]
    assert first["kind"] == "check_in_recorded"
    assert first["goal_id"] == "goal-1"
    assert first["goal_title"] == "Grow the user base"
    assert first["key_result_id"] == "kr-1"
    assert first["actor_id"] == "owner-1"
    assert first["occurred_at"] == "2021-01-06T09:00:00Z"


def test_feed_pages_with_cursor_until_exhausted(
    client: TestClient, followed_goal: list, auth_headers: HeadersFor
) -> None:
    everything = client.get("/feed", params={"limit": 100}, headers=auth_headers("owner-1")).json()["items"]
    paged: list[dict] = []
    cursor = None

    for _ in range(10):
        params = {"limit": 2} | ({"before": cursor} if cursor else {})
        page = client.get("/feed", params=params, headers=auth_headers("owner-1")).json()
        assert len(page["items"]) <= 2
        paged.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert len(everything) == 8
    assert [item["item_id"] for item in paged] == [item["item_id"] for item in everything]


def test_feed_shows_only_own_items_of_own_org(
    client: TestClient, followed_goal: list, auth_headers: HeadersFor
) -> None:
    bystander = client.get("/feed", headers=auth_headers("bystander"))
    follower_elsewhere = client.get("/feed", headers=auth_headers("follower-1", org="another-org"))

    assert bystander.json() == {"items": [], "next_cursor": None}
    assert follower_elsewhere.json() == {"items": [], "next_cursor": None}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"before": "not a cursor"}, "before"),
        ({"before": base64.urlsafe_b64encode(b"2021-01-01T00:00:00|event-1").decode()}, "before"),
        ({"before": base64.urlsafe_b64encode(b"2021-01-01T00:00:00+00:00|").decode()}, "before"),
        ({"before": "x" * 301}, "before"),
    ],
)
def test_feed_rejects_invalid_query_with_422(
    client: TestClient, auth_headers: HeadersFor, params: dict, field: str
) -> None:
    response = client.get("/feed", params=params, headers=auth_headers("person-1"))

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", field]


def test_feed_without_token_returns_401(client: TestClient) -> None:
    response = client.get("/feed")

    assert response.status_code == 401


def test_health_and_internal_endpoints_need_no_token(client: TestClient) -> None:
    health = client.get("/healthz")
    relay = client.get("/internal/relay")
    positions = client.get("/internal/positions")

    assert health.json() == {"status": "ok"}
    assert relay.json() == {"relay": "social-relay", "published_position": 0, "max_notification_id": 0}
    assert positions.json() == {"consumer": "social-feed", "positions": []}


def test_internal_relay_reports_written_events(
    client: TestClient, add_known_goal: Callable[..., str], auth_headers: HeadersFor
) -> None:
    goal_id = add_known_goal()
    client.post(f"/goals/{goal_id}/followers", headers=auth_headers("person-1"))

    relay = client.get("/internal/relay").json()

    # The first follow starts the goal's graph, so it writes the start event and the follow.
    assert relay["max_notification_id"] == 2
    assert relay["published_position"] == 0
