"""Goal audiences in the read model and the inbox's visibility filter, fed in process, on SQLite and PostgreSQL.

These tests feed the projection in orders a Kafka partition never delivers (a goal's events out
of version order), which the worker tests cannot produce.
"""

from __future__ import annotations

import itertools
import random

import pytest
from sqlalchemy import select

from spm_events.auth import Principal
from spm_notifications.inbox import Cursor, Inbox
from spm_notifications.rules import CHECK_IN_KINDS, FOLLOWED_GOAL_CHECK_IN, OWNED_GOAL_CHECK_IN, TAGGED, notification_id_for

GOAL = "goal-audience"
OLGA, CORA, DAN, COLIN, FAY, OTTO, ACTOR = "olga", "cora", "dan", "colin", "fay", "otto", "alex"


@pytest.fixture
def fresh_store(request, open_store, tmp_path, database_url):  # type: ignore[no-untyped-def]
    """Return a callable that opens another empty read model on the same kind of database as ``store``."""
    numbers = itertools.count()

    def open_fresh():  # type: ignore[no-untyped-def]
        if database_url.startswith("sqlite"):
            return open_store(f"sqlite:///{tmp_path / f'fresh-{next(numbers)}.db'}")
        return open_store(request.getfixturevalue("postgres_url_factory")())

    return open_fresh


def reader(org_id: str, person_id: str, teams: tuple[str, ...] = (), admin: bool = False) -> Principal:
    return Principal(org_id=org_id, person_id=person_id, teams=frozenset(teams), is_admin=admin)


def facts(store, org_id: str) -> set[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    """Return (recipient, kind, event id) of every check-in and tag notification of the org.

    Follows also notify the goal's owners (goal_followed); test_activities.py covers those.
    """
    inbox = store.tables.inbox
    with store.engine.connect() as connection:
        rows = connection.execute(
            select(inbox).where(inbox.c.org_id == org_id, inbox.c.kind.in_((*CHECK_IN_KINDS, TAGGED)))
        )
        return {(row.recipient_id, row.kind, row.event_id) for row in rows}


def table_rows(store, table_name: str, org_id: str) -> list[tuple]:  # type: ignore[no-untyped-def, type-arg]
    """Return every row of one table for the org, without wall-clock columns and the insert order, sorted."""
    table = getattr(store.tables, table_name)
    with store.engine.connect() as connection:
        rows = connection.execute(select(table).where(table.c.org_id == org_id))
        return sorted(
            tuple(value for key, value in row._mapping.items() if key not in ("created_at", "sequence")) for row in rows
        )


def visible_ids(store, principal: Principal) -> list[str]:  # type: ignore[no-untyped-def]
    page = Inbox(store.engine, store.tables).list_notifications(principal, unread_only=False, limit=100, before=None)
    return [item.notification_id for item in page.items]


def test_goal_created_records_audience(store, events) -> None:  # type: ignore[no-untyped-def]
    store.apply(
        events.goal_created(
            GOAL, OLGA, visibility="team", co_owner_ids=(CORA,), team="platform", contributing_teams=("growth",)
        )
    )

    assert table_rows(store, "goal_audiences", events.org_id) == [(events.org_id, GOAL, "team", 1)]
    assert table_rows(store, "goal_people", events.org_id) == [
        (events.org_id, GOAL, CORA, "co_owner"),
        (events.org_id, GOAL, OLGA, "owner"),
    ]
    assert table_rows(store, "goal_teams", events.org_id) == [
        (events.org_id, GOAL, "growth"),
        (events.org_id, GOAL, "platform"),
    ]


def test_goal_without_visibility_is_organisation_wide(store, events) -> None:  # type: ignore[no-untyped-def]
    store.apply(events.goal_created(GOAL, OLGA))

    assert table_rows(store, "goal_audiences", events.org_id) == [(events.org_id, GOAL, "organisation", 1)]


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 1, 0), (1, 2, 0), (2, 0, 1)])
def test_highest_version_visibility_wins(fresh_store, events, order) -> None:  # type: ignore[no-untyped-def]
    changes = [
        events.goal_created(GOAL, OLGA, visibility="organisation"),
        events.visibility_changed(GOAL, "private", "organisation", OLGA, 5),
        events.visibility_changed(GOAL, "team", "private", OLGA, 6),
    ]
    store = fresh_store()

    store.apply(*(changes[index] for index in order))

    assert table_rows(store, "goal_audiences", events.org_id) == [(events.org_id, GOAL, "team", 3)]


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 1, 0), (1, 0, 2)])
def test_highest_version_owners_win(fresh_store, events, order) -> None:  # type: ignore[no-untyped-def]
    changes = [
        events.goal_created(GOAL, OLGA, co_owner_ids=(CORA,)),
        events.owners_changed(GOAL, OLGA, (CORA, DAN), OLGA, 5),
        events.owners_changed(GOAL, DAN, (OLGA,), OLGA, 6),
    ]
    store = fresh_store()

    store.apply(*(changes[index] for index in order))

    assert table_rows(store, "goal_people", events.org_id) == [
        (events.org_id, GOAL, DAN, "owner"),
        (events.org_id, GOAL, OLGA, "co_owner"),
    ]


