"""The model v2 API over a real SQLite read model: explanations, goal visibility, teams and goals."""

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
def filled(sqlite_feeder, org_events):  # type: ignore[no-untyped-def]
    """bob helps on alice's open goal g1 and on erin's private goal g2; carol thanks bob on both."""
    sqlite_feeder.apply(
        [
            org_events.goal_created("g1", owner="alice", team="search", at=T0),
            org_events.key_result_added("g1", "k1", actor="alice", at=T0),
            org_events.goal_created("g2", owner="erin", team="infra", at=T0, visibility="private"),
            org_events.key_result_added("g2", "k2", actor="erin", at=T0),
            org_events.check_in("g1", "k1", actor="bob", progress=0.4, at=T0 + 2 * DAY),
            org_events.check_in("g2", "k2", actor="bob", progress=0.4, at=T0 + 3 * DAY),
            org_events.kudos_given("g1", giver="carol", receiver="bob", at=T0 + 4 * DAY),
            org_events.kudos_given("g2", giver="carol", receiver="bob", at=T0 + 5 * DAY),
        ]
    )
    return org_events


def bearer(settings, org_id: str, person_id: str, teams: tuple[str, ...] = (), admin: bool = False) -> dict[str, str]:  # type: ignore[no-untyped-def]
    token = issue_token(settings.jwt_secret.get_secret_value(), org_id, person_id, teams=teams, admin=admin)
    return {"Authorization": f"Bearer {token}"}


def events_of(body: dict, kind: str, name: str) -> list[dict]:
    return next(component for component in body[kind]["components"] if component["name"] == name)["events"]


def test_person_scores_default_to_model_v2(client, scoring_settings, filled) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/people/bob/scores", headers=bearer(scoring_settings, filled.org_id, "dave"))

    body = response.json()
    assert response.status_code == 200
    assert body["model_id"] == "v2"
    assert body["window"] == "28d"
    assert body["window_days"] == 28
    assert body["as_of"] == "2021-03-06T09:00:00Z"
    names = [component["name"] for component in body["collaboration"]["components"]]
    assert names == [
        "distinct_collaborators", "accepted_tags", "help_on_others_goals", "kudos_received", "kudos_given",
        "cross_team_share", "reciprocity", "degree", "brokerage",
    ]
    contributions = sum(component["contribution"] for component in body["collaboration"]["components"])
    assert body["collaboration"]["score"] == pytest.approx(contributions, abs=0.05)


def test_explanations_name_events(client, scoring_settings, filled) -> None:  # type: ignore[no-untyped-def]
    headers = bearer(scoring_settings, filled.org_id, "erin", teams=("infra",))

    body = client.get("/people/bob/scores", headers=headers).json()

    help_events = events_of(body, "collaboration", "help_on_others_goals")
    assert [(event["type"], event["goal_id"], event["impact"]) for event in help_events] == [
        ("spm.goals.CheckInRecorded.v1", filled.goal_id("g2"), 1.0),
        ("spm.goals.CheckInRecorded.v1", filled.goal_id("g1"), 1.0),
    ]
    assert help_events[0]["occurred_at"] == "2021-03-04T09:00:00Z"
    assert len(help_events[0]["event_id"]) == 36


def test_explanations_leave_out_unseen_goals(client, scoring_settings, filled) -> None:  # type: ignore[no-untyped-def]
    outsider = bearer(scoring_settings, filled.org_id, "dave", teams=("infra",))
    admin = bearer(scoring_settings, filled.org_id, "root", admin=True)

    hidden = client.get("/people/bob/scores", headers=outsider).json()
    shown = client.get("/people/bob/scores", headers=admin).json()

    for name in ("help_on_others_goals", "kudos_received", "distinct_collaborators"):
        assert {event["goal_id"] for event in events_of(hidden, "collaboration", name)} == {filled.goal_id("g1")}, name
    assert {event["goal_id"] for event in events_of(shown, "collaboration", "help_on_others_goals")} == {
        filled.goal_id("g1"), filled.goal_id("g2"),
    }
    assert hidden["collaboration"]["score"] == shown["collaboration"]["score"]


def test_own_private_goal_counts_in_own_score(client, scoring_settings, filled) -> None:  # type: ignore[no-untyped-def]
    erin = bearer(scoring_settings, filled.org_id, "erin")
    outsider = bearer(scoring_settings, filled.org_id, "dave")
    private_id = filled.goal_id("g2")

    own = client.get("/people/erin/scores", headers=erin).json()
    seen_by_outsider = client.get("/people/erin/scores", headers=outsider).json()
    team_seen_by_outsider = client.get("/teams/infra/scores", headers=outsider).json()
    pace = next(component for component in own["performance"]["components"] if component["name"] == "pace")

    # erin owns only the private goal g2, whose key result bob moved to 0.4: the value counts it for every reader.
    assert pace["applicable"] is True
    assert pace["value"] > 0
    assert seen_by_outsider["performance"] == {
        **own["performance"],
        "components": [{**component, "events": []} for component in own["performance"]["components"]],
    }
    assert {event["goal_id"] for event in events_of(own, "performance", "pace")} == {private_id}
    assert events_of(seen_by_outsider, "performance", "pace") == []
    assert team_seen_by_outsider["performance"]["score"] == own["performance"]["score"]
    assert events_of(team_seen_by_outsider, "performance", "pace") == []


