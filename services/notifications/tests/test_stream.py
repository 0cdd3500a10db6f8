"""Live push: ``GET /inbox/stream`` of the API process, read with an SSE client, resumed with Last-Event-ID."""

from __future__ import annotations

import json
from typing import Iterator

import httpx
import pytest
from httpx_sse import connect_sse

from spm_events.auth import issue_token
from spm_events.settings import DEVELOPMENT_JWT_SECRET
from spm_notifications.rules import notification_id_for
from notify_delivery_support import ApiProcess

OWNER, ACTOR, FAY = "owner", "alex", "fay"
READ_TIMEOUT_SECONDS = 20.0


@pytest.fixture
def api(database_url: str, tmp_path, store, poll) -> Iterator[ApiProcess]:  # type: ignore[no-untyped-def]
    env = {"SPM_STREAM_POLL_INTERVAL_SECONDS": "0.2", "SPM_STREAM_PING_SECONDS": "1", "SPM_JWT_SECRET": DEVELOPMENT_JWT_SECRET}
    if not database_url.startswith("sqlite"):
        env["SPM_DATABASE_URL"] = database_url
    process = ApiProcess(tmp_path, env).start(poll)
    yield process
    assert process.stop() == 0


@pytest.fixture
def headers(org_id: str):  # type: ignore[no-untyped-def]
    def issue(person_id: str, last_event_id: str | None = None) -> dict[str, str]:
        result = {"Authorization": f"Bearer {issue_token(DEVELOPMENT_JWT_SECRET, org_id, person_id)}"}
        if last_event_id is not None:
            result["Last-Event-ID"] = last_event_id
        return result

    return issue


def read_events(api: ApiProcess, headers: dict[str, str], count: int, params: dict[str, str] | None = None,
                on_open=None) -> list[tuple[int, dict]]:  # type: ignore[no-untyped-def]
    """Open the stream, run ``on_open``, read ``count`` notification events, and close the stream."""
    received: list[tuple[int, dict]] = []
    timeout = httpx.Timeout(10.0, read=READ_TIMEOUT_SECONDS)
    with httpx.Client(base_url=api.base_url, timeout=timeout) as client:
        with connect_sse(client, "GET", "/inbox/stream", headers=headers, params=params) as source:
            assert source.response.status_code == 200
            if on_open is not None:
                on_open()
            for event in source.iter_sse():
                if event.event != "notification":
                    continue
                received.append((int(event.id), json.loads(event.data)))
                if len(received) == count:
                    break
    return received


def test_stream_pushes_new_notification(api, headers, store, events) -> None:  # type: ignore[no-untyped-def]
    store.apply(events.goal_created("goal-old", OWNER), events.tagged("goal-old", FAY, ACTOR, 1))
    tag = events.tagged("goal-new", FAY, ACTOR, 5)

    def publish() -> None:
        store.apply(events.goal_created("goal-new", OWNER, title="Fresh"), tag)

    # Without Last-Event-ID or ``after`` the stream starts at the current end: the old tag is not sent.
    received = read_events(api, headers(FAY), 1, on_open=publish)

    assert [item["notification_id"] for _, item in received] == [notification_id_for(tag.id, FAY)]
    assert received[0][1]["message"] == 'You were tagged on "Fresh"'
    assert received[0][0] == received[0][1]["sequence"]


def test_stream_resumes_after_last_event_id(api, headers, store, events) -> None:  # type: ignore[no-untyped-def]
    first_tags = [events.tagged(f"goal-{index}", FAY, ACTOR, 10 + index) for index in range(2)]
    for index, tag in enumerate(first_tags):
        store.apply(events.goal_created(f"goal-{index}", OWNER), tag)
    first = read_events(api, headers(FAY), 2, params={"after": "0"})
    assert [item["notification_id"] for _, item in first] == [notification_id_for(tag.id, FAY) for tag in first_tags]
    last_id = first[-1][0]

    # While the client is away: two more for Fay, one on a goal she mutes, one on a goal that turns
    # private, and one for another person.
    later_tags = [events.tagged(f"goal-later-{index}", FAY, ACTOR, 30 + index) for index in range(2)]
    for index, tag in enumerate(later_tags):
        store.apply(events.goal_created(f"goal-later-{index}", OWNER), tag)
    httpx.put(f"{api.base_url}/preferences/mutes/goals/goal-muted", headers=headers(FAY)).raise_for_status()
    store.apply(events.goal_created("goal-muted", OWNER), events.tagged("goal-muted", FAY, ACTOR, 40))
    store.apply(
        events.goal_created("goal-closing", OWNER, visibility="organisation"),
        events.followed("goal-closing", FAY, 41),
        events.check_in("goal-closing", ACTOR, 42),
        events.visibility_changed("goal-closing", "private", "organisation", OWNER, 43),
    )
    store.apply(events.goal_created("goal-other", OWNER), events.tagged("goal-other", "tina", ACTOR, 44))
    # A last one for Fay: every event the stream may send sorts before it.
    sentinel = events.tagged("goal-later-0", FAY, OWNER, 50)
    store.apply(sentinel)

    resumed = read_events(api, headers(FAY, last_event_id=str(last_id)), 3)

    expected = [notification_id_for(tag.id, FAY) for tag in (*later_tags, sentinel)]
    assert [item["notification_id"] for _, item in resumed] == expected
    ids = [event_id for event_id, _ in resumed]
    assert ids == sorted(ids)
    assert min(ids) > last_id


def test_stream_respects_push_switch(api, headers, store, events) -> None:  # type: ignore[no-untyped-def]
    httpx.patch(
        f"{api.base_url}/preferences", headers=headers(FAY), json={"channels": {"tagged": {"push": False}}}
    ).raise_for_status()
    store.apply(events.goal_created("goal-a", OWNER), events.tagged("goal-a", FAY, ACTOR, 1))
    store.apply(events.goal_created("goal-b", OWNER), events.followed("goal-b", FAY, 2), events.check_in("goal-b", ACTOR, 3))

    received = read_events(api, headers(FAY), 1, params={"after": "0"})

    assert [item["kind"] for _, item in received] == ["followed_goal_check_in"]


@pytest.mark.parametrize("value", ["abc", "-1", "1.5", "9" * 30])
def test_stream_rejects_bad_last_event_id(api, headers, value) -> None:  # type: ignore[no-untyped-def]
    response = httpx.get(f"{api.base_url}/inbox/stream", headers=headers(FAY, last_event_id=value), timeout=10)

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["header", "Last-Event-ID"]


def test_stream_needs_token(api) -> None:  # type: ignore[no-untyped-def]
    assert httpx.get(f"{api.base_url}/inbox/stream", timeout=10).status_code == 401
