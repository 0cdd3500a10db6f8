"""Who hears of follows, comments, mentions, kudos, reactions, status changes and community links; grouping; tags ending.

Every test runs on SQLite and PostgreSQL through the projection the worker uses.
"""

from __future__ import annotations

import random

from activity_events import DAY, ActivityEvents
from sqlalchemy import select

from spm_events.auth import Principal
from spm_notifications.inbox import Inbox
from spm_notifications.rules import (
    COMMUNITY_GOAL_LINKED,
    FOLLOWED_GOAL_CHECK_IN,
    FOLLOWED_GOAL_CLOSED,
    FOLLOWED_GOAL_STATUS_CHANGED,
    GOAL_COMMENTED,
    GOAL_FOLLOWED,
    GOAL_KUDOS,
    GOAL_REACTION,
    MENTIONED,
    OWNED_GOAL_CHECK_IN,
    TAGGED,
)

GOAL = "goal-activities"
OLGA, CORA, ALEX, FAY, FINN, TINA, OTTO, MIA = "olga", "cora", "alex", "fay", "finn", "tina", "otto", "mia"
GUILD = "community-guild"


def facts(store, org_id: str, kinds: tuple[str, ...] | None = None) -> set[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    """Return (recipient, kind, event id) of the org's inbox rows, optionally of some kinds only."""
    inbox = store.tables.inbox
    query = select(inbox).where(inbox.c.org_id == org_id)
    if kinds is not None:
        query = query.where(inbox.c.kind.in_(kinds))
    with store.engine.connect() as connection:
        return {(row.recipient_id, row.kind, row.event_id) for row in connection.execute(query)}


def reader(org_id: str, person_id: str, teams: tuple[str, ...] = ()) -> Principal:
    return Principal(org_id=org_id, person_id=person_id, teams=frozenset(teams))


def test_follow_notifies_owners_but_not_the_follower(store, events) -> None:  # type: ignore[no-untyped-def]
    fay_follows, olga_follows = events.followed(GOAL, FAY, 1), events.followed(GOAL, OLGA, 2)
    store.apply(events.goal_created(GOAL, OLGA, co_owner_ids=(CORA,)), fay_follows, olga_follows)

    assert facts(store, events.org_id) == {
        (OLGA, GOAL_FOLLOWED, fay_follows.id),
        (CORA, GOAL_FOLLOWED, fay_follows.id),
        (CORA, GOAL_FOLLOWED, olga_follows.id),
    }


def test_comment_notifies_owners_and_mentioned_people_once(store, events) -> None:  # type: ignore[no-untyped-def]
    more = ActivityEvents(events)
    comment = more.comment(GOAL, "c1", ALEX, 5, mentioned=(CORA, FAY, ALEX))
    store.apply(events.goal_created(GOAL, OLGA, co_owner_ids=(CORA,)), comment)

    # Cora owns the goal and is mentioned: one notification, the mention.
    assert facts(store, events.org_id) == {
        (OLGA, GOAL_COMMENTED, comment.id),
        (CORA, MENTIONED, comment.id),
        (FAY, MENTIONED, comment.id),
    }


def test_edit_notifies_only_newly_mentioned_and_delete_withdraws(store, events) -> None:  # type: ignore[no-untyped-def]
    more = ActivityEvents(events)
    comment = more.comment(GOAL, "c1", ALEX, 5, mentioned=(FAY,))
    edit = more.comment_edited(GOAL, "c1", ALEX, 6, mentioned=(FAY, FINN))
    store.apply(events.goal_created(GOAL, OLGA), comment, edit)

    assert facts(store, events.org_id) == {
        (OLGA, GOAL_COMMENTED, comment.id),
        (FAY, MENTIONED, comment.id),
        (FINN, MENTIONED, edit.id),
    }

    store.apply(more.comment_deleted(GOAL, "c1", ALEX, 7))

    assert facts(store, events.org_id) == set()


def test_kudos_notify_owners_and_receiver(store, events) -> None:  # type: ignore[no-untyped-def]
    more = ActivityEvents(events)
    kudos, own_kudos = more.kudos(GOAL, FAY, ALEX, 5), more.kudos(GOAL, OLGA, OLGA, 6)
    store.apply(events.goal_created(GOAL, OLGA), kudos, own_kudos)

    assert facts(store, events.org_id) == {(OLGA, GOAL_KUDOS, kudos.id), (FAY, GOAL_KUDOS, kudos.id)}


def test_reaction_notifies_owners(store, events) -> None:  # type: ignore[no-untyped-def]
    more = ActivityEvents(events)
    reaction, coras_reaction = more.reaction(GOAL, ALEX, 5), more.reaction(GOAL, CORA, 6)
    store.apply(events.goal_created(GOAL, OLGA, co_owner_ids=(CORA,)), reaction, coras_reaction)

    assert facts(store, events.org_id) == {
        (OLGA, GOAL_REACTION, reaction.id),
        (CORA, GOAL_REACTION, reaction.id),
        (OLGA, GOAL_REACTION, coras_reaction.id),
    }


def test_status_changes_and_closing_notify_followers(store, events) -> None:  # type: ignore[no-untyped-def]
    more = ActivityEvents(events)
    store.apply(events.goal_created(GOAL, OLGA))
    store.apply(events.followed(GOAL, FAY, 1), events.followed(GOAL, OLGA, 2), events.followed(GOAL, FINN, 3))
    store.apply(events.unfollowed(GOAL, FINN, 4))
    closed = more.status_changed(GOAL, "closed", "active", OLGA, 10, outcome="achieved")
    reopened = more.status_changed(GOAL, "active", "closed", CORA, 20)
    store.apply(closed, reopened)

    assert facts(store, events.org_id, (FOLLOWED_GOAL_CLOSED, FOLLOWED_GOAL_STATUS_CHANGED)) == {
        (FAY, FOLLOWED_GOAL_CLOSED, closed.id),
        (FAY, FOLLOWED_GOAL_STATUS_CHANGED, reopened.id),
        (OLGA, FOLLOWED_GOAL_STATUS_CHANGED, reopened.id),
    }


def test_community_link_notifies_members_at_link_time(store, events) -> None:  # type: ignore[no-untyped-def]
    more = ActivityEvents(events)
    link = more.linked(GUILD, GOAL, ALEX, 30)
    store.apply(
        events.goal_created(GOAL, OLGA),
        more.community_created(GUILD, MIA, 1),
        more.joined(GUILD, ALEX, 2),
        more.joined(GUILD, FAY, 3),
        more.joined(GUILD, OTTO, 4),
        more.left(GUILD, OTTO, 5),
        link,
        more.joined(GUILD, FINN, 40),
    )

    assert facts(store, events.org_id) == {
        (MIA, COMMUNITY_GOAL_LINKED, link.id),
        (FAY, COMMUNITY_GOAL_LINKED, link.id),
    }
    # A join dated before the link but read after it still counts, because membership is matched by event time.
    store.apply(more.joined(GUILD, TINA, 10))
    assert (TINA, COMMUNITY_GOAL_LINKED, link.id) in facts(store, events.org_id)
    page = Inbox(store.engine, store.tables).list_notifications(
        reader(events.org_id, TINA), unread_only=False, limit=10, before=None
    )
    assert [(item.kind, item.community_id) for item in page.items] == [(COMMUNITY_GOAL_LINKED, GUILD)]


def test_comment_before_goal_created_waits(store, events) -> None:  # type: ignore[no-untyped-def]
    more = ActivityEvents(events)
    comment = more.comment(GOAL, "c1", ALEX, 5, mentioned=(FAY,))
    store.apply(comment)
    # The goal's visibility is not known yet, so nobody outside it hears of the comment.
    assert facts(store, events.org_id) == set()

    store.apply(events.goal_created(GOAL, OLGA, visibility="private"))
    assert facts(store, events.org_id) == {(OLGA, GOAL_COMMENTED, comment.id)}

    store.apply(events.visibility_changed(GOAL, "organisation", "private", OLGA, 3))
    # Opened at minute 3, before the comment: Fay's mention is now due.
    assert facts(store, events.org_id) == {(OLGA, GOAL_COMMENTED, comment.id), (FAY, MENTIONED, comment.id)}


def test_declined_left_and_untagged_people_stop_being_insiders(store, events) -> None:  # type: ignore[no-untyped-def]
    more = ActivityEvents(events)
    store.apply(events.goal_created(GOAL, OLGA, visibility="private"))
    for person, minute in ((TINA, 1), (FAY, 2), (FINN, 3), (MIA, 4)):
        store.apply(events.tagged(GOAL, person, OLGA, minute), events.followed(GOAL, person, minute))
    store.apply(
        more.tag_accepted(GOAL, MIA, 5),
        more.tag_declined(GOAL, TINA, 6),
        more.collaborator_left(GOAL, FAY, 7),
        more.untagged(GOAL, FINN, OLGA, 8),
    )
    check_in = events.check_in(GOAL, OLGA, 10)
    store.apply(check_in)

    assert facts(store, events.org_id, (FOLLOWED_GOAL_CHECK_IN,)) == {(MIA, FOLLOWED_GOAL_CHECK_IN, check_in.id)}
    people = store.tables.goal_people
    with store.engine.connect() as connection:
        insiders = set(connection.execute(
            select(people.c.person_id).where(people.c.org_id == events.org_id, people.c.goal_id == GOAL)
        ).scalars())
    assert insiders == {OLGA, MIA}


def test_untag_read_late_withdraws_private_notifications(store, events) -> None:  # type: ignore[no-untyped-def]
    more = ActivityEvents(events)
    # Built in version order: the check-in is the goal's second version.
    goal_created = events.goal_created(GOAL, OLGA, visibility="private")
    check_in = events.check_in(GOAL, OLGA, 10)
    store.apply(
        goal_created,
        events.tagged(GOAL, TINA, OLGA, 1),
        events.followed(GOAL, TINA, 2),
        check_in,
    )
    assert (TINA, FOLLOWED_GOAL_CHECK_IN, check_in.id) in facts(store, events.org_id)

    store.apply(more.untagged(GOAL, TINA, OLGA, 5))

    assert facts(store, events.org_id, (FOLLOWED_GOAL_CHECK_IN,)) == set()


def burst(more: ActivityEvents, events, minutes: list[int]) -> list:  # type: ignore[no-untyped-def, type-arg]
    people = [f"person-{index}" for index in range(len(minutes))]
    return [events.followed(GOAL, person, minute) for person, minute in zip(people, minutes)]


def test_follow_burst_forms_one_item(store, events) -> None:  # type: ignore[no-untyped-def]
    more = ActivityEvents(events)
    same_day = burst(more, events, [10, 20, 30, 40, 50])
    next_day = events.followed(GOAL, "late-person", DAY + 10)
    store.apply(events.goal_created(GOAL, OLGA), *same_day, next_day)
    inbox = Inbox(store.engine, store.tables)

    page = inbox.list_notifications(reader(events.org_id, OLGA), unread_only=False, limit=10, before=None)

    assert [(item.count, item.read) for item in page.items] == [(1, False), (5, False)]
    group = page.items[1]
    assert group.message == '5 people followed "Ship the inbox", a goal you own'
    assert group.actor_ids == tuple(f"person-{index}" for index in (4, 3, 2, 1, 0))
    assert page.unread_count == 2

    marked = inbox.mark_read(reader(events.org_id, OLGA), group.notification_id)

    assert marked is not None
    assert marked.read
    assert marked.count == 5
    inbox_table = store.tables.inbox
    with store.engine.connect() as connection:
        unread = connection.execute(
            select(inbox_table.c.event_id).where(
                inbox_table.c.org_id == events.org_id, inbox_table.c.read_at.is_(None)
            )
        ).scalars().all()
    assert unread == [next_day.id]
    after = inbox.list_notifications(reader(events.org_id, OLGA), unread_only=True, limit=10, before=None)
    assert [item.count for item in after.items] == [1]
    assert after.unread_count == 1


def test_groups_page_with_cursor(store, events) -> None:  # type: ignore[no-untyped-def]
    more = ActivityEvents(events)
    # Three days of follows, two per day, then a kudos: four items.
    follows = burst(more, events, [10, 20, DAY + 10, DAY + 20, 2 * DAY + 10, 2 * DAY + 20])
    kudos = more.kudos(GOAL, OLGA, ALEX, 3 * DAY)
    store.apply(events.goal_created(GOAL, OLGA), *follows, kudos)
    inbox = Inbox(store.engine, store.tables)

    seen, cursor = [], None
    while True:
        page = inbox.list_notifications(reader(events.org_id, OLGA), unread_only=False, limit=1, before=cursor)
        seen.extend((item.kind, item.count) for item in page.items)
        if page.next_cursor is None:
            break
        from spm_notifications.inbox import Cursor

        cursor = Cursor.decode(page.next_cursor)

    assert seen == [(GOAL_KUDOS, 1), (GOAL_FOLLOWED, 2), (GOAL_FOLLOWED, 2), (GOAL_FOLLOWED, 2)]


def test_group_counts_only_members_the_reader_may_see(store, events) -> None:  # type: ignore[no-untyped-def]
    more = ActivityEvents(events)
    kudos = [more.kudos(GOAL, FAY, person, minute) for person, minute in ((ALEX, 10), (FINN, 11), (OTTO, 12))]
    store.apply(events.goal_created(GOAL, OLGA, visibility="team", team="platform"), *kudos)
    inbox = Inbox(store.engine, store.tables)

    in_team = inbox.list_notifications(reader(events.org_id, FAY, ("platform",)), unread_only=False, limit=10, before=None)
    outside = inbox.list_notifications(reader(events.org_id, FAY, ("sales",)), unread_only=False, limit=10, before=None)

    assert [item.count for item in in_team.items] == [3]
    assert outside.items == []
    assert outside.unread_count == 0


def test_every_order_builds_the_same_inbox(open_store, tmp_path, events) -> None:  # type: ignore[no-untyped-def]
    more = ActivityEvents(events)
    goal_events = [
        events.goal_created(GOAL, OLGA, co_owner_ids=(CORA,)),
        events.check_in(GOAL, ALEX, 10),
        events.visibility_changed(GOAL, "private", "organisation", OLGA, 15),
        events.check_in(GOAL, CORA, 20),
        more.status_changed(GOAL, "closed", "active", OLGA, 40, outcome="missed"),
    ]
    social_events = [
        events.followed(GOAL, FAY, 1),
        events.followed(GOAL, FINN, 2),
        events.tagged(GOAL, TINA, OLGA, 3),
        events.followed(GOAL, TINA, 4),
        more.comment(GOAL, "c1", ALEX, 12, mentioned=(FAY, TINA)),
        more.comment(GOAL, "c2", ALEX, 22, mentioned=(FAY, TINA)),
        more.kudos(GOAL, FINN, ALEX, 13),
        more.reaction(GOAL, FAY, 14),
        more.untagged(GOAL, TINA, OLGA, 30),
    ]
    community_events = [
        more.community_created(GUILD, MIA, 0),
        more.joined(GUILD, FAY, 5),
        more.linked(GUILD, GOAL, ALEX, 11),
        more.linked(GUILD, GOAL, ALEX, 25),
    ]
    everything = goal_events + social_events + community_events
    orders = {"in_order": everything, "reversed": everything[::-1]}
    for seed in range(3):
        shuffled = list(everything)
        random.Random(seed).shuffle(shuffled)
        orders[f"shuffled_{seed}"] = shuffled

    results = {}
    for name, ordered in orders.items():
        store = open_store(f"sqlite:///{tmp_path / name}.db")
        store.apply(*ordered)
        results[name] = facts(store, events.org_id)

    (check_in_open, check_in_private), closed = goal_events[1:2] + goal_events[3:4], goal_events[4]
    comment_open, comment_private, kudos, reaction = social_events[4], social_events[5], social_events[6], social_events[7]
    link_open, link_private = community_events[2], community_events[3]
    assert results["in_order"] == {
        (OLGA, OWNED_GOAL_CHECK_IN, check_in_open.id),
        (CORA, OWNED_GOAL_CHECK_IN, check_in_open.id),
        (FAY, FOLLOWED_GOAL_CHECK_IN, check_in_open.id),
        (FINN, FOLLOWED_GOAL_CHECK_IN, check_in_open.id),
        (TINA, FOLLOWED_GOAL_CHECK_IN, check_in_open.id),
        (OLGA, OWNED_GOAL_CHECK_IN, check_in_private.id),
        (OLGA, GOAL_FOLLOWED, social_events[0].id),
        (CORA, GOAL_FOLLOWED, social_events[0].id),
        (OLGA, GOAL_FOLLOWED, social_events[1].id),
        (CORA, GOAL_FOLLOWED, social_events[1].id),
        (OLGA, GOAL_FOLLOWED, social_events[3].id),
        (CORA, GOAL_FOLLOWED, social_events[3].id),
        (TINA, TAGGED, social_events[2].id),
        (OLGA, GOAL_COMMENTED, comment_open.id),
        (CORA, GOAL_COMMENTED, comment_open.id),
        (FAY, MENTIONED, comment_open.id),
        (TINA, MENTIONED, comment_open.id),
        (OLGA, GOAL_COMMENTED, comment_private.id),
        (CORA, GOAL_COMMENTED, comment_private.id),
        (OLGA, GOAL_KUDOS, kudos.id),
        (CORA, GOAL_KUDOS, kudos.id),
        (FINN, GOAL_KUDOS, kudos.id),
        (OLGA, GOAL_REACTION, reaction.id),
        (CORA, GOAL_REACTION, reaction.id),
        (MIA, COMMUNITY_GOAL_LINKED, link_open.id),
        (FAY, COMMUNITY_GOAL_LINKED, link_open.id),
        # Private from minute 15 on: the outsiders hear of nothing more, and Tina was untagged at minute 30.
        # Mia and Fay are outside the goal, so its second link and its closing reach nobody.
    }
    assert closed.id not in {event_id for _, _, event_id in results["in_order"]}
    assert link_private.id not in {event_id for _, _, event_id in results["in_order"]}
    for name, result in results.items():
        assert result == results["in_order"], f"order {name} built a different inbox"
