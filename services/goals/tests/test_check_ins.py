"""Check-in confidence, pace status and history: the aggregate, the API on both backends, and the relay payload."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any, Callable

import pytest
from fastapi.testclient import TestClient

from spm_goals.objective import Objective, ObjectiveError, Period, status_from_pace
from spm_goals.relay import envelope_for

# 100 days from 2020-01-01 to 2020-04-09 inclusive, so a day is 1% of the period.
PERIOD = Period("H1", date(2020, 1, 1), date(2020, 4, 9))
PLANNED_AT = datetime(2019, 12, 20, tzinfo=timezone.utc)
HALFWAY = datetime(2020, 2, 19, 12, tzinfo=timezone.utc)
GOAL = {"title": "Grow", "team": "Exec", "period": {"name": "H1", "start": "2020-01-01", "end": "2020-04-09"}, "occurred_at": "2019-12-20"}
KEY_RESULT = {"title": "Sign customers", "metric": "number", "start_value": 0, "target_value": 100, "occurred_at": "2019-12-20"}

AuthHeader = Callable[..., dict[str, str]]


def objective_with_key_result() -> tuple[Objective, Any]:
    objective = Objective.create(
        org_id="acme", owner_id="o1", team="Exec", contributing_teams=(), period=PERIOD, parent_goal_id=None,
        title="Grow", external_ref=None, occurred_at=PLANNED_AT, actor_id="a1",
    )
    key_result = objective.add_key_result(
        title="KR", metric="number", start_value=0, target_value=100, external_ref=None, occurred_at=PLANNED_AT, actor_id="a1"
    )
    return objective, key_result


@pytest.mark.parametrize(
    ("progress", "expected", "status"),
    [
        (0.5, 0.5, "on_track"),
        (0.41, 0.5, "on_track"),
        (0.39, 0.5, "at_risk"),
        (0.25, 0.5, "at_risk"),
        (0.24, 0.5, "off_track"),
        (1.3, 0.5, "on_track"),
        (0.0, 0.0, "on_track"),
    ],
)
def test_status_from_pace_thresholds(progress: float, expected: float, status: str) -> None:
    assert status_from_pace(progress, expected) == status


def test_check_in_status_follows_pace() -> None:
    objective, key_result = objective_with_key_result()
    on_track = objective.record_check_in(
        key_result_id=key_result.key_result_id, value=48, comment="", occurred_at=HALFWAY, actor_id="a1"
    )
    off_track = objective.record_check_in(
        key_result_id=key_result.key_result_id, value=10, comment="", occurred_at=HALFWAY, actor_id="a1"
    )
    assert on_track.status == "on_track"
    assert off_track.status == "off_track"
    assert not off_track.status_overridden


def test_manual_status_overrides_pace() -> None:
    objective, key_result = objective_with_key_result()
    check_in = objective.record_check_in(
        key_result_id=key_result.key_result_id, value=10, comment="", occurred_at=HALFWAY, actor_id="a1",
        status="on_track", confidence=0.8,
    )
    assert check_in.status == "on_track"
    assert check_in.status_overridden
    assert check_in.confidence == 0.8


@pytest.mark.parametrize(("field_name", "extra"), [("confidence", {"confidence": 1.5}), ("confidence", {"confidence": float("nan")}), ("status", {"status": "late"})])
def test_invalid_confidence_or_status_is_rejected(field_name: str, extra: dict[str, Any]) -> None:
    objective, key_result = objective_with_key_result()
    with pytest.raises(ObjectiveError) as raised:
        objective.record_check_in(
            key_result_id=key_result.key_result_id, value=10, comment="", occurred_at=HALFWAY, actor_id="a1", **extra
        )
    assert raised.value.field_name == field_name
    assert key_result.check_ins == []


def test_relay_publishes_confidence_and_status() -> None:
    objective, key_result = objective_with_key_result()
    objective.record_check_in(
        key_result_id=key_result.key_result_id, value=30, comment="", occurred_at=HALFWAY, actor_id="a1", confidence=0.4
    )
    envelope = envelope_for(objective.collect_events()[-1], lambda _: objective)
    assert envelope is not None
    assert envelope.data["confidence"] == 0.4
    assert envelope.data["status"] == "at_risk"


def test_check_in_history_lists_every_check_in(backend_client: TestClient, auth_header: AuthHeader) -> None:
    headers = auth_header("acme")
    goal_id = backend_client.post("/goals", json=GOAL, headers=headers).json()["goal_id"]
    key_result_id = backend_client.post(f"/goals/{goal_id}/key-results", json=KEY_RESULT, headers=headers).json()["key_result_id"]
    url = f"/goals/{goal_id}/key-results/{key_result_id}/check-ins"
    later = backend_client.post(url, json={"value": 10, "occurred_at": "2020-02-19T12:00:00Z", "confidence": 0.3}, headers=headers)
    earlier = backend_client.post(
        url, json={"value": 5, "occurred_at": "2020-01-11T00:00:00Z", "status": "at_risk", "comment": "slow start"}, headers=headers
    )

    assert later.json()["status"] == "off_track"
    assert later.json()["status_source"] == "pace"
    assert earlier.json()["status"] == "at_risk"
    assert earlier.json()["status_source"] == "manual"

    history = backend_client.get(url, headers=headers)
    assert history.status_code == 200
    assert [item["value"] for item in history.json()] == [5, 10]
    assert [item["confidence"] for item in history.json()] == [None, 0.3]
    assert [item["comment"] for item in history.json()] == ["slow start", ""]
    goal = backend_client.get(f"/goals/{goal_id}", headers=headers).json()
    assert goal["key_results"][0]["status"] == "off_track"


def test_unknown_key_result_history_not_found(backend_client: TestClient, auth_header: AuthHeader) -> None:
    headers = auth_header("acme")
    goal_id = backend_client.post("/goals", json=GOAL, headers=headers).json()["goal_id"]
    response = backend_client.get(f"/goals/{goal_id}/key-results/{goal_id}/check-ins", headers=headers)
    assert response.status_code == 404


@pytest.mark.parametrize(("field_name", "extra"), [("confidence", {"confidence": -0.1}), ("confidence", {"confidence": 2}), ("status", {"status": "green"})])
def test_check_in_api_rejects_bad_confidence_or_status(
    client: TestClient, auth_header: AuthHeader, field_name: str, extra: dict[str, Any]
) -> None:
    headers = auth_header("acme")
    goal_id = client.post("/goals", json=GOAL, headers=headers).json()["goal_id"]
    key_result_id = client.post(f"/goals/{goal_id}/key-results", json=KEY_RESULT, headers=headers).json()["key_result_id"]
    written = client.get("/internal/relay").json()["max_notification_id"]

    response = client.post(
        f"/goals/{goal_id}/key-results/{key_result_id}/check-ins", json={"value": 1, "occurred_at": "2020-02-01", **extra}, headers=headers
    )

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] == field_name
    assert client.get("/internal/relay").json()["max_notification_id"] == written
