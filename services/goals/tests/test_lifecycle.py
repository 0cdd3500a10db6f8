"""Goal lifecycle: draft, active, closed with an outcome, archived, and reopened; on the aggregate and the API on both backends."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any, Callable

import pytest
from fastapi.testclient import TestClient

from spm_events.registry import parse_payload
from spm_goals.objective import Objective, ObjectiveError, ObjectiveStateError, Period
from spm_goals.relay import envelope_for

Q1 = Period("FY21-Q1", date(2020, 2, 1), date(2020, 4, 30))
PLANNED_AT = datetime(2020, 1, 20, tzinfo=timezone.utc)
AFTER_Q1 = datetime(2020, 5, 2, tzinfo=timezone.utc)
GOAL = {"title": "Grow", "team": "Exec", "period": {"name": "FY21-Q1", "start": "2020-02-01", "end": "2020-04-30"}, "occurred_at": "2020-01-20"}
KEY_RESULT = {"title": "KR", "metric": "number", "start_value": 0, "target_value": 10, "occurred_at": "2020-01-21"}

AuthHeader = Callable[..., dict[str, str]]


def new_objective(status: str = "active") -> Objective:
    return Objective.create(
        org_id="acme", owner_id="o1", team="Exec", contributing_teams=(), period=Q1, parent_goal_id=None,
        title="Grow", external_ref=None, occurred_at=PLANNED_AT, actor_id="a1", status=status,
    )


def test_goal_moves_through_lifecycle() -> None:
    objective = new_objective("draft")
    objective.activate(PLANNED_AT, "a1")
    assert objective.status == "active"
    objective.close("partially", AFTER_Q1, "a1")
    assert (objective.status, objective.outcome) == ("closed", "partially")
    objective.reopen(AFTER_Q1, "a1")
    assert (objective.status, objective.outcome) == ("active", None)
    objective.close("missed", AFTER_Q1, "a1")
    objective.archive(AFTER_Q1, "a1")
    assert (objective.status, objective.outcome) == ("archived", "missed")


@pytest.mark.parametrize(
    ("status_path", "command"),
    [
        (["draft"], lambda goal: goal.close("achieved", AFTER_Q1, "a1")),
        (["active"], lambda goal: goal.activate(AFTER_Q1, "a1")),
        (["active"], lambda goal: goal.archive(AFTER_Q1, "a1")),
        (["active"], lambda goal: goal.reopen(AFTER_Q1, "a1")),
    ],
)
def test_invalid_transition_is_rejected(status_path: list[str], command: Callable[[Objective], None]) -> None:
    objective = new_objective(status_path[0])
    with pytest.raises(ObjectiveStateError) as raised:
        command(objective)
    assert raised.value.status == status_path[0]
    assert status_path[0] in str(raised.value)


def test_unknown_outcome_is_rejected() -> None:
    objective = new_objective()
    with pytest.raises(ObjectiveError) as raised:
        objective.close("won", AFTER_Q1, "a1")
    assert raised.value.field_name == "outcome"


def test_closed_goal_rejects_changes() -> None:
    objective = new_objective()
    key_result = objective.add_key_result(
        title="KR", metric="number", start_value=0, target_value=10, external_ref=None, occurred_at=PLANNED_AT, actor_id="a1"
    )
    objective.close("missed", AFTER_Q1, "a1")
    with pytest.raises(ObjectiveStateError, match="closed"):
        objective.add_key_result(
            title="KR2", metric="number", start_value=0, target_value=1, external_ref=None, occurred_at=AFTER_Q1, actor_id="a1"
        )
    with pytest.raises(ObjectiveStateError, match="closed"):
        objective.record_check_in(
            key_result_id=key_result.key_result_id, value=3, comment="", occurred_at=datetime(2020, 3, 1, tzinfo=timezone.utc), actor_id="a1"
        )
    assert len(objective.key_results) == 1


def test_relay_publishes_status_changes() -> None:
    objective = new_objective("draft")
    objective.activate(PLANNED_AT, "a1")
    objective.close("achieved", AFTER_Q1, "a2")
    created, activated, closed = objective.collect_events()

    envelopes = [envelope_for(stored, lambda _: objective) for stored in (created, activated, closed)]

    assert [envelope.type for envelope in envelopes if envelope] == [
        "spm.goals.GoalCreated.v1", "spm.goals.GoalStatusChanged.v1", "spm.goals.GoalStatusChanged.v1"
    ]
    assert envelopes[0] is not None and envelopes[0].data["status"] == "draft"
    closed_envelope = envelopes[2]
    assert closed_envelope is not None
    assert closed_envelope.time == AFTER_Q1
    assert closed_envelope.actorid == "a2"
    payload = parse_payload(closed_envelope)
    assert payload.model_dump() == {"goal_id": str(objective.id), "status": "closed", "previous_status": "active", "outcome": "achieved"}


def test_lifecycle_endpoints_change_status(backend_client: TestClient, auth_header: AuthHeader) -> None:
    headers = auth_header("acme")
    goal = backend_client.post("/goals", json={**GOAL, "status": "draft"}, headers=headers).json()
    assert goal["status"] == "draft"
    goal_url = f"/goals/{goal['goal_id']}"

    activated = backend_client.post(f"{goal_url}/activate", headers={**headers, "If-Match": '"1"'})
    closed = backend_client.post(f"{goal_url}/close", json={"outcome": "achieved", "occurred_at": "2020-05-01"}, headers=headers)
    reopened = backend_client.post(f"{goal_url}/reopen", json={}, headers=headers)
    closed_again = backend_client.post(f"{goal_url}/close", json={"outcome": "missed"}, headers={**headers, "If-Match": '"4"'})
    archived = backend_client.post(f"{goal_url}/archive", headers=headers)

    assert [response.status_code for response in (activated, closed, reopened, closed_again, archived)] == [200] * 5
    assert activated.json()["status"] == "active"
    assert closed.json()["outcome"] == "achieved"
    assert reopened.json()["outcome"] is None
    assert archived.json()["status"] == "archived"
    assert archived.json()["outcome"] == "missed"
    assert archived.headers["ETag"] == '"6"'


def test_imported_goal_is_active_by_default(backend_client: TestClient, auth_header: AuthHeader) -> None:
    goal = backend_client.post("/goals", json=GOAL, headers=auth_header("acme")).json()
    assert goal["status"] == "active"
    assert goal["outcome"] is None


def test_closing_keeps_key_results_and_check_ins(backend_client: TestClient, auth_header: AuthHeader) -> None:
    headers = auth_header("acme")
    goal_id = backend_client.post("/goals", json=GOAL, headers=headers).json()["goal_id"]
    key_result = backend_client.post(f"/goals/{goal_id}/key-results", json=KEY_RESULT, headers=headers).json()
    check_ins_url = f"/goals/{goal_id}/key-results/{key_result['key_result_id']}/check-ins"
    backend_client.post(check_ins_url, json={"value": 5, "occurred_at": "2020-03-01"}, headers=headers)

    closed = backend_client.post(f"/goals/{goal_id}/close", json={"outcome": "partially"}, headers=headers).json()

    assert closed["progress"] == 0.5
    assert closed["key_results"][0]["check_in_count"] == 1
    assert len(backend_client.get(check_ins_url, headers=headers).json()) == 1


@pytest.mark.parametrize("final_action", ["close", "archive"])
def test_writes_on_closed_goal_conflict(backend_client: TestClient, auth_header: AuthHeader, final_action: str) -> None:
    headers = auth_header("acme")
    goal_id = backend_client.post("/goals", json=GOAL, headers=headers).json()["goal_id"]
    key_result = backend_client.post(f"/goals/{goal_id}/key-results", json=KEY_RESULT, headers=headers).json()
    backend_client.post(f"/goals/{goal_id}/close", json={"outcome": "missed"}, headers=headers)
    if final_action == "archive":
        backend_client.post(f"/goals/{goal_id}/archive", headers=headers)
    state = "closed" if final_action == "close" else "archived"
    written = backend_client.get("/internal/relay").json()["max_notification_id"]

    added = backend_client.post(f"/goals/{goal_id}/key-results", json=KEY_RESULT, headers=headers)
    checked_in = backend_client.post(
        f"/goals/{goal_id}/key-results/{key_result['key_result_id']}/check-ins", json={"value": 1, "occurred_at": "2020-03-01"}, headers=headers
    )

    for response in (added, checked_in):
        assert response.status_code == 409
        assert response.json()["status"] == state
        assert f"is {state}" in response.json()["detail"]
    assert backend_client.get("/internal/relay").json()["max_notification_id"] == written


@pytest.mark.parametrize(("path", "body"), [("activate", None), ("archive", None), ("reopen", None), ("close", {"outcome": "achieved", "occurred_at": "2020-05-01"})])
def test_invalid_transition_endpoint_conflicts(backend_client: TestClient, auth_header: AuthHeader, path: str, body: Any) -> None:
    headers = auth_header("acme")
    goal_id = backend_client.post("/goals", json={**GOAL, "status": "draft"} if path == "close" else GOAL, headers=headers).json()["goal_id"]
    response = backend_client.post(f"/goals/{goal_id}/{path}", json=body, headers=headers)
    assert response.status_code == 409
    assert response.json()["status"] in ("draft", "active")


def test_lifecycle_endpoint_honours_if_match(client: TestClient, auth_header: AuthHeader) -> None:
    headers = auth_header("acme")
    goal_id = client.post("/goals", json=GOAL, headers=headers).json()["goal_id"]
    response = client.post(f"/goals/{goal_id}/close", json={"outcome": "missed"}, headers={**headers, "If-Match": '"5"'})
    assert response.status_code == 412
    assert client.get(f"/goals/{goal_id}", headers=headers).json()["status"] == "active"


def test_close_needs_known_outcome(client: TestClient, auth_header: AuthHeader) -> None:
    headers = auth_header("acme")
    goal_id = client.post("/goals", json=GOAL, headers=headers).json()["goal_id"]
    response = client.post(f"/goals/{goal_id}/close", json={"outcome": "won"}, headers=headers)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] == "outcome"


def test_lifecycle_retry_with_idempotency_key_replays(client: TestClient, auth_header: AuthHeader) -> None:
    headers = {**auth_header("acme"), "Idempotency-Key": "close-1"}
    goal_id = client.post("/goals", json=GOAL, headers=auth_header("acme")).json()["goal_id"]
    first = client.post(f"/goals/{goal_id}/close", json={"outcome": "missed"}, headers=headers)
    retry = client.post(f"/goals/{goal_id}/close", json={"outcome": "missed"}, headers=headers)
    assert first.status_code == retry.status_code == 200
    assert retry.json() == first.json()
