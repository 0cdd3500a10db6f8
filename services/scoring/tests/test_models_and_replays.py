"""Scoring model revisions per organisation, and replays that leave live scores untouched."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from spm_events.auth import issue_token
from spm_scoring.api import create_app

T0 = datetime(2021, 3, 1, 9, 0, tzinfo=timezone.utc)
DAY = timedelta(days=1)
KUDOS_HEAVY = {"collaboration": {"kudos_received": 90, "distinct_collaborators": 10}}


@pytest.fixture
def client(scoring_settings, sqlite_store) -> TestClient:  # type: ignore[no-untyped-def]
    return TestClient(create_app(scoring_settings, sqlite_store))


@pytest.fixture
def filled(sqlite_feeder, org_events):  # type: ignore[no-untyped-def]
    sqlite_feeder.apply(
        [
            org_events.goal_created("g1", owner="alice", team="search", at=T0),
            org_events.key_result_added("g1", "k1", actor="alice", at=T0),
            org_events.check_in("g1", "k1", actor="bob", progress=0.4, at=T0 + 2 * DAY),
            org_events.kudos_given("g1", giver="alice", receiver="bob", at=T0 + 3 * DAY),
        ]
    )
    return org_events


def bearer(settings, org_id: str, person_id: str, admin: bool = False) -> dict[str, str]:  # type: ignore[no-untyped-def]
    token = issue_token(settings.jwt_secret.get_secret_value(), org_id, person_id, admin=admin)
    return {"Authorization": f"Bearer {token}"}


def test_built_in_models_are_listed(client, scoring_settings, filled) -> None:  # type: ignore[no-untyped-def]
    body = client.get("/scoring/models", headers=bearer(scoring_settings, filled.org_id, "bob")).json()

    assert body["active_model_id"] == "v2"
    assert [(model["model_id"], model["formula"]) for model in body["models"]] == [("v1", "v1"), ("v2", "v2")]
    assert body["models"][1]["definition"]["windows_days"] == [7, 28, 90]
    assert body["models"][1]["definition"]["min_group_size"] == 5


def test_only_admins_store_models(client, scoring_settings, filled) -> None:  # type: ignore[no-untyped-def]
    response = client.post("/scoring/models", json=KUDOS_HEAVY, headers=bearer(scoring_settings, filled.org_id, "bob"))

    assert response.status_code == 403
    assert "admin" in response.json()["detail"]


@pytest.mark.parametrize(
    "definition, field",
    [
        ({"windows_days": [7, 7], "default_window_days": 7}, "windows_days"),
        ({"default_window_days": 14}, "default_window_days"),
        ({"repeat_decay": 0}, "repeat_decay"),
        ({"collaboration": {"degree": -1}}, "degree"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_invalid_model_is_rejected(client, scoring_settings, filled, definition, field) -> None:  # type: ignore[no-untyped-def]
    response = client.post("/scoring/models", json=definition, headers=bearer(scoring_settings, filled.org_id, "root", admin=True))

    assert response.status_code == 422
    assert field in str(response.json()["detail"])


def test_stored_revision_scores_when_chosen(client, scoring_settings, filled) -> None:  # type: ignore[no-untyped-def]
    admin = bearer(scoring_settings, filled.org_id, "root", admin=True)
    reader = bearer(scoring_settings, filled.org_id, "bob")
    before = client.get("/people/bob/scores", headers=reader).json()

    stored = client.post("/scoring/models", json=KUDOS_HEAVY, headers=admin)
    by_id = client.get("/people/bob/scores", params={"model": "v2.1"}, headers=reader).json()
    still_active = client.get("/people/bob/scores", headers=reader).json()
    activated = client.put("/scoring/models/active", json={"model_id": "v2.1"}, headers=admin)
    after = client.get("/people/bob/scores", headers=reader).json()

    assert stored.status_code == 201
    assert stored.json()["model_id"] == "v2.1"
    assert stored.json()["created_by"] == "root"
    assert still_active == before
    assert activated.json()["active_model_id"] == "v2.1"
    assert after == by_id
    assert after["model_id"] == "v2.1"
    kudos = next(item for item in after["collaboration"]["components"] if item["name"] == "kudos_received")
    assert kudos["configured_weight"] == 90
    assert after["collaboration"]["score"] != before["collaboration"]["score"]


def test_revisions_count_up_per_org(client, scoring_settings, filled, other_org_events) -> None:  # type: ignore[no-untyped-def]
    admin = bearer(scoring_settings, filled.org_id, "root", admin=True)
    other_admin = bearer(scoring_settings, other_org_events.org_id, "root", admin=True)

    first = client.post("/scoring/models", json={}, headers=admin).json()
    second = client.post("/scoring/models", json=KUDOS_HEAVY, headers=admin).json()
    other = client.post("/scoring/models", json={}, headers=other_admin).json()
    foreign = client.get("/people/bob/scores", params={"model": "v2.2"}, headers=other_admin)

    assert (first["model_id"], second["model_id"], other["model_id"]) == ("v2.1", "v2.2", "v2.1")
    assert foreign.status_code == 404


def test_activating_an_unknown_model_is_not_found(client, scoring_settings, filled) -> None:  # type: ignore[no-untyped-def]
    response = client.put("/scoring/models/active", json={"model_id": "v2.7"}, headers=bearer(scoring_settings, filled.org_id, "root", admin=True))

    assert response.status_code == 404


def test_replay_leaves_live_scores_alone(client, scoring_settings, sqlite_store, filled) -> None:  # type: ignore[no-untyped-def]
    admin = bearer(scoring_settings, filled.org_id, "root", admin=True)
    reader = bearer(scoring_settings, filled.org_id, "bob")
    client.post("/scoring/models", json=KUDOS_HEAVY, headers=admin)
    live_before = client.get("/people/bob/scores", headers=reader).json()
    top_before = client.get("/scores/collaboration/top", headers=reader).json()

    started = client.post("/scoring/replays", json={"model_id": "v2.1", "window": "period:FY21-Q1"}, headers=admin)
    replay_id = started.json()["replay_id"]
    results = client.get(f"/scoring/replays/{replay_id}", headers=admin).json()

    assert started.status_code == 201
    assert started.json()["as_of"] == "2021-03-04T09:00:00Z"
    assert started.json()["window"] == "period:FY21-Q1"
    bob = next(subject for subject in results["subjects"] if subject["subject_id"] == "bob")
    kudos = next(item for item in bob["collaboration"]["components"] if item["name"] == "kudos_received")
    assert kudos["configured_weight"] == 90
    assert len(kudos["events"]) == 1
    assert {subject["subject_kind"] for subject in results["subjects"]} == {"person", "team", "goal"}
    assert client.get("/people/bob/scores", headers=reader).json() == live_before
    assert client.get("/scores/collaboration/top", headers=reader).json() == top_before
    assert client.get("/scoring/models", headers=reader).json()["active_model_id"] == "v2"
    published = sqlite_store.tables.v2.published_scores
    with sqlite_store.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(published)).scalar() == 0


def test_replays_are_listed_for_admins_only(client, scoring_settings, filled) -> None:  # type: ignore[no-untyped-def]
    admin = bearer(scoring_settings, filled.org_id, "root", admin=True)
    reader = bearer(scoring_settings, filled.org_id, "bob")
    replay_id = client.post("/scoring/replays", json={"model_id": "v2", "window": "90d"}, headers=admin).json()["replay_id"]

    listed = client.get("/scoring/replays", headers=admin).json()

    assert [replay["replay_id"] for replay in listed["replays"]] == [replay_id]
    assert client.post("/scoring/replays", json={"model_id": "v2"}, headers=reader).status_code == 403
    assert client.get(f"/scoring/replays/{replay_id}", headers=reader).status_code == 403
    assert client.get("/scoring/replays/unknown", headers=admin).status_code == 404


@pytest.mark.parametrize(
    "request_body, field",
    [
        ({"model_id": "v1"}, "model_id"),
        ({"model_id": "v2", "window": "period:FY30"}, "window"),
        ({"model_id": "v2", "window": "5d"}, "window"),
    ],
)
def test_invalid_replay_is_rejected(client, scoring_settings, filled, request_body, field) -> None:  # type: ignore[no-untyped-def]
    response = client.post("/scoring/replays", json=request_body, headers=bearer(scoring_settings, filled.org_id, "root", admin=True))

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", field]
