"""The query API over a real SQLite read model filled from hand-built events."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient

from spm_events.auth import issue_token
from spm_scoring.api import create_app

T0 = datetime(2021, 3, 1, 9, 0, tzinfo=timezone.utc)
DAY = timedelta(days=1)


@pytest.fixture
def client(scoring_settings, sqlite_store) -> TestClient:  # type: ignore[no-untyped-def]
    return TestClient(create_app(scoring_settings, sqlite_store))


@pytest.fixture
def filled(sqlite_feeder, org_events, other_org_events):  # type: ignore[no-untyped-def]
    """Alice owns g1; bob helps on it; carol tags dave and erin; erin tags bob; frank follows."""
    sqlite_feeder.apply(
        [
            org_events.goal_created("g1", owner="alice", team="search", at=T0),
            org_events.key_result_added("g1", "k1", actor="alice", at=T0),
            org_events.check_in("g1", "k1", actor="bob", progress=0.5, at=T0 + 10 * DAY),
            org_events.collaborator_tagged("g1", tagger="carol", tagged="dave", at=T0 + 11 * DAY),
            org_events.collaborator_tagged("g1", tagger="carol", tagged="erin", at=T0 + 11 * DAY),
            org_events.collaborator_tagged("g1", tagger="erin", tagged="bob", at=T0 + 12 * DAY),
            org_events.goal_followed("g1", follower="frank", at=T0 + 12 * DAY),
            other_org_events.goal_created("g9", owner="zoe", team="sales", at=T0 + 30 * DAY),
        ]
    )
    return org_events


V1 = {"model": "v1"}


def v1_component(name: str, value: float, weight: float, contribution: float) -> dict:
    return {
        "name": name, "value": value, "weight": weight, "contribution": contribution,
        "configured_weight": weight, "applicable": True, "raw": None, "events": [],
    }


def bearer(settings, org_id: str, person_id: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    token = issue_token(settings.jwt_secret.get_secret_value(), org_id, person_id)
    return {"Authorization": f"Bearer {token}"}


def test_health_needs_no_token(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_v1_person_scores_explain_themselves(client, scoring_settings, filled) -> None:  # type: ignore[no-untyped-def]
    headers = bearer(scoring_settings, filled.org_id, "dave")

    response = client.get("/people/alice/scores", params=V1, headers=headers)

    assert response.status_code == 200
    assert response.json() == {
        "person_id": "alice",
        "org_id": filled.org_id,
        "model_id": "v1",
        "window": "28d",
        "team": None,
        "as_of": "2021-03-13T09:00:00Z",
        "window_days": 28,
        "performance": {
            "score": 42.5,
            "withheld_reason": None,
            "components": [
                v1_component("mean_progress", 0.5, 70.0, 35.0),
                v1_component("cadence", 0.25, 30.0, 7.5),
            ],
        },
        "collaboration": {
            "score": 6.0,
            "withheld_reason": None,
            "components": [
                v1_component("distinct_collaborators", 1.0, 5.0, 5.0),
                v1_component("tags_received", 0.0, 3.0, 0.0),
                v1_component("help_check_ins", 0.0, 2.0, 0.0),
                v1_component("teams_helped", 0.0, 4.0, 0.0),
                v1_component("followers_gained", 1.0, 1.0, 1.0),
            ],
        },
    }


def test_as_of_accepts_any_time_zone(client, scoring_settings, filled) -> None:  # type: ignore[no-untyped-def]
    headers = bearer(scoring_settings, filled.org_id, "dave")

    response = client.get("/people/bob/scores", params={"as_of": "2021-03-11T11:00:00+02:00", **V1}, headers=headers)

    body = response.json()
    assert response.status_code == 200
    assert body["as_of"] == "2021-03-11T09:00:00Z"
    assert body["performance"] == {"score": None, "components": [], "withheld_reason": None}
    assert body["collaboration"]["score"] == 5 + 2 + 4


def test_naive_as_of_is_rejected(client, scoring_settings, filled) -> None:  # type: ignore[no-untyped-def]
    headers = bearer(scoring_settings, filled.org_id, "dave")

    response = client.get("/people/bob/scores", params={"as_of": "2021-03-11T11:00:00"}, headers=headers)

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "as_of"]


def test_v1_follower_without_other_rows_is_known(client, scoring_settings, filled) -> None:  # type: ignore[no-untyped-def]
    headers = bearer(scoring_settings, filled.org_id, "dave")

    response = client.get("/people/frank/scores", params=V1, headers=headers)

    assert response.status_code == 200
    assert response.json()["collaboration"]["score"] == 0.0


def test_unknown_person_is_not_found(client, scoring_settings, filled) -> None:  # type: ignore[no-untyped-def]
    headers = bearer(scoring_settings, filled.org_id, "dave")

    response = client.get("/people/nobody/scores", headers=headers)

    assert response.status_code == 404
    assert "nobody" in response.json()["detail"]


def test_person_of_another_org_is_not_found(client, scoring_settings, filled) -> None:  # type: ignore[no-untyped-def]
    headers = bearer(scoring_settings, filled.org_id, "dave")

    response = client.get("/people/zoe/scores", headers=headers)

    assert response.status_code == 404


def test_scores_need_a_token(client, filled) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/people/alice/scores").status_code == 401
    assert client.get("/scores/collaboration/top").status_code == 401


def test_token_signed_with_another_secret_is_rejected(client, filled) -> None:  # type: ignore[no-untyped-def]
    token = issue_token("another-secret-that-is-long-enough-for-hs256", filled.org_id, "dave")

    response = client.get("/people/alice/scores", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 401


def test_v1_top_collaborators_rank_by_score_then_person(client, scoring_settings, filled) -> None:  # type: ignore[no-untyped-def]
    headers = bearer(scoring_settings, filled.org_id, "dave")

    response = client.get("/scores/collaboration/top", params={"limit": 4, **V1}, headers=headers)

    body = response.json()
    assert response.status_code == 200
    assert body["as_of"] == "2021-03-13T09:00:00Z"
    # bob: alice and erin, 1 tag, 1 help, 1 team = 10+3+2+4. erin: carol and bob, 1 tag = 13.
    # carol: dave and erin = 10. dave: carol, 1 tag = 8. alice (6) falls outside the limit.
    assert [(person["person_id"], person["score"]) for person in body["people"]] == [
        ("bob", 19.0),
        ("erin", 13.0),
        ("carol", 10.0),
        ("dave", 8.0),
    ]
    assert body["people"][0]["components"][0] == v1_component("distinct_collaborators", 2.0, 5.0, 10.0)


def test_v1_top_collaborators_break_ties_by_person_id(client, scoring_settings, sqlite_feeder, org_events) -> None:  # type: ignore[no-untyped-def]
    sqlite_feeder.apply(
        [
            org_events.goal_created("g1", owner="mia", team="search", at=T0),
            org_events.goal_created("g2", owner="ann", team="search", at=T0),
            org_events.goal_followed("g1", follower="zed", at=T0 + DAY),
            org_events.goal_followed("g2", follower="zed", at=T0 + DAY),
        ]
    )
    headers = bearer(scoring_settings, org_events.org_id, "zed")

    response = client.get("/scores/collaboration/top", params=V1, headers=headers)

    assert [(person["person_id"], person["score"]) for person in response.json()["people"]] == [
        ("ann", 1.0),
        ("mia", 1.0),
    ]


@pytest.mark.parametrize("limit", [0, 101, "many"])
def test_top_collaborators_reject_bad_limit(client, scoring_settings, filled, limit) -> None:  # type: ignore[no-untyped-def]
    headers = bearer(scoring_settings, filled.org_id, "dave")

    response = client.get("/scores/collaboration/top", params={"limit": limit}, headers=headers)

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "limit"]


def test_top_collaborators_of_an_empty_org(client, scoring_settings) -> None:  # type: ignore[no-untyped-def]
    headers = bearer(scoring_settings, "org-without-events", "dave")

    response = client.get("/scores/collaboration/top", headers=headers)
    response_v1 = client.get("/scores/collaboration/top", params=V1, headers=headers)

    assert response.json() == {"as_of": None, "model_id": "v2", "window": None, "people": []}
    assert response_v1.json() == {"as_of": None, "model_id": "v1", "window": "28d", "people": []}


def test_positions_list_applied_offsets(client, filled, scoring_settings) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/internal/positions")

    assert response.status_code == 200
    assert response.json() == {
        "consumer": scoring_settings.processor_id,
        "positions": [
            {"topic": "spm.goals.v1", "partition": 0, "offset": 7},
            {"topic": "spm.social.v1", "partition": 0, "offset": 6},
        ],
    }
