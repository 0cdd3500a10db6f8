"""The people directory API: admin batch upserts that write all or nothing, paged reads, deactivation."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from spm_events.auth import issue_token
from spm_events.people import person_id_for
from spm_social.settings import SocialSettings

HeadersFor = Callable[..., dict[str, str]]


@pytest.fixture
def headers(settings: SocialSettings, org_id: str) -> HeadersFor:
    """Return a function giving the Authorization header of a member or an admin of the test's org."""
    secret = settings.jwt_secret.get_secret_value()

    def headers_for(admin: bool = False, org: str | None = None) -> dict[str, str]:
        token = issue_token(secret, org or org_id, "person-1", admin=admin)
        return {"Authorization": f"Bearer {token}"}

    return headers_for


def person(handle: str, manager: str | None = None, **fields: str) -> dict[str, object]:
    return {
        "handle": handle,
        "display_name": fields.get("display_name", f"Name of {handle}"),
        "email": fields.get("email", f"{handle}@example.com"),
        "team": fields.get("team", "Sales"),
        "manager_handle": manager,
    }


ORG_CHART = [person("ceo"), person("head-of-sales", "ceo"), person("sales-1", "head-of-sales")]


def upsert(client: TestClient, headers: HeadersFor, people: list[dict[str, object]]):  # type: ignore[no-untyped-def]
    return client.post("/people/batch", json={"people": people}, headers=headers(admin=True))


def all_handles(client: TestClient, headers: HeadersFor) -> list[str]:
    response = client.get("/people", params={"limit": 500}, headers=headers(admin=True))
    assert response.status_code == 200
    return [entry["handle"] for entry in response.json()["people"]]


def test_batch_creates_people_readable_by_members(client: TestClient, headers: HeadersFor, org_id: str) -> None:
    response = upsert(client, headers, ORG_CHART)

    assert response.status_code == 200
    assert response.json() == {"created": 3, "updated": 0, "unchanged": 0}
    listed = client.get("/people", headers=headers()).json()
    assert listed["next_cursor"] is None
    assert [entry["handle"] for entry in listed["people"]] == ["ceo", "head-of-sales", "sales-1"]
    sales = listed["people"][2]
    assert sales == {
        "person_id": person_id_for(org_id, "sales-1"),
        "handle": "sales-1",
        "display_name": "Name of sales-1",
        "team": "Sales",
        "manager_id": person_id_for(org_id, "head-of-sales"),
        "active": True,
    }


def test_email_is_shown_to_admins_only(client: TestClient, headers: HeadersFor) -> None:
    upsert(client, headers, ORG_CHART)

    member_view = client.get("/people/ceo", headers=headers()).json()
    admin_view = client.get("/people/ceo", headers=headers(admin=True)).json()
    admin_list = client.get("/people", headers=headers(admin=True)).json()

    assert "email" not in member_view
    assert admin_view["email"] == "ceo@example.com"
    assert all("email" in entry for entry in admin_list["people"])


def test_member_cannot_write_directory(client: TestClient, headers: HeadersFor) -> None:
    response = client.post("/people/batch", json={"people": ORG_CHART}, headers=headers())
    malformed = client.post("/people/batch", json={"people": [{"handle": "NOT VALID"}]}, headers=headers())

    assert response.status_code == 403
    assert "admin" in response.json()["detail"]
    assert malformed.status_code == 403
    assert all_handles(client, headers) == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"email": "not-an-address"}, "email"),
        ({"email": "a@b.c" + "x" * 300}, "email"),
        ({"handle": "Upper-Case"}, "handle"),
        ({"handle": "-leading-dash"}, "handle"),
        ({"handle": "x" * 65}, "handle"),
        ({"display_name": ""}, "display_name"),
        ({"team": "t" * 201}, "team"),
        ({"nickname": "extra"}, "nickname"),
    ],
    ids=["email-shape", "email-length", "handle-case", "handle-start", "handle-length", "empty-name", "team-length", "extra-field"],
)
def test_invalid_row_writes_nothing(
    client: TestClient, headers: HeadersFor, change: dict[str, str], field: str
) -> None:
    people = [person("ceo"), person("head-of-sales", "ceo") | change]

    response = upsert(client, headers, people)

    assert response.status_code == 422
    locations = [entry["loc"] for entry in response.json()["detail"]]
    assert ["body", "people", "1", field] in locations
    assert all_handles(client, headers) == []


def test_batch_over_limit_is_rejected(client: TestClient, headers: HeadersFor) -> None:
    response = upsert(client, headers, [person(f"p{index}") for index in range(501)])

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "people"]
    assert all_handles(client, headers) == []


def test_unknown_manager_is_rejected(client: TestClient, headers: HeadersFor) -> None:
    response = upsert(client, headers, [person("ceo"), person("sales-1", "nobody")])

    assert response.status_code == 422
    error = response.json()["detail"][0]
    assert error["loc"] == ["body", "people", "1", "manager_handle"]
    assert "'nobody'" in error["msg"]
    assert all_handles(client, headers) == []


