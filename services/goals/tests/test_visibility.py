"""Who sees and who changes a goal: visibility, owners, co-owners, collaborators and admins, on both backends."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any, Callable

import pytest
from fastapi.testclient import TestClient

from spm_events.registry import new_envelope
from spm_events.schemas import CollaboratorTaggedV1
from spm_goals.application import GoalsApplication
from spm_goals.relay import notification_reader

AuthHeader = Callable[..., dict[str, str]]
PERIOD = {"name": "FY21-Q1", "start": "2020-02-01", "end": "2020-04-30"}
GOAL = {"title": "Win the enterprise segment", "team": "Sales", "contributing_teams": ["Marketing"], "period": PERIOD,
        "occurred_at": "2020-01-20"}
KEY_RESULT = {"title": "Signed logos", "metric": "number", "start_value": 0, "target_value": 10, "occurred_at": "2020-01-21"}

# Each reader: (person id, token teams, admin).
READERS: dict[str, tuple[str, tuple[str, ...], bool]] = {
    "owner": ("owner-1", ("Sales",), False),
    "co-owner": ("co-owner-1", ("Finance",), False),
    "collaborator": ("helper-1", ("Engineering",), False),
    "same team": ("seller-2", ("Sales",), False),
    "contributing team": ("marketer-1", ("Marketing",), False),
    "other team": ("engineer-1", ("Engineering",), False),
    "admin": ("admin-1", (), True),
}
SEES = {
    "organisation": set(READERS),
    "team": {"owner", "co-owner", "collaborator", "same team", "contributing team", "admin"},
    "private": {"owner", "co-owner", "collaborator", "admin"},
}
MANAGERS = {"owner", "co-owner", "admin"}


def headers_of(auth_header: AuthHeader, org_id: str, reader: str) -> dict[str, str]:
    person_id, teams, admin = READERS[reader]
    return auth_header(org_id, person_id, teams=teams, admin=admin)


def goals_app(client: TestClient) -> GoalsApplication:
    return client.app.state.goals  # type: ignore[attr-defined]


def tag_collaborator(client: TestClient, org_id: str, goal_id: str, person_id: str) -> None:
    """Apply a CollaboratorTagged envelope with the goals worker's own projection code."""
    goals = goals_app(client)
    envelope = new_envelope(
        CollaboratorTaggedV1(goal_id=goal_id, collaborator_id=person_id),
        subject=f"social-{goal_id}",
        org_id=org_id,
        actor_id="owner-1",
        aggregate_version=2,
        time=datetime(2020, 2, 3, tzinfo=timezone.utc),
    )
    with goals.access.engine.begin() as connection:
        goals.access.collaborators.apply(connection, envelope)


def create_goal(client: TestClient, auth_header: AuthHeader, org_id: str, visibility: str) -> dict[str, Any]:
    body = {**GOAL, "visibility": visibility, "co_owner_ids": ["co-owner-1"], "owner_id": "owner-1", "level": "team"}
    response = client.post("/goals", json=body, headers=headers_of(auth_header, org_id, "owner"))
    assert response.status_code == 201, response.text
    goal = response.json()
    key_result = client.post(f"/goals/{goal['goal_id']}/key-results", json=KEY_RESULT, headers=headers_of(auth_header, org_id, "owner"))
    assert key_result.status_code == 201, key_result.text
    tag_collaborator(client, org_id, goal["goal_id"], READERS["collaborator"][0])
    return {**goal, "key_result_id": key_result.json()["key_result_id"]}


