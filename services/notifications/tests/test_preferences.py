"""Preferences: the /preferences API, its validation, and how mutes and in-app switches filter the inbox."""

from __future__ import annotations

from datetime import datetime, time, timezone

import pytest
from fastapi.testclient import TestClient

from spm_events.auth import issue_token
from spm_notifications.api import create_app
from spm_notifications.preferences import DAILY, IMMEDIATE, WEEKLY, Preferences, QuietHours
from spm_notifications.rules import NOTIFICATION_KINDS, TAGGED
from spm_notifications.settings import NotificationsSettings

OWNER, ACTOR, FAY = "owner", "alex", "fay"
CONSUMER = "notifications-test"


@pytest.fixture
def client(database_url: str, tmp_path) -> TestClient:  # type: ignore[no-untyped-def]
    url = None if database_url.startswith("sqlite") else database_url
    return TestClient(create_app(NotificationsSettings(data_dir=tmp_path, database_url=url, processor_id=CONSUMER)))


@pytest.fixture
def headers(org_id: str):  # type: ignore[no-untyped-def]
    def issue(person_id: str) -> dict[str, str]:
        secret = NotificationsSettings().jwt_secret.get_secret_value()
        return {"Authorization": f"Bearer {issue_token(secret, org_id, person_id)}"}

    return issue


def test_preferences_defaults(client, headers) -> None:  # type: ignore[no-untyped-def]
    body = client.get("/preferences", headers=headers(FAY)).json()

    assert body["time_zone"] == "UTC"
    assert body["quiet_hours"] is None
    assert body["email_digest"] == DAILY
    assert set(body["channels"]) == set(NOTIFICATION_KINDS)
    assert body["channels"][TAGGED] == {"in_app": True, "push": True, "webhook": True, "email": True}
    assert body["muted"] == {"goals": [], "communities": []}
    assert body["kinds"][TAGGED] == NOTIFICATION_KINDS[TAGGED]


def test_preferences_patch_keeps_other_fields(client, headers) -> None:  # type: ignore[no-untyped-def]
    first = client.patch("/preferences", headers=headers(FAY), json={
        "time_zone": "America/New_York",
        "quiet_hours": {"start": "22:30", "end": "07:00"},
        "email_digest": WEEKLY,
        "channels": {TAGGED: {"email": False, "push": False}},
    })
    assert first.status_code == 200, first.text

    second = client.patch("/preferences", headers=headers(FAY), json={"channels": {TAGGED: {"push": True}}})
    body = client.get("/preferences", headers=headers(FAY)).json()

    assert second.status_code == 200
    assert body["time_zone"] == "America/New_York"
    assert body["quiet_hours"] == {"start": "22:30", "end": "07:00"}
    assert body["email_digest"] == WEEKLY
    assert body["channels"][TAGGED] == {"in_app": True, "push": True, "webhook": True, "email": False}


def test_preferences_null_quiet_hours_removes_them(client, headers) -> None:  # type: ignore[no-untyped-def]
    client.patch("/preferences", headers=headers(FAY), json={"quiet_hours": {"start": "22:00", "end": "06:00"}})

    response = client.patch("/preferences", headers=headers(FAY), json={"quiet_hours": None})

    assert response.status_code == 200
    assert response.json()["quiet_hours"] is None


def test_preferences_are_per_person(client, headers) -> None:  # type: ignore[no-untyped-def]
    client.patch("/preferences", headers=headers(FAY), json={"time_zone": "Asia/Tokyo"})

    assert client.get("/preferences", headers=headers(OWNER)).json()["time_zone"] == "UTC"


