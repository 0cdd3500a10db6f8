"""Benchmark the feed fan-out: one goal with many followers against a baseline goal with few.

For each database and fan-out strategy, the script builds a fresh read model through the real
projection, then measures two things on a goal with ``--followers`` followers and on a baseline
goal with ``--baseline-followers`` followers, both with the same ``--events`` check-ins:

- apply one check-in: the worker's whole transaction for one message (``PositionedReadModel.apply``);
- read a follower's first feed page (20 items) through ``SocialViews.feed_page``.

It prints each figure as a ratio against the baseline measured in the same run, so the numbers
compare across machines. Strategies are the read-time threshold of the read model: ``hybrid``
uses the service's default, ``write`` never reads at read time, ``read`` always does.

Run from the repository root:

    .venv/bin/python services/social/benchmarks/fanout.py
    SPM_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:15432/postgres \\
        .venv/bin/python services/social/benchmarks/fanout.py --backends sqlite,postgres
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import psycopg

from spm_events.auth import Principal
from spm_events.database import create_database_engine
from spm_events.envelope import Envelope, encode_envelope
from spm_events.readmodel import KafkaPosition, Outcome
from spm_events.registry import new_envelope
from spm_events.schemas import CheckInRecordedV1, GoalCreatedV1, GoalFollowedV1, KeyResultAddedV1, Payload, PeriodV1
from spm_social.domain import graph_id_for
from spm_social.fanout import DEFAULT_READ_TIME_THRESHOLD
from spm_social.projection import FeedProjection
from spm_social.readmodel import SocialReadModel, open_read_model
from spm_social.views import SocialViews

ORG_ID = "benchmark"
OWNER_ID = "owner"
START = datetime(2021, 1, 1, tzinfo=timezone.utc)
STRATEGIES = {"hybrid": DEFAULT_READ_TIME_THRESHOLD, "write": 10**9, "read": 1}
PAGE_SIZE = 20
# Check-ins after the follows, so that every follower has at least a full first page.
CHECK_INS_AFTER_FOLLOWS = PAGE_SIZE + 10
SETUP_BATCH = 500


class Events:
    """Envelopes of one organisation with consecutive aggregate versions per subject, one minute apart."""

    def __init__(self) -> None:
        self.versions: dict[str, int] = {}
        self.minutes = 0

    def next(self, payload: Payload, subject: str, actor_id: str) -> Envelope:
        self.versions[subject] = self.versions.get(subject, 0) + 1
        self.minutes += 1
        return new_envelope(
            payload,
            subject=subject,
            org_id=ORG_ID,
            actor_id=actor_id,
            aggregate_version=self.versions[subject],
            time=START + timedelta(minutes=self.minutes),
        )

    def goal_created(self, goal_id: str) -> Envelope:
        period = PeriodV1(name="FY21", start=date(2021, 1, 1), end=date(2021, 12, 31))
        payload = GoalCreatedV1(goal_id=goal_id, title=f"Goal {goal_id}", owner_id=OWNER_ID, team="all", period=period)
        return self.next(payload, goal_id, OWNER_ID)

    def key_result_added(self, goal_id: str) -> Envelope:
        payload = KeyResultAddedV1(
            goal_id=goal_id, key_result_id=f"{goal_id}-kr", title="Revenue", metric="number", start_value=0, target_value=1
        )
        return self.next(payload, goal_id, OWNER_ID)

    def check_in(self, goal_id: str) -> Envelope:
        payload = CheckInRecordedV1(
            goal_id=goal_id, key_result_id=f"{goal_id}-kr", check_in_id=uuid.uuid4().hex, value=0.5, progress=0.5
        )
        return self.next(payload, goal_id, OWNER_ID)

    def followed(self, goal_id: str, follower_id: str) -> Envelope:
        payload = GoalFollowedV1(goal_id=goal_id, follower_id=follower_id)
        return self.next(payload, str(graph_id_for(ORG_ID, goal_id)), follower_id)


@dataclass(frozen=True)
class Figures:
    apply_seconds: float
    first_page_seconds: float


class Bench:
    """One read model with a projection that applies messages as the worker does, at increasing offsets."""

    def __init__(self, read_model: SocialReadModel) -> None:
        self.read_model = read_model
        self.projection = FeedProjection(read_model.tables)
        self.offset = 0

    def setup(self, envelopes: list[Envelope]) -> None:
        """Apply many envelopes in batches of one transaction each, which only makes the setup faster."""
        for start in range(0, len(envelopes), SETUP_BATCH):
            with self.read_model.engine.begin() as connection:
                for envelope in envelopes[start : start + SETUP_BATCH]:
                    self.projection(connection, envelope)

    def apply_one(self, envelope: Envelope) -> float:
        self.offset += 1
        position = KafkaPosition("benchmark", 0, self.offset)
        started = time.perf_counter()
        outcome, reason = self.read_model.positioned.apply(position, encode_envelope(envelope), self.projection)
        elapsed = time.perf_counter() - started
        if outcome is not Outcome.APPLIED:
            raise RuntimeError(f"check-in was not applied: {outcome} {reason}")
        return elapsed


def build_goal(events: Events, goal_id: str, followers: int, check_ins: int) -> list[Envelope]:
    """Return a goal's creation, most check-ins, the follows, then enough check-ins for a full first page."""
    before = max(0, check_ins - CHECK_INS_AFTER_FOLLOWS)
    envelopes = [events.goal_created(goal_id), events.key_result_added(goal_id)]
    envelopes += [events.check_in(goal_id) for _ in range(before)]
    envelopes += [events.followed(goal_id, f"{goal_id}-follower-{number}") for number in range(followers)]
    envelopes += [events.check_in(goal_id) for _ in range(check_ins - before)]
    return envelopes


