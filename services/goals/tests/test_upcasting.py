"""Events stored by earlier versions of the goals service load, relay and serve as current ones.

Each test writes events in the exact shape earlier versions stored (JSON without the fields added
since, and without a class version) straight into the event store, on SQLite and PostgreSQL,
then reads them through the application, the relay mapping and the API.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from typing import Any, Callable, Iterator

import pytest
from eventsourcing.persistence import StoredEvent
from fastapi.testclient import TestClient

from spm_events.database import create_database_engine
from spm_goals.api import create_app
from spm_goals.application import GoalsApplication
from spm_goals.objective import Objective, Period
from spm_goals.relay import envelope_for
from spm_goals.settings import EVENT_STORE_FILE, READ_DATABASE_FILE, GoalsSettings

PERIOD = Period("FY21-Q1", date(2020, 2, 1), date(2020, 4, 30))
PLANNED_AT = datetime(2020, 1, 20, tzinfo=timezone.utc)
CHECKED_AT = datetime(2020, 3, 16, 12, tzinfo=timezone.utc)

# Fields each event class gained after its first version, as the earlier code stored it.
FIELDS_ADDED_SINCE_VERSION_1 = {
    "ObjectiveCreated": ("status", "level", "co_owner_ids", "visibility"),
    "KeyResultAdded": ("unit", "weight"),
    "CheckInRecorded": ("confidence", "status", "status_overridden"),
}


def as_first_version(goals: GoalsApplication, domain_event: Any) -> StoredEvent:
    """Store ``domain_event`` the way version 1 of its class was stored."""
    stored = goals.mapper.to_stored_event(domain_event)
    state = json.loads(stored.state)
    assert state.pop("class_version") == 2
    for name in FIELDS_ADDED_SINCE_VERSION_1[type(domain_event).__name__]:
        del state[name]
    return StoredEvent(stored.originator_id, stored.originator_version, stored.topic, json.dumps(state).encode())


@pytest.fixture
def goals(backend_settings: GoalsSettings) -> Iterator[GoalsApplication]:
    engine = create_database_engine(backend_settings.sqlalchemy_url(READ_DATABASE_FILE))
    application = GoalsApplication(env=backend_settings.event_store_env(EVENT_STORE_FILE), index_engine=engine)
    yield application
    application.close()
    engine.dispose()


def store_first_version_goal(goals: GoalsApplication) -> Objective:
    """Record a goal, a key result and a check-in, and store all three in their version 1 shape."""
    objective = Objective.create(
        org_id="acme", owner_id="owner-1", team="Sales", contributing_teams=("Marketing",), period=PERIOD,
        parent_goal_id=None, title="Grow ARR", external_ref="CEO-1", occurred_at=PLANNED_AT, actor_id="admin-1",
        level="company", co_owner_ids=("co-1",), visibility="private",
    )
    key_result = objective.add_key_result(
        title="New logos", metric="number", start_value=0, target_value=40, external_ref="CEO-1.KR1",
        occurred_at=PLANNED_AT, actor_id="admin-1", unit="customers", weight=3,
    )
    objective.record_check_in(
        key_result_id=key_result.key_result_id, value=8, comment="slow start", occurred_at=CHECKED_AT,
        actor_id="owner-1", confidence=0.9, status="on_track",
    )
    goals.recorder.insert_events([as_first_version(goals, event) for event in objective.collect_events()])
    return objective


def test_first_version_events_load_with_upcast_defaults(goals: GoalsApplication) -> None:
    stored = store_first_version_goal(goals)

    loaded = goals.get_objective("acme", stored.id)

    assert (loaded.status, loaded.level, loaded.co_owner_ids, loaded.visibility) == ("active", "team", (), "organisation")
    (key_result,) = loaded.key_results.values()
    assert (key_result.unit, key_result.weight) == (None, 1.0)
    (check_in,) = key_result.check_ins
    # Version 1 had no status: it is derived from pace. 8 of 40 is 20%, with half the period gone: off track.
    assert (check_in.confidence, check_in.status, check_in.status_overridden) == (None, "off_track", False)
    assert loaded.version == 3


def test_first_version_events_relay_as_current_payloads(goals: GoalsApplication) -> None:
    stored = store_first_version_goal(goals)
    loaded = goals.get_objective("acme", stored.id)

    envelopes = [
        envelope_for(goals.mapper.to_domain_event(notification), lambda _: loaded)
        for notification in goals.read_notifications(0, 10)
    ]

    created, added, checked_in = [envelope.data for envelope in envelopes if envelope is not None]
    assert (created["status"], created["level"], created["visibility"], created["co_owner_ids"]) == (
        "active", "team", "organisation", [],
    )
    assert (added["unit"], added["weight"]) == (None, 1.0)
    assert (checked_in["status"], checked_in["confidence"]) == ("off_track", None)


def test_first_version_goal_is_served_and_changed_through_the_api(
    backend_settings: GoalsSettings, goals: GoalsApplication, auth_header: Callable[..., dict[str, str]]
) -> None:
    stored = store_first_version_goal(goals)
    headers = auth_header("acme", "owner-1")
    with TestClient(create_app(backend_settings)) as client:
        served = client.get(f"/goals/{stored.id}", headers=headers)
        changed = client.post(f"/goals/{stored.id}/visibility", json={"visibility": "team"}, headers=headers)

    assert served.status_code == 200, served.text
    assert served.json()["visibility"] == "organisation"
    assert served.json()["key_results"][0]["weight"] == 1.0
    assert changed.status_code == 200, changed.text
    assert (changed.json()["visibility"], changed.json()["version"]) == ("team", 4)