@pytest.mark.parametrize(
    ("body", "location", "text"),
    [
        ({"time_zone": "Mars/Olympus_Mons"}, ["body", "time_zone"], "unknown time zone"),
        ({"time_zone": "../etc/passwd"}, ["body", "time_zone"], "unknown time zone"),
        ({"channels": {"no_such_kind": {"email": False}}}, ["body", "channels"], "unknown notification kind"),
        ({"channels": {TAGGED: {"pigeon": True}}}, ["body", "channels"], "unknown channel"),
        ({"channels": {TAGGED: {"email": "sometimes"}}}, ["body", "channels", TAGGED, "email"], "boolean"),
        ({"quiet_hours": {"start": "7pm", "end": "07:00"}}, ["body", "quiet_hours", "start"], "HH:MM"),
        ({"quiet_hours": {"start": "22:00", "end": "24:00"}}, ["body", "quiet_hours", "end"], "out of range"),
        ({"quiet_hours": {"start": "22:00"}}, ["body", "quiet_hours", "end"], "required"),
        ({"email_digest": "hourly"}, ["body", "email_digest"], "immediate"),
        ({"colour": "blue"}, ["body", "colour"], "not permitted"),
    ],
)
def test_preferences_reject_invalid_fields(client, headers, body, location, text) -> None:  # type: ignore[no-untyped-def]
    # A valid change rides along in every body, to prove a rejected request writes nothing at all.
    response = client.patch("/preferences", headers=headers(FAY), json={"email_digest": IMMEDIATE, **body})

    assert response.status_code == 422
    errors = response.json()["detail"]
    assert [error["loc"] for error in errors] == [location]
    assert text in errors[0]["msg"]
    assert client.get("/preferences", headers=headers(FAY)).json()["email_digest"] == DAILY


def test_preferences_need_token(client) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/preferences").status_code == 401
    assert client.patch("/preferences", json={"time_zone": "UTC"}).status_code == 401


def test_mute_rejects_unknown_target_type(client, headers) -> None:  # type: ignore[no-untyped-def]
    response = client.put("/preferences/mutes/people/someone", headers=headers(FAY))

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["path", "target_type"]


def _tag_fay_on_two_goals(store, events) -> None:  # type: ignore[no-untyped-def]
    store.apply(
        events.goal_created("goal-a", OWNER, title="Goal A"),
        events.goal_created("goal-b", OWNER, title="Goal B"),
        events.tagged("goal-a", FAY, ACTOR, 10),
        events.tagged("goal-b", FAY, ACTOR, 20),
    )


def _inbox_goals(client, headers) -> tuple[list[str], int]:  # type: ignore[no-untyped-def]
    body = client.get("/inbox", headers=headers(FAY)).json()
    return [item["goal_id"] for item in body["items"]], body["unread_count"]


def test_muted_goal_leaves_inbox_and_count(client, headers, store, events) -> None:  # type: ignore[no-untyped-def]
    _tag_fay_on_two_goals(store, events)
    assert _inbox_goals(client, headers) == (["goal-b", "goal-a"], 2)

    muted = client.put("/preferences/mutes/goals/goal-a", headers=headers(FAY))
    assert muted.json() == {"target_type": "goal", "target_id": "goal-a", "muted": True}
    assert _inbox_goals(client, headers) == (["goal-b"], 1)
    assert client.get("/preferences", headers=headers(FAY)).json()["muted"]["goals"] == ["goal-a"]
    # Marking all read leaves the muted notification unread, like a hidden one.
    assert client.post("/inbox/read-all", headers=headers(FAY)).json() == {"marked": 1}

    client.delete("/preferences/mutes/goals/goal-a", headers=headers(FAY))
    assert _inbox_goals(client, headers) == (["goal-b", "goal-a"], 1)


def test_mute_of_another_person_changes_nothing(client, headers, store, events) -> None:  # type: ignore[no-untyped-def]
    _tag_fay_on_two_goals(store, events)

    client.put("/preferences/mutes/goals/goal-a", headers=headers(OWNER))

    assert _inbox_goals(client, headers) == (["goal-b", "goal-a"], 2)


def test_in_app_switch_hides_kind(client, headers, store, events) -> None:  # type: ignore[no-untyped-def]
    _tag_fay_on_two_goals(store, events)

    client.patch("/preferences", headers=headers(FAY), json={"channels": {TAGGED: {"in_app": False}}})
    assert _inbox_goals(client, headers) == ([], 0)

    client.patch("/preferences", headers=headers(FAY), json={"channels": {TAGGED: {"in_app": True}}})
    assert _inbox_goals(client, headers) == (["goal-b", "goal-a"], 2)


