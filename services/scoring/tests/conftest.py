"""Fixtures for the scoring tests: envelope builders and real read-model databases."""

from __future__ import annotations

import itertools
import sys
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
    CollaboratorLeftV1,
    CollaboratorTaggedV1,
    CollaboratorUntaggedV1,
    CommentDeletedV1,
    CommentPostedV1,
    GoalCreatedV1,
    GoalFollowedV1,
    GoalOwnersChangedV1,
    GoalStatusChangedV1,
    GoalUnfollowedV1,
    GoalVisibilityChangedV1,
    KeyResultAddedV1,
    KudosGivenV1,
    PeriodV1,
    Payload,
    ReactionAddedV1,
    ReactionRemovedV1,
    TagAcceptedV1,
    TagDeclinedV1,
)
from spm_scoring.engine import OrgScores
from spm_scoring.model import DEFAULT_V2_MODEL, ScoringModelV2
from spm_scoring.projection import ScoringProjection
from spm_scoring.scoreboard import Scoreboard
from spm_scoring.settings import ScoringSettings
from spm_scoring.store import ScoringStore, open_store

# The dataset generator and the reference scorer beside this file are imported by module name.
TESTS_DIR = str(Path(__file__).resolve().parent)
if TESTS_DIR not in sys.path:
    sys.path.insert(0, TESTS_DIR)

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

    def goal_created(
        self,
        goal: str,
        owner: str,
        team: str,
        at: datetime,
        *,
        co_owners: tuple[str, ...] = (),
        contributing_teams: tuple[str, ...] = (),
        visibility: str | None = None,
        period: PeriodV1 = PERIOD,
    ) -> Envelope:
        payload = GoalCreatedV1(
            goal_id=self.goal_id(goal),
            title=f"Goal {goal}",
            owner_id=owner,
            team=team,
            period=period,
            co_owner_ids=co_owners,
            contributing_teams=contributing_teams,
            visibility=visibility,  # type: ignore[arg-type]
        )
        return self._goal_event(goal, payload, owner, at)

    def owners_changed(self, goal: str, owner: str, actor: str, at: datetime, co_owners: tuple[str, ...] = ()) -> Envelope:
        payload = GoalOwnersChangedV1(goal_id=self.goal_id(goal), owner_id=owner, co_owner_ids=co_owners)
        return self._goal_event(goal, payload, actor, at)

    def visibility_changed(self, goal: str, visibility: str, previous: str, actor: str, at: datetime) -> Envelope:
        payload = GoalVisibilityChangedV1(
            goal_id=self.goal_id(goal), visibility=visibility, previous_visibility=previous  # type: ignore[arg-type]
        )
        return self._goal_event(goal, payload, actor, at)

    def status_changed(
        self, goal: str, status: str, previous: str, actor: str, at: datetime, outcome: str | None = None
    ) -> Envelope:
        payload = GoalStatusChangedV1(
            goal_id=self.goal_id(goal), status=status, previous_status=previous, outcome=outcome  # type: ignore[arg-type]
        )
        return self._goal_event(goal, payload, actor, at)

    def key_result_added(self, goal: str, key_result: str, actor: str, at: datetime, weight: float = 1.0) -> Envelope:
        payload = KeyResultAddedV1(
            goal_id=self.goal_id(goal),
            key_result_id=self.goal_id(key_result),
            title=f"Key result {key_result}",
            metric="percent",
            start_value=0,
            target_value=100,
            weight=weight,
        )
        return self._goal_event(goal, payload, actor, at)

    def check_in(
        self, goal: str, key_result: str, actor: str, progress: float, at: datetime, confidence: float | None = None
    ) -> Envelope:
        payload = CheckInRecordedV1(
            goal_id=self.goal_id(goal),
            key_result_id=self.goal_id(key_result),
            check_in_id=uuid.uuid4().hex,
            value=progress * 100,
            progress=progress,
            confidence=confidence,
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

    def tag_accepted(self, goal: str, person: str, at: datetime) -> Envelope:
        return self._social_event(goal, TagAcceptedV1(goal_id=self.goal_id(goal), collaborator_id=person), person, at)

    def tag_declined(self, goal: str, person: str, at: datetime) -> Envelope:
        return self._social_event(goal, TagDeclinedV1(goal_id=self.goal_id(goal), collaborator_id=person), person, at)

    def collaborator_left(self, goal: str, person: str, at: datetime) -> Envelope:
        return self._social_event(goal, CollaboratorLeftV1(goal_id=self.goal_id(goal), collaborator_id=person), person, at)

    def collaborator_untagged(self, goal: str, person: str, actor: str, at: datetime) -> Envelope:
        payload = CollaboratorUntaggedV1(goal_id=self.goal_id(goal), collaborator_id=person)
        return self._social_event(goal, payload, actor, at)

    def comment_posted(self, goal: str, author: str, comment: str, at: datetime) -> Envelope:
        payload = CommentPostedV1(goal_id=self.goal_id(goal), comment_id=self.goal_id(comment), body="Looks good")
        return self._social_event(goal, payload, author, at)

    def comment_deleted(self, goal: str, author: str, comment: str, at: datetime) -> Envelope:
        payload = CommentDeletedV1(goal_id=self.goal_id(goal), comment_id=self.goal_id(comment))
        return self._social_event(goal, payload, author, at)

    def kudos_given(self, goal: str, giver: str, receiver: str, at: datetime) -> Envelope:
        payload = KudosGivenV1(
            goal_id=self.goal_id(goal), kudos_id=uuid.uuid4().hex, receiver_id=receiver, message="Thank you"
        )
        return self._social_event(goal, payload, giver, at)

    def reaction_added(self, goal: str, actor: str, at: datetime, target: tuple[str, str] = ("goal", ""), reaction: str = "like") -> Envelope:
        """React to the goal, or to ``target`` = (kind, id) of it, such as ("comment", "c1")."""
        payload = ReactionAddedV1(goal_id=self.goal_id(goal), **self._reaction_target(goal, target), reaction=reaction)
        return self._social_event(goal, payload, actor, at)

    def reaction_removed(self, goal: str, actor: str, at: datetime, target: tuple[str, str] = ("goal", ""), reaction: str = "like") -> Envelope:
        payload = ReactionRemovedV1(goal_id=self.goal_id(goal), **self._reaction_target(goal, target), reaction=reaction)
        return self._social_event(goal, payload, actor, at)

    def _reaction_target(self, goal: str, target: tuple[str, str]) -> dict[str, str]:
        kind, name = target
        return {"target_kind": kind, "target_id": self.goal_id(goal) if kind == "goal" else self.goal_id(name)}

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


def score_v2(
    store: ScoringStore,
    org_id: str,
    window: str | None = None,
    as_of: datetime | None = None,
    model: ScoringModelV2 = DEFAULT_V2_MODEL,
) -> OrgScores:
    """Score every subject of the org under model v2 straight from the read model."""
    board = Scoreboard(store.engine, store.tables)
    snapshot = board.snapshot(org_id)
    return board.org_scores(snapshot, "v2", model, board.resolve_window(snapshot, model, window, as_of))


@pytest.fixture
def v2_scores() -> Callable[..., OrgScores]:
    return score_v2


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