def test_collaborators_are_a_set(store, events) -> None:  # type: ignore[no-untyped-def]
    store.apply(
        events.tagged(GOAL, COLIN, OLGA, 1),
        events.goal_created(GOAL, OLGA, visibility="private"),
        events.tagged(GOAL, COLIN, CORA, 2),
        events.tagged(GOAL, FAY, OLGA, 3),
        events.owners_changed(GOAL, OLGA, (), OLGA, 4),
    )

    assert table_rows(store, "goal_people", events.org_id) == [
        (events.org_id, GOAL, COLIN, "collaborator"),
        (events.org_id, GOAL, FAY, "collaborator"),
        (events.org_id, GOAL, OLGA, "owner"),
    ]


def test_private_goal_check_in_skips_outsiders(store, events) -> None:  # type: ignore[no-untyped-def]
    goal_created = events.goal_created(GOAL, OLGA, visibility="private", co_owner_ids=(CORA,))
    tag = events.tagged(GOAL, COLIN, OLGA, 3)
    check_in = events.check_in(GOAL, ACTOR, 10)

    store.apply(goal_created, events.followed(GOAL, FAY, 1), events.followed(GOAL, COLIN, 2), tag, check_in)

    assert facts(store, events.org_id) == {
        (OLGA, OWNED_GOAL_CHECK_IN, check_in.id),
        (CORA, OWNED_GOAL_CHECK_IN, check_in.id),
        (COLIN, FOLLOWED_GOAL_CHECK_IN, check_in.id),
        (COLIN, TAGGED, tag.id),
    }


def test_tag_read_after_private_check_in_notifies_collaborator(store, events) -> None:  # type: ignore[no-untyped-def]
    goal_created = events.goal_created(GOAL, OLGA, visibility="private")
    followed = events.followed(GOAL, COLIN, 1)
    tag = events.tagged(GOAL, COLIN, OLGA, 2)
    check_in = events.check_in(GOAL, ACTOR, 10)

    store.apply(goal_created, followed, check_in)
    assert facts(store, events.org_id) == {(OLGA, OWNED_GOAL_CHECK_IN, check_in.id)}

    store.apply(tag)
    assert facts(store, events.org_id) == {
        (OLGA, OWNED_GOAL_CHECK_IN, check_in.id),
        (COLIN, TAGGED, tag.id),
        (COLIN, FOLLOWED_GOAL_CHECK_IN, check_in.id),
    }


def test_late_owner_change_moves_owner_notifications(store, events) -> None:  # type: ignore[no-untyped-def]
    goal_created = events.goal_created(GOAL, OLGA, co_owner_ids=(CORA,))
    owners_changed = events.owners_changed(GOAL, OLGA, (DAN,), OLGA, 5)
    check_in = events.check_in(GOAL, ACTOR, 10)

    store.apply(goal_created, check_in)
    assert facts(store, events.org_id) == {(OLGA, OWNED_GOAL_CHECK_IN, check_in.id), (CORA, OWNED_GOAL_CHECK_IN, check_in.id)}

    store.apply(owners_changed)
    assert facts(store, events.org_id) == {(OLGA, OWNED_GOAL_CHECK_IN, check_in.id), (DAN, OWNED_GOAL_CHECK_IN, check_in.id)}


