"""Bad input of every kind gets a 4xx naming the field or the limit, and stores nothing; on both backends."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

import pytest
from fastapi.testclient import TestClient

PERIOD = {"name": "FY21-Q1", "start": "2020-02-01", "end": "2020-04-30"}
GOAL = {"title": "Grow", "team": "Exec", "period": PERIOD, "occurred_at": "2020-01-20"}
KEY_RESULT = {"title": "KR", "metric": "number", "start_value": 0, "target_value": 10, "occurred_at": "2020-01-21"}

AuthHeader = Callable[..., dict[str, str]]


@dataclass(frozen=True)
class BadRequest:
    name: str
    path: str
    body: str
    status: int
    names: str


def as_json(value: Any) -> str:
    return json.dumps(value)


CASES = [
    BadRequest("empty title", "/goals", as_json({**GOAL, "title": ""}), 422, "title"),
    BadRequest("10000-character title", "/goals", as_json({**GOAL, "title": "x" * 10_000}), 422, "title"),
    BadRequest("NaN start", "{goal}/key-results", as_json(KEY_RESULT).replace('"start_value": 0', '"start_value": NaN'), 422, "start_value"),
    BadRequest("Infinity target", "{goal}/key-results", as_json(KEY_RESULT).replace('"target_value": 10', '"target_value": Infinity'), 422, "target_value"),
    BadRequest("NaN check-in value", "{check_ins}", '{"value": NaN, "occurred_at": "2020-03-01"}', 422, "value"),
    BadRequest("target equal to start", "{goal}/key-results", as_json({**KEY_RESULT, "target_value": 0}), 422, "target_value"),
    BadRequest("reversed period", "/goals", as_json({**GOAL, "period": {**PERIOD, "start": "2020-05-01"}}), 422, "period"),
    BadRequest("parent in another org", "/goals", as_json({**GOAL, "parent_goal_id": "{foreign_id}"}), 422, "parent_goal_id"),
    BadRequest("alignment cycle", "{goal}/align", as_json({"parent_goal_id": "{child_id}"}), 422, "parent_goal_id"),
    BadRequest("unknown goal field", "/goals", as_json({**GOAL, "priority": "high"}), 422, "priority"),
    BadRequest("unknown key result field", "{goal}/key-results", as_json({**KEY_RESULT, "owner": "me"}), 422, "owner"),
    BadRequest("1 MB body", "/goals", as_json({**GOAL, "title": "x" * 1_000_000}), 413, "limit"),
    BadRequest("JSON nested 1000 deep", "/goals", '{"title": ' + "[" * 1000 + "]" * 1000 + "}", 422, "limit"),
    # A lone surrogate escape of the str is sent as the raw byte 0xff (see the surrogateescape encoding below).
    BadRequest("body not UTF-8", "/goals", as_json({**GOAL, "title": "Gr"}).replace("Gr", "Gr\udcff"), 422, "not valid UTF-8"),
    BadRequest("truncated JSON", "/goals", as_json(GOAL)[:-20], 422, "json_invalid"),
    BadRequest("key result on closed goal", "{closed}/key-results", as_json(KEY_RESULT), 409, "closed"),
    BadRequest("check-in on closed goal", "{closed_check_ins}", as_json({"value": 1, "occurred_at": "2020-03-01"}), 409, "closed"),
    BadRequest("unknown outcome", "{goal}/close", as_json({"outcome": "won"}), 422, "outcome"),
    BadRequest("confidence above 1", "{check_ins}", as_json({"value": 1, "confidence": 1.01}), 422, "confidence"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_bad_input_is_rejected_without_writing(backend_client: TestClient, auth_header: AuthHeader, case: BadRequest) -> None:
    headers = {**auth_header("acme"), "Content-Type": "application/json"}
    goal = backend_client.post("/goals", json=GOAL, headers=headers).json()
    key_result = backend_client.post(f"/goals/{goal['goal_id']}/key-results", json=KEY_RESULT, headers=headers).json()
    child = backend_client.post("/goals", json={**GOAL, "parent_goal_id": goal["goal_id"]}, headers=headers).json()
    closed = backend_client.post("/goals", json=GOAL, headers=headers).json()
    closed_key_result = backend_client.post(f"/goals/{closed['goal_id']}/key-results", json=KEY_RESULT, headers=headers).json()
    backend_client.post(f"/goals/{closed['goal_id']}/close", json={"outcome": "missed"}, headers=headers)
    foreign = backend_client.post("/goals", json=GOAL, headers=auth_header("globex")).json()
    path = case.path.format(
        goal=f"/goals/{goal['goal_id']}",
        closed=f"/goals/{closed['goal_id']}",
        check_ins=f"/goals/{goal['goal_id']}/key-results/{key_result['key_result_id']}/check-ins",
        closed_check_ins=f"/goals/{closed['goal_id']}/key-results/{closed_key_result['key_result_id']}/check-ins",
    )
    body = case.body.replace("{foreign_id}", foreign["goal_id"]).replace("{child_id}", child["goal_id"])
    written = backend_client.get("/internal/relay").json()["max_notification_id"]

    response = backend_client.post(path, content=body.encode("utf-8", "surrogateescape"), headers=headers)

    assert response.status_code == case.status, response.text[:500]
    assert case.names in json.dumps(response.json()["detail"])[:2000]
    assert backend_client.get("/internal/relay").json()["max_notification_id"] == written
