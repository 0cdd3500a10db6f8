"""The four service APIs built for fuzzing on SQLite files in a temporary directory, and their tokens.

Each service's OpenAPI document is read at import time from an app on throwaway files, because
``@schema.parametrize()`` needs the operations while pytest collects. The apps the requests go to are
session fixtures of conftest.py.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from spm_events.auth import issue_token
from spm_events.database import create_database_engine
from spm_events.envelope import Envelope, encode_envelope
from spm_events.people import person_id_for
from spm_events.readmodel import KafkaPosition, Outcome, PositionedReadModel
from spm_events.registry import event_type_for, new_envelope
from spm_events.schemas import (
    CheckInRecordedV1,
    CollaboratorTaggedV1,
    GoalCreatedV1,
    GoalFollowedV1,
    KeyResultAddedV1,
    Payload,
    PeriodV1,
)
from spm_goals.api import create_app as create_goals_app
from spm_goals.settings import GoalsSettings
from spm_notifications.api import create_app as create_notifications_app
from spm_notifications.projection import InboxProjection
from spm_notifications.rules import notification_id_for
from spm_notifications.settings import READ_MODEL_FILE as NOTIFICATIONS_READ_MODEL_FILE
from spm_notifications.settings import NotificationsSettings
from spm_notifications.tables import open_read_model as open_inbox_read_model
from spm_scoring.api import create_app as create_scoring_app
from spm_scoring.projection import ScoringProjection
from spm_scoring.settings import ScoringSettings
from spm_scoring.store import open_store as open_scoring_store
from spm_social.api import create_app as create_social_app
from spm_social.projection import FeedProjection
from spm_social.readmodel import open_read_model
from spm_social.settings import READ_MODEL_FILE as SOCIAL_READ_MODEL_FILE
from spm_social.settings import SocialSettings

JWT_SECRET = "a-fuzzing-secret-that-is-long-enough-for-hs256"
ORG_ID = "fuzz-org"
# Directory people of the social service have ids derived from their handles.
PERSON_HANDLE, ADMIN_HANDLE, COLLEAGUE_HANDLE = "person-one", "admin-one", "colleague-two"
PERSON_ID = person_id_for(ORG_ID, PERSON_HANDLE)
ADMIN_ID = person_id_for(ORG_ID, ADMIN_HANDLE)
COLLEAGUE_ID = person_id_for(ORG_ID, COLLEAGUE_HANDLE)
SOCIAL_GOAL_ID = "fuzz-goal-1"
TEAM = "Platform"
# Small, so generated bodies over it reach the 413 response; the seeding requests stay far below it.
MAX_BODY_BYTES = 16 * 1024


# Ids of the seeded data per service and path parameter, which the flatmap_path_parameters hook of
# test_schemathesis.py puts into generated paths.
SEEDED_IDS: dict[str, dict[str, str]] = {}


@dataclass(frozen=True)
class Service:
    name: str
    build: Callable[[Path], FastAPI]
    seed: Callable[[TestClient, Path], None] = lambda client, data_dir: None


def _common_settings(data_dir: Path) -> dict[str, Any]:
    return {
        "data_dir": data_dir,
        "database_url": None,
        "kafka_bootstrap": "127.0.0.1:1",
        "jwt_secret": JWT_SECRET,
        "max_body_bytes": MAX_BODY_BYTES,
    }


def build_goals(data_dir: Path) -> FastAPI:
    return create_goals_app(GoalsSettings(**_common_settings(data_dir)))


def seed_goals(client: TestClient, data_dir: Path) -> None:
    """Create a goal with a key result and a check-in, and a second goal it can align to or support."""
    headers = auth_headers()
    period = {"name": "FY20-Q1", "start": "2020-01-01", "end": "2020-12-31"}
    parent = client.post(
        "/goals", headers=headers, json={"title": "Parent", "team": TEAM, "period": period, "external_ref": "PARENT-1"}
    )
    goal = client.post(
        "/goals",
        headers=headers,
        json={"title": "Fuzzed goal", "team": TEAM, "period": period, "external_ref": "GOAL-1", "co_owner_ids": [ADMIN_ID]},
    )
    assert parent.status_code == goal.status_code == 201, (parent.text, goal.text)

    goal_id = goal.json()["goal_id"]
    key_result = client.post(
        f"/goals/{goal_id}/key-results",
        headers=headers,
        json={"title": "Revenue", "metric": "number", "start_value": 0, "target_value": 10, "external_ref": "KR-1"},
    )
    assert key_result.status_code == 201, key_result.text

    key_result_id = key_result.json()["key_result_id"]
    check_in = client.post(
        f"/goals/{goal_id}/key-results/{key_result_id}/check-ins",
        headers=headers,
        json={"value": 3, "occurred_at": "2020-03-01T09:00:00Z"},
    )
    assert check_in.status_code == 201, check_in.text

    SEEDED_IDS["goals"] = {
        "goal_id": goal_id,
        "key_result_id": key_result_id,
        "supported_goal_id": parent.json()["goal_id"],
    }


def build_social(data_dir: Path) -> FastAPI:
    # The rate limit is a documented 429; raising it lets every generated command reach its route.
    settings = SocialSettings(**_common_settings(data_dir), rate_limit_commands=10_000_000)
    return create_social_app(settings)


def seed_social(client: TestClient, data_dir: Path) -> None:
    """Fill the people directory, apply a goal with a key result and a check-in as the feed worker would, and comment on it."""
    people = [
        {"handle": handle, "display_name": handle, "email": f"{handle}@example.com", "team": TEAM}
        for handle in (PERSON_HANDLE, ADMIN_HANDLE, COLLEAGUE_HANDLE)
    ]
    directory = client.post("/people/batch", headers=auth_headers(ADMIN_ID, admin=True), json={"people": people})
    assert directory.status_code == 200, directory.text

    occurred_at = datetime(2021, 1, 4, 9, tzinfo=timezone.utc)
    period = PeriodV1(name="FY21-Q1", start=date(2021, 1, 1), end=date(2021, 3, 31))
    payloads = [
        GoalCreatedV1(goal_id=SOCIAL_GOAL_ID, title="Fuzzed goal", owner_id=PERSON_ID, team=TEAM, period=period),
        KeyResultAddedV1(
            goal_id=SOCIAL_GOAL_ID, key_result_id="fuzz-kr-1", title="Revenue", metric="number", start_value=0, target_value=10
        ),
        CheckInRecordedV1(goal_id=SOCIAL_GOAL_ID, key_result_id="fuzz-kr-1", check_in_id="fuzz-check-in-1", value=3, progress=0.3),
    ]
    engine = create_database_engine(SocialSettings(**_common_settings(data_dir)).sqlalchemy_url(SOCIAL_READ_MODEL_FILE))
    try:
        projection = FeedProjection(open_read_model(engine).tables)
        with engine.begin() as connection:
            for version, payload in enumerate(payloads, start=1):
                envelope = new_envelope(
                    payload, subject=SOCIAL_GOAL_ID, org_id=ORG_ID, actor_id=PERSON_ID, aggregate_version=version, time=occurred_at
                )
                projection(connection, envelope)
    finally:
        engine.dispose()

    comment = client.post(f"/goals/{SOCIAL_GOAL_ID}/comments", headers=auth_headers(), json={"body": "First!"})
    community = client.post("/communities", headers=auth_headers(), json={"name": "Fuzzers"})
    assert comment.status_code == community.status_code == 201, (comment.text, community.text)
    SEEDED_IDS["social"] = {
        "goal_id": SOCIAL_GOAL_ID,
        "comment_id": comment.json()["comment_id"],
        "community_id": community.json()["community_id"],
        "person_id": COLLEAGUE_ID,
        "handle": COLLEAGUE_HANDLE,
    }


def goal_activity_envelopes(goal_id: str, owner_id: str, colleague_id: str, follower_id: str) -> list[Envelope]:
    """Return the envelopes of a goal with a key result and two check-ins by its owner, a tag of ``colleague_id`` and a follow.

    The goal events are one aggregate and the social events another, with versions counted per aggregate,
    as the goals and social relays publish them.
    """
    period = PeriodV1(name="FY21-Q1", start=date(2021, 1, 1), end=date(2021, 3, 31))
    social_subject = f"social-{goal_id}"
    events: list[tuple[str, Payload, str, datetime]] = [
        (goal_id, GoalCreatedV1(goal_id=goal_id, title="Fuzzed goal", owner_id=owner_id, team=TEAM, period=period), owner_id,
         datetime(2021, 1, 4, 9, tzinfo=timezone.utc)),
        (goal_id, KeyResultAddedV1(goal_id=goal_id, key_result_id="fuzz-kr-1", title="Revenue", metric="number", start_value=0,
                                   target_value=10), owner_id, datetime(2021, 1, 4, 10, tzinfo=timezone.utc)),
        (social_subject, GoalFollowedV1(goal_id=goal_id, follower_id=follower_id), follower_id,
         datetime(2021, 1, 5, 9, tzinfo=timezone.utc)),
        (social_subject, CollaboratorTaggedV1(goal_id=goal_id, collaborator_id=colleague_id), owner_id,
         datetime(2021, 1, 6, 9, tzinfo=timezone.utc)),
        (goal_id, CheckInRecordedV1(goal_id=goal_id, key_result_id="fuzz-kr-1", check_in_id="fuzz-check-in-1", value=3, progress=0.3),
         owner_id, datetime(2021, 1, 11, 9, tzinfo=timezone.utc)),
        (goal_id, CheckInRecordedV1(goal_id=goal_id, key_result_id="fuzz-kr-1", check_in_id="fuzz-check-in-2", value=6, progress=0.6),
         owner_id, datetime(2021, 1, 18, 9, tzinfo=timezone.utc)),
    ]
    versions: dict[str, int] = {}
    envelopes = []
    for subject, payload, actor_id, occurred_at in events:
        versions[subject] = versions.get(subject, 0) + 1
        envelopes.append(
            new_envelope(payload, subject=subject, org_id=ORG_ID, actor_id=actor_id, aggregate_version=versions[subject], time=occurred_at)
        )
    return envelopes


def apply_envelopes(read_model: PositionedReadModel, projection: Callable[..., None], envelopes: list[Envelope]) -> None:
    """Apply envelopes as consecutive Kafka messages, the way a service's worker does."""
    for offset, envelope in enumerate(envelopes):
        position = KafkaPosition(event_type_for(envelope.type).topic.name, 0, offset)
        outcome, reason = read_model.apply(position, encode_envelope(envelope), projection)
        assert outcome is Outcome.APPLIED, (envelope.type, outcome, reason)


