"""Fixtures for the social service's tests: settings on a temporary data directory and an API client.

The broker and PostgreSQL fixtures come from the repository's root conftest.py."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from fastapi.testclient import TestClient

from spm_events.auth import issue_token
from spm_events.database import create_database_engine
from spm_events.envelope import Envelope, encode_envelope
from spm_events.people import person_id_for
from spm_events.readmodel import KafkaPosition, Outcome
from spm_events.registry import event_type_for, new_envelope
from spm_events.schemas import (
    CheckInRecordedV1,
    CollaboratorTaggedV1,
    GoalCreatedV1,
    GoalFollowedV1,
    GoalOwnersChangedV1,
    GoalUnfollowedV1,
    GoalVisibilityChangedV1,
    KeyResultAddedV1,
    Payload,
    PeriodV1,
)
from spm_social.api import create_app
from spm_social.domain import graph_id_for
from spm_social.people import PeopleDirectory, PersonEntry
from spm_social.projection import FeedProjection
from spm_social.readmodel import SocialReadModel, open_read_model
from spm_social.settings import READ_MODEL_FILE, SocialSettings


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> SocialSettings:
    """Settings on SQLite files under tmp_path, or on a fresh PostgreSQL database."""
    database_url = None
    if request.param == "postgres":
        database_url = request.getfixturevalue("postgres_url_factory")()
    return SocialSettings(data_dir=tmp_path, database_url=database_url, kafka_bootstrap="127.0.0.1:1")


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> SocialSettings:
    return SocialSettings(data_dir=tmp_path, database_url=None, kafka_bootstrap="127.0.0.1:1")


@pytest.fixture
def read_model(settings: SocialSettings) -> Iterator[SocialReadModel]:
    engine = create_database_engine(settings.sqlalchemy_url(READ_MODEL_FILE))
    yield open_read_model(engine)
    engine.dispose()


@pytest.fixture
def client(settings: SocialSettings, read_model: SocialReadModel) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def org_id() -> str:
    return f"org-{uuid.uuid4().hex}"


@pytest.fixture
def auth_headers(settings: SocialSettings, org_id: str) -> Callable[[str], dict[str, str]]:
    """Return a function giving the Authorization header of one person of the test's organisation."""
    secret = settings.jwt_secret.get_secret_value()

    def headers_for(
        person_id: str, org: str | None = None, teams: tuple[str, ...] = (), admin: bool = False
    ) -> dict[str, str]:
        token = issue_token(secret, org or org_id, person_id, teams=teams, admin=admin)
        return {"Authorization": f"Bearer {token}"}

    return headers_for


class EnvelopeFactory:
    """Builds integration events of one organisation as the goals service and the relay publish them.

    Each subject gets consecutive aggregate versions, so every envelope has a new event id.
    """

    def __init__(self, org_id: str) -> None:
        self.org_id = org_id
        self.versions: dict[str, int] = {}

    def goal_created(
        self,
        goal_id: str,
        owner_id: str,
        title: str = "Grow the user base",
        *,
        visibility: str | None = None,
        co_owner_ids: tuple[str, ...] = (),
        team: str = "growth",
        contributing_teams: tuple[str, ...] = (),
        **time: Any,
    ) -> Envelope:
        period = PeriodV1(name="FY21-Q1", start=date(2021, 1, 1), end=date(2021, 3, 31))
        payload = GoalCreatedV1(
            goal_id=goal_id,
            title=title,
            owner_id=owner_id,
            team=team,
            contributing_teams=contributing_teams,
            period=period,
            co_owner_ids=co_owner_ids,
            visibility=visibility,
        )
        return self._wrap(payload, goal_id, owner_id, **time)

    def goal_owners_changed(
        self, goal_id: str, owner_id: str, co_owner_ids: tuple[str, ...] = (), **time: Any
    ) -> Envelope:
        payload = GoalOwnersChangedV1(goal_id=goal_id, owner_id=owner_id, co_owner_ids=co_owner_ids)
        return self._wrap(payload, goal_id, owner_id, **time)

    def goal_visibility_changed(
        self, goal_id: str, visibility: str, previous_visibility: str, actor_id: str, **time: Any
    ) -> Envelope:
        payload = GoalVisibilityChangedV1(
            goal_id=goal_id, visibility=visibility, previous_visibility=previous_visibility
        )
        return self._wrap(payload, goal_id, actor_id, **time)

    def key_result_added(self, goal_id: str, key_result_id: str, actor_id: str, **time: Any) -> Envelope:
        payload = KeyResultAddedV1(
            goal_id=goal_id,
            key_result_id=key_result_id,
            title="Weekly active users",
            metric="number",
            start_value=100.0,
            target_value=200.0,
        )
        return self._wrap(payload, goal_id, actor_id, **time)

    def check_in_recorded(
        self, goal_id: str, key_result_id: str, actor_id: str, progress: float = 0.5, **time: Any
    ) -> Envelope:
        payload = CheckInRecordedV1(
            goal_id=goal_id,
            key_result_id=key_result_id,
            check_in_id=f"check-in-{uuid.uuid4().hex[:8]}",
            value=150.0,
            progress=progress,
        )
        return self._wrap(payload, goal_id, actor_id, **time)

    def goal_followed(self, goal_id: str, follower_id: str, **time: Any) -> Envelope:
        payload = GoalFollowedV1(goal_id=goal_id, follower_id=follower_id)
        return self._wrap(payload, str(graph_id_for(self.org_id, goal_id)), follower_id, **time)

    def goal_unfollowed(self, goal_id: str, follower_id: str, **time: Any) -> Envelope:
        payload = GoalUnfollowedV1(goal_id=goal_id, follower_id=follower_id)
        return self._wrap(payload, str(graph_id_for(self.org_id, goal_id)), follower_id, **time)

    def collaborator_tagged(self, goal_id: str, collaborator_id: str, actor_id: str, **time: Any) -> Envelope:
        payload = CollaboratorTaggedV1(goal_id=goal_id, collaborator_id=collaborator_id)
        return self._wrap(payload, str(graph_id_for(self.org_id, goal_id)), actor_id, **time)

    def _wrap(self, payload: Payload, subject: str, actor_id: str, day: int = 4, hour: int = 9) -> Envelope:
        self.versions[subject] = self.versions.get(subject, 0) + 1
        return new_envelope(
            payload,
            subject=subject,
            org_id=self.org_id,
            actor_id=actor_id,
            aggregate_version=self.versions[subject],
            time=datetime(2021, 1, day, hour, 0, tzinfo=timezone.utc),
        )


