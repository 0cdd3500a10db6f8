"""Scoring model revisions per organisation, and replays that leave live scores untouched."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, insert, select

from spm_events.auth import issue_token
from spm_scoring.api import create_app
from spm_scoring.model import ScoringModelV2

T0 = datetime(2021, 3, 1, 9, 0, tzinfo=timezone.utc)
DAY = timedelta(days=1)
# Every collaboration weight, adding up to 100 as a stored model must.
KUDOS_HEAVY = {
    "collaboration": {
        "distinct_collaborators": 5, "accepted_tags": 5, "help_on_others_goals": 5, "kudos_received": 60,
        "kudos_given": 5, "cross_team_share": 5, "reciprocity": 5, "degree": 5, "brokerage": 5,
    }
}


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


def stored_model_ids(client, settings, org_id: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [model["model_id"] for model in client.get("/scoring/models", headers=bearer(settings, org_id, "bob")).json()["models"]]


@pytest.mark.parametrize(
    "definition, location",
    [
        ({"windows_days": [7, 7], "default_window_days": 7}, ["body", "windows_days"]),
        ({"windows_days": [7, 400], "default_window_days": 7}, ["body", "windows_days"]),
        ({"default_window_days": 14}, ["body", "default_window_days"]),
        ({"repeat_decay": 0}, ["body", "repeat_decay"]),
        ({"collaboration": {"degree": -1}}, ["body", "collaboration", "degree"]),
        ({"collaboration": {"kudos": 10}}, ["body", "collaboration", "kudos"]),
        ({"surprise": 1}, ["body", "surprise"]),
        ({"formula": "v3"}, ["body", "formula"]),
        ({"min_group_size": 1}, ["body", "min_group_size"]),
        # Weights of a group must add up to 100: the defaults of the others stay in the sum.
        ({"performance": {"pace": 50}}, ["body", "performance"]),
        ({"collaboration": {"brokerage": 0}}, ["body", "collaboration"]),
        ({"team_network": {"mean_degree": 0, "mean_brokerage": 0, "cross_team_share": 0, "internal_density": 0}}, ["body", "team_network"]),
        ({"goal_collaboration": {"contributors": 30.5}}, ["body", "goal_collaboration"]),
    ],
)
def test_invalid_model_is_rejected(client, scoring_settings, filled, definition, location) -> None:  # type: ignore[no-untyped-def]
    response = client.post("/scoring/models", json=definition, headers=bearer(scoring_settings, filled.org_id, "root", admin=True))

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == location
    assert stored_model_ids(client, scoring_settings, filled.org_id) == ["v1", "v2"]


def test_weight_total_error_names_the_sum(client, scoring_settings, filled) -> None:  # type: ignore[no-untyped-def]
    response = client.post(
        "/scoring/models", json={"performance": {"pace": 50}}, headers=bearer(scoring_settings, filled.org_id, "root", admin=True)
    )

    message = response.json()["detail"][0]["msg"]
    assert "must add up to 100, not 110" in message
    assert "pace=50" in message


def test_weights_adding_up_to_100_are_stored(client, scoring_settings, filled) -> None:  # type: ignore[no-untyped-def]
    definition = {"performance": {"pace": 25, "cadence": 25, "confidence_calibration": 25, "goals_achieved": 25}}

    response = client.post("/scoring/models", json=definition, headers=bearer(scoring_settings, filled.org_id, "root", admin=True))

    assert response.status_code == 201
    assert response.json()["definition"]["performance"]["pace"] == 25


def test_revision_stored_before_the_weight_rule_loads(client, scoring_settings, sqlite_store, filled) -> None:  # type: ignore[no-untyped-def]
    old_definition = ScoringModelV2().model_dump(mode="json")
    old_definition["collaboration"]["kudos_received"] = 85.0  # the group adds up to 175
    with sqlite_store.engine.begin() as connection:
        connection.execute(
            insert(sqlite_store.tables.v2.scoring_models).values(
                org_id=filled.org_id, model_id="v2.1", revision=1, definition=json.dumps(old_definition),
                created_at=T0, created_by="root",
            )
        )
    reader = bearer(scoring_settings, filled.org_id, "bob")

    listed = client.get("/scoring/models", headers=reader)
    scores = client.get("/people/bob/scores", params={"model": "v2.1"}, headers=reader)

    assert listed.status_code == 200
    assert listed.json()["models"][2]["definition"]["collaboration"]["kudos_received"] == 85
    assert scores.status_code == 200
    kudos = next(item for item in scores.json()["collaboration"]["components"] if item["name"] == "kudos_received")
    assert kudos["configured_weight"] == 85


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
    assert kudos["configured_weight"] == 60
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
    admin = bearer(scoring_settings, filled.org_id, "root", admin=True)

    response = client.put("/scoring/models/active", json={"model_id": "v2.7"}, headers=admin)

    assert response.status_code == 404
    assert "model_id" in response.json()["detail"]
    assert client.get("/scoring/models", headers=admin).json()["active_model_id"] == "v2"


def test_models_of_another_org_are_not_found(client, scoring_settings, filled, other_org_events) -> None:  # type: ignore[no-untyped-def]
    admin = bearer(scoring_settings, filled.org_id, "root", admin=True)
    other_admin = bearer(scoring_settings, other_org_events.org_id, "root", admin=True)
    assert client.post("/scoring/models", json=KUDOS_HEAVY, headers=other_admin).json()["model_id"] == "v2.1"

    scores = client.get("/people/bob/scores", params={"model": "v2.1"}, headers=admin)
    activated = client.put("/scoring/models/active", json={"model_id": "v2.1"}, headers=admin)
    replayed = client.post("/scoring/replays", json={"model_id": "v2.1"}, headers=admin)

    assert (scores.status_code, activated.status_code, replayed.status_code) == (404, 404, 404)
    assert "query parameter model" in scores.json()["detail"]
    assert "model_id" in activated.json()["detail"]
    assert "model_id" in replayed.json()["detail"]
    assert client.get("/scoring/models", headers=admin).json()["active_model_id"] == "v2"
    assert stored_model_ids(client, scoring_settings, filled.org_id) == ["v1", "v2"]
    assert client.get("/scoring/replays", headers=admin).json()["replays"] == []


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
    assert kudos["configured_weight"] == 60
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
        ({"model_id": "v2", "window": "14d"}, "window"),
        ({"model_id": "v2", "surprise": 1}, "surprise"),
        # The range is empty or runs backwards: its start is not before its end.
        ({"model_id": "v2", "start": "2021-03-04T00:00:00Z", "as_of": "2021-03-02T00:00:00Z"}, "start"),
        ({"model_id": "v2", "start": "2021-03-02T00:00:00Z", "as_of": "2021-03-02T00:00:00Z"}, "start"),
        ({"model_id": "v2", "start": "2031-01-01T00:00:00Z"}, "start"),
        ({"model_id": "v2", "start": "2021-03-01T00:00:00Z", "window": "28d"}, "start"),
        ({"model_id": "v2", "start": "2021-03-01T00:00:00"}, "start"),
        # The period window would end before the period starts.
        ({"model_id": "v2", "window": "period:FY21-Q1", "as_of": "2020-12-31T00:00:00Z"}, "as_of"),
    ],
)
def test_invalid_replay_is_rejected(client, scoring_settings, filled, request_body, field) -> None:  # type: ignore[no-untyped-def]
    admin = bearer(scoring_settings, filled.org_id, "root", admin=True)

    response = client.post("/scoring/replays", json=request_body, headers=admin)

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", field]
    assert client.get("/scoring/replays", headers=admin).json()["replays"] == []


def test_replay_over_a_custom_range(client, scoring_settings, filled) -> None:  # type: ignore[no-untyped-def]
    admin = bearer(scoring_settings, filled.org_id, "root", admin=True)
    request_body = {"model_id": "v2", "start": "2021-03-03T12:00:00Z", "as_of": "2021-03-04T12:00:00Z"}

    started = client.post("/scoring/replays", json=request_body, headers=admin)
    results = client.get(f"/scoring/replays/{started.json()['replay_id']}", headers=admin).json()

    assert started.status_code == 201
    assert started.json()["window"] == "range:2021-03-03T12:00:00+00:00/2021-03-04T12:00:00+00:00"
    # Only the kudos at T0 + 3 days falls in the range; bob's check-in at T0 + 2 days does not.
    bob = next(subject for subject in results["subjects"] if subject["subject_id"] == "bob")
    components = {item["name"]: item for item in bob["collaboration"]["components"]}
    assert components["kudos_received"]["raw"] == 1
    assert components["help_on_others_goals"]["raw"] == 0


def test_period_ending_before_it_starts_is_rejected(client, scoring_settings, filled) -> None:  # type: ignore[no-untyped-def]
    params = {"window": "period:FY21-Q1", "as_of": "2020-12-31T00:00:00+00:00"}

    response = client.get("/people/bob/scores", params=params, headers=bearer(scoring_settings, filled.org_id, "bob"))

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "as_of"]
    assert "before period 'FY21-Q1' starts" in response.json()["detail"][0]["msg"]
