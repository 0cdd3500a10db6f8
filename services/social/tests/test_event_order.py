"""The feed is a function of the set of events: arrival order across topics and redelivery change nothing."""

import random
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from spm_events.auth import Principal
from spm_events.database import create_database_engine
from spm_events.envelope import Envelope, encode_envelope
from spm_events.readmodel import KafkaPosition, Outcome
from spm_events.registry import GOALS_TOPIC, SOCIAL_TOPIC, event_type_for
from spm_social.fanout import as_utc
from spm_social.projection import FeedProjection
from spm_social.readmodel import SocialReadModel, open_read_model
from spm_social.views import SocialViews

ReadModelFactory = Callable[[], SocialReadModel]
SHUFFLE_SEEDS = range(1, 7)


@pytest.fixture(params=["sqlite", "postgres"])
def empty_read_models(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ReadModelFactory]:
    """Return a function that opens a new empty read model on SQLite files or fresh PostgreSQL databases."""
    engines: list[Engine] = []

    def open_empty() -> SocialReadModel:
        if request.param == "postgres":
            url = request.getfixturevalue("postgres_url_factory")()
        else:
            url = f"sqlite:///{tmp_path / f'social-read-{len(engines)}.db'}"
        engines.append(create_database_engine(url))
        return open_read_model(engines[-1])

    yield open_empty
    for engine in engines:
        engine.dispose()


def topic_of(envelope: Envelope) -> str:
    return event_type_for(envelope.type).topic.name


class Delivery:
    """Feeds envelopes to a read model as the worker does: one transaction per message, with its position."""

    def __init__(self, read_model: SocialReadModel) -> None:
        self.read_model = read_model
        self.projection = FeedProjection(read_model.tables)
        self.partitions: dict[tuple[str, str], int] = {}
        self.next_offsets: dict[tuple[str, int], int] = defaultdict(int)

    def deliver(self, envelopes: list[Envelope]) -> list[Outcome]:
        outcomes = []
        for envelope in envelopes:
            topic = topic_of(envelope)
            # Messages are keyed by subject, so each subject stays in one partition.
            partition = self.partitions.setdefault((topic, envelope.subject), len(self.partitions))
            offset = self.next_offsets[(topic, partition)]
            self.next_offsets[(topic, partition)] += 1
            outcome, reason = self.read_model.positioned.apply(
                KafkaPosition(topic, partition, offset), encode_envelope(envelope), self.projection
            )
            assert reason is None
            outcomes.append(outcome)
        return outcomes


def interleave(envelopes: list[Envelope], seed: int) -> list[Envelope]:
    """Return a seeded random merge of the per-topic, per-subject streams, each kept in its own order."""
    streams: dict[tuple[str, str], deque[Envelope]] = defaultdict(deque)
    for envelope in envelopes:
        streams[(topic_of(envelope), envelope.subject)].append(envelope)
    pending = [streams[key] for key in sorted(streams)]
    rng = random.Random(seed)
    merged = []
    while pending:
        stream = rng.choice(pending)
        merged.append(stream.popleft())
        if not stream:
            pending.remove(stream)
    return merged


def arrival_orders(envelopes: list[Envelope]) -> dict[str, list[Envelope]]:
    goal_events = [envelope for envelope in envelopes if topic_of(envelope) == GOALS_TOPIC.name]
    social_events = [envelope for envelope in envelopes if topic_of(envelope) == SOCIAL_TOPIC.name]
    orders = {
        "by event time": sorted(envelopes, key=lambda envelope: envelope.time),
        "social events first": social_events + goal_events,
        "goal events first": goal_events + social_events,
    }
    for seed in SHUFFLE_SEEDS:
        orders[f"shuffle seed {seed}"] = interleave(envelopes, seed)
    return orders


