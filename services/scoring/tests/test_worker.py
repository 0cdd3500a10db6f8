"""The worker as a subprocess on the real broker: events published with aiokafka, scores read back."""

from __future__ import annotations

import random
import time
import uuid
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone
from typing import Iterable, Iterator

import pytest
from fastapi.testclient import TestClient
from scoring_worker_process import WorkerProcess, publish, wait_until_applied

from spm_events.auth import issue_token
from spm_events.envelope import Envelope
from spm_scoring.api import create_app
from spm_scoring.settings import ScoringSettings

pytestmark = pytest.mark.kafka

T0 = datetime(2021, 3, 1, 9, 0, tzinfo=timezone.utc)
DAY = timedelta(days=1)
WINDOW = timedelta(days=28)
# How long a caught-up worker may take to show one new event in the scores API; the measured latency is printed.
VISIBLE_WITHIN_SECONDS = 10.0


def headers_for(settings: ScoringSettings, org_id: str) -> dict[str, str]:
    token = issue_token(settings.jwt_secret.get_secret_value(), org_id, "reader")
    return {"Authorization": f"Bearer {token}"}


def scores_by_person(client: TestClient, settings: ScoringSettings, org_id: str, people: Iterable[str], as_of: datetime | None = None) -> dict:
    params = {"model": "v1"} if as_of is None else {"model": "v1", "as_of": as_of.isoformat()}
    result = {}
    for person in people:
        response = client.get(f"/people/{person}/scores", params=params, headers=headers_for(settings, org_id))
        assert response.status_code == 200, response.text
        body = response.json()
        result[person] = (body["performance"]["score"], body["collaboration"]["score"])
    return result