def build_scoring(data_dir: Path) -> FastAPI:
    return create_scoring_app(ScoringSettings(**_common_settings(data_dir)))


def seed_scoring(client: TestClient, data_dir: Path) -> None:
    """Apply a goal's events as the scoring worker would, and run a replay of model v2."""
    store = open_scoring_store(ScoringSettings(**_common_settings(data_dir)))
    try:
        envelopes = goal_activity_envelopes(SOCIAL_GOAL_ID, owner_id=PERSON_ID, colleague_id=COLLEAGUE_ID, follower_id=ADMIN_ID)
        apply_envelopes(store.read_model, ScoringProjection(store.tables), envelopes)
    finally:
        store.engine.dispose()

    for subject in (f"/people/{PERSON_ID}/scores", f"/teams/{TEAM}/scores", f"/goals/{SOCIAL_GOAL_ID}/scores"):
        scores = client.get(subject, headers=auth_headers())
        assert scores.status_code == 200, (subject, scores.text)
    replay = client.post("/scoring/replays", headers=auth_headers(ADMIN_ID, admin=True), json={"model_id": "v2"})
    assert replay.status_code == 201, replay.text
    SEEDED_IDS["scoring"] = {
        "person_id": PERSON_ID,
        "team": TEAM,
        "goal_id": SOCIAL_GOAL_ID,
        "replay_id": replay.json()["replay_id"],
    }