def test_manager_may_come_from_earlier_batch(client: TestClient, headers: HeadersFor, org_id: str) -> None:
    upsert(client, headers, [person("ceo")])

    response = upsert(client, headers, [person("head-of-sales", "ceo")])

    assert response.status_code == 200
    assert client.get("/people/head-of-sales", headers=headers()).json()["manager_id"] == person_id_for(org_id, "ceo")


def test_manager_cycle_in_batch_is_rejected(client: TestClient, headers: HeadersFor) -> None:
    people = [person("outsider", "a"), person("a", "b"), person("b", "a")]

    response = upsert(client, headers, people)

    assert response.status_code == 422
    error = response.json()["detail"][0]
    assert error["loc"] == ["body", "people", "1", "manager_handle"]
    assert "cycle" in error["msg"]
    assert all_handles(client, headers) == []


def test_manager_cycle_through_directory_is_rejected(client: TestClient, headers: HeadersFor) -> None:
    upsert(client, headers, ORG_CHART)

    response = upsert(client, headers, [person("ceo", "sales-1")])

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "people", "0", "manager_handle"]
    assert client.get("/people/ceo", headers=headers()).json()["manager_id"] is None


def test_self_managed_person_is_rejected(client: TestClient, headers: HeadersFor) -> None:
    response = upsert(client, headers, [person("ceo", "ceo")])

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "people", "0", "manager_handle"]


def test_repeated_handle_is_rejected(client: TestClient, headers: HeadersFor) -> None:
    response = upsert(client, headers, [person("ceo"), person("ceo", team="Executive")])

    assert response.status_code == 422
    error = response.json()["detail"][0]
    assert error["loc"] == ["body", "people", "1", "handle"]
    assert "repeats row 0" in error["msg"]


def test_second_batch_updates_changed_people(client: TestClient, headers: HeadersFor, org_id: str) -> None:
    upsert(client, headers, ORG_CHART)
    moved = person("sales-1", "ceo", team="Executive", display_name="New name")

    response = upsert(client, headers, [ORG_CHART[0], ORG_CHART[1], moved, person("sales-2", "head-of-sales")])

    assert response.json() == {"created": 1, "updated": 1, "unchanged": 2}
    sales = client.get("/people/sales-1", headers=headers()).json()
    assert sales["team"] == "Executive"
    assert sales["display_name"] == "New name"
    assert sales["manager_id"] == person_id_for(org_id, "ceo")


def test_people_pages_through_cursor(client: TestClient, headers: HeadersFor) -> None:
    handles = [f"person-{index:02d}" for index in range(7)]
    upsert(client, headers, [person(handle) for handle in reversed(handles)])
    paged: list[str] = []
    cursor = None

    for _ in range(10):
        params: dict[str, object] = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = client.get("/people", params=params, headers=headers()).json()
        assert len(page["people"]) <= 3
        paged.extend(entry["handle"] for entry in page["people"])
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert paged == handles


def test_invalid_cursor_is_rejected(client: TestClient, headers: HeadersFor) -> None:
    response = client.get("/people", params={"cursor": "%%%"}, headers=headers())

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "cursor"]


def test_other_org_sees_no_people(client: TestClient, headers: HeadersFor) -> None:
    upsert(client, headers, ORG_CHART)

    listed = client.get("/people", headers=headers(admin=True, org="another-org"))
    single = client.get("/people/ceo", headers=headers(admin=True, org="another-org"))

    assert listed.json() == {"people": [], "next_cursor": None}
    assert single.status_code == 404


def test_unknown_person_is_not_found(client: TestClient, headers: HeadersFor) -> None:
    response = client.get("/people/nobody", headers=headers())

    assert response.status_code == 404
    assert "GET /people" in response.json()["detail"]


def test_admin_deactivates_person(client: TestClient, headers: HeadersFor) -> None:
    upsert(client, headers, ORG_CHART)

    by_member = client.post("/people/sales-1/deactivate", headers=headers())
    by_admin = client.post("/people/sales-1/deactivate", headers=headers(admin=True))
    again = client.post("/people/sales-1/deactivate", headers=headers(admin=True))
    unknown = client.post("/people/nobody/deactivate", headers=headers(admin=True))

    assert by_member.status_code == 403
    assert by_admin.status_code == 200
    assert by_admin.json()["active"] is False
    assert again.json()["active"] is False
    assert unknown.status_code == 404
    assert client.get("/people/sales-1", headers=headers()).json()["active"] is False


def test_batch_reactivates_deactivated_person(client: TestClient, headers: HeadersFor) -> None:
    upsert(client, headers, ORG_CHART)
    client.post("/people/sales-1/deactivate", headers=headers(admin=True))

    response = upsert(client, headers, [ORG_CHART[2]])

    assert response.json() == {"created": 0, "updated": 1, "unchanged": 0}
    assert client.get("/people/sales-1", headers=headers()).json()["active"] is True


def test_personal_details_stay_out_of_logs(
    client: TestClient, headers: HeadersFor, caplog: pytest.LogCaptureFixture
) -> None:
    people = [person("ceo", display_name="Avery Zanzibar", email="avery.secret@example.com")]

    with caplog.at_level(logging.DEBUG):
        upsert(client, headers, people)
        client.post("/people/ceo/deactivate", headers=headers(admin=True))

    assert caplog.records
    assert "Zanzibar" not in caplog.text
    assert "avery.secret" not in caplog.text