def feed_rows(read_model: SocialReadModel) -> list[tuple]:
    """Return every feed item without the wall-clock indexed_at, in a stable order."""
    items = read_model.tables.feed_items
    columns = [column for column in items.c if column.name != "indexed_at"]
    with read_model.engine.connect() as connection:
        rows = connection.execute(select(*columns)).mappings().all()
    return sorted(tuple(as_utc(row[name]) if name == "occurred_at" else row[name] for name in row) for row in rows)


def feed_with_indexed_at(read_model: SocialReadModel) -> list[tuple]:
    items = read_model.tables.feed_items
    with read_model.engine.connect() as connection:
        return sorted(tuple(row) for row in connection.execute(select(items)))


def event_ids_of(read_model: SocialReadModel, person_id: str, kind: str) -> set[str]:
    items = read_model.tables.feed_items
    with read_model.engine.connect() as connection:
        rows = connection.execute(
            select(items.c.event_id).where(items.c.person_id == person_id, items.c.kind == kind)
        )
        return set(rows.scalars())


def two_goals_with_changing_audience(events) -> dict[str, Envelope]:
    """Return named events of two goals.

    The factory numbers each subject's events in the order they are built, so each goal's social
    events are built in the order its graph would record them.
    """
    return {
        "created": events.goal_created("goal-1", "owner-1", title="Ship the mobile app", day=1),
        "kr-1 added": events.key_result_added("goal-1", "kr-1", "owner-1", day=1, hour=10),
        "check-in day 2": events.check_in_recorded("goal-1", "kr-1", "owner-1", progress=0.1, day=2),
        "check-in day 4": events.check_in_recorded("goal-1", "kr-1", "owner-1", progress=0.2, day=4),
        "check-in day 6": events.check_in_recorded("goal-1", "kr-1", "owner-1", progress=0.3, day=6),
        "kr-2 added": events.key_result_added("goal-1", "kr-2", "owner-1", day=6, hour=12),
        "check-in day 8": events.check_in_recorded("goal-1", "kr-2", "owner-1", progress=0.4, day=8),
        "check-in day 10": events.check_in_recorded("goal-1", "kr-1", "owner-1", progress=0.5, day=10),
        # A tag whose event time lies before the goal's creation counts from the creation on.
        "early tag": events.collaborator_tagged("goal-1", "collaborator-2", "owner-1", day=1, hour=8),
        "owner follows": events.goal_followed("goal-1", "owner-1", day=2),
        "follower-1 follows": events.goal_followed("goal-1", "follower-1", day=3),
        "follower-2 follows": events.goal_followed("goal-1", "follower-2", day=3),
        # Following and leaving at the very time of a check-in: the later graph version wins.
        "follower-4 follows": events.goal_followed("goal-1", "follower-4", day=4),
        "follower-4 leaves": events.goal_unfollowed("goal-1", "follower-4", day=4),
        "tag": events.collaborator_tagged("goal-1", "collaborator-1", "owner-1", day=5),
        "follower-3 follows": events.goal_followed("goal-1", "follower-3", day=6),
        "follower-2 leaves": events.goal_unfollowed("goal-1", "follower-2", day=7),
        "follower-1 leaves": events.goal_unfollowed("goal-1", "follower-1", day=9),
        "follower-2 returns": events.goal_followed("goal-1", "follower-2", day=9, hour=12),
        "other goal created": events.goal_created("goal-2", "owner-2", title="Cut costs", day=1),
        "other kr added": events.key_result_added("goal-2", "kr-9", "owner-2", day=1, hour=10),
        "other follow": events.goal_followed("goal-2", "follower-1", day=1, hour=11),
        "other check-in": events.check_in_recorded("goal-2", "kr-9", "owner-2", day=2),
    }


def ids_of(named: dict[str, Envelope]) -> Callable[..., set[str]]:
    return lambda *names: {named[name].id for name in names}