def build_notifications(data_dir: Path) -> FastAPI:
    # The seeded webhook calls 127.0.0.1, which the target policy rejects unless its network is listed.
    # No dispatcher runs in the fuzz tests, so nothing is ever sent to it.
    settings = NotificationsSettings(**_common_settings(data_dir), webhook_allowed_networks="127.0.0.1/32")
    return create_notifications_app(settings)


def seed_notifications(client: TestClient, data_dir: Path) -> None:
    """Fill the person's inbox through the worker's projection, and register a webhook of the person."""
    settings = NotificationsSettings(**_common_settings(data_dir))
    engine = create_database_engine(settings.sqlalchemy_url(NOTIFICATIONS_READ_MODEL_FILE))
    # The person follows the colleague's goal and is tagged on it, so its check-ins and the tag reach their inbox.
    envelopes = goal_activity_envelopes(SOCIAL_GOAL_ID, owner_id=COLLEAGUE_ID, colleague_id=PERSON_ID, follower_id=PERSON_ID)
    try:
        read_model, tables = open_inbox_read_model(engine, settings.processor_id)
        apply_envelopes(read_model, InboxProjection(tables), envelopes)
    finally:
        engine.dispose()

    inbox = client.get("/inbox", headers=auth_headers())
    assert inbox.status_code == 200, inbox.text
    notification_ids = [item["notification_id"] for item in inbox.json()["items"]]
    check_in_notification = notification_id_for(envelopes[-1].id, PERSON_ID)
    assert check_in_notification in notification_ids, inbox.text

    webhook = client.post("/webhooks", headers=auth_headers(), json={"url": "http://127.0.0.1:9/spm"})
    assert webhook.status_code == 201, webhook.text
    SEEDED_IDS["notifications"] = {"notification_id": check_in_notification, "webhook_id": webhook.json()["webhook_id"]}


SERVICES = {
    service.name: service
    for service in (
        Service("goals", build_goals, seed_goals),
        Service("social", build_social, seed_social),
        Service("scoring", build_scoring, seed_scoring),
        Service("notifications", build_notifications, seed_notifications),
    )
}


def openapi_document(service_name: str) -> dict[str, Any]:
    """Return a service's OpenAPI document from an app on throwaway SQLite files (storage does not change it)."""
    with tempfile.TemporaryDirectory() as data_dir:
        app = SERVICES[service_name].build(Path(data_dir))
        # Entering the client runs the lifespan, whose shutdown closes the app's databases.
        with TestClient(app) as client:
            return client.get("/openapi.json").json()


def bearer_token(person_id: str = PERSON_ID, *, admin: bool = False) -> str:
    return issue_token(JWT_SECRET, ORG_ID, person_id, teams=(TEAM,), admin=admin)


def auth_headers(person_id: str = PERSON_ID, *, admin: bool = False) -> dict[str, str]:
    return {"Authorization": f"Bearer {bearer_token(person_id, admin=admin)}"}
