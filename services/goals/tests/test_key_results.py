"""Key results with units, weights and directions: the aggregate, the API on both backends, and the relay payload."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timezone
from typing import Any, Callable

import pytest
from fastapi.testclient import TestClient

from spm_goals.application import GoalsApplication
from spm_goals.objective import Objective, ObjectiveError, Period
from spm_goals.relay import envelope_for

Q1 = Period("FY21-Q1", date(2020, 2, 1), date(2020, 4, 30))
PLANNED_AT = datetime(2020, 1, 20, tzinfo=timezone.utc)
IN_Q1 = datetime(2020, 3, 2, tzinfo=timezone.utc)
GOAL = {"title": "Grow ARR", "team": "Executive", "period": {"name": "FY21-Q1", "start": "2020-02-01", "end": "2020-04-30"}, "occurred_at": "2020-01-20"}


def new_objective() -> Objective:
    return Objective.create(
        org_id="acme", owner_id="o1", team="Exec", contributing_teams=(), period=Q1, parent_goal_id=None,
        title="Grow", external_ref=None, occurred_at=PLANNED_AT, actor_id="a1",
    )


def add(objective: Objective, start: float, target: float, weight: float = 1.0, unit: str | None = None) -> uuid.UUID:
    key_result = objective.add_key_result(
        title="KR", metric="currency", start_value=start, target_value=target, external_ref=None,
        occurred_at=PLANNED_AT, actor_id="a1", unit=unit, weight=weight,
    )
    return key_result.key_result_id


def check_in(objective: Objective, key_result_id: uuid.UUID, value: float) -> None:
    objective.record_check_in(key_result_id=key_result_id, value=value, comment="", occurred_at=IN_Q1, actor_id="a1")


def test_goal_progress_is_weighted_mean() -> None:
    objective = new_objective()
    heavy = add(objective, 0, 10, weight=3)
    light = add(objective, 0, 10, weight=1)
    check_in(objective, heavy, 10)
    check_in(objective, light, 2)
    assert objective.progress == pytest.approx((3 * 1.0 + 1 * 0.2) / 4)


def test_weighted_progress_keeps_over_achievement() -> None:
    objective = new_objective()
    key_result_id = add(objective, 0, 10, weight=2)
    check_in(objective, key_result_id, 15)
    assert objective.progress == pytest.approx(1.5)


def test_direction_follows_start_and_target() -> None:
    objective = new_objective()
    falling = objective.key_result(add(objective, 20, 5))
    rising = objective.key_result(add(objective, 5, 20))
    assert falling.direction == "decrease"
    assert rising.direction == "increase"


@pytest.mark.parametrize("weight", [0.0, -1.0, float("nan"), float("inf"), 1001.0])
def test_invalid_weight_is_rejected(weight: float) -> None:
    objective = new_objective()
    with pytest.raises(ObjectiveError) as raised:
        add(objective, 0, 10, weight=weight)
    assert raised.value.field_name == "weight"
    assert objective.key_results == {}


def test_relay_publishes_unit_and_weight() -> None:
    objective = new_objective()
    add(objective, 100, 50, weight=2.5, unit="ms")
    _, added = objective.collect_events()
    envelope = envelope_for(added, lambda _: objective)
    assert envelope is not None
    assert envelope.data["unit"] == "ms"
    assert envelope.data["weight"] == 2.5


def test_key_result_api_returns_unit_weight_direction(
    backend_client: TestClient, auth_header: Callable[..., dict[str, str]]
) -> None:
    headers = auth_header("acme")
    goal_id = backend_client.post("/goals", json=GOAL, headers=headers).json()["goal_id"]
    body: dict[str, Any] = {"title": "Cut latency", "metric": "number", "start_value": 200, "target_value": 100, "unit": "ms", "weight": 3}
    added = backend_client.post(f"/goals/{goal_id}/key-results", json=body, headers=headers)
    default = backend_client.post(
        f"/goals/{goal_id}/key-results",
        json={"title": "Ship", "metric": "milestone", "start_value": 0, "target_value": 1},
        headers=headers,
    )

    assert added.status_code == 201
    assert added.json()["unit"] == "ms"
    assert added.json()["weight"] == 3
    assert added.json()["direction"] == "decrease"
    assert default.json()["unit"] is None
    assert default.json()["weight"] == 1
    assert default.json()["direction"] == "increase"

    url = f"/goals/{goal_id}/key-results/{added.json()['key_result_id']}/check-ins"
    backend_client.post(url, json={"value": 150, "occurred_at": "2020-03-01"}, headers=headers)
    goal = backend_client.get(f"/goals/{goal_id}", headers=headers).json()
    assert goal["progress"] == pytest.approx(0.5 * 3 / 4)


@pytest.mark.parametrize("weight", [0, -2, 1001, "heavy"])
def test_key_result_api_rejects_bad_weight(client: TestClient, auth_header: Callable[..., dict[str, str]], weight: Any) -> None:
    headers = auth_header("acme")
    goal_id = client.post("/goals", json=GOAL, headers=headers).json()["goal_id"]
    goals: GoalsApplication = client.app.state.goals  # type: ignore[attr-defined]
    written = goals.max_notification_id()

    response = client.post(
        f"/goals/{goal_id}/key-results",
        json={"title": "KR", "metric": "number", "start_value": 0, "target_value": 1, "weight": weight},
        headers=headers,
    )

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] == "weight"
    assert goals.max_notification_id() == written