def test_feed_is_same_in_every_arrival_order(empty_read_models: ReadModelFactory, events) -> None:
    envelopes = list(two_goals_with_changing_audience(events).values())
    feeds: dict[str, list[tuple]] = {}

    for name, order in arrival_orders(envelopes).items():
        read_model = empty_read_models()
        outcomes = Delivery(read_model).deliver(order)
        assert outcomes == [Outcome.APPLIED] * len(envelopes), name
        feeds[name] = feed_rows(read_model)

    reference = feeds["by event time"]
    assert len(reference) > len(envelopes)
    for name, feed in feeds.items():
        assert feed == reference, f"the feed after delivery {name!r} differs from the one by event time"


def test_follower_gets_check_ins_only_while_following(
    empty_read_models: ReadModelFactory, events
) -> None:
    named = two_goals_with_changing_audience(events)
    envelopes = list(named.values())

    for order in arrival_orders(envelopes).values():
        read_model = empty_read_models()
        Delivery(read_model).deliver(order)
        check_ins = ids_of(named)

        assert event_ids_of(read_model, "follower-1", "check_in_recorded") == check_ins(
            "check-in day 4", "check-in day 6", "check-in day 8", "other check-in"
        )
        assert event_ids_of(read_model, "follower-2", "check_in_recorded") == check_ins(
            "check-in day 4", "check-in day 6", "check-in day 10"
        )
        assert event_ids_of(read_model, "follower-3", "check_in_recorded") == check_ins(
            "check-in day 6", "check-in day 8", "check-in day 10"
        )
        assert event_ids_of(read_model, "follower-4", "check_in_recorded") == set()
        assert event_ids_of(read_model, "collaborator-1", "check_in_recorded") == check_ins(
            "check-in day 6", "check-in day 8", "check-in day 10"
        )
        assert event_ids_of(read_model, "collaborator-2", "key_result_added") == {
            named["kr-1 added"].id, named["kr-2 added"].id
        }
        assert event_ids_of(read_model, "follower-1", "key_result_added") == {named["kr-2 added"].id}


def test_social_events_before_goal_reach_owner(
    empty_read_models: ReadModelFactory, events
) -> None:
    created = events.goal_created("goal-1", "owner-1", title="Ship the mobile app", day=1)
    followed = events.goal_followed("goal-1", "follower-1", day=2)
    tagged = events.collaborator_tagged("goal-1", "collaborator-1", "follower-1", day=3)
    read_model = empty_read_models()

    Delivery(read_model).deliver([followed, tagged, created])

    assert event_ids_of(read_model, "owner-1", "goal_followed") == {followed.id}
    assert event_ids_of(read_model, "owner-1", "collaborator_tagged") == {tagged.id}
    views = SocialViews(read_model)
    rows = [
        (person_id, item["goal_title"], item["summary"])
        for person_id in ("collaborator-1", "follower-1", "owner-1")
        for item in views.feed_page(Principal(events.org_id, person_id), 10, None).items
    ]
    assert sorted(rows) == [
        ("collaborator-1", "Ship the mobile app", "You were tagged as a collaborator on 'Ship the mobile app'"),
        ("owner-1", "Ship the mobile app", "A collaborator was tagged on your goal 'Ship the mobile app'"),
        ("owner-1", "Ship the mobile app", "Goal created: Ship the mobile app"),
        ("owner-1", "Ship the mobile app", "Your goal 'Ship the mobile app' has a new follower"),
    ]


def test_redelivery_in_another_order_changes_nothing(
    empty_read_models: ReadModelFactory, events
) -> None:
    envelopes = list(two_goals_with_changing_audience(events).values())
    read_model = empty_read_models()
    delivery = Delivery(read_model)
    delivery.deliver(interleave(envelopes, seed=1))
    before = feed_with_indexed_at(read_model)

    # Again at new offsets, as a relay that crashed before recording its position publishes.
    outcomes = delivery.deliver(interleave(envelopes, seed=2))
    # Again straight through the projection, past the processed-event check.
    with read_model.engine.begin() as connection:
        for envelope in interleave(envelopes, seed=3):
            delivery.projection(connection, envelope)

    assert outcomes == [Outcome.SEEN_EVENT] * len(envelopes)
    assert feed_with_indexed_at(read_model) == before