@pytest.mark.parametrize("visibility", ["organisation", "team", "private"])
def test_visibility_matrix(backend_client: TestClient, auth_header: AuthHeader, visibility: str) -> None:
    org_id = f"org-{uuid.uuid4().hex[:8]}"
    goal = create_goal(backend_client, auth_header, org_id, visibility)
    goal_id = goal["goal_id"]
    check_in_url = f"/goals/{goal_id}/key-results/{goal['key_result_id']}/check-ins"

    for reader in READERS:
        headers = headers_of(auth_header, org_id, reader)
        sees = reader in SEES[visibility]
        read = backend_client.get(f"/goals/{goal_id}", headers=headers)
        listed = [item["goal_id"] for item in backend_client.get("/goals", headers=headers).json()]
        tree = [node["goal_id"] for node in backend_client.get("/goals/tree", headers=headers).json()]
        history = backend_client.get(f"/goals/{goal_id}/changes", headers=headers)
        as_of = backend_client.get(f"/goals/{goal_id}", params={"as_of": "2020-03-01T00:00:00Z"}, headers=headers)
        check_in = backend_client.post(check_in_url, json={"value": 1, "occurred_at": "2020-03-01"}, headers=headers)
        close = backend_client.post(f"/goals/{goal_id}/archive", headers=headers)

        assert read.status_code == (200 if sees else 404), reader
        assert (goal_id in listed, goal_id in tree) == (sees, sees), reader
        assert (history.status_code, as_of.status_code) == ((200, 200) if sees else (404, 404)), reader
        assert check_in.status_code == (201 if sees else 404), reader
        # Archiving an active goal is refused by the lifecycle (409) only after access is granted.
        assert close.status_code == (409 if reader in MANAGERS else 403 if sees else 404), reader
        if not sees:
            assert read.json() == backend_client.get(f"/goals/{uuid.uuid4()}", headers=headers).json() | {
                "detail": read.json()["detail"]
            }
            assert goal_id in read.json()["detail"] and "not found" in read.json()["detail"]


def test_hidden_goal_answers_like_a_missing_one(backend_client: TestClient, auth_header: AuthHeader) -> None:
    org_id = f"org-{uuid.uuid4().hex[:8]}"
    goal = create_goal(backend_client, auth_header, org_id, "private")
    missing_id = str(uuid.uuid4())
    headers = headers_of(auth_header, org_id, "other team")

    hidden = backend_client.get(f"/goals/{goal['goal_id']}", headers=headers)
    missing = backend_client.get(f"/goals/{missing_id}", headers=headers)

    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["detail"].replace(goal["goal_id"], "X") == missing.json()["detail"].replace(missing_id, "X")


def test_private_goal_is_not_a_parent_for_outsiders(backend_client: TestClient, auth_header: AuthHeader) -> None:
    org_id = f"org-{uuid.uuid4().hex[:8]}"
    hidden = create_goal(backend_client, auth_header, org_id, "private")
    outsider = headers_of(auth_header, org_id, "other team")
    body = {**GOAL, "title": "Child", "owner_id": "engineer-1", "parent_goal_id": hidden["goal_id"]}

    response = backend_client.post("/goals", json=body, headers=outsider)

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "parent_goal_id"]
    assert backend_client.get("/goals", headers=outsider).json() == []


def test_turning_a_goal_private_hides_it_and_opening_it_shows_it_again(backend_client: TestClient, auth_header: AuthHeader) -> None:
    org_id = f"org-{uuid.uuid4().hex[:8]}"
    goal = create_goal(backend_client, auth_header, org_id, "organisation")
    owner, outsider = headers_of(auth_header, org_id, "owner"), headers_of(auth_header, org_id, "other team")
    url = f"/goals/{goal['goal_id']}"

    private = backend_client.post(f"{url}/visibility", json={"visibility": "private"}, headers=owner)
    hidden = backend_client.get(url, headers=outsider)
    opened = backend_client.post(f"{url}/visibility", json={"visibility": "organisation"}, headers=owner)
    shown = backend_client.get(url, headers=outsider)

    assert (private.status_code, private.json()["visibility"]) == (200, "private")
    assert hidden.status_code == 404
    assert (opened.status_code, shown.status_code) == (200, 200)