def test_kind_change_keeps_read_mark(store, events) -> None:  # type: ignore[no-untyped-def]
    goal_created = events.goal_created(GOAL, OLGA)
    owners_changed = events.owners_changed(GOAL, OLGA, (FAY,), OLGA, 5)
    check_in = events.check_in(GOAL, ACTOR, 10)
    store.apply(goal_created, events.followed(GOAL, FAY, 1), check_in)
    inbox = Inbox(store.engine, store.tables)
    fay = reader(events.org_id, FAY)
    assert inbox.mark_read(fay, notification_id_for(check_in.id, FAY)) is not None

    store.apply(owners_changed)

    page = inbox.list_notifications(fay, unread_only=False, limit=10, before=None)
    assert [(item.kind, item.read) for item in page.items] == [(OWNED_GOAL_CHECK_IN, True)]


def test_inbox_same_in_every_order(fresh_store, events) -> None:  # type: ignore[no-untyped-def]
    goal_events = [
        events.goal_created(GOAL, OLGA, visibility="organisation", co_owner_ids=(CORA,)),
        events.check_in(GOAL, OLGA, 10),
        events.visibility_changed(GOAL, "private", "organisation", OLGA, 15),
        events.check_in(GOAL, CORA, 20),
        events.owners_changed(GOAL, OLGA, (DAN,), OLGA, 25),
        events.check_in(GOAL, OLGA, 30),
        events.visibility_changed(GOAL, "team", "private", OLGA, 35),
        events.check_in(GOAL, DAN, 40),
    ]
    social_events = [
        events.followed(GOAL, FAY, 1),
        events.followed(GOAL, OTTO, 2),
        events.followed(GOAL, COLIN, 3),
        events.tagged(GOAL, COLIN, OLGA, 5),
        events.unfollowed(GOAL, OTTO, 32),
    ]
    everything = goal_events + social_events
    orders = {"goals_first": everything, "social_first": social_events + goal_events, "reversed": everything[::-1]}
    for seed in range(4):
        shuffled = list(everything)
        random.Random(seed).shuffle(shuffled)
        orders[f"shuffled_{seed}"] = shuffled

    results = {}
    for name, ordered in orders.items():
        store = fresh_store()
        store.apply(*ordered)
        results[name] = {
            table: table_rows(store, table, events.org_id)
            for table in ("inbox", "goal_audiences", "goal_people", "goal_teams")
        }
        if name == "goals_first":
            first_facts = facts(store, events.org_id)

    v2, v4, v6, v8 = goal_events[1], goal_events[3], goal_events[5], goal_events[7]
    assert first_facts == {
        (CORA, OWNED_GOAL_CHECK_IN, v2.id),
        (FAY, FOLLOWED_GOAL_CHECK_IN, v2.id),
        (OTTO, FOLLOWED_GOAL_CHECK_IN, v2.id),
        (COLIN, FOLLOWED_GOAL_CHECK_IN, v2.id),
        (OLGA, OWNED_GOAL_CHECK_IN, v4.id),
        (COLIN, FOLLOWED_GOAL_CHECK_IN, v4.id),
        (DAN, OWNED_GOAL_CHECK_IN, v6.id),
        (COLIN, FOLLOWED_GOAL_CHECK_IN, v6.id),
        (OLGA, OWNED_GOAL_CHECK_IN, v8.id),
        (FAY, FOLLOWED_GOAL_CHECK_IN, v8.id),
        (COLIN, FOLLOWED_GOAL_CHECK_IN, v8.id),
        (COLIN, TAGGED, social_events[3].id),
    }
    assert results["goals_first"]["goal_audiences"] == [(events.org_id, GOAL, "team", 7)]
    for name, result in results.items():
        assert result == results["goals_first"], f"order {name} built a different read model"


