"""Nudges on event time: a silent key result, falling confidence, an unanswered tag. SQLite and PostgreSQL."""

from __future__ import annotations

import random

from activity_events import DAY, ActivityEvents, at
from sqlalchemy import select

from spm_notifications.rules import (
    NUDGE_ACTOR,
    NUDGE_CHECK_IN_DUE,
    NUDGE_CONFIDENCE_FALLING,
    NUDGE_TAG_PENDING,
    nudge_cause_id,
)

GOAL, OTHER_GOAL, KR = "goal-nudges", "goal-elsewhere", "kr-users"
OLGA, ALEX, FAY, FINN, TINA, MIA, OTTO = "olga", "alex", "fay", "finn", "tina", "mia", "otto"
NUDGE_KINDS = (NUDGE_CHECK_IN_DUE, NUDGE_CONFIDENCE_FALLING, NUDGE_TAG_PENDING)


def nudges(store, org_id: str) -> set[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    """Return (recipient, kind, event id) of the org's nudges."""
    inbox = store.tables.inbox
    query = select(inbox).where(inbox.c.org_id == org_id, inbox.c.kind.in_(NUDGE_KINDS))
    with store.engine.connect() as connection:
        return {(row.recipient_id, row.kind, row.event_id) for row in connection.execute(query)}


def nudge_rows(store, org_id: str) -> list[dict]:  # type: ignore[no-untyped-def, type-arg]
    inbox = store.tables.inbox
    query = select(inbox).where(inbox.c.org_id == org_id, inbox.c.kind.in_(NUDGE_KINDS))
    with store.engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query)]


def tick(events, minute: int):  # type: ignore[no-untyped-def]
    """An unrelated event of the same organisation, which moves its clock to ``minute``."""
    return events.followed(OTHER_GOAL, OTTO, minute)


def test_silent_key_result_nudges_owner(store, events) -> None:  # type: ignore[no-untyped-def]
    more = ActivityEvents(events)
    check_in = more.check_in(GOAL, KR, ALEX, 5 * DAY)
    store.apply(events.goal_created(GOAL, OLGA), more.key_result_added(GOAL, KR, OLGA, 1), check_in)

    store.apply(tick(events, 18 * DAY))
    assert nudges(store, events.org_id) == set()

    store.apply(tick(events, 20 * DAY), tick(events, 25 * DAY))
    nudge_id = nudge_cause_id(NUDGE_CHECK_IN_DUE, check_in.id)
    assert nudges(store, events.org_id) == {(OLGA, NUDGE_CHECK_IN_DUE, nudge_id)}
    (row,) = nudge_rows(store, events.org_id)
    assert row["occurred_at"] == at(19 * DAY)
    assert row["actor_id"] == NUDGE_ACTOR


def test_check_in_cancels_or_withdraws_nudge(store, events) -> None:  # type: ignore[no-untyped-def]
    more = ActivityEvents(events)
    added = more.key_result_added(GOAL, KR, OLGA, 0)
    on_time = more.check_in(GOAL, KR, ALEX, 13 * DAY)
    store.apply(events.goal_created(GOAL, OLGA), added, on_time, tick(events, 15 * DAY))
    assert nudges(store, events.org_id) == set()

    store.apply(tick(events, 28 * DAY))
    assert nudges(store, events.org_id) == {(OLGA, NUDGE_CHECK_IN_DUE, nudge_cause_id(NUDGE_CHECK_IN_DUE, on_time.id))}

    # A check-in dated day 20, read only now, shows the key result was not silent for 14 days.
    late = more.check_in(GOAL, KR, ALEX, 20 * DAY)
    store.apply(late)
    assert nudges(store, events.org_id) == set()
    store.apply(tick(events, 34 * DAY))
    assert nudges(store, events.org_id) == {(OLGA, NUDGE_CHECK_IN_DUE, nudge_cause_id(NUDGE_CHECK_IN_DUE, late.id))}


def test_key_result_of_closed_goal_gets_no_nudge(store, events) -> None:  # type: ignore[no-untyped-def]
    more = ActivityEvents(events)
    goal_created = events.goal_created(GOAL, OLGA)
    added = more.key_result_added(GOAL, KR, OLGA, 0)
    closed = more.status_changed(GOAL, "closed", "active", OLGA, 10 * DAY, outcome="missed")
    store.apply(goal_created, added, tick(events, 20 * DAY))
    assert len(nudges(store, events.org_id)) == 1

    # The closing is dated before the deadline, so the nudge fired too early and is withdrawn.
    store.apply(closed)
    assert nudges(store, events.org_id) == set()


def test_confidence_dropping_twice_nudges_followers_once_per_streak(store, events) -> None:  # type: ignore[no-untyped-def]
    more = ActivityEvents(events)
    store.apply(
        events.goal_created(GOAL, OLGA),
        events.followed(GOAL, FAY, 1),
        events.followed(GOAL, FINN, 2),
        events.followed(GOAL, ALEX, 3),
        more.key_result_added(GOAL, KR, OLGA, 4),
    )
    confidences = [0.9, 0.8, 0.7, 0.6, 0.65, 0.6, 0.5]
    check_ins = [more.check_in(GOAL, KR, ALEX, 10 + index, confidence) for index, confidence in enumerate(confidences)]
    store.apply(*check_ins)

    expected = {
        (person, NUDGE_CONFIDENCE_FALLING, nudge_cause_id(NUDGE_CONFIDENCE_FALLING, check_ins[index].id))
        for person in (FAY, FINN)
        for index in (2, 6)
    }
    assert nudges(store, events.org_id) == expected


