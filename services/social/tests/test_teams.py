"""Teams of the people directory: admin batches that write all or nothing, parents without cycles, paged reads."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

HeadersFor = Callable[..., dict[str, str]]


def team(name: str, parent: str | None = None) -> dict[str, object]:
    return {"name": name, "parent_name": parent}


def person(handle: str, team_name: str) -> dict[str, object]:
    return {"handle": handle, "display_name": f"Name of {handle}", "email": f"{handle}@example.com", "team": team_name}


TREE = [team("Company"), team("Sales", "Company"), team("Sales EMEA", "Sales"), team("Engineering", "Company")]


@pytest.fixture
def admin(auth_headers: HeadersFor) -> dict[str, str]:
    return auth_headers("admin-1", admin=True)


@pytest.fixture
def member(auth_headers: HeadersFor) -> dict[str, str]:
    return auth_headers("member-1")


def upsert(client: TestClient, headers: dict[str, str], teams: list[dict[str, object]]):  # type: ignore[no-untyped-def]
    return client.post("/teams/batch", json={"teams": teams}, headers=headers)


def all_teams(client: TestClient, headers: dict[str, str]) -> dict[str, str | None]:
    response = client.get("/teams", params={"limit": 500}, headers=headers)
    assert response.status_code == 200
    return {entry["name"]: entry["parent_name"] for entry in response.json()["teams"]}


def test_batch_creates_teams_readable_by_members(
    client: TestClient, admin: dict[str, str], member: dict[str, str]
) -> None:
    response = upsert(client, admin, TREE)

    assert response.status_code == 200
    assert response.json() == {"created": 4, "updated": 0, "unchanged": 0}
    listed = client.get("/teams", headers=member).json()
    assert listed["next_cursor"] is None
    assert listed["teams"] == [
        {"name": "Company", "parent_name": None},
        {"name": "Engineering", "parent_name": "Company"},
        {"name": "Sales", "parent_name": "Company"},
        {"name": "Sales EMEA", "parent_name": "Sales"},
    ]


def test_member_cannot_write_teams(client: TestClient, admin: dict[str, str], member: dict[str, str]) -> None:
    response = upsert(client, member, TREE)

    assert response.status_code == 403
    assert "admin" in response.json()["detail"]
    assert all_teams(client, admin) == {}


def test_teams_of_another_org_are_not_listed(
    client: TestClient, admin: dict[str, str], auth_headers: HeadersFor
) -> None:
    upsert(client, admin, TREE)

    other_org = auth_headers("member-1", org="another-org")

    assert all_teams(client, other_org) == {}


def test_unknown_parent_writes_nothing(client: TestClient, admin: dict[str, str]) -> None:
    response = upsert(client, admin, [team("Company"), team("Sales", "Nowhere")])

    assert response.status_code == 422
    error = response.json()["detail"][0]
    assert error["loc"] == ["body", "teams", "1", "parent_name"]
    assert "'Nowhere'" in error["msg"]
    assert all_teams(client, admin) == {}


def test_parent_may_come_from_earlier_batch(client: TestClient, admin: dict[str, str]) -> None:
    upsert(client, admin, [team("Company")])

    response = upsert(client, admin, [team("Sales", "Company")])

    assert response.status_code == 200
    assert all_teams(client, admin) == {"Company": None, "Sales": "Company"}


def test_cycle_in_batch_is_rejected(client: TestClient, admin: dict[str, str]) -> None:
    response = upsert(client, admin, [team("Outside", "A"), team("A", "B"), team("B", "A")])

    assert response.status_code == 422
    error = response.json()["detail"][0]
    assert error["loc"] == ["body", "teams", "1", "parent_name"]
    assert "cycle" in error["msg"]
    assert all_teams(client, admin) == {}


def test_cycle_through_stored_teams_is_rejected(client: TestClient, admin: dict[str, str]) -> None:
    upsert(client, admin, TREE)

    response = upsert(client, admin, [team("Company", "Sales EMEA")])

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "teams", "0", "parent_name"]
    assert all_teams(client, admin)["Company"] is None


def test_team_cannot_be_its_own_parent(client: TestClient, admin: dict[str, str]) -> None:
    response = upsert(client, admin, [team("Company", "Company")])

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "teams", "0", "parent_name"]
    assert all_teams(client, admin) == {}


def test_repeated_name_is_rejected(client: TestClient, admin: dict[str, str]) -> None:
    response = upsert(client, admin, [team("Company"), team("Company")])

    assert response.status_code == 422
    error = response.json()["detail"][0]
    assert error["loc"] == ["body", "teams", "1", "name"]
    assert "repeats row 0" in error["msg"]


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ({"name": "t" * 201}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "Sales", "parent_name": "p" * 201}, "parent_name"),
        ({"name": "Sales", "colour": "red"}, "colour"),
    ],
    ids=["name-length", "blank-name", "parent-length", "extra-field"],
)
def test_invalid_row_writes_nothing(client: TestClient, admin: dict[str, str], row: dict[str, str], field: str) -> None:
    response = upsert(client, admin, [team("Company"), row])

    assert response.status_code == 422
    locations = [entry["loc"] for entry in response.json()["detail"]]
    assert ["body", "teams", "1", field] in locations
    assert all_teams(client, admin) == {}


def test_second_batch_counts_changes(client: TestClient, admin: dict[str, str]) -> None:
    upsert(client, admin, TREE)

    moved = [team("Company"), team("Sales"), team("Sales EMEA", "Sales"), team("Support", "Company")]
    response = upsert(client, admin, moved)

    assert response.json() == {"created": 1, "updated": 1, "unchanged": 2}
    teams = all_teams(client, admin)
    assert teams["Sales"] is None
    assert teams["Support"] == "Company"
    assert teams["Engineering"] == "Company"


def test_teams_page_through_cursor(client: TestClient, admin: dict[str, str]) -> None:
    upsert(client, admin, TREE)

    first = client.get("/teams", params={"limit": 3}, headers=admin).json()
    second = client.get("/teams", params={"limit": 3, "cursor": first["next_cursor"]}, headers=admin).json()
    invalid = client.get("/teams", params={"cursor": "!!!"}, headers=admin)

    assert [entry["name"] for entry in first["teams"]] == ["Company", "Engineering", "Sales"]
    assert [entry["name"] for entry in second["teams"]] == ["Sales EMEA"]
    assert second["next_cursor"] is None
    assert invalid.status_code == 422
    assert invalid.json()["detail"][0]["loc"] == ["query", "cursor"]


def test_people_any_team_before_teams_used(client: TestClient, admin: dict[str, str]) -> None:
    response = client.post("/people/batch", json={"people": [person("casey", "Not a team yet")]}, headers=admin)

    assert response.status_code == 200
    assert response.json()["created"] == 1


def test_people_need_known_team_once_used(client: TestClient, admin: dict[str, str]) -> None:
    upsert(client, admin, TREE)

    rejected = client.post(
        "/people/batch", json={"people": [person("casey", "Sales"), person("drew", "Marketing")]}, headers=admin
    )
    accepted = client.post("/people/batch", json={"people": [person("casey", "Sales EMEA")]}, headers=admin)

    assert rejected.status_code == 422
    error = rejected.json()["detail"][0]
    assert error["loc"] == ["body", "people", "1", "team"]
    assert "'Marketing'" in error["msg"]
    assert accepted.status_code == 200
    handles = [entry["handle"] for entry in client.get("/people", headers=admin).json()["people"]]
    assert handles == ["casey"]
