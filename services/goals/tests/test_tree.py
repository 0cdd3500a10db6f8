"""The alignment tree and re-alignment of goals, on both backends."""

from __future__ import annotations

from typing import Any, Callable

import pytest
from fastapi.testclient import TestClient

from spm_goals.relay import notification_reader

GOAL = {"title": "Goal", "team": "Exec", "period": {"name": "FY21-Q1", "start": "2020-02-01", "end": "2020-04-30"}, "occurred_at": "2020-01-20"}
KEY_RESULT = {"title": "KR", "metric": "number", "start_value": 0, "target_value": 10, "occurred_at": "2020-01-21"}

AuthHeader = Callable[..., dict[str, str]]


def create(client: TestClient, headers: dict[str, str], title: str, parent: dict[str, Any] | None = None, progress: float | None = None) -> dict[str, Any]:
    body = {**GOAL, "title": title, "external_ref": title, "parent_goal_id": None if parent is None else parent["goal_id"]}
    goal = client.post("/goals", json=body, headers=headers).json()
    if progress is not None:
        key_result = client.post(f"/goals/{goal['goal_id']}/key-results", json=KEY_RESULT, headers=headers).json()
        url = f"/goals/{goal['goal_id']}/key-results/{key_result['key_result_id']}/check-ins"
        client.post(url, json={"value": progress * 10, "occurred_at": "2020-03-01"}, headers=headers)
    return goal


def test_tree_rolls_up_progress(backend_client: TestClient, auth_header: AuthHeader) -> None:
    headers = auth_header("acme")
    company = create(backend_client, headers, "A", progress=0.0)
    sales = create(backend_client, headers, "B", parent=company, progress=0.4)
    create(backend_client, headers, "C", parent=sales, progress=1.0)
    create(backend_client, headers, "D", parent=company, progress=0.8)
    create(backend_client, headers, "E")

    response = backend_client.get("/goals/tree", headers=headers)

    assert response.status_code == 200
    trees = sorted(response.json(), key=lambda node: node["title"])
    assert [node["title"] for node in trees] == ["A", "E"]
    root = trees[0]
    assert sorted(child["title"] for child in root["children"]) == ["B", "D"]
    sales_node = next(child for child in root["children"] if child["title"] == "B")
    assert sales_node["progress"] == pytest.approx(0.4)
    assert sales_node["rollup_progress"] == pytest.approx((0.4 + 1.0) / 2)
    assert root["progress"] == 0.0
    assert root["rollup_progress"] == pytest.approx((0.0 + 0.7 + 0.8) / 3)


def test_tree_from_root_returns_subtree(backend_client: TestClient, auth_header: AuthHeader) -> None:
    headers = auth_header("acme")
    company = create(backend_client, headers, "A")
    sales = create(backend_client, headers, "B", parent=company)
    create(backend_client, headers, "C", parent=sales)

    response = backend_client.get(f"/goals/tree?root={sales['goal_id']}", headers=headers)

    assert [node["title"] for node in response.json()] == ["B"]
    assert [child["title"] for child in response.json()[0]["children"]] == ["C"]


def test_tree_root_of_other_org_is_not_found(backend_client: TestClient, auth_header: AuthHeader) -> None:
    other = create(backend_client, auth_header("globex"), "X")
    response = backend_client.get(f"/goals/tree?root={other['goal_id']}", headers=auth_header("acme"))
    assert response.status_code == 404


def test_align_moves_goal_under_new_parent(backend_client: TestClient, auth_header: AuthHeader) -> None:
    headers = auth_header("acme")
    first = create(backend_client, headers, "A")
    second = create(backend_client, headers, "B")

    aligned = backend_client.post(f"/goals/{second['goal_id']}/align", json={"parent_goal_id": first["goal_id"]}, headers={**headers, "If-Match": '"1"'})

    assert aligned.status_code == 200
    assert aligned.json()["parent_goal_id"] == first["goal_id"]
    tree = backend_client.get("/goals/tree", headers=headers).json()
    assert [node["title"] for node in tree] == ["A"]
    detached = backend_client.post(f"/goals/{second['goal_id']}/align", json={"parent_goal_id": None}, headers=headers)
    assert detached.json()["parent_goal_id"] is None


@pytest.mark.parametrize("depth", [0, 1, 3])
def test_alignment_cycle_is_rejected(backend_client: TestClient, auth_header: AuthHeader, depth: int) -> None:
    headers = auth_header("acme")
    top = create(backend_client, headers, "top")
    lowest = top
    for level in range(depth):
        lowest = create(backend_client, headers, f"level-{level}", parent=lowest)
    written = backend_client.get("/internal/relay").json()["max_notification_id"]

    response = backend_client.post(f"/goals/{top['goal_id']}/align", json={"parent_goal_id": lowest["goal_id"]}, headers=headers)

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "parent_goal_id"]
    assert backend_client.get("/internal/relay").json()["max_notification_id"] == written


def test_parent_in_other_org_is_rejected(backend_client: TestClient, auth_header: AuthHeader) -> None:
    foreign = create(backend_client, auth_header("globex"), "X")
    own = create(backend_client, auth_header("acme"), "A")
    written = backend_client.get("/internal/relay").json()["max_notification_id"]

    created = backend_client.post("/goals", json={**GOAL, "parent_goal_id": foreign["goal_id"]}, headers=auth_header("acme"))
    aligned = backend_client.post(f"/goals/{own['goal_id']}/align", json={"parent_goal_id": foreign["goal_id"]}, headers=auth_header("acme"))

    for response in (created, aligned):
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["body", "parent_goal_id"]
    assert backend_client.get("/internal/relay").json()["max_notification_id"] == written


def test_relay_publishes_alignment(backend_client: TestClient, auth_header: AuthHeader) -> None:
    headers = auth_header("acme")
    first = create(backend_client, headers, "A")
    second = create(backend_client, headers, "B")
    backend_client.post(f"/goals/{second['goal_id']}/align", json={"parent_goal_id": first["goal_id"]}, headers=headers)

    batch = notification_reader(backend_client.app.state.goals)(0, 10)  # type: ignore[attr-defined]

    envelope = batch[-1][1]
    assert envelope is not None
    assert envelope.type == "spm.goals.GoalAligned.v1"
    assert envelope.data == {"goal_id": second["goal_id"], "parent_goal_id": first["goal_id"]}
