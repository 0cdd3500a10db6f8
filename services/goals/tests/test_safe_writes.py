"""ETags, If-Match and Idempotency-Key on the goals API, on SQLite files and on PostgreSQL."""

from __future__ import annotations

import threading
from typing import Any, Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete

from spm_goals.application import GoalsApplication

PERIOD = {"name": "FY21-Q1", "start": "2020-02-01", "end": "2020-04-30"}
GOAL = {"title": "Grow ARR", "team": "Executive", "period": PERIOD, "occurred_at": "2020-01-20"}
KEY_RESULT = {"title": "Run campaigns", "metric": "number", "start_value": 0, "target_value": 10, "occurred_at": "2020-01-21"}

AuthHeader = Callable[..., dict[str, str]]


def max_notification_id(client: TestClient) -> int:
    return client.get("/internal/relay").json()["max_notification_id"]


def run_together(count: int, send: Callable[[int], Any]) -> list[Any]:
    """Send ``count`` requests from threads released at the same moment and return their responses."""
    barrier = threading.Barrier(count)
    responses: list[Any] = []

    def send_when_released(number: int) -> None:
        barrier.wait()
        responses.append(send(number))

    threads = [threading.Thread(target=send_when_released, args=(number,)) for number in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return responses


@pytest.fixture
def acme(auth_header: AuthHeader) -> dict[str, str]:
    return auth_header("acme", "person-1")


@pytest.fixture
def goal(backend_client: TestClient, acme: dict[str, str]) -> dict[str, Any]:
    response = backend_client.post("/goals", json=GOAL, headers=acme)
    assert response.status_code == 201, response.text
    return response.json()


def test_writes_and_reads_carry_version_etag(backend_client: TestClient, acme: dict[str, str]) -> None:
    created = backend_client.post("/goals", json=GOAL, headers=acme)
    assert created.headers["ETag"] == '"1"'
    goal_id = created.json()["goal_id"]

    added = backend_client.post(f"/goals/{goal_id}/key-results", json=KEY_RESULT, headers=acme)
    assert added.headers["ETag"] == '"2"'

    url = f"/goals/{goal_id}/key-results/{added.json()['key_result_id']}/check-ins"
    checked_in = backend_client.post(url, json={"value": 3, "occurred_at": "2020-03-01"}, headers=acme)
    assert checked_in.headers["ETag"] == '"3"'

    read = backend_client.get(f"/goals/{goal_id}", headers=acme)
    assert read.headers["ETag"] == '"3"'
    assert read.json()["version"] == 3


def test_matching_if_match_is_accepted(backend_client: TestClient, acme: dict[str, str], goal: dict[str, Any]) -> None:
    response = backend_client.post(
        f"/goals/{goal['goal_id']}/key-results", json=KEY_RESULT, headers={**acme, "If-Match": '"1"'}
    )
    assert response.status_code == 201
    assert response.headers["ETag"] == '"2"'


@pytest.mark.parametrize("if_match", ['"7"', 'W/"0"', "not-an-etag"])
def test_stale_if_match_is_rejected(
    backend_client: TestClient, acme: dict[str, str], goal: dict[str, Any], if_match: str
) -> None:
    written = max_notification_id(backend_client)
    response = backend_client.post(
        f"/goals/{goal['goal_id']}/key-results", json=KEY_RESULT, headers={**acme, "If-Match": if_match}
    )
    assert response.status_code == 412
    assert "If-Match" in response.json()["detail"]
    assert max_notification_id(backend_client) == written


def test_concurrent_writers_with_same_etag_one_wins(
    backend_client: TestClient, acme: dict[str, str], goal: dict[str, Any]
) -> None:
    url = f"/goals/{goal['goal_id']}/key-results"

    def add(number: int) -> Any:
        return backend_client.post(url, json={**KEY_RESULT, "title": f"KR {number}"}, headers={**acme, "If-Match": '"1"'})

    responses = run_together(6, add)

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201, 412, 412, 412, 412, 412]
    stored = backend_client.get(f"/goals/{goal['goal_id']}", headers=acme).json()
    assert len(stored["key_results"]) == 1
    assert stored["version"] == 2


def test_retry_with_idempotency_key_replays_response(backend_client: TestClient, acme: dict[str, str]) -> None:
    headers = {**acme, "Idempotency-Key": "create-1"}
    first = backend_client.post("/goals", json=GOAL, headers=headers)
    written = max_notification_id(backend_client)

    retry = backend_client.post("/goals", json=GOAL, headers=headers)

    assert first.status_code == 201
    assert retry.status_code == 201
    assert retry.json() == first.json()
    assert retry.headers["ETag"] == first.headers["ETag"]
    assert max_notification_id(backend_client) == written