def test_removed_co_owner_loses_a_private_goal(backend_client: TestClient, auth_header: AuthHeader) -> None:
    org_id = f"org-{uuid.uuid4().hex[:8]}"
    goal = create_goal(backend_client, auth_header, org_id, "private")
    url = f"/goals/{goal['goal_id']}"
    co_owner = headers_of(auth_header, org_id, "co-owner")

    changed = backend_client.post(
        f"{url}/owners", json={"owner_id": "owner-1", "co_owner_ids": ["seller-2"]}, headers=co_owner
    )

    assert changed.status_code == 200, changed.text
    assert changed.json()["co_owner_ids"] == ["seller-2"]
    assert backend_client.get(url, headers=co_owner).status_code == 404
    assert backend_client.get(url, headers=headers_of(auth_header, org_id, "same team")).status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"owner_id": "owner-1", "co_owner_ids": ["owner-1"]}, "co_owner_ids"),
        ({"owner_id": "owner-1", "co_owner_ids": [f"p-{n}" for n in range(21)]}, "co_owner_ids"),
        ({"owner_id": "owner 1"}, "owner_id"),
        ({"owner_id": "owner-1", "extra": True}, "extra"),
    ],
    ids=["owner-as-co-owner", "too-many-co-owners", "bad-person-id", "unknown-field"],
)
def test_bad_owner_changes_are_refused_and_change_nothing(
    backend_client: TestClient, auth_header: AuthHeader, body: dict[str, Any], field: str
) -> None:
    org_id = f"org-{uuid.uuid4().hex[:8]}"
    goal = create_goal(backend_client, auth_header, org_id, "organisation")
    owner = headers_of(auth_header, org_id, "owner")

    response = backend_client.post(f"/goals/{goal['goal_id']}/owners", json=body, headers=owner)

    assert response.status_code == 422, response.text
    assert field in response.json()["detail"][0]["loc"]
    after = backend_client.get(f"/goals/{goal['goal_id']}", headers=owner).json()
    assert (after["co_owner_ids"], after["version"]) == (["co-owner-1"], goal["version"] + 1)


def test_goal_supports_another_teams_key_result(backend_client: TestClient, auth_header: AuthHeader) -> None:
    org_id = f"org-{uuid.uuid4().hex[:8]}"
    admin = headers_of(auth_header, org_id, "admin")
    sales = create_goal(backend_client, auth_header, org_id, "organisation")
    marketing = backend_client.post("/goals", json={**GOAL, "title": "Pipeline", "team": "Marketing"}, headers=admin).json()
    link = {"goal_id": sales["goal_id"], "key_result_id": sales["key_result_id"]}

    added = backend_client.post(f"/goals/{marketing['goal_id']}/supports", json=link, headers=admin)
    again = backend_client.post(f"/goals/{marketing['goal_id']}/supports", json=link, headers=admin)
    tree = {node["goal_id"]: node for node in backend_client.get("/goals/tree", headers=admin).json()}

    assert added.status_code == 200, added.text
    assert added.json()["supports"] == [link]
    assert again.json()["version"] == added.json()["version"]
    assert tree[marketing["goal_id"]]["supports"] == [link]
    # A supporting goal is not nested under the supported one, so no progress counts twice.
    assert tree[sales["goal_id"]]["children"] == []

    removed = backend_client.delete(
        f"/goals/{marketing['goal_id']}/supports/{sales['goal_id']}",
        params={"key_result_id": sales["key_result_id"]},
        headers=admin,
    )
    assert (removed.status_code, removed.json()["supports"]) == (200, [])


@pytest.mark.parametrize("second_link", ["align", "support"])
def test_links_through_supports_cannot_close_a_cycle(backend_client: TestClient, auth_header: AuthHeader, second_link: str) -> None:
    org_id = f"org-{uuid.uuid4().hex[:8]}"
    admin = headers_of(auth_header, org_id, "admin")
    upper = create_goal(backend_client, auth_header, org_id, "organisation")
    lower = backend_client.post("/goals", json={**GOAL, "title": "Lower"}, headers=admin).json()
    supported = backend_client.post(
        f"/goals/{lower['goal_id']}/supports", json={"goal_id": upper["goal_id"], "key_result_id": upper["key_result_id"]}, headers=admin
    )
    assert supported.status_code == 200, supported.text

    if second_link == "align":
        response = backend_client.post(f"/goals/{upper['goal_id']}/align", json={"parent_goal_id": lower["goal_id"]}, headers=admin)
        field = "parent_goal_id"
    else:
        response = backend_client.post(f"/goals/{upper['goal_id']}/supports", json={"goal_id": lower["goal_id"]}, headers=admin)
        field = "goal_id"

    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", field]
    assert "cycle" in response.json()["detail"][0]["msg"]
    assert backend_client.get(f"/goals/{upper['goal_id']}", headers=admin).json()["version"] == upper["version"] + 1


