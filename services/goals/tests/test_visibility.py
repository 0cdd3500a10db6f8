"""Read and change access to a goal: visibility, owners, co-owners, collaborators and admins, on both backends."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timezone
from typing import Any, Callable

import pytest
from fastapi.testclient import TestClient

from spm_events.registry import new_envelope
from spm_events.schemas import CollaboratorLeftV1, CollaboratorTaggedV1, CollaboratorUntaggedV1, TagDeclinedV1
from spm_goals.application import MAX_ALIGNMENT_DEPTH, GoalsApplication
from spm_goals.objective import Objective, Period
from spm_goals.relay import notification_reader
from spm_goals.tree import alignment_tree

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
            assert goal_id in read.json()["detail"]
            assert "not found" in read.json()["detail"]


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


def test_links_to_hidden_goals_are_left_out(backend_client: TestClient, auth_header: AuthHeader) -> None:
    org_id = f"org-{uuid.uuid4().hex[:8]}"
    admin = headers_of(auth_header, org_id, "admin")
    hidden = create_goal(backend_client, auth_header, org_id, "private")
    child = backend_client.post("/goals", json={**GOAL, "title": "Child", "parent_goal_id": hidden["goal_id"]}, headers=admin).json()
    backend_client.post(f"/goals/{child['goal_id']}/supports", json={"goal_id": hidden["goal_id"]}, headers=admin)
    backend_client.post(f"/goals/{child['goal_id']}/align", json={"parent_goal_id": None}, headers=admin)
    outsider = headers_of(auth_header, org_id, "other team")

    read = backend_client.get(f"/goals/{child['goal_id']}", headers=outsider).json()
    listed = backend_client.get("/goals", headers=outsider).json()
    tree = backend_client.get("/goals/tree", headers=outsider).json()
    changes = backend_client.get(f"/goals/{child['goal_id']}/changes", headers=outsider).json()

    assert (read["parent_goal_id"], read["supports"]) == (None, [])
    assert [(goal["goal_id"], goal["supports"]) for goal in listed] == [(child["goal_id"], [])]
    assert [(node["goal_id"], node["supports"]) for node in tree] == [(child["goal_id"], [])]
    assert hidden["goal_id"] not in str(changes)
    assert backend_client.get(f"/goals/{child['goal_id']}", headers=admin).json()["supports"] == [
        {"goal_id": hidden["goal_id"], "key_result_id": None}
    ]


@pytest.mark.parametrize("route", ["align", "supports"])
def test_links_from_a_hidden_goal_answer_not_found_before_any_cycle_check(
    backend_client: TestClient, auth_header: AuthHeader, route: str
) -> None:
    org_id = f"org-{uuid.uuid4().hex[:8]}"
    admin = headers_of(auth_header, org_id, "admin")
    hidden = create_goal(backend_client, auth_header, org_id, "private")
    below = backend_client.post("/goals", json={**GOAL, "title": "Below", "parent_goal_id": hidden["goal_id"]}, headers=admin).json()
    body = {"parent_goal_id": below["goal_id"]} if route == "align" else {"goal_id": below["goal_id"]}

    response = backend_client.post(f"/goals/{hidden['goal_id']}/{route}", json=body, headers=headers_of(auth_header, org_id, "other team"))

    assert response.status_code == 404


def test_goal_cannot_support_itself(backend_client: TestClient, auth_header: AuthHeader) -> None:
    org_id = f"org-{uuid.uuid4().hex[:8]}"
    goal = create_goal(backend_client, auth_header, org_id, "organisation")

    response = backend_client.post(
        f"/goals/{goal['goal_id']}/supports", json={"goal_id": goal["goal_id"]}, headers=headers_of(auth_header, org_id, "owner")
    )

    assert response.status_code == 422
    assert "cannot support itself" in response.json()["detail"][0]["msg"]


def test_alignment_deeper_than_the_cap_is_refused(backend_client: TestClient, auth_header: AuthHeader) -> None:
    org_id = f"org-{uuid.uuid4().hex[:8]}"
    admin = headers_of(auth_header, org_id, "admin")
    parent_goal_id = None
    for level in range(MAX_ALIGNMENT_DEPTH + 1):
        body = {**GOAL, "title": f"Level {level}", "parent_goal_id": parent_goal_id}
        response = backend_client.post("/goals", json=body, headers=admin)
        assert response.status_code == 201, response.text
        parent_goal_id = response.json()["goal_id"]

    too_deep = backend_client.post("/goals", json={**GOAL, "title": "Too deep", "parent_goal_id": parent_goal_id}, headers=admin)
    tree = backend_client.get("/goals/tree", headers=admin)

    assert too_deep.status_code == 422
    assert too_deep.json()["detail"][0]["loc"] == ["body", "parent_goal_id"]
    assert tree.status_code == 200


def test_goals_in_a_cycle_still_appear_in_the_tree() -> None:
    # Only concurrent alignments can close a cycle, so the cycle is built on the aggregates directly.
    def goal(title: str) -> Objective:
        return Objective.create(
            org_id="acme", owner_id="o1", team="Sales", contributing_teams=(), period=Period("Q", date(2020, 2, 1), date(2020, 4, 30)),
            parent_goal_id=None, title=title, external_ref=title, occurred_at=datetime(2020, 1, 20, tzinfo=timezone.utc), actor_id="o1",
        )

    first, second, third = goal("A"), goal("B"), goal("C")
    first.align(second.id, datetime(2020, 1, 21, tzinfo=timezone.utc), "o1")
    second.align(first.id, datetime(2020, 1, 21, tzinfo=timezone.utc), "o1")
    third.align(first.id, datetime(2020, 1, 21, tzinfo=timezone.utc), "o1")

    trees = alignment_tree([first, second, third])

    def titles(node: dict[str, Any]) -> list[str]:
        return [node["title"], *(title for child in node["children"] for title in titles(child))]

    assert sorted(title for tree in trees for title in titles(tree)) == ["A", "B", "C"]


def test_if_match_with_a_non_ascii_digit_fails_the_precondition(backend_client: TestClient, auth_header: AuthHeader) -> None:
    org_id = f"org-{uuid.uuid4().hex[:8]}"
    goal = create_goal(backend_client, auth_header, org_id, "organisation")
    # A superscript two, sent as a raw Latin-1 byte: str.isdigit() accepts it and int() does not.
    headers = headers_of(auth_header, org_id, "owner") | {"If-Match": b'"\xb2"'}

    response = backend_client.post(f"/goals/{goal['goal_id']}/visibility", json={"visibility": "team"}, headers=headers)

    assert response.status_code == 412


def test_replayed_request_on_a_goal_no_longer_visible_is_not_found(backend_client: TestClient, auth_header: AuthHeader) -> None:
    org_id = f"org-{uuid.uuid4().hex[:8]}"
    goal = create_goal(backend_client, auth_header, org_id, "organisation")
    helper = headers_of(auth_header, org_id, "other team") | {"Idempotency-Key": "check-in-1"}
    url = f"/goals/{goal['goal_id']}/key-results/{goal['key_result_id']}/check-ins"
    body = {"value": 2, "occurred_at": "2020-03-01"}

    first = backend_client.post(url, json=body, headers=helper)
    backend_client.post(f"/goals/{goal['goal_id']}/visibility", json={"visibility": "private"}, headers=headers_of(auth_header, org_id, "owner"))
    replay = backend_client.post(url, json=body, headers=helper)

    assert first.status_code == 201
    assert replay.status_code == 404


def test_only_the_owner_or_an_admin_hands_a_goal_to_another_owner(backend_client: TestClient, auth_header: AuthHeader) -> None:
    org_id = f"org-{uuid.uuid4().hex[:8]}"
    goal = create_goal(backend_client, auth_header, org_id, "private")
    url = f"/goals/{goal['goal_id']}/owners"

    by_co_owner = backend_client.post(url, json={"owner_id": "co-owner-1", "co_owner_ids": []}, headers=headers_of(auth_header, org_id, "co-owner"))
    co_owners_by_co_owner = backend_client.post(
        url, json={"owner_id": "owner-1", "co_owner_ids": ["co-owner-1", "seller-2"]}, headers=headers_of(auth_header, org_id, "co-owner")
    )
    by_owner = backend_client.post(url, json={"owner_id": "seller-2", "co_owner_ids": ["owner-1"]}, headers=headers_of(auth_header, org_id, "owner"))

    assert by_co_owner.status_code == 403
    assert co_owners_by_co_owner.status_code == 200
    assert (by_owner.status_code, by_owner.json()["owner_id"]) == (200, "seller-2")


def test_control_characters_in_titles_are_rejected(backend_client: TestClient, auth_header: AuthHeader) -> None:
    org_id = f"org-{uuid.uuid4().hex[:8]}"
    owner = headers_of(auth_header, org_id, "owner")
    raw = b'{"title": "nul\\u0000title", "team": "Sales", "period": {"name": "Q", "start": "2020-02-01", "end": "2020-04-30"}}'

    response = backend_client.post("/goals", content=raw, headers=owner | {"Content-Type": "application/json"})

    assert response.status_code == 422
    assert backend_client.get("/goals", headers=owner).json() == []


@pytest.mark.parametrize(
    ("events", "is_insider"),
    [
        ([("tagged", 2)], True),
        ([("tagged", 2), ("declined", 3)], False),
        ([("tagged", 2), ("left", 3)], False),
        ([("tagged", 2), ("untagged", 3), ("tagged", 2)], False),
        ([("tagged", 2), ("untagged", 3), ("tagged", 4)], True),
        ([("untagged", 3), ("tagged", 2)], False),
    ],
    ids=["tagged", "declined", "left", "redelivered-old-tag", "tagged-again", "out-of-order"],
)
def test_tag_consent_decides_who_is_a_collaborator(
    backend_client: TestClient, auth_header: AuthHeader, events: list[tuple[str, int]], is_insider: bool
) -> None:
    org_id = f"org-{uuid.uuid4().hex[:8]}"
    goal = create_goal(backend_client, auth_header, org_id, "private")
    goals = goals_app(backend_client)
    payloads = {
        "tagged": CollaboratorTaggedV1, "declined": TagDeclinedV1, "left": CollaboratorLeftV1, "untagged": CollaboratorUntaggedV1,
    }
    for kind, version in events:
        envelope = new_envelope(
            payloads[kind](goal_id=goal["goal_id"], collaborator_id="person-7"),
            subject=f"social-{goal['goal_id']}", org_id=org_id, actor_id="owner-1", aggregate_version=version,
            time=datetime(2020, 2, version, tzinfo=timezone.utc),
        )
        with goals.access.engine.begin() as connection:
            goals.access.collaborators.apply(connection, envelope)

    response = backend_client.get(f"/goals/{goal['goal_id']}", headers=auth_header(org_id, "person-7"))

    assert response.status_code == (200 if is_insider else 404)
