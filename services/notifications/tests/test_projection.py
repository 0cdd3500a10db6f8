"""The inbox read model built from goal and social events, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

from sqlalchemy import select

from spm_events.readmodel import Outcome
from spm_notifications.rules import FOLLOWED_GOAL_CHECK_IN, OWNED_GOAL_CHECK_IN, TAGGED, notification_id_for

GOAL = "goal-inbox"
OWNER, ACTOR, FAY, FINN, TINA = "owner", "alex", "fay", "finn", "tina"


OLD_KINDS = (TAGGED, FOLLOWED_GOAL_CHECK_IN, OWNED_GOAL_CHECK_IN)


def recipients(store, org_id: str, kind: str | None = None) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """Return (recipient, kind) of every check-in and tag notification of the org, sorted.

    Follows also notify the goal's owners (goal_followed); test_activities.py covers those.
    """
    inbox = store.tables.inbox
    query = select(inbox.c.recipient_id, inbox.c.kind).where(inbox.c.org_id == org_id, inbox.c.kind.in_(OLD_KINDS))
    if kind is not None:
        query = query.where(inbox.c.kind == kind)
    with store.engine.connect() as connection:
        return sorted((row.recipient_id, row.kind) for row in connection.execute(query))


def inbox_rows(store, org_id: str) -> list[dict]:  # type: ignore[no-untyped-def]
    """Return every inbox row of the org without the wall-clock column, sorted by id."""
    inbox = store.tables.inbox
    with store.engine.connect() as connection:
        rows = connection.execute(
            select(inbox).where(inbox.c.org_id == org_id, inbox.c.kind.in_(OLD_KINDS)).order_by(inbox.c.notification_id)
        )
        return [
            {key: value for key, value in row._mapping.items() if key not in ("created_at", "sequence")} for row in rows
        ]


def test_check_in_notifies_followers_except_actor(store, events) -> None:  # type: ignore[no-untyped-def]
    store.apply(
        events.goal_created(GOAL, OWNER),
        events.followed(GOAL, FAY, 1),
        events.followed(GOAL, ACTOR, 2),
        events.followed(GOAL, FINN, 3),
        events.check_in(GOAL, ACTOR, 10),
    )

    assert recipients(store, events.org_id) == [
        (FAY, FOLLOWED_GOAL_CHECK_IN),
        (FINN, FOLLOWED_GOAL_CHECK_IN),
        (OWNER, OWNED_GOAL_CHECK_IN),
    ]


def test_check_in_skips_unfollowed_person(store, events) -> None:  # type: ignore[no-untyped-def]
    store.apply(
        events.goal_created(GOAL, OWNER),
        events.followed(GOAL, FAY, 1),
        events.followed(GOAL, FINN, 2),
        events.unfollowed(GOAL, FINN, 3),
        events.check_in(GOAL, ACTOR, 10),
    )

    assert recipients(store, events.org_id, FOLLOWED_GOAL_CHECK_IN) == [(FAY, FOLLOWED_GOAL_CHECK_IN)]


def test_tag_notifies_only_tagged_person(store, events) -> None:  # type: ignore[no-untyped-def]
    store.apply(
        events.goal_created(GOAL, OWNER),
        events.followed(GOAL, FAY, 1),
        events.tagged(GOAL, TINA, ACTOR, 5),
        events.tagged(GOAL, ACTOR, ACTOR, 6),
    )

    assert recipients(store, events.org_id) == [(TINA, TAGGED)]


def test_notification_row_carries_event_facts(store, events) -> None:  # type: ignore[no-untyped-def]
    before = datetime.now(timezone.utc)
    tag = events.tagged(GOAL, TINA, ACTOR, 5)
    store.apply(events.goal_created(GOAL, OWNER, title="Grow revenue"), tag)

    inbox = store.tables.inbox
    with store.engine.connect() as connection:
        row = connection.execute(select(inbox).where(inbox.c.org_id == events.org_id)).one()
    assert row.notification_id == notification_id_for(tag.id, TINA)
    assert row.event_id == tag.id
    assert row.actor_id == ACTOR
    assert row.goal_id == GOAL
    assert row.goal_title == "Grow revenue"
    assert row.occurred_at == tag.time
    assert row.created_at >= before
    assert row.read_at is None


def test_follow_read_after_check_in_still_notifies(store, events) -> None:  # type: ignore[no-untyped-def]
    goal_created = events.goal_created(GOAL, OWNER)
    followed_before = events.followed(GOAL, FAY, 1)
    check_in = events.check_in(GOAL, ACTOR, 10)

    store.apply(goal_created, check_in)
    assert recipients(store, events.org_id, FOLLOWED_GOAL_CHECK_IN) == []

    store.apply(followed_before)
    assert recipients(store, events.org_id, FOLLOWED_GOAL_CHECK_IN) == [(FAY, FOLLOWED_GOAL_CHECK_IN)]


def test_unfollow_read_after_check_in_withdraws_notification(store, events) -> None:  # type: ignore[no-untyped-def]
    store.apply(events.goal_created(GOAL, OWNER), events.followed(GOAL, FAY, 1))
    unfollowed_before = events.unfollowed(GOAL, FAY, 5)
    store.apply(events.check_in(GOAL, ACTOR, 10))
    assert recipients(store, events.org_id, FOLLOWED_GOAL_CHECK_IN) == [(FAY, FOLLOWED_GOAL_CHECK_IN)]

    store.apply(unfollowed_before)

    assert recipients(store, events.org_id, FOLLOWED_GOAL_CHECK_IN) == []


def test_follow_dated_after_check_in_does_not_notify(store, events) -> None:  # type: ignore[no-untyped-def]
    store.apply(events.goal_created(GOAL, OWNER), events.check_in(GOAL, ACTOR, 10), events.followed(GOAL, FAY, 20))

    assert recipients(store, events.org_id, FOLLOWED_GOAL_CHECK_IN) == []


def test_actor_following_goal_gets_no_late_notification(store, events) -> None:  # type: ignore[no-untyped-def]
    store.apply(events.goal_created(GOAL, OWNER), events.check_in(GOAL, ACTOR, 10), events.followed(GOAL, ACTOR, 1))

    assert recipients(store, events.org_id, FOLLOWED_GOAL_CHECK_IN) == []


def test_title_filled_in_when_goal_created_arrives_later(store, events) -> None:  # type: ignore[no-untyped-def]
    goal_created = events.goal_created(GOAL, OWNER, title="Grow revenue")
    store.apply(events.tagged(GOAL, TINA, ACTOR, 5))
    assert [row["goal_title"] for row in inbox_rows(store, events.org_id)] == [None]

    store.apply(goal_created)

    assert [row["goal_title"] for row in inbox_rows(store, events.org_id)] == ["Grow revenue"]


def test_same_event_twice_adds_nothing(store, events) -> None:  # type: ignore[no-untyped-def]
    goal_created = events.goal_created(GOAL, OWNER)
    followed = events.followed(GOAL, FAY, 1)
    check_in = events.check_in(GOAL, ACTOR, 10)
    tag = events.tagged(GOAL, TINA, ACTOR, 11)
    store.apply(goal_created, followed, check_in, tag)
    first = inbox_rows(store, events.org_id)

    outcomes = store.apply(goal_created, followed, check_in, tag)

    assert outcomes == [Outcome.SEEN_EVENT] * 4
    assert inbox_rows(store, events.org_id) == first
    assert len(first) == 3


def test_topic_interleaving_does_not_change_inbox(open_store, tmp_path, events) -> None:  # type: ignore[no-untyped-def]
    goal_events = [events.goal_created(GOAL, OWNER), events.check_in(GOAL, ACTOR, 10), events.check_in(GOAL, FAY, 30)]
    social_events = [
        events.followed(GOAL, FAY, 1),
        events.followed(GOAL, FINN, 2),
        events.unfollowed(GOAL, FINN, 20),
        events.tagged(GOAL, TINA, ACTOR, 25),
        events.followed(GOAL, TINA, 26),
    ]
    alternating = [event for pair in zip(goal_events, social_events) for event in pair] + social_events[3:]
    interleavings = {
        "goals_first": goal_events + social_events,
        "social_first": social_events + goal_events,
        "alternating": alternating,
    }

    inboxes = {}
    for name, ordered in interleavings.items():
        store = open_store(f"sqlite:///{tmp_path / name}.db")
        store.apply(*ordered)
        inboxes[name] = inbox_rows(store, events.org_id)

    first_check_in, second_check_in, tag = goal_events[1], goal_events[2], social_events[3]
    assert {(row["recipient_id"], row["kind"], row["event_id"]) for row in inboxes["goals_first"]} == {
        (FAY, FOLLOWED_GOAL_CHECK_IN, first_check_in.id),
        (FINN, FOLLOWED_GOAL_CHECK_IN, first_check_in.id),
        (TINA, TAGGED, tag.id),
        (TINA, FOLLOWED_GOAL_CHECK_IN, second_check_in.id),
        (OWNER, OWNED_GOAL_CHECK_IN, first_check_in.id),
        (OWNER, OWNED_GOAL_CHECK_IN, second_check_in.id),
    }
    assert inboxes["social_first"] == inboxes["goals_first"]
    assert inboxes["alternating"] == inboxes["goals_first"]


def test_orgs_never_mix(store, events, make_events) -> None:  # type: ignore[no-untyped-def]
    other = make_events(f"org-{uuid.uuid4().hex[:12]}", first_version=100)
    store.apply(
        events.goal_created(GOAL, OWNER),
        events.followed(GOAL, FAY, 1),
        other.goal_created(GOAL, OWNER),
        other.check_in(GOAL, ACTOR, 10),
    )

    assert recipients(store, events.org_id) == []
    assert recipients(store, other.org_id) == [(OWNER, OWNED_GOAL_CHECK_IN)]


def test_garbage_bytes_are_dead_lettered(store) -> None:  # type: ignore[no-untyped-def]
    outcome = store.apply_raw(b"\x00not json")

    assert outcome is Outcome.DEAD_LETTERED
    with store.engine.connect() as connection:
        reasons = connection.execute(select(store.read_model.dead_letters.c.reason)).scalars().all()
    assert len(reasons) == 1
    assert reasons[0].startswith("invalid envelope")


def test_invalid_payload_is_dead_lettered(store, events) -> None:  # type: ignore[no-untyped-def]
    check_in = events.check_in(GOAL, ACTOR, 10)
    broken = check_in.model_copy(update={"data": {"goal_id": GOAL}})

    outcomes = store.apply(broken)

    assert outcomes == [Outcome.DEAD_LETTERED]
    assert recipients(store, events.org_id) == []


def test_unhandled_event_type_is_skipped(store, events) -> None:  # type: ignore[no-untyped-def]
    check_in = events.check_in(GOAL, ACTOR, 10)
    future_type = check_in.model_copy(update={"type": "spm.goals.GoalArchived.v1", "data": {"anything": 1}})

    outcomes = store.apply(future_type)

    assert outcomes == [Outcome.APPLIED]
    assert recipients(store, events.org_id) == []