def test_opened_goal_shows_again(client, scoring_settings, sqlite_feeder, filled) -> None:  # type: ignore[no-untyped-def]
    outsider = bearer(scoring_settings, filled.org_id, "dave")
    sqlite_feeder.apply([filled.visibility_changed("g2", "organisation", "private", actor="erin", at=T0 + 6 * DAY)])

    body = client.get("/people/bob/scores", headers=outsider).json()

    assert {event["goal_id"] for event in events_of(body, "collaboration", "help_on_others_goals")} == {
        filled.goal_id("g1"), filled.goal_id("g2"),
    }


def test_team_goal_shows_to_its_team(client, scoring_settings, sqlite_feeder, org_events) -> None:  # type: ignore[no-untyped-def]
    sqlite_feeder.apply(
        [
            org_events.goal_created("g3", owner="erin", team="infra", at=T0, visibility="team"),
            org_events.key_result_added("g3", "k3", actor="erin", at=T0),
            org_events.check_in("g3", "k3", actor="bob", progress=0.4, at=T0 + DAY),
        ]
    )
    infra = bearer(scoring_settings, org_events.org_id, "ivan", teams=("infra",))
    search = bearer(scoring_settings, org_events.org_id, "sam", teams=("search",))

    seen = client.get("/people/bob/scores", headers=infra).json()
    unseen = client.get("/people/bob/scores", headers=search).json()

    assert len(events_of(seen, "collaboration", "help_on_others_goals")) == 1
    assert events_of(unseen, "collaboration", "help_on_others_goals") == []


def test_private_goal_answers_like_an_unknown_goal(client, scoring_settings, filled) -> None:  # type: ignore[no-untyped-def]
    outsider = bearer(scoring_settings, filled.org_id, "dave")
    owner = bearer(scoring_settings, filled.org_id, "erin")
    private_id = filled.goal_id("g2")

    hidden = client.get(f"/goals/{private_id}/scores", headers=outsider)
    unknown = client.get("/goals/no-such-goal/scores", headers=outsider)
    shown = client.get(f"/goals/{private_id}/scores", headers=owner)

    assert hidden.status_code == unknown.status_code == 404
    assert hidden.json()["detail"] == unknown.json()["detail"].replace("'no-such-goal'", repr(private_id))
    assert shown.status_code == 200
    assert shown.json()["team"] == "infra"


def test_goal_scores_explain_themselves(client, scoring_settings, filled) -> None:  # type: ignore[no-untyped-def]
    response = client.get(f"/goals/{filled.goal_id('g1')}/scores", headers=bearer(scoring_settings, filled.org_id, "dave"))

    body = response.json()
    assert response.status_code == 200
    contributors = next(item for item in body["collaboration"]["components"] if item["name"] == "contributors")
    assert contributors["raw"] == 1.0
    assert [item["name"] for item in body["performance"]["components"]] == [
        "pace", "cadence", "confidence_calibration", "goals_achieved",
    ]


def test_small_team_is_withheld(client, scoring_settings, filled) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/teams/search/scores", headers=bearer(scoring_settings, filled.org_id, "dave"))

    body = response.json()
    assert response.status_code == 200
    assert body["member_count"] == 1
    assert body["collaboration"]["score"] is None
    assert body["collaboration"]["withheld_reason"] == "teams with fewer than 5 members show no network figure"
    assert all(component["events"] == [] for component in body["collaboration"]["components"])


def test_unknown_team_is_not_found(client, scoring_settings, filled) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/teams/nobody/scores", headers=bearer(scoring_settings, filled.org_id, "dave"))

    assert response.status_code == 404


def test_windows_are_chosen_by_label(client, scoring_settings, filled) -> None:  # type: ignore[no-untyped-def]
    headers = bearer(scoring_settings, filled.org_id, "dave")

    week = client.get("/people/bob/scores", params={"window": "7d"}, headers=headers).json()
    quarter = client.get("/people/bob/scores", params={"window": "period:FY21-Q1"}, headers=headers).json()
    wrong = client.get("/people/bob/scores", params={"window": "14d"}, headers=headers)
    unknown_period = client.get("/people/bob/scores", params={"window": "period:FY30"}, headers=headers)
    garbage = client.get("/people/bob/scores", params={"window": "soon"}, headers=headers)

    assert (week["window"], week["window_days"]) == ("7d", 7)
    assert quarter["window"] == "period:FY21-Q1"
    assert wrong.status_code == 422
    assert wrong.json()["detail"][0]["loc"] == ["query", "window"]
    assert unknown_period.status_code == 422
    assert "FY21-Q1" in unknown_period.json()["detail"][0]["msg"]
    assert garbage.status_code == 422
    assert garbage.json()["detail"][0]["loc"] == ["query", "window"]


def test_top_collaborators_under_v2(client, scoring_settings, filled) -> None:  # type: ignore[no-untyped-def]
    body = client.get("/scores/collaboration/top", headers=bearer(scoring_settings, filled.org_id, "dave")).json()

    assert body["model_id"] == "v2"
    assert body["window"] == "28d"
    assert [person["person_id"] for person in body["people"]][0] == "bob"
    assert all(person["score"] > 0 for person in body["people"])
    first_component = body["people"][0]["components"][0]
    assert set(first_component) >= {"name", "value", "weight", "contribution", "events"}


def test_unknown_model_is_not_found(client, scoring_settings, filled) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/people/bob/scores", params={"model": "v9"}, headers=bearer(scoring_settings, filled.org_id, "dave"))

    assert response.status_code == 404
    assert "/scoring/models" in response.json()["detail"]


def test_v1_scores_people_only(client, scoring_settings, filled) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/teams/search/scores", params={"model": "v1"}, headers=bearer(scoring_settings, filled.org_id, "dave"))

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "model"]