def test_team_goal_visible_to_its_teams_and_admins(store, events) -> None:  # type: ignore[no-untyped-def]
    check_in = events.check_in(GOAL, ACTOR, 10)
    store.apply(
        events.goal_created(GOAL, OLGA, visibility="team", team="platform", contributing_teams=("growth",)),
        events.followed(GOAL, FAY, 1),
        check_in,
    )
    notification = notification_id_for(check_in.id, FAY)

    assert visible_ids(store, reader(events.org_id, FAY, ("platform",))) == [notification]
    assert visible_ids(store, reader(events.org_id, FAY, ("sales", "growth"))) == [notification]
    assert visible_ids(store, reader(events.org_id, FAY, ("sales",), admin=True)) == [notification]
    assert visible_ids(store, reader(events.org_id, FAY, ("sales",))) == []
    assert visible_ids(store, reader(events.org_id, FAY)) == []


def test_goal_of_unknown_visibility_shows_only_to_insiders(store, events) -> None:  # type: ignore[no-untyped-def]
    goal_created = events.goal_created(GOAL, OLGA)
    tag = events.tagged(GOAL, COLIN, OLGA, 2)
    check_in = events.check_in(GOAL, ACTOR, 10)
    store.apply(events.followed(GOAL, FAY, 1), tag, check_in)

    assert visible_ids(store, reader(events.org_id, COLIN)) == [notification_id_for(tag.id, COLIN)]
    assert visible_ids(store, reader(events.org_id, FAY, ("platform",))) == []

    store.apply(goal_created)

    assert visible_ids(store, reader(events.org_id, FAY)) == [notification_id_for(check_in.id, FAY)]


def test_cursor_pages_stay_full_when_goals_are_hidden(store, events) -> None:  # type: ignore[no-untyped-def]
    visible = []
    for index in range(8):
        goal_id = f"goal-page-{index}"
        visibility = "organisation" if index % 2 == 0 else "team"
        check_in = events.check_in(goal_id, ACTOR, 10 + index)
        store.apply(
            events.goal_created(goal_id, OLGA, visibility=visibility, team="platform"),
            events.followed(goal_id, OTTO, 1),
            check_in,
        )
        if visibility == "organisation":
            visible.append(notification_id_for(check_in.id, OTTO))
    inbox = Inbox(store.engine, store.tables)
    otto = reader(events.org_id, OTTO, ("sales",))

    pages: list[list[str]] = []
    cursor: Cursor | None = None
    while True:
        page = inbox.list_notifications(otto, unread_only=False, limit=2, before=cursor)
        pages.append([item.notification_id for item in page.items])
        assert page.unread_count == 4
        if page.next_cursor is None:
            break
        cursor = Cursor.decode(page.next_cursor)

    assert [len(page) for page in pages] == [2, 2]
    assert [notification for page in pages for notification in page] == visible[::-1]


def test_read_marks_cover_visible_goals_only(store, events) -> None:  # type: ignore[no-untyped-def]
    open_check_in = events.check_in("goal-open", ACTOR, 10)
    team_check_in = events.check_in("goal-team", ACTOR, 11)
    store.apply(
        events.goal_created("goal-open", OLGA),
        events.goal_created("goal-team", OLGA, visibility="team", team="platform"),
        events.followed("goal-open", OTTO, 1),
        events.followed("goal-team", OTTO, 1),
        open_check_in,
        team_check_in,
    )
    inbox = Inbox(store.engine, store.tables)
    otto = reader(events.org_id, OTTO, ("sales",))

    assert inbox.mark_read(otto, notification_id_for(team_check_in.id, OTTO)) is None
    assert inbox.mark_all_read(otto) == 1
    assert inbox.mark_all_read(otto) == 0

    store.apply(events.visibility_changed("goal-team", "organisation", "team", OLGA, 20))

    page = inbox.list_notifications(otto, unread_only=True, limit=10, before=None)
    assert [item.notification_id for item in page.items] == [notification_id_for(team_check_in.id, OTTO)]
    assert page.unread_count == 1
