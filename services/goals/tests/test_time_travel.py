"""State as of an event time and the changes in an event-time range, on both backends."""

from __future__ import annotations

from typing import Any, Callable

import pytest
from fastapi.testclient import TestClient

GOAL = {"title": "Grow", "team": "Exec", "period": {"name": "FY21-Q1", "start": "2020-02-01", "end": "2020-04-30"}, "occurred_at": "2020-01-20T00:00:00Z"}
KEY_RESULT = {"title": "KR", "metric": "number", "start_value": 0, "target_value": 10, "occurred_at": "2020-01-25T00:00:00Z"}

AuthHeader = Callable[..., dict[str, str]]


@pytest.fixture
def history(backend_client: TestClient, auth_header: AuthHeader) -> dict[str, Any]:
    """A goal with a key result, check-ins on 2020-03-01 and 2020-02-10 (recorded in that order), closed on 2020-05-01."""
    headers = auth_header("acme")
    goal = backend_client.post("/goals", json=GOAL, headers=headers).json()
    key_result = backend_client.post(f"/goals/{goal['goal_id']}/key-results", json=KEY_RESULT, headers=headers).json()
    url = f"/goals/{goal['goal_id']}/key-results/{key_result['key_result_id']}/check-ins"
    backend_client.post(url, json={"value": 6, "occurred_at": "2020-03-01T00:00:00Z"}, headers=headers)
    backend_client.post(url, json={"value": 2, "occurred_at": "2020-02-10T00:00:00Z"}, headers=headers)
    backend_client.post(f"/goals/{goal['goal_id']}/close", json={"outcome": "missed", "occurred_at": "2020-05-01T00:00:00Z"}, headers=headers)
    return {"goal_id": goal["goal_id"], "headers": headers}


@pytest.mark.parametrize(
    ("as_of", "key_result_count", "progress", "status"),
    [
        ("2020-01-21T00:00:00Z", 0, 0.0, "active"),
        ("2020-02-15T00:00:00Z", 1, 0.2, "active"),
        ("2020-03-02T00:00:00+01:00", 1, 0.6, "active"),
        ("2020-06-01T00:00:00Z", 1, 0.6, "closed"),
    ],
)
def test_goal_as_of_event_time(
    backend_client: TestClient, history: dict[str, Any], as_of: str, key_result_count: int, progress: float, status: str
) -> None:
    response = backend_client.get(f"/goals/{history['goal_id']}", params={"as_of": as_of}, headers=history["headers"])

    assert response.status_code == 200
    goal = response.json()
    assert len(goal["key_results"]) == key_result_count
    assert goal["progress"] == pytest.approx(progress)
    assert goal["status"] == status


def test_goal_before_creation_is_not_found(backend_client: TestClient, history: dict[str, Any]) -> None:
    response = backend_client.get(f"/goals/{history['goal_id']}", params={"as_of": "2020-01-01T00:00:00Z"}, headers=history["headers"])
    assert response.status_code == 404
    assert "did not exist yet" in response.json()["detail"]


def test_as_of_without_offset_is_rejected(backend_client: TestClient, history: dict[str, Any]) -> None:
    response = backend_client.get(f"/goals/{history['goal_id']}", params={"as_of": "2020-03-01T00:00:00"}, headers=history["headers"])
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "as_of"]


def test_tree_as_of_leaves_out_later_goals(backend_client: TestClient, history: dict[str, Any]) -> None:
    later = {**GOAL, "title": "Later", "occurred_at": "2020-04-01T00:00:00Z"}
    backend_client.post("/goals", json=later, headers=history["headers"])

    before = backend_client.get("/goals/tree", params={"as_of": "2020-02-15T00:00:00Z"}, headers=history["headers"]).json()
    after = backend_client.get("/goals/tree", params={"as_of": "2020-04-02T00:00:00Z"}, headers=history["headers"]).json()

    assert [node["title"] for node in before] == ["Grow"]
    assert before[0]["progress"] == pytest.approx(0.2)
    assert sorted(node["title"] for node in after) == ["Grow", "Later"]


def test_changes_lists_events_in_event_time_range(backend_client: TestClient, history: dict[str, Any]) -> None:
    response = backend_client.get(
        f"/goals/{history['goal_id']}/changes",
        params={"from": "2020-02-01T00:00:00Z", "to": "2020-03-01T00:00:00Z"},
        headers=history["headers"],
    )

    assert response.status_code == 200
    changes = response.json()
    assert [change["type"] for change in changes] == ["CheckInRecorded", "CheckInRecorded"]
    assert [change["data"]["value"] for change in changes] == [2, 6]
    assert [change["version"] for change in changes] == [4, 3]
    assert all(change["actor_id"] == "person-1" for change in changes)


def test_changes_without_range_lists_every_event(backend_client: TestClient, history: dict[str, Any]) -> None:
    changes = backend_client.get(f"/goals/{history['goal_id']}/changes", headers=history["headers"]).json()
    assert [change["type"] for change in changes] == [
        "ObjectiveCreated", "KeyResultAdded", "CheckInRecorded", "CheckInRecorded", "ObjectiveClosed"
    ]
    assert changes[-1]["data"] == {"outcome": "missed"}


def test_changes_of_other_org_goal_are_not_found(backend_client: TestClient, history: dict[str, Any], auth_header: AuthHeader) -> None:
    response = backend_client.get(f"/goals/{history['goal_id']}/changes", headers=auth_header("globex"))
    assert response.status_code == 404