@pytest.fixture
def events(org_id: str) -> EnvelopeFactory:
    return EnvelopeFactory(org_id)


@pytest.fixture
def apply_envelopes(read_model: SocialReadModel) -> Callable[..., None]:
    """Return a function that runs the feed projection on envelopes, as the worker does for new events."""
    projection = FeedProjection(read_model.tables)

    def apply(*envelopes: Envelope) -> None:
        with read_model.engine.begin() as connection:
            for envelope in envelopes:
                projection(connection, envelope)

    return apply


@pytest.fixture
def add_known_goal(apply_envelopes: Callable[..., None], org_id: str) -> Callable[..., str]:
    """Return a function that makes a goal known to the service, as its GoalCreated on spm.goals.v1 would."""

    def add(owner_id: str = "owner-1", org: str | None = None, title: str = "Grow the user base") -> str:
        goal_id = f"goal-{uuid.uuid4().hex[:12]}"
        apply_envelopes(EnvelopeFactory(org or org_id).goal_created(goal_id, owner_id, title))
        return goal_id

    return add


BROKER_READ_SECONDS = 30.0


class BrokerDelivery:
    """Sends envelopes through the real broker into a read model, as the feed worker receives them.

    Each envelope is published to its registry topic keyed by subject, as the relays publish, then
    read back from the broker at the position it was written to and applied in publishing order
    with that position. Other tests share the topics, so only the positions published here are read.
    """

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap

    def deliver(self, read_model: SocialReadModel, *envelopes: Envelope) -> list[Outcome]:
        """Publish the envelopes, apply them to ``read_model`` from the broker, and return each outcome."""
        messages = asyncio.run(self._publish_and_read_back(envelopes))
        projection = FeedProjection(read_model.tables)
        outcomes = []
        for position, raw_value in messages:
            outcome, reason = read_model.positioned.apply(position, raw_value, projection)
            assert reason is None, f"{position} was rejected: {reason}"
            outcomes.append(outcome)
        return outcomes

    async def _publish_and_read_back(
        self, envelopes: tuple[Envelope, ...]
    ) -> list[tuple[KafkaPosition, bytes | None]]:
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, enable_idempotence=True, acks="all")
        await producer.start()
        try:
            positions = []
            for envelope in envelopes:
                metadata = await producer.send_and_wait(
                    event_type_for(envelope.type).topic.name,
                    key=envelope.subject.encode(),
                    value=encode_envelope(envelope),
                )
                positions.append(KafkaPosition(metadata.topic, metadata.partition, metadata.offset))
        finally:
            await producer.stop()
        values = await self._read_positions(positions)
        return [(position, values[position]) for position in positions]

    async def _read_positions(self, positions: list[KafkaPosition]) -> dict[KafkaPosition, bytes | None]:
        first_offsets: dict[TopicPartition, int] = {}
        for position in positions:
            partition = TopicPartition(position.topic, position.partition)
            first_offsets[partition] = min(first_offsets.get(partition, position.offset), position.offset)
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            consumer.assign(list(first_offsets))
            for partition, offset in first_offsets.items():
                consumer.seek(partition, offset)
            expected = set(positions)
            values: dict[KafkaPosition, bytes | None] = {}
            deadline = asyncio.get_running_loop().time() + BROKER_READ_SECONDS
            while expected - values.keys():
                if asyncio.get_running_loop().time() > deadline:
                    pytest.fail(f"timed out reading back {sorted(expected - values.keys(), key=str)}")
                batches = await consumer.getmany(timeout_ms=500)
                for messages in batches.values():
                    for message in messages:
                        position = KafkaPosition(message.topic, message.partition, message.offset)
                        if position in expected:
                            values[position] = message.value
            return values
        finally:
            await consumer.stop()


@pytest.fixture
def broker(kafka_bootstrap: str) -> BrokerDelivery:
    return BrokerDelivery(kafka_bootstrap)


@pytest.fixture
def add_people(read_model: SocialReadModel, org_id: str) -> Callable[..., list[str]]:
    """Return a function that stores active people in the directory by handle and returns their person ids."""
    directory = PeopleDirectory(read_model.engine)

    def add(*handles: str, org: str | None = None) -> list[str]:
        organisation = org or org_id
        entries = [
            PersonEntry(
                handle=handle, display_name=handle.title(), email=f"{handle}@example.com", team="growth", manager_handle=None
            )
            for handle in handles
        ]
        directory.upsert_batch(organisation, entries)
        return [person_id_for(organisation, handle) for handle in handles]

    return add