@pytest.fixture(scope="module")
def worker(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    running = WorkerProcess(
        tmp_path_factory.mktemp("scoring-worker"), kafka_bootstrap, f"scoring-test-{uuid.uuid4().hex[:12]}"
    ).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def worker_client(worker: WorkerProcess) -> TestClient:
    return TestClient(create_app(worker.settings))


def small_scenario(events) -> list[Envelope]:  # type: ignore[no-untyped-def]
    """Social events are published first, so they can reach the worker before their goal."""
    return [
        events.collaborator_tagged("g1", tagger="carol", tagged="dave", at=T0 + 2 * DAY),
        events.goal_followed("g1", follower="dave", at=T0 + 3 * DAY),
        events.goal_unfollowed("g1", follower="dave", at=T0 + 4 * DAY),
        events.goal_followed("g2", follower="alice", at=T0 + 4 * DAY),
        events.goal_created("g1", owner="alice", team="search", at=T0),
        events.key_result_added("g1", "k1", actor="alice", at=T0),
        events.key_result_added("g1", "k2", actor="alice", at=T0),
        events.check_in("g1", "k1", actor="alice", progress=0.5, at=T0 + DAY),
        events.check_in("g1", "k2", actor="bob", progress=0.25, at=T0 + 8 * DAY),
        events.goal_created("g2", owner="bob", team="infra", at=T0 + DAY),
        events.key_result_added("g2", "k3", actor="bob", at=T0 + DAY),
        events.check_in("g2", "k3", actor="carol", progress=1.2, at=T0 + 9 * DAY),
    ]


def test_worker_scores_published_events(kafka_bootstrap, worker, worker_client, org_events) -> None:  # type: ignore[no-untyped-def]
    published = publish(kafka_bootstrap, small_scenario(org_events))

    wait_until_applied(worker_client, worker, published)
    scores = scores_by_person(worker_client, worker.settings, org_events.org_id, ["alice", "bob", "carol", "dave"])

    # as_of = T0+9d. alice: k1 0.5, k2 0.25, check-ins 8 and 1 days back, 2 weeks: 70*0.375 + 30*0.5.
    # alice's collaboration: bob helped (5) and dave followed (1). bob: k3 at 1 (70) in 1 week (7.5);
    # he helped alice (5+2+4), carol helped him (5) and alice followed g2 (1).
    # carol: tagged dave (5) and helped bob (5+2+4). dave: tagged by carol (5+3).
    assert scores == {
        "alice": (41.25, 6.0),
        "bob": (77.5, 17.0),
        "carol": (None, 16.0),
        "dave": (None, 8.0),
    }


def test_new_event_shows_within_seconds(kafka_bootstrap, worker, worker_client, org_events, capsys) -> None:  # type: ignore[no-untyped-def]
    headers = headers_for(worker.settings, org_events.org_id)
    wait_until_applied(
        worker_client,
        worker,
        publish(
            kafka_bootstrap,
            [
                org_events.goal_created("g1", owner="alice", team="search", at=T0),
                org_events.kudos_given("g1", giver="carol", receiver="alice", at=T0 + DAY),
            ],
        ),
    )

    def kudos_received() -> float:
        body = worker_client.get("/people/alice/scores", headers=headers).json()
        return next(item["raw"] for item in body["collaboration"]["components"] if item["name"] == "kudos_received")

    assert kudos_received() == 1
    published_at = time.monotonic()
    publish(kafka_bootstrap, [org_events.kudos_given("g1", giver="bob", receiver="alice", at=T0 + 2 * DAY)])
    deadline = published_at + VISIBLE_WITHIN_SECONDS
    seen = kudos_received()
    while seen != 2 and time.monotonic() < deadline:
        time.sleep(0.05)
        seen = kudos_received()
    latency = time.monotonic() - published_at

    with capsys.disabled():
        print(f"\nscoring latency: a new KudosGiven showed in GET /people/alice/scores {latency:.2f} s after it was published")
    assert seen == 2, f"kudos_received was still {seen} after {VISIBLE_WITHIN_SECONDS}s:\n{worker.log_tail()}"


def test_redelivered_events_leave_scores_unchanged(kafka_bootstrap, worker, worker_client, org_events) -> None:  # type: ignore[no-untyped-def]
    events = small_scenario(org_events)
    people = ["alice", "bob", "carol", "dave"]
    wait_until_applied(worker_client, worker, publish(kafka_bootstrap, events))
    first = scores_by_person(worker_client, worker.settings, org_events.org_id, people)
    top_first = worker_client.get("/scores/collaboration/top", headers=headers_for(worker.settings, org_events.org_id)).json()
    top_v1_first = worker_client.get("/scores/collaboration/top", params={"model": "v1"}, headers=headers_for(worker.settings, org_events.org_id)).json()

    wait_until_applied(worker_client, worker, publish(kafka_bootstrap, events))
    again = scores_by_person(worker_client, worker.settings, org_events.org_id, people)
    top_again = worker_client.get("/scores/collaboration/top", headers=headers_for(worker.settings, org_events.org_id)).json()
    top_v1_again = worker_client.get("/scores/collaboration/top", params={"model": "v1"}, headers=headers_for(worker.settings, org_events.org_id)).json()

    assert again == first
    assert top_again == top_first
    assert top_v1_again == top_v1_first


def generated_events(events, seed: int) -> list[Envelope]:  # type: ignore[no-untyped-def]
    """Build a random but reproducible org history over 45 days, in event-time order per aggregate."""
    rng = random.Random(seed)
    people = [f"p{index}" for index in range(6)]
    teams = ["search", "infra", "sales"]
    plan: list[tuple[datetime, str, tuple]] = []
    key_results: list[tuple[str, str]] = []
    for index in range(6):
        goal, owner, created = f"g{index}", people[index], T0 + timedelta(hours=rng.randint(0, 48))
        plan.append((created, "goal_created", (goal, owner, rng.choice(teams))))
        for number in range(2):
            key_result = f"{goal}-k{number}"
            key_results.append((goal, key_result))
            plan.append((created + timedelta(hours=1), "key_result_added", (goal, key_result, owner)))
    for _ in range(70):
        goal, key_result = rng.choice(key_results)
        owner = people[int(goal[1:])]
        actor = owner if rng.random() < 0.6 else rng.choice(people)
        at = T0 + timedelta(days=3, minutes=rng.randint(0, 42 * 24 * 60))
        plan.append((at, "check_in", (goal, key_result, actor, round(rng.uniform(-0.1, 1.3), 3))))
    # Two check-ins on one key result at the same moment: the later version must win.
    plan.append((T0 + 40 * DAY, "check_in", ("g0", "g0-k0", "p3", 0.9)))
    plan.append((T0 + 40 * DAY, "check_in", ("g0", "g0-k0", "p0", 0.35)))
    for _ in range(35):
        at = T0 + timedelta(days=2, minutes=rng.randint(0, 43 * 24 * 60))
        plan.append((at, "collaborator_tagged", (f"g{rng.randrange(6)}", rng.choice(people), rng.choice(people))))
    for _ in range(25):
        at = T0 + timedelta(days=2, minutes=rng.randint(0, 43 * 24 * 60))
        kind = "goal_followed" if rng.random() < 0.75 else "goal_unfollowed"
        plan.append((at, kind, (f"g{rng.randrange(6)}", rng.choice(people))))
    plan.sort(key=lambda step: step[0])
    built = []
    for at, kind, arguments in plan:
        build = getattr(events, kind)
        if kind == "goal_created":
            goal, owner, team = arguments
            built.append(build(goal, owner=owner, team=team, at=at))
        elif kind == "key_result_added":
            goal, key_result, actor = arguments
            built.append(build(goal, key_result, actor=actor, at=at))
        elif kind == "check_in":
            goal, key_result, actor, progress = arguments
            built.append(build(goal, key_result, actor=actor, progress=progress, at=at))
        elif kind == "collaborator_tagged":
            goal, tagger, tagged = arguments
            built.append(build(goal, tagger=tagger, tagged=tagged, at=at))
        else:
            goal, follower = arguments
            built.append(build(goal, follower=follower, at=at))
    return built


def reference_scores(envelopes: list[Envelope], as_of: datetime) -> dict[str, tuple[float | None, float]]:
    """Compute every person's scores straight from the event list, as the formula states them."""
    goals: dict[str, tuple[str, str, datetime]] = {}
    key_results: dict[str, tuple[str, datetime]] = {}
    check_ins, tags, follows = [], [], []
    for envelope in envelopes:
        data, name = envelope.data, envelope.type.split(".")[2]
        if name == "GoalCreated":
            goals[data["goal_id"]] = (data["owner_id"], data["team"], envelope.time)
        elif name == "KeyResultAdded":
            key_results[data["key_result_id"]] = (data["goal_id"], envelope.time)
        elif name == "CheckInRecorded":
            check_ins.append((data["key_result_id"], data["goal_id"], envelope.actorid, data["progress"], envelope.time, envelope.aggregateversion))
        elif name == "CollaboratorTagged":
            tags.append((envelope.actorid, data["collaborator_id"], envelope.time))
        elif name == "GoalFollowed":
            follows.append((data["goal_id"], data["follower_id"], envelope.time))

    def in_window(moment: datetime) -> bool:
        return as_of - WINDOW < moment <= as_of

    links: dict[str, set[str]] = defaultdict(set)
    teams_helped: dict[str, set[str]] = defaultdict(set)
    tags_received, help_check_ins, followers_gained = Counter(), Counter(), Counter()
    for tagger, tagged, moment in tags:
        if in_window(moment) and tagger != tagged:
            links[tagged].add(tagger)
            links[tagger].add(tagged)
            tags_received[tagged] += 1
    for _key_result, goal, actor, _progress, moment, _version in check_ins:
        owner, team, _created = goals[goal]
        if in_window(moment) and actor != owner:
            links[actor].add(owner)
            links[owner].add(actor)
            help_check_ins[actor] += 1
            teams_helped[actor].add(team)
    for goal, follower, moment in follows:
        if in_window(moment) and follower != goals[goal][0]:
            followers_gained[goals[goal][0]] += 1

    people = {owner for owner, _team, _created in goals.values()} | {actor for _k, _g, actor, *_rest in check_ins}
    result = {}
    for person in people:
        owned = {goal for goal, (owner, _team, created) in goals.items() if owner == person and created <= as_of}
        performance = None
        if owned:
            mine = [key for key, (goal, added) in key_results.items() if goal in owned and added <= as_of]
            progress = []
            weeks = set()
            for key in mine:
                history = sorted((moment, version, value) for k, _g, _a, value, moment, version in check_ins if k == key and moment <= as_of)
                progress.append(min(1.0, max(0.0, history[-1][2])) if history else 0.0)
                weeks |= {(as_of - moment) // timedelta(days=7) for moment, _version, _value in history if in_window(moment)}
            mean = sum(progress) / len(progress) if progress else 0.0
            performance = round(70 * mean + 30 * len(weeks) / 4, 2)
        collaboration = 5 * len(links[person]) + 3 * tags_received[person] + 2 * help_check_ins[person]
        collaboration += 4 * len(teams_helped[person]) + followers_gained[person]
        result[person] = (performance, float(collaboration))
    return result


def test_stream_scores_equal_reference(kafka_bootstrap, worker, worker_client, org_events) -> None:  # type: ignore[no-untyped-def]
    events = generated_events(org_events, seed=20210301)
    social_first = sorted(events, key=lambda envelope: envelope.type.startswith("spm.goals"))
    latest = max(envelope.time for envelope in events)

    wait_until_applied(worker_client, worker, publish(kafka_bootstrap, social_first))

    for as_of in (latest, latest - 12 * DAY):
        expected = reference_scores(events, as_of)
        actual = scores_by_person(worker_client, worker.settings, org_events.org_id, sorted(expected), as_of=as_of)
        for person, (performance, collaboration) in expected.items():
            # Both sides round to 2 places, but may sum progress in another order.
            expected_performance = None if performance is None else pytest.approx(performance, abs=0.01)
            assert actual[person][0] == expected_performance, (person, as_of)
            assert actual[person][1] == collaboration, (person, as_of)
    top = worker_client.get("/scores/collaboration/top", params={"limit": 100, "model": "v1"}, headers=headers_for(worker.settings, org_events.org_id)).json()
    expected_now = reference_scores(events, latest)
    ranked = sorted(((person, score) for person, (_p, score) in expected_now.items() if score > 0), key=lambda entry: (-entry[1], entry[0]))
    assert [(entry["person_id"], entry["score"]) for entry in top["people"]] == ranked


def test_restarted_worker_resumes_where_it_stopped(kafka_bootstrap, tmp_path, org_events, unique_name) -> None:  # type: ignore[no-untyped-def]
    worker = WorkerProcess(tmp_path / "data", kafka_bootstrap, f"scoring-restart-{unique_name}").start()
    client = TestClient(create_app(worker.settings))
    first_half = [
        org_events.goal_created("g1", owner="alice", team="search", at=T0),
        org_events.goal_followed("g1", follower="bob", at=T0 + DAY),
    ]
    second_half = [org_events.goal_followed("g1", follower="carol", at=T0 + 2 * DAY)]
    try:
        wait_until_applied(client, worker, publish(kafka_bootstrap, first_half))
    finally:
        exit_code = worker.stop()
    assert exit_code == 0, worker.log_tail()
    published = publish(kafka_bootstrap, second_half)

    worker.start()
    try:
        wait_until_applied(client, worker, published)
        alice = scores_by_person(client, worker.settings, org_events.org_id, ["alice"])["alice"]
    finally:
        worker.stop()

    assert alice == (0.0, 2.0)