def measure(bench: Bench, events: Events, goal_ids: tuple[str, ...], repeats: int) -> dict[str, Figures]:
    """Time check-ins and first pages of each goal, taking turns so that a busy machine slows both alike."""
    views = SocialViews(bench.read_model)
    apply_times: dict[str, list[float]] = {goal_id: [] for goal_id in goal_ids}
    page_times: dict[str, list[float]] = {goal_id: [] for goal_id in goal_ids}
    for _ in range(repeats):
        for goal_id in goal_ids:
            apply_times[goal_id].append(bench.apply_one(events.check_in(goal_id)))
    for _ in range(repeats * 4):
        for goal_id in goal_ids:
            reader = Principal(ORG_ID, f"{goal_id}-follower-0")
            started = time.perf_counter()
            page = views.feed_page(reader, PAGE_SIZE, None)
            page_times[goal_id].append(time.perf_counter() - started)
            if len(page.items) != PAGE_SIZE:
                raise RuntimeError(f"expected a full first page, got {len(page.items)} items")
    return {
        goal_id: Figures(statistics.median(apply_times[goal_id]), statistics.median(page_times[goal_id]))
        for goal_id in goal_ids
    }


def run_strategy(
    open_empty: Callable[[int], SocialReadModel], threshold: int, followers: int, baseline: int, check_ins: int, repeats: int
) -> tuple[Figures, Figures, float]:
    read_model = open_empty(threshold)
    bench = Bench(read_model)
    events = Events()
    started = time.perf_counter()
    bench.setup(build_goal(events, "baseline", baseline, check_ins) + build_goal(events, "big", followers, check_ins))
    setup_seconds = time.perf_counter() - started
    figures = measure(bench, events, ("baseline", "big"), repeats)
    read_model.engine.dispose()
    return figures["baseline"], figures["big"], setup_seconds


@contextmanager
def sqlite_read_models() -> Iterator[Callable[[int], SocialReadModel]]:
    with tempfile.TemporaryDirectory(prefix="spm-fanout-") as directory:
        count = 0

        def open_empty(threshold: int) -> SocialReadModel:
            nonlocal count
            count += 1
            engine = create_database_engine(f"sqlite:///{Path(directory) / f'read-{count}.db'}")
            return open_read_model(engine, read_time_threshold=threshold)

        yield open_empty


@contextmanager
def postgres_read_models(admin_url: str) -> Iterator[Callable[[int], SocialReadModel]]:
    libpq_url = admin_url.replace("postgresql+psycopg://", "postgresql://")
    created: list[str] = []

    def open_empty(threshold: int) -> SocialReadModel:
        name = f"spm_fanout_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(libpq_url, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        engine = create_database_engine(admin_url.rsplit("/", 1)[0] + f"/{name}")
        return open_read_model(engine, read_time_threshold=threshold)

    try:
        yield open_empty
    finally:
        with psycopg.connect(libpq_url, autocommit=True) as connection:
            for name in created:
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--followers", type=int, default=20_000, help="followers of the big goal")
    parser.add_argument("--baseline-followers", type=int, default=10, help="followers of the baseline goal")
    parser.add_argument("--events", type=int, default=300, help="check-ins on each goal before the measurement")
    parser.add_argument("--repeats", type=int, default=15, help="check-ins applied per measurement (the median counts)")
    parser.add_argument("--strategies", default="hybrid,write,read", help=f"comma-separated, of {', '.join(STRATEGIES)}")
    parser.add_argument(
        "--backends",
        default="sqlite,postgres" if os.environ.get("SPM_TEST_POSTGRES_URL") else "sqlite",
        help="comma-separated: sqlite, postgres (postgres needs SPM_TEST_POSTGRES_URL, an admin URL)",
    )
    options = parser.parse_args()
    strategies = [name.strip() for name in options.strategies.split(",") if name.strip()]
    backends = [name.strip() for name in options.backends.split(",") if name.strip()]
    print(
        f"{options.followers} followers against {options.baseline_followers}, {options.events} check-ins per goal, "
        f"hybrid threshold {DEFAULT_READ_TIME_THRESHOLD}; medians of {options.repeats} check-ins "
        f"and {options.repeats * 4} first pages"
    )
    print(f"{'database':<10} {'strategy':<8} {'apply check-in':>15} {'first page':>11}   baseline (apply, page)   setup")
    for backend in backends:
        if backend == "postgres":
            admin_url = os.environ.get("SPM_TEST_POSTGRES_URL")
            if not admin_url:
                print("postgres: SPM_TEST_POSTGRES_URL is not set, skipped", file=sys.stderr)
                continue
            factory = postgres_read_models(admin_url)
        else:
            factory = sqlite_read_models()
        with factory as open_empty:
            for strategy in strategies:
                baseline, big, setup_seconds = run_strategy(
                    open_empty,
                    STRATEGIES[strategy],
                    options.followers,
                    options.baseline_followers,
                    options.events,
                    options.repeats,
                )
                print(
                    f"{backend:<10} {strategy:<8} {big.apply_seconds / baseline.apply_seconds:>14.1f}x "
                    f"{big.first_page_seconds / baseline.first_page_seconds:>10.1f}x   "
                    f"{baseline.apply_seconds * 1000:7.2f} ms, {baseline.first_page_seconds * 1000:6.2f} ms"
                    f"   {setup_seconds:6.1f} s",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
