"""The goals HTTP API against SQLite files: happy paths, bad input, and proof that rejected requests write nothing."""

from __future__ import annotations

import threading
import uuid
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable

import pytest
from fastapi.testclient import TestClient

from spm_events.auth import issue_token
from spm_goals.application import GoalsApplication

AuthHeader = Callable[..., dict[str, str]]

PERIOD = {"name": "FY21-Q1", "start": "2020-02-01", "end": "2020-04-30"}


def goal_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"title": "Grow ARR consistently", "team": "Executive", "period": PERIOD, "occurred_at": "2020-01-20"}
    body.update(overrides)
    return body


def key_result_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"title": "Run campaigns", "metric": "number", "start_value": 0, "target_value": 10}
    body.update(overrides)
    return body


def max_notification_id(client: TestClient) -> int:
    return client.get("/internal/relay").json()["max_notification_id"]


def goals_app(client: TestClient) -> GoalsApplication:
    return client.app.state.goals  # type: ignore[attr-defined]


def create_goal(client: TestClient, headers: dict[str, str], **overrides: Any) -> dict[str, Any]:
    response = client.post("/goals", json=goal_body(**overrides), headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def add_key_result(client: TestClient, headers: dict[str, str], goal_id: str, **overrides: Any) -> dict[str, Any]:
    response = client.post(f"/goals/{goal_id}/key-results", json=key_result_body(**overrides), headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def check_in_url(goal_id: str, key_result_id: str) -> str:
    return f"/goals/{goal_id}/key-results/{key_result_id}/check-ins"


def error_fields(response: Any) -> list[str]:
    return [str(error["loc"][-1]) for error in response.json()["detail"]]


@pytest.fixture
def acme(auth_header: AuthHeader) -> dict[str, str]:
    return auth_header("acme", "person-1")


@pytest.fixture
def key_result(client: TestClient, acme: dict[str, str]) -> dict[str, Any]:
    """A goal of acme with one key result from 0 to 10, as returned by the key-result endpoint."""
    goal = create_goal(client, acme, external_ref="CEO-1")
    return add_key_result(client, acme, goal["goal_id"], external_ref="CEO-1.KR1")


def test_healthz_needs_no_token(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_create_goal_returns_goal(client: TestClient, acme: dict[str, str]) -> None:
    response = client.post(
        "/goals",
        json=goal_body(contributing_teams=["Sales"], external_ref="CEO-1", occurred_at="2020-01-20T10:00:00+01:00"),
        headers=acme,
    )
    assert response.status_code == 201
    goal = response.json()
    assert uuid.UUID(goal["goal_id"])
    assert goal["org_id"] == "acme"
    assert goal["title"] == "Grow ARR consistently"
    assert goal["owner_id"] == "person-1"
    assert goal["team"] == "Executive"
    assert goal["contributing_teams"] == ["Sales"]
    assert goal["period"] == PERIOD
    assert goal["parent_goal_id"] is None
    assert goal["external_ref"] == "CEO-1"
    assert goal["progress"] == 0.0
    assert goal["version"] == 1
    assert goal["key_results"] == []


def test_admin_creates_goal_for_another_owner(client: TestClient, auth_header: AuthHeader) -> None:
    goal = create_goal(client, auth_header("acme", "admin-1", admin=True), owner_id="person-9")
    assert goal["owner_id"] == "person-9"


def test_creating_a_goal_one_neither_owns_nor_co_owns_is_forbidden(client: TestClient, acme: dict[str, str]) -> None:
    response = client.post("/goals", json=goal_body(owner_id="person-9"), headers=acme)
    assert response.status_code == 403
    assert "co_owner_ids" in response.json()["detail"]
    assert client.get("/goals", headers=acme).json() == []


def test_co_owner_creates_goal_for_another_owner(client: TestClient, acme: dict[str, str]) -> None:
    goal = create_goal(client, acme, owner_id="person-9", co_owner_ids=["person-1"])
    assert (goal["owner_id"], goal["co_owner_ids"]) == ("person-9", ["person-1"])


def test_create_goal_without_event_time_uses_now(client: TestClient, acme: dict[str, str]) -> None:
    body = goal_body()
    del body["occurred_at"]
    before = datetime.now(timezone.utc)
    goal = client.post("/goals", json=body, headers=acme).json()
    created = goals_app(client).get_objective("acme", uuid.UUID(goal["goal_id"])).created_at
    assert before <= created <= datetime.now(timezone.utc)


def test_repeated_external_ref_returns_existing_goal(client: TestClient, acme: dict[str, str]) -> None:
    first = create_goal(client, acme, external_ref="CEO-1")
    written = max_notification_id(client)
    response = client.post("/goals", json=goal_body(external_ref="CEO-1", title="Another title"), headers=acme)
    assert response.status_code == 200
    assert response.json() == first
    assert max_notification_id(client) == written


def test_external_ref_scoped_per_org(
    client: TestClient, acme: dict[str, str], auth_header: AuthHeader
) -> None:
    ours = create_goal(client, acme, external_ref="CEO-1")
    response = client.post("/goals", json=goal_body(external_ref="CEO-1"), headers=auth_header("globex"))
    assert response.status_code == 201
    assert response.json()["goal_id"] != ours["goal_id"]
    assert response.json()["org_id"] == "globex"


def test_parent_goal_in_same_org_is_linked(client: TestClient, acme: dict[str, str]) -> None:
    parent = create_goal(client, acme, title="Parent")
    child = create_goal(client, acme, title="Child", parent_goal_id=parent["goal_id"])
    assert child["parent_goal_id"] == parent["goal_id"]


@pytest.mark.parametrize("parent_org", ["acme", "globex"])
def test_unknown_or_foreign_parent_goal_is_rejected(
    client: TestClient, acme: dict[str, str], auth_header: AuthHeader, parent_org: str
) -> None:
    if parent_org == "acme":
        parent_goal_id = str(uuid.uuid4())
    else:
        parent_goal_id = create_goal(client, auth_header("globex"))["goal_id"]
    written = max_notification_id(client)
    response = client.post("/goals", json=goal_body(parent_goal_id=parent_goal_id), headers=acme)
    assert response.status_code == 422
    assert error_fields(response) == ["parent_goal_id"]
    assert max_notification_id(client) == written


def test_add_key_result_returns_key_result(client: TestClient, acme: dict[str, str]) -> None:
    goal = create_goal(client, acme)
    response = client.post(
        f"/goals/{goal['goal_id']}/key-results",
        json=key_result_body(metric="percent", start_value=20, target_value=5, external_ref="KR1"),
        headers=acme,
    )
    assert response.status_code == 201
    key_result = response.json()
    assert key_result["goal_id"] == goal["goal_id"]
    assert key_result["version"] == 2
    assert uuid.UUID(key_result["key_result_id"])
    assert key_result["metric"] == "percent"
    assert key_result["start_value"] == 20
    assert key_result["target_value"] == 5
    assert key_result["current_value"] == 20
    assert key_result["progress"] == 0.0
    assert key_result["external_ref"] == "KR1"
    assert key_result["check_in_count"] == 0
    assert key_result["last_check_in_at"] is None


def test_repeated_key_result_ref_returns_existing(client: TestClient, acme: dict[str, str]) -> None:
    goal = create_goal(client, acme)
    first = add_key_result(client, acme, goal["goal_id"], external_ref="KR1")
    written = max_notification_id(client)
    response = client.post(
        f"/goals/{goal['goal_id']}/key-results", json=key_result_body(external_ref="KR1", title="Other"), headers=acme
    )
    assert response.status_code == 200
    assert response.json() == first
    assert max_notification_id(client) == written


def test_check_in_returns_progress(client: TestClient, acme: dict[str, str], key_result: dict[str, Any]) -> None:
    url = check_in_url(key_result["goal_id"], key_result["key_result_id"])
    response = client.post(url, json={"value": 12.5, "comment": "ahead", "occurred_at": "2020-03-02T11:30:00+02:00"}, headers=acme)
    assert response.status_code == 201
    check_in = response.json()
    assert uuid.UUID(check_in["check_in_id"])
    assert check_in["key_result_id"] == key_result["key_result_id"]
    assert check_in["goal_id"] == key_result["goal_id"]
    assert check_in["value"] == 12.5
    assert check_in["progress"] == 1.25
    assert check_in["occurred_at"] == "2020-03-02T09:30:00+00:00"

    goal = client.get(f"/goals/{key_result['goal_id']}", headers=acme).json()
    assert goal["version"] == 3
    assert goal["progress"] == 1.25
    assert goal["key_results"][0]["current_value"] == 12.5
    assert goal["key_results"][0]["check_in_count"] == 1
    assert goal["key_results"][0]["last_check_in_at"] == "2020-03-02T09:30:00+00:00"


def test_list_goals_own_org_sorted(client: TestClient, acme: dict[str, str], auth_header: AuthHeader) -> None:
    create_goal(client, acme, title="Zebra")
    create_goal(client, acme, title="Beta", external_ref="B-2")
    create_goal(client, acme, title="Alpha")
    create_goal(client, acme, title="Gamma", external_ref="A-1")
    create_goal(client, auth_header("globex"), title="Foreign")
    response = client.get("/goals", headers=acme)
    assert response.status_code == 200
    goals = response.json()
    assert [goal["title"] for goal in goals] == ["Gamma", "Beta", "Alpha", "Zebra"]
    assert {goal["org_id"] for goal in goals} == {"acme"}


def test_list_goals_includes_key_results_and_progress(
    client: TestClient, acme: dict[str, str], key_result: dict[str, Any]
) -> None:
    client.post(check_in_url(key_result["goal_id"], key_result["key_result_id"]), json={"value": 5, "occurred_at": "2020-03-01"}, headers=acme)
    (goal,) = client.get("/goals", headers=acme).json()
    assert goal["progress"] == 0.5
    assert [item["key_result_id"] for item in goal["key_results"]] == [key_result["key_result_id"]]


def test_goal_of_other_org_is_not_found(client: TestClient, acme: dict[str, str], auth_header: AuthHeader, key_result: dict[str, Any]) -> None:
    globex = auth_header("globex")
    goal_id, key_result_id = key_result["goal_id"], key_result["key_result_id"]
    written = max_notification_id(client)
    assert client.get(f"/goals/{goal_id}", headers=globex).status_code == 404
    assert client.post(f"/goals/{goal_id}/key-results", json=key_result_body(), headers=globex).status_code == 404
    response = client.post(check_in_url(goal_id, key_result_id), json={"value": 1, "occurred_at": "2020-03-01"}, headers=globex)
    assert response.status_code == 404
    assert "not found" in response.json()["detail"]
    assert max_notification_id(client) == written
    assert client.get("/goals", headers=globex).json() == []


def test_unknown_goal_is_not_found(client: TestClient, acme: dict[str, str]) -> None:
    missing = uuid.uuid4()
    assert client.get(f"/goals/{missing}", headers=acme).status_code == 404
    assert client.post(f"/goals/{missing}/key-results", json=key_result_body(), headers=acme).status_code == 404
    assert max_notification_id(client) == 0


def test_unknown_key_result_is_not_found(client: TestClient, acme: dict[str, str], key_result: dict[str, Any]) -> None:
    written = max_notification_id(client)
    response = client.post(check_in_url(key_result["goal_id"], str(uuid.uuid4())), json={"value": 1, "occurred_at": "2020-03-01"}, headers=acme)
    assert response.status_code == 404
    assert max_notification_id(client) == written


@pytest.mark.parametrize("raw_value", [b"NaN", b"Infinity", b"-Infinity", b"1e999"])
def test_non_finite_check_in_value_is_rejected(
    client: TestClient, acme: dict[str, str], key_result: dict[str, Any], raw_value: bytes
) -> None:
    written = max_notification_id(client)
    response = client.post(
        check_in_url(key_result["goal_id"], key_result["key_result_id"]),
        content=b'{"value": ' + raw_value + b', "occurred_at": "2020-03-01"}',
        headers={**acme, "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert error_fields(response) == ["value"]
    assert max_notification_id(client) == written


@pytest.mark.parametrize("field_name", ["start_value", "target_value"])
def test_non_finite_key_result_bound_is_rejected(client: TestClient, acme: dict[str, str], field_name: str) -> None:
    goal = create_goal(client, acme)
    written = max_notification_id(client)
    body = f'{{"title": "t", "metric": "number", "start_value": 0, "target_value": 1, "{field_name}": NaN}}'
    response = client.post(
        f"/goals/{goal['goal_id']}/key-results",
        content=body.replace(f'"{field_name}": 0, ', "").replace(f'"{field_name}": 1, ', "").encode(),
        headers={**acme, "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert error_fields(response) == [field_name]
    assert max_notification_id(client) == written


def test_unmeasurable_values_are_rejected(client: TestClient, acme: dict[str, str]) -> None:
    goal = create_goal(client, acme)
    url = f"/goals/{goal['goal_id']}/key-results"
    response = client.post(url, json=key_result_body(start_value=-1e308, target_value=1e308), headers=acme)
    assert response.status_code == 422
    assert error_fields(response) == ["target_value"]
    key_result = add_key_result(client, acme, goal["goal_id"], start_value=0, target_value=5e-324)
    written = max_notification_id(client)
    response = client.post(
        check_in_url(goal["goal_id"], key_result["key_result_id"]), json={"value": 1e300, "occurred_at": "2020-03-01"}, headers=acme
    )
    assert response.status_code == 422
    assert error_fields(response) == ["value"]
    assert max_notification_id(client) == written


def test_target_equal_to_start_is_rejected(client: TestClient, acme: dict[str, str]) -> None:
    goal = create_goal(client, acme)
    response = client.post(f"/goals/{goal['goal_id']}/key-results", json=key_result_body(start_value=5, target_value=5), headers=acme)
    assert response.status_code == 422
    assert error_fields(response) == ["target_value"]
    assert client.get(f"/goals/{goal['goal_id']}", headers=acme).json()["version"] == 1


def test_future_event_time_is_rejected(client: TestClient, acme: dict[str, str], key_result: dict[str, Any]) -> None:
    tomorrow = (datetime.now(timezone.utc) + timedelta(days=1)).isoformat()
    written = max_notification_id(client)
    response = client.post("/goals", json=goal_body(occurred_at=tomorrow), headers=acme)
    assert response.status_code == 422
    assert error_fields(response) == ["occurred_at"]
    response = client.post(f"/goals/{key_result['goal_id']}/key-results", json=key_result_body(occurred_at=tomorrow), headers=acme)
    assert response.status_code == 422
    assert error_fields(response) == ["occurred_at"]
    assert max_notification_id(client) == written


def test_check_in_outside_period_is_rejected(client: TestClient, acme: dict[str, str], key_result: dict[str, Any]) -> None:
    url = check_in_url(key_result["goal_id"], key_result["key_result_id"])
    written = max_notification_id(client)
    for occurred_at in ("2020-01-31T23:59:59Z", "2020-05-01", "2020-05-01T02:30:00+02:00"):
        response = client.post(url, json={"value": 1, "occurred_at": occurred_at}, headers=acme)
        assert response.status_code == 422, occurred_at
        assert error_fields(response) == ["occurred_at"]
    assert max_notification_id(client) == written
    accepted = client.post(url, json={"value": 1, "occurred_at": "2020-05-01T01:59:59+02:00"}, headers=acme)
    assert accepted.status_code == 201


def test_event_time_without_timezone_is_rejected(client: TestClient, acme: dict[str, str], key_result: dict[str, Any]) -> None:
    url = check_in_url(key_result["goal_id"], key_result["key_result_id"])
    response = client.post(url, json={"value": 1, "occurred_at": "2020-03-01T10:00:00"}, headers=acme)
    assert response.status_code == 422
    assert error_fields(response) == ["occurred_at"]


@pytest.mark.parametrize(
    ("overrides", "field_name"),
    [
        ({"title": ""}, "title"),
        ({"title": "x" * 501}, "title"),
        ({"team": None}, "team"),
        ({"unexpected": 1}, "unexpected"),
        ({"period": {"name": "Q", "start": "2020-04-30", "end": "2020-02-01"}}, "period"),
        ({"period": {"name": "Q", "start": "2020-02-30", "end": "2020-04-30"}}, "start"),
        ({"contributing_teams": [""]}, "0"),
        ({"parent_goal_id": "not-a-uuid"}, "parent_goal_id"),
        ({"external_ref": "r" * 201}, "external_ref"),
        ({"occurred_at": "yesterday"}, "occurred_at"),
    ],
)
def test_invalid_goal_body_names_field(
    client: TestClient, acme: dict[str, str], overrides: dict[str, Any], field_name: str
) -> None:
    response = client.post("/goals", json=goal_body(**overrides), headers=acme)
    assert response.status_code == 422
    assert field_name in error_fields(response)
    assert max_notification_id(client) == 0


def test_missing_goal_field_is_named(client: TestClient, acme: dict[str, str]) -> None:
    body = goal_body()
    del body["title"]
    response = client.post("/goals", json=body, headers=acme)
    assert response.status_code == 422
    assert error_fields(response) == ["title"]


@pytest.mark.parametrize(
    ("overrides", "field_name"),
    [
        ({"metric": "vibes"}, "metric"),
        ({"start_value": "lots"}, "start_value"),
        ({"title": ""}, "title"),
        ({"extra": True}, "extra"),
    ],
)
def test_invalid_key_result_body_names_field(
    client: TestClient, acme: dict[str, str], overrides: dict[str, Any], field_name: str
) -> None:
    goal = create_goal(client, acme)
    response = client.post(f"/goals/{goal['goal_id']}/key-results", json=key_result_body(**overrides), headers=acme)
    assert response.status_code == 422
    assert error_fields(response) == [field_name]
    assert max_notification_id(client) == 1


def test_invalid_check_in_body_names_field(client: TestClient, acme: dict[str, str], key_result: dict[str, Any]) -> None:
    url = check_in_url(key_result["goal_id"], key_result["key_result_id"])
    written = max_notification_id(client)
    assert error_fields(client.post(url, json={"comment": "no value"}, headers=acme)) == ["value"]
    assert error_fields(client.post(url, json={"value": 1, "comment": "c" * 5001}, headers=acme)) == ["comment"]
    assert max_notification_id(client) == written


def test_malformed_goal_id_is_rejected(client: TestClient, acme: dict[str, str]) -> None:
    response = client.get("/goals/not-a-uuid", headers=acme)
    assert response.status_code == 422
    assert error_fields(response) == ["goal_id"]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer " + issue_token("another-secret-that-is-long-enough-for-hs256", "acme", "p")},
    ],
)
def test_missing_or_invalid_token_is_unauthorized(client: TestClient, headers: dict[str, str]) -> None:
    assert client.post("/goals", json=goal_body(), headers=headers).status_code == 401
    assert client.get("/goals", headers=headers).status_code == 401
    assert client.get(f"/goals/{uuid.uuid4()}", headers=headers).status_code == 401
    assert max_notification_id(client) == 0


def test_overlong_token_ids_are_unauthorized(client: TestClient, auth_header: AuthHeader) -> None:
    response = client.post("/goals", json=goal_body(), headers=auth_header("acme", "p" * 101))
    assert response.status_code == 401
    assert max_notification_id(client) == 0


def test_body_over_limit_is_rejected(client: TestClient, acme: dict[str, str]) -> None:
    response = client.post("/goals", json=goal_body(title="t", contributing_teams=["x" * 150] * 80), headers=acme)
    assert response.status_code == 413
    assert max_notification_id(client) == 0


def test_deeply_nested_body_is_rejected(client: TestClient, acme: dict[str, str]) -> None:
    nested: Any = 1
    for _ in range(40):
        nested = [nested]
    response = client.post("/goals", json=goal_body(contributing_teams=nested), headers=acme)
    assert response.status_code == 422
    assert max_notification_id(client) == 0


def test_relay_status_reports_positions(client: TestClient, acme: dict[str, str]) -> None:
    create_goal(client, acme)
    assert client.get("/internal/relay").json() == {"relay": "goals", "published_position": 0, "max_notification_id": 1}


def test_racing_check_ins_never_fail(
    client: TestClient, acme: dict[str, str], key_result: dict[str, Any]
) -> None:
    url = check_in_url(key_result["goal_id"], key_result["key_result_id"])
    statuses: list[int] = []
    start = threading.Barrier(8)

    def post_check_in(value: int) -> None:
        start.wait()
        statuses.append(client.post(url, json={"value": value, "occurred_at": "2020-03-01"}, headers=acme).status_code)

    threads = [threading.Thread(target=post_check_in, args=(value,)) for value in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert len(statuses) == 8
    assert set(statuses) <= {201, 409}
    goal = client.get(f"/goals/{key_result['goal_id']}", headers=acme).json()
    assert goal["key_results"][0]["check_in_count"] == statuses.count(201)
    assert goal["version"] == 2 + statuses.count(201)


def test_period_dates_survive_reload(client: TestClient, acme: dict[str, str]) -> None:
    goal = create_goal(client, acme)
    objective = goals_app(client).get_objective("acme", uuid.UUID(goal["goal_id"]))
    assert objective.period.start == date(2020, 2, 1)
    assert objective.period.end == date(2020, 4, 30)