@pytest.mark.parametrize(
    ("target", "field"),
    [("hidden goal", "goal_id"), ("missing goal", "goal_id"), ("missing key result", "key_result_id"), ("itself", "goal_id")],
)
def test_bad_support_links_are_refused(backend_client: TestClient, auth_header: AuthHeader, target: str, field: str) -> None:
    org_id = f"org-{uuid.uuid4().hex[:8]}"
    hidden = create_goal(backend_client, auth_header, org_id, "private")
    engineer = headers_of(auth_header, org_id, "other team")
    own = backend_client.post("/goals", json={**GOAL, "title": "Mine", "owner_id": "engineer-1"}, headers=engineer).json()
    visible = backend_client.post("/goals", json={**GOAL, "title": "Theirs", "owner_id": "engineer-1"}, headers=engineer).json()
    link = {
        "hidden goal": {"goal_id": hidden["goal_id"]},
        "missing goal": {"goal_id": str(uuid.uuid4())},
        "missing key result": {"goal_id": visible["goal_id"], "key_result_id": str(uuid.uuid4())},
        "itself": {"goal_id": own["goal_id"]},
    }[target]

    response = backend_client.post(f"/goals/{own['goal_id']}/supports", json=link, headers=engineer)

    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", field]
    assert backend_client.get(f"/goals/{own['goal_id']}", headers=engineer).json()["supports"] == []


def test_relay_carries_visibility_owners_and_supports(backend_client: TestClient, auth_header: AuthHeader) -> None:
    org_id = f"org-{uuid.uuid4().hex[:8]}"
    admin = headers_of(auth_header, org_id, "admin")
    goal = create_goal(backend_client, auth_header, org_id, "team")
    other = backend_client.post("/goals", json={**GOAL, "title": "Other", "level": "company"}, headers=admin).json()
    url = f"/goals/{goal['goal_id']}"
    backend_client.post(f"{url}/visibility", json={"visibility": "private"}, headers=admin)
    backend_client.post(f"{url}/owners", json={"owner_id": "owner-2", "co_owner_ids": []}, headers=admin)
    backend_client.post(f"{url}/supports", json={"goal_id": other["goal_id"]}, headers=admin)
    backend_client.delete(f"{url}/supports/{other['goal_id']}", headers=admin)

    envelopes = [envelope for _, envelope in notification_reader(goals_app(backend_client))(0, 100) if envelope is not None]
    by_type = {envelope.type: envelope.data for envelope in envelopes if envelope.subject == goal["goal_id"]}

    created = by_type["spm.goals.GoalCreated.v1"]
    assert (created["visibility"], created["level"], created["co_owner_ids"]) == ("team", "team", ["co-owner-1"])
    assert by_type["spm.goals.GoalVisibilityChanged.v1"] == {
        "goal_id": goal["goal_id"], "visibility": "private", "previous_visibility": "team",
    }
    assert by_type["spm.goals.GoalOwnersChanged.v1"] == {"goal_id": goal["goal_id"], "owner_id": "owner-2", "co_owner_ids": []}
    support = {"goal_id": goal["goal_id"], "supported_goal_id": other["goal_id"], "supported_key_result_id": None}
    assert by_type["spm.goals.GoalSupportAdded.v1"] == support
    assert by_type["spm.goals.GoalSupportRemoved.v1"] == support
