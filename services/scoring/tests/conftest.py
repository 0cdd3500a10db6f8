"""Fixtures for the scoring tests: envelope builders and real read-model databases."""

from __future__ import annotations

import itertools
import uuid
from collections import defaultdict
from datetime import date, datetime
from pathlib import Path
from typing import Callable, Iterable, Iterator

import pytest

from spm_events.envelope import Envelope, encode_envelope
from spm_events.readmodel import KafkaPosition, Outcome
from spm_events.registry import event_type_for, new_envelope
from spm_events.schemas import (
    CheckInRecordedV1,
    CollaboratorTaggedV1,
    GoalCreatedV1,
    GoalFollowedV1,
    GoalUnfollowedV1,
    KeyResultAddedV1,
    PeriodV1,
    Payload,
)
from spm_scoring.projection import ScoringProjection
from spm_scoring.settings import ScoringSettings
from spm_scoring.store import ScoringStore, open_store

PERIOD = PeriodV1(name="FY21-Q1", start=date(2021, 2, 1), end=date(2021, 4, 30))


class OrgEvents:
    """Builds the envelopes the goals and social services would publish for one org.

    Each goal is its own aggregate on spm.goals.v1 and has one social aggregate on spm.social.v1,
    and versions count up per aggregate in the order events are built.
    """

    def __init__(self, org_id: str) -> None:
        self.org_id = org_id
        self.versions: dict[str, int] = defaultdict(int)
        self.prefix = uuid.uuid4().hex[:8]

    def goal_id(self, name: str) -> str:
        """Return a goal id unique to this builder, because event ids derive from aggregate ids."""
        return f"{self.prefix}-{name}"

    def goal_created(self, goal: str, owner: str, team: str, at: datetime) -> Envelope:
        payload = GoalCreatedV1(goal_id=self.goal_id(goal), title=f"Goal {goal}", owner_id=owner, team=team, period=PERIOD)
        return self._goal_event(goal, payload, owner, at)

    def key_result_added(self, goal: str, key_result: str, actor: str, at: datetime) -> Envelope:
        payload = KeyResultAddedV1(
            goal_id=self.goal_id(goal),
            key_result_id=self.goal_id(key_result),
            title=f"Key result {key_result}",
            metric="percent",
            start_value=0,
            target_value=100,
        )
        return self._goal_event(goal, payload, actor, at)

    def check_in(self, goal: str, key_result: str, actor: str, progress: float, at: datetime) -> Envelope:
        payload = CheckInRecordedV1(
            goal_id=self.goal_id(goal),
            key_result_id=self.goal_id(key_result),
            check_in_id=uuid.uuid4().hex,
            value=progress * 100,
            progress=progress,
        )
        return self._goal_event(goal, payload, actor, at)

    def goal_followed(self, goal: str, follower: str, at: datetime) -> Envelope:
        payload = GoalFollowedV1(goal_id=self.goal_id(goal), follower_id=follower)
        return self._social_event(goal, payload, follower, at)

    def goal_unfollowed(self, goal: str, follower: str, at: datetime) -> Envelope:
        payload = GoalUnfollowedV1(goal_id=self.goal_id(goal), follower_id=follower)
        return self._social_event(goal, payload, follower, at)

    def collaborator_tagged(self, goal: str, tagger: str, tagged: str, at: datetime) -> Envelope:
        payload = CollaboratorTaggedV1(goal_id=self.goal_id(goal), collaborator_id=tagged)
        return self._social_event(goal, payload, tagger, at)

    def _goal_event(self, goal: str, payload: Payload, actor: str, at: datetime) -> Envelope:
        return self._envelope(self.goal_id(goal), payload, actor, at)

    def _social_event(self, goal: str, payload: Payload, actor: str, at: datetime) -> Envelope:
        return self._envelope(f"social-{self.goal_id(goal)}", payload, actor, at)

    def _envelope(self, subject: str, payload: Payload, actor: str, at: datetime) -> Envelope:
        self.versions[subject] += 1
        return new_envelope(
            payload,
            subject=subject,
            org_id=self.org_id,
            actor_id=actor,
            aggregate_version=self.versions[subject],
            time=at,
        )


class ReadModelFeeder:
    """Applies envelopes to a store the way the worker does, at made-up Kafka offsets."""

    def __init__(self, store: ScoringStore) -> None:
        self.store = store
        self.projection = ScoringProjection(store.tables)
        self.offsets = itertools.count()

    def apply(self, envelopes: Iterable[Envelope]) -> list[Outcome]:
        outcomes = []
        for envelope in envelopes:
            topic = event_type_for(envelope.type).topic.name
            position = KafkaPosition(topic, 0, next(self.offsets))
            outcome, _reason = self.store.read_model.apply(position, encode_envelope(envelope), self.projection)
            outcomes.append(outcome)
        return outcomes


@pytest.fixture
def org_events(unique_name: str) -> OrgEvents:
    return OrgEvents(org_id=f"org-{unique_name}")


@pytest.fixture
def other_org_events(unique_name: str) -> OrgEvents:
    return OrgEvents(org_id=f"other-{unique_name}")


@pytest.fixture
def scoring_settings(tmp_path: Path, unique_name: str) -> ScoringSettings:
    return ScoringSettings(data_dir=tmp_path / "data", processor_id=f"scoring-{unique_name}")


@pytest.fixture
def sqlite_store(scoring_settings: ScoringSettings) -> ScoringStore:
    return open_store(scoring_settings)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, scoring_settings: ScoringSettings) -> Iterator[ScoringStore]:
    """A read model on each supported database."""
    if request.param == "postgres":
        create_database: Callable[[], str] = request.getfixturevalue("postgres_url_factory")
        scoring_settings = scoring_settings.model_copy(update={"database_url": create_database()})
    opened = open_store(scoring_settings)
    yield opened
    opened.engine.dispose()


@pytest.fixture
def feeder(store: ScoringStore) -> ReadModelFeeder:
    return ReadModelFeeder(store)


@pytest.fixture
def sqlite_feeder(sqlite_store: ScoringStore) -> ReadModelFeeder:
    return ReadModelFeeder(sqlite_store)
