"""Hand-built event lists applied to a real read model (SQLite and PostgreSQL), then scored."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from spm_events.readmodel import Outcome
from spm_scoring.queries import ScoreQueries
from spm_scoring.store import ScoringStore

T0 = datetime(2021, 3, 1, 9, 0, tzinfo=timezone.utc)
DAY = timedelta(days=1)


def scores_of(store: ScoringStore, org_id: str, person_id: str, as_of: datetime | None = None) -> dict:
    queries = ScoreQueries(store.engine, store.tables)
    window_end = as_of or queries.latest_event_time(org_id)
    scores = queries.person_scores(org_id, person_id, window_end)
    return {
        "performance": scores.performance.score,
        "collaboration": scores.collaboration.score,
        "components": {
            component.name: component.value
            for component in (*scores.performance.components, *scores.collaboration.components)
        },
    }


def owner_scenario(events) -> list:  # type: ignore[no-untyped-def]
    """Alice owns g1 with two key results; bob helps; carol, dave and alice tag and follow."""
    return [
        events.goal_created("g1", owner="alice", team="search", at=T0),
        events.key_result_added("g1", "k1", actor="alice", at=T0),
        events.key_result_added("g1", "k2", actor="alice", at=T0),
        events.check_in("g1", "k1", actor="alice", progress=0.4, at=T0 + DAY),
        events.collaborator_tagged("g1", tagger="carol", tagged="dave", at=T0 + 2 * DAY),
        events.goal_followed("g1", follower="dave", at=T0 + 3 * DAY),
        events.goal_followed("g1", follower="alice", at=T0 + 3 * DAY),
        events.collaborator_tagged("g1", tagger="alice", tagged="alice", at=T0 + 4 * DAY),
        events.goal_followed("g1", follower="carol", at=T0 + 5 * DAY),
        events.goal_unfollowed("g1", follower="carol", at=T0 + 6 * DAY),
        events.goal_followed("g1", follower="carol", at=T0 + 7 * DAY),
        events.check_in("g1", "k1", actor="alice", progress=0.8, at=T0 + 9 * DAY),
        events.check_in("g1", "k2", actor="bob", progress=1.5, at=T0 + 20 * DAY),
    ]


def test_owner_performance_mixes_progress_and_cadence(feeder, org_events) -> None:  # type: ignore[no-untyped-def]
    feeder.apply(owner_scenario(org_events))

    alice = scores_of(feeder.store, org_events.org_id, "alice")

    # as_of = T0+20d. k1 0.8 and k2 min(1, 1.5): mean 0.9. Check-ins 19, 11 and 0 days back: 3 weeks.
    assert alice["components"]["mean_progress"] == 0.9
    assert alice["components"]["cadence"] == 0.75
    assert alice["performance"] == 85.5


def test_person_owning_nothing_has_null_performance(feeder, org_events) -> None:  # type: ignore[no-untyped-def]
    feeder.apply(owner_scenario(org_events))

    assert scores_of(feeder.store, org_events.org_id, "bob")["performance"] is None


def test_help_check_in_credits_helper_and_owner(feeder, org_events) -> None:  # type: ignore[no-untyped-def]
    feeder.apply(owner_scenario(org_events))

    bob = scores_of(feeder.store, org_events.org_id, "bob")
    alice = scores_of(feeder.store, org_events.org_id, "alice")

    assert bob["collaboration"] == 5 + 2 + 4
    assert alice["components"]["distinct_collaborators"] == 1


def test_follows_count_events_and_ignore_unfollows(feeder, org_events) -> None:  # type: ignore[no-untyped-def]
    feeder.apply(owner_scenario(org_events))

    alice = scores_of(feeder.store, org_events.org_id, "alice")

    # dave once, carol twice around her unfollow, alice's own follow not at all.
    assert alice["components"]["followers_gained"] == 3
    assert alice["collaboration"] == 5 * 1 + 3


def test_tag_credits_tagged_and_tagger(feeder, org_events) -> None:  # type: ignore[no-untyped-def]
    feeder.apply(owner_scenario(org_events))

    dave = scores_of(feeder.store, org_events.org_id, "dave")
    carol = scores_of(feeder.store, org_events.org_id, "carol")

    assert dave["collaboration"] == 5 + 3
    assert carol["collaboration"] == 5


def test_self_interactions_write_no_rows(feeder, org_events) -> None:  # type: ignore[no-untyped-def]
    feeder.apply(owner_scenario(org_events))
    interactions = feeder.store.tables.interactions

    with feeder.store.engine.connect() as connection:
        self_rows = connection.execute(
            select(func.count()).where(
                interactions.c.org_id == org_events.org_id,
                interactions.c.person_id == interactions.c.other_person_id,
            )
        ).scalar()
        alice_rows = connection.execute(
            select(interactions.c.kind).where(
                interactions.c.org_id == org_events.org_id, interactions.c.person_id == "alice"
            ).order_by(interactions.c.kind, interactions.c.other_person_id)
        ).scalars().all()

    assert self_rows == 0
    assert alice_rows == ["follow_received", "follow_received", "follow_received", "help_received"]


def test_early_social_events_await_goal(feeder, org_events) -> None:  # type: ignore[no-untyped-def]
    tag = org_events.collaborator_tagged("g1", tagger="carol", tagged="dave", at=T0 + DAY)
    follow = org_events.goal_followed("g1", follower="dave", at=T0 + DAY)
    created = org_events.goal_created("g1", owner="alice", team="search", at=T0)
    feeder.apply([tag, follow])
    pending = feeder.store.tables.pending_activities

    with feeder.store.engine.connect() as connection:
        waiting = connection.execute(select(func.count()).where(pending.c.org_id == org_events.org_id)).scalar()
    assert waiting == 2

    feeder.apply([created])

    with feeder.store.engine.connect() as connection:
        waiting = connection.execute(select(func.count()).where(pending.c.org_id == org_events.org_id)).scalar()
    assert waiting == 0
    assert scores_of(feeder.store, org_events.org_id, "dave")["collaboration"] == 5 + 3
    assert scores_of(feeder.store, org_events.org_id, "alice")["collaboration"] == 1


def test_redelivered_events_change_nothing(feeder, org_events) -> None:  # type: ignore[no-untyped-def]
    events = owner_scenario(org_events)
    feeder.apply(events)
    people = ["alice", "bob", "carol", "dave"]
    before = {person: scores_of(feeder.store, org_events.org_id, person) for person in people}

    outcomes = feeder.apply(events)

    assert set(outcomes) == {Outcome.SEEN_EVENT}
    assert {person: scores_of(feeder.store, org_events.org_id, person) for person in people} == before


def test_window_drops_interactions_older_than_28_days(feeder, org_events) -> None:  # type: ignore[no-untyped-def]
    feeder.apply(owner_scenario(org_events))
    as_of = T0 + 2 * DAY + 28 * DAY

    dave = scores_of(feeder.store, org_events.org_id, "dave", as_of=as_of)
    dave_a_moment_earlier = scores_of(feeder.store, org_events.org_id, "dave", as_of=as_of - timedelta(seconds=1))

    assert dave["collaboration"] == 0
    assert dave_a_moment_earlier["collaboration"] == 5 + 3


def test_past_as_of_ignores_later_facts(feeder, org_events) -> None:  # type: ignore[no-untyped-def]
    events = owner_scenario(org_events)
    events.append(org_events.key_result_added("g1", "k3", actor="alice", at=T0 + 21 * DAY))
    feeder.apply(events)

    alice = scores_of(feeder.store, org_events.org_id, "alice", as_of=T0 + 10 * DAY)
    alice_now = scores_of(feeder.store, org_events.org_id, "alice")

    # At T0+10d only k1 and k2 exist; k1 is at 0.8 and k2 has no check-in yet.
    assert alice["components"]["mean_progress"] == 0.4
    assert alice["components"]["cadence"] == 0.5
    assert alice_now["components"]["mean_progress"] == round(1.8 / 3, 4)


def test_orgs_never_mix(feeder, org_events, other_org_events) -> None:  # type: ignore[no-untyped-def]
    feeder.apply(owner_scenario(org_events))
    feeder.apply(
        [
            other_org_events.goal_created("g1", owner="bob", team="search", at=T0 + 40 * DAY),
            other_org_events.collaborator_tagged("g1", tagger="alice", tagged="bob", at=T0 + 41 * DAY),
        ]
    )
    queries = ScoreQueries(feeder.store.engine, feeder.store.tables)

    bob = scores_of(feeder.store, org_events.org_id, "bob")

    assert queries.latest_event_time(org_events.org_id) == T0 + 20 * DAY
    assert bob["performance"] is None
    assert bob["collaboration"] == 5 + 2 + 4
    assert not queries.is_known_person(other_org_events.org_id, "dave")
    assert queries.is_known_person(other_org_events.org_id, "alice")


def test_second_creation_of_a_goal_is_dead_lettered(feeder, org_events) -> None:  # type: ignore[no-untyped-def]
    first = org_events.goal_created("g1", owner="alice", team="search", at=T0)
    second = org_events.goal_created("g1", owner="mallory", team="search", at=T0 + DAY)

    outcomes = feeder.apply([first, second])

    assert outcomes == [Outcome.APPLIED, Outcome.DEAD_LETTERED]
    assert scores_of(feeder.store, org_events.org_id, "alice")["performance"] == 0.0