def test_email_switch_leaves_inbox_alone(client, headers, store, events) -> None:  # type: ignore[no-untyped-def]
    _tag_fay_on_two_goals(store, events)

    client.patch("/preferences", headers=headers(FAY), json={"channels": {TAGGED: {"email": False, "push": False}}})

    assert _inbox_goals(client, headers) == (["goal-b", "goal-a"], 2)


# --- quiet hours and digest times, without I/O ---

BERLIN = "Europe/Berlin"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("start", "end", "local", "quiet"),
    [
        (time(22), time(7), time(23, 30), True),
        (time(22), time(7), time(3), True),
        (time(22), time(7), time(7), False),
        (time(22), time(7), time(21, 59), False),
        (time(12), time(14), time(13), True),
        (time(12), time(14), time(14), False),
        (time(9), time(9), time(9), False),
    ],
)
def test_quiet_hours_contains(start, end, local, quiet) -> None:  # type: ignore[no-untyped-def]
    assert QuietHours(start, end).contains(local) is quiet


def test_end_of_quiet_over_midnight() -> None:
    preferences = Preferences(time_zone=BERLIN, quiet_hours=QuietHours(time(22), time(7)))

    # 21:30 UTC is 22:30 in Berlin in winter (UTC+1): quiet until 07:00 Berlin, 06:00 UTC the next day.
    assert preferences.is_quiet(utc("2026-01-14T21:30:00"))
    assert preferences.end_of_quiet(utc("2026-01-14T21:30:00")) == utc("2026-01-15T06:00:00")
    # 02:00 UTC is 03:00 in Berlin, after midnight: quiet until 06:00 UTC the same day.
    assert preferences.end_of_quiet(utc("2026-01-15T02:00:00")) == utc("2026-01-15T06:00:00")
    assert not preferences.is_quiet(utc("2026-01-15T06:00:00"))
    assert preferences.end_of_quiet(utc("2026-01-15T12:00:00")) == utc("2026-01-15T12:00:00")


def test_daily_digest_at_local_hour() -> None:
    tokyo = Preferences(time_zone="Asia/Tokyo", email_digest=DAILY)
    berlin_summer = Preferences(time_zone=BERLIN, email_digest=DAILY)

    # 00:30 UTC is 09:30 in Tokyo, past 08:00, so the digest goes out at 08:00 Tokyo the next day.
    assert tokyo.next_digest_at(utc("2026-06-10T00:30:00"), 8) == utc("2026-06-10T23:00:00")
    # 05:00 UTC is 07:00 in Berlin in summer (UTC+2), before 08:00 the same day.
    assert berlin_summer.next_digest_at(utc("2026-06-10T05:00:00"), 8) == utc("2026-06-10T06:00:00")


def test_weekly_digest_on_monday() -> None:
    preferences = Preferences(time_zone=BERLIN, email_digest=WEEKLY)

    # Wednesday 10 June 2026: the next Monday is 15 June, 08:00 Berlin = 06:00 UTC.
    assert preferences.next_digest_at(utc("2026-06-10T12:00:00"), 8) == utc("2026-06-15T06:00:00")
    # Monday 15 June before 08:00 Berlin: the same day.
    assert preferences.next_digest_at(utc("2026-06-15T05:00:00"), 8) == utc("2026-06-15T06:00:00")
    # Monday 15 June after 08:00 Berlin: a week later.
    assert preferences.next_digest_at(utc("2026-06-15T07:00:00"), 8) == utc("2026-06-22T06:00:00")


def test_digest_keeps_local_hour_across_daylight_saving() -> None:
    preferences = Preferences(time_zone=BERLIN, email_digest=WEEKLY)

    # Thursday 26 March 2026 is winter time (UTC+1). Monday 30 March is summer time (UTC+2),
    # so 08:00 Berlin is 06:00 UTC, not 07:00.
    assert preferences.next_digest_at(utc("2026-03-26T12:00:00"), 8) == utc("2026-03-30T06:00:00")


def test_immediate_digest_is_now() -> None:
    moment = utc("2026-06-10T12:34:00")

    assert Preferences(email_digest=IMMEDIATE).next_digest_at(moment, 8) == moment