def test_confidence_nudge_of_private_goal_skips_outsiders(store, events) -> None:  # type: ignore[no-untyped-def]
    more = ActivityEvents(events)
    store.apply(
        events.goal_created(GOAL, OLGA, visibility="private"),
        events.followed(GOAL, FAY, 1),
        events.tagged(GOAL, TINA, OLGA, 2),
        events.followed(GOAL, TINA, 3),
        more.key_result_added(GOAL, KR, OLGA, 4),
    )
    check_ins = [more.check_in(GOAL, KR, OLGA, 10 + index, confidence) for index, confidence in enumerate([0.8, 0.5, 0.2])]
    store.apply(*check_ins)

    assert nudges(store, events.org_id) == {
        (TINA, NUDGE_CONFIDENCE_FALLING, nudge_cause_id(NUDGE_CONFIDENCE_FALLING, check_ins[2].id))
    }


def test_unanswered_tag_nudges_tagged_person_after_3_days(store, events) -> None:  # type: ignore[no-untyped-def]
    more = ActivityEvents(events)
    tina_tag = events.tagged(GOAL, TINA, OLGA, 0)
    store.apply(
        events.goal_created(GOAL, OLGA),
        tina_tag,
        events.tagged(GOAL, FAY, OLGA, 1),
        more.tag_accepted(GOAL, FAY, DAY),
        events.tagged(GOAL, MIA, MIA, 2),
        tick(events, 2 * DAY),
    )
    assert nudges(store, events.org_id) == set()

    store.apply(tick(events, 4 * DAY))
    nudge_id = nudge_cause_id(NUDGE_TAG_PENDING, tina_tag.id)
    assert nudges(store, events.org_id) == {(TINA, NUDGE_TAG_PENDING, nudge_id)}
    (row,) = nudge_rows(store, events.org_id)
    assert row["occurred_at"] == at(3 * DAY)

    # Tina declined on day 2, but that event is read only now: the nudge is withdrawn.
    store.apply(more.tag_declined(GOAL, TINA, 2 * DAY))
    assert nudges(store, events.org_id) == set()


def test_another_organisation_does_not_move_the_clock(store, events, make_events) -> None:  # type: ignore[no-untyped-def]
    more = ActivityEvents(events)
    store.apply(events.goal_created(GOAL, OLGA), more.key_result_added(GOAL, KR, OLGA, 0))
    other_org = make_events(f"{events.org_id}-other")

    store.apply(other_org.followed(OTHER_GOAL, OTTO, 30 * DAY))
    assert nudges(store, events.org_id) == set()

    store.apply(tick(events, 30 * DAY))
    assert len(nudges(store, events.org_id)) == 1


def test_replay_and_any_order_give_the_same_nudges(open_store, tmp_path, events) -> None:  # type: ignore[no-untyped-def]
    more = ActivityEvents(events)
    goal_events = [
        events.goal_created(GOAL, OLGA),
        more.key_result_added(GOAL, KR, OLGA, 0),
        more.check_in(GOAL, KR, ALEX, 1 * DAY, 0.9),
        more.check_in(GOAL, KR, ALEX, 2 * DAY, 0.7),
        more.check_in(GOAL, KR, ALEX, 20 * DAY, 0.5),
        more.check_in(GOAL, KR, ALEX, 21 * DAY, 0.6),
    ]
    social_events = [
        events.followed(GOAL, FAY, 1),
        events.tagged(GOAL, TINA, OLGA, 2),
        events.tagged(GOAL, FINN, OLGA, 3),
        more.tag_accepted(GOAL, FINN, 2 * DAY),
        tick(events, 40 * DAY),
    ]
    everything = goal_events + social_events
    orders = {"in_order": everything, "social_first": social_events + goal_events}
    for seed in range(3):
        shuffled = list(everything)
        random.Random(seed).shuffle(shuffled)
        orders[f"shuffled_{seed}"] = shuffled

    results = {}
    for name, ordered in orders.items():
        store = open_store(f"sqlite:///{tmp_path / name}.db")
        store.apply(*ordered)
        # Applying everything again, as a redelivery after a restart would, changes nothing.
        store.apply(*ordered)
        results[name] = {(row["recipient_id"], row["kind"], row["event_id"], row["occurred_at"])
                         for row in nudge_rows(store, events.org_id)}

    assert results["in_order"] == {
        # Silent from day 2 to day 20, and again from day 21 on (due day 35, before the clock's day 40).
        (OLGA, NUDGE_CHECK_IN_DUE, nudge_cause_id(NUDGE_CHECK_IN_DUE, goal_events[3].id), at(16 * DAY)),
        (OLGA, NUDGE_CHECK_IN_DUE, nudge_cause_id(NUDGE_CHECK_IN_DUE, goal_events[5].id), at(35 * DAY)),
        (FAY, NUDGE_CONFIDENCE_FALLING, nudge_cause_id(NUDGE_CONFIDENCE_FALLING, goal_events[4].id), at(20 * DAY)),
        (TINA, NUDGE_TAG_PENDING, nudge_cause_id(NUDGE_TAG_PENDING, social_events[1].id), at(3 * DAY + 2)),
    }
    for name, result in results.items():
        assert result == results["in_order"], f"order {name} gave different nudges"