def test_retried_check_in_replays_response(backend_client: TestClient, acme: dict[str, str], goal: dict[str, Any]) -> None:
    key_result = backend_client.post(f"/goals/{goal['goal_id']}/key-results", json=KEY_RESULT, headers=acme).json()
    url = f"/goals/{goal['goal_id']}/key-results/{key_result['key_result_id']}/check-ins"
    headers = {**acme, "Idempotency-Key": "check-in-1", "If-Match": '"2"'}
    first = backend_client.post(url, json={"value": 4, "occurred_at": "2020-03-01"}, headers=headers)
    written = max_notification_id(backend_client)

    retry = backend_client.post(url, json={"value": 4, "occurred_at": "2020-03-01"}, headers=headers)

    assert retry.status_code == 201
    assert retry.json() == first.json()
    assert max_notification_id(backend_client) == written


def test_reused_idempotency_key_with_other_body_is_rejected(backend_client: TestClient, acme: dict[str, str]) -> None:
    headers = {**acme, "Idempotency-Key": "create-1"}
    backend_client.post("/goals", json=GOAL, headers=headers)
    written = max_notification_id(backend_client)

    response = backend_client.post("/goals", json={**GOAL, "title": "Another goal"}, headers=headers)

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]
    assert "another request" in response.json()["detail"][0]["msg"]
    assert max_notification_id(backend_client) == written


def test_idempotency_key_is_scoped_per_person(backend_client: TestClient, auth_header: AuthHeader) -> None:
    first = backend_client.post("/goals", json=GOAL, headers={**auth_header("acme", "p1"), "Idempotency-Key": "k"})
    second = backend_client.post("/goals", json=GOAL, headers={**auth_header("acme", "p2"), "Idempotency-Key": "k"})
    assert first.status_code == 201
    assert second.status_code == 201
    assert second.json()["goal_id"] != first.json()["goal_id"]


@pytest.mark.parametrize("path", ["/goals", "/goals/{goal_id}/key-results"])
def test_lost_response_record_is_recovered_from_events(
    backend_client: TestClient, acme: dict[str, str], goal: dict[str, Any], path: str
) -> None:
    # A process stopping between saving the goal and storing the response leaves no stored response.
    url = path.format(goal_id=goal["goal_id"])
    body = GOAL if path == "/goals" else KEY_RESULT
    headers = {**acme, "Idempotency-Key": "lost-1"}
    first = backend_client.post(url, json=body, headers=headers)
    writes = backend_client.app.state.writes  # type: ignore[attr-defined]
    with writes.store.engine.begin() as connection:
        connection.execute(delete(writes.store.table))
    written = max_notification_id(backend_client)

    retry = backend_client.post(url, json=body, headers=headers)

    assert retry.status_code == first.status_code == 201
    assert retry.json() == first.json()
    assert retry.headers["ETag"] == first.headers["ETag"]
    assert max_notification_id(backend_client) == written


def test_concurrent_retries_write_once(backend_client: TestClient, acme: dict[str, str], goal: dict[str, Any]) -> None:
    url = f"/goals/{goal['goal_id']}/key-results"
    headers = {**acme, "Idempotency-Key": "add-kr-1"}

    responses = run_together(5, lambda _: backend_client.post(url, json=KEY_RESULT, headers=headers))

    assert [response.status_code for response in responses] == [201] * 5
    assert len({response.json()["key_result_id"] for response in responses}) == 1
    stored = backend_client.get(f"/goals/{goal['goal_id']}", headers=acme).json()
    assert len(stored["key_results"]) == 1


def test_overlong_idempotency_key_is_rejected(backend_client: TestClient, acme: dict[str, str]) -> None:
    response = backend_client.post("/goals", json=GOAL, headers={**acme, "Idempotency-Key": "k" * 201})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]


def test_request_applied_events_are_not_published(backend_client: TestClient, acme: dict[str, str]) -> None:
    from spm_goals.relay import notification_reader

    backend_client.post("/goals", json=GOAL, headers={**acme, "Idempotency-Key": "k"})
    goals: GoalsApplication = backend_client.app.state.goals  # type: ignore[attr-defined]

    batch = notification_reader(goals)(0, 10)

    assert [envelope is None for _, envelope in batch] == [False, True]


def test_concurrent_creates_with_same_key_write_once(backend_client: TestClient, acme: dict[str, str]) -> None:
    headers = {**acme, "Idempotency-Key": "create-together"}

    responses = run_together(5, lambda _: backend_client.post("/goals", json=GOAL, headers=headers))

    assert [response.status_code for response in responses] == [201] * 5
    assert len({response.json()["goal_id"] for response in responses}) == 1
    assert len(backend_client.get("/goals", headers=acme).json()) == 1
