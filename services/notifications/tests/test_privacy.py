"""Nobody hears of a goal they cannot see: every visibility, every relationship to the goal, every kind.

One scenario gives each person every reason to be notified (following, mentions, kudos, community
membership, tags), then the inbox of each person is read with a token of their teams: first through
the projection, then through the real broker, the worker process and the inbox API. SQLite and
PostgreSQL.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from activity_events import DAY, ActivityEvents
from sqlalchemy import select
from test_inbox_visibility import live  # noqa: F401 - the module's worker, API and database on SQLite and PostgreSQL

from spm_events.auth import Principal, issue_token
from spm_events.visibility import GoalAudience
from spm_notifications.inbox import Inbox
from spm_notifications.rules import NOTIFICATION_KINDS, TAGGED

GOAL, KR, GUILD = "goal-privacy", "kr-privacy", "community-privacy"
OLGA, CORA, TINA, PETE, DORA = "olga", "cora", "tina", "pete", "dora"
FAY, CODY, OTTO, ADA, ALEX = "fay", "cody", "otto", "ada", "alex"
GOAL_TEAM, CONTRIBUTING_TEAM, OTHER_TEAM = "platform", "growth", "sales"
# Owner, co-owner, accepted collaborator, collaborator who never answers, collaborator who declined,
# member of the goal's team, of a contributing team, of another team, an admin of another team.
TEAMS = {
    OLGA: (GOAL_TEAM,), CORA: (GOAL_TEAM,), TINA: (OTHER_TEAM,), PETE: (OTHER_TEAM,), DORA: (OTHER_TEAM,),
    FAY: (GOAL_TEAM,), CODY: (CONTRIBUTING_TEAM,), OTTO: (OTHER_TEAM,), ADA: (OTHER_TEAM,),
}
ADMINS = {ADA}
INSIDERS = {OLGA, CORA, TINA, PETE}
EVERYONE = set(TEAMS)


def scenario(events, visibility: str) -> list:  # type: ignore[no-untyped-def, type-arg]
    more = ActivityEvents(events)
    others = sorted(EVERYONE - {OLGA})
    built = [
        events.goal_created(GOAL, OLGA, visibility=visibility, co_owner_ids=(CORA,), team=GOAL_TEAM,
                            contributing_teams=(CONTRIBUTING_TEAM,)),
        more.key_result_added(GOAL, KR, OLGA, 1),
        events.tagged(GOAL, TINA, OLGA, 2),
        events.tagged(GOAL, PETE, OLGA, 2),
        events.tagged(GOAL, DORA, OLGA, 2),
        more.tag_accepted(GOAL, TINA, 3),
        more.tag_declined(GOAL, DORA, 3),
        more.community_created(GUILD, OTTO, 4),
    ]
    built += [more.joined(GUILD, person, 4) for person in others if person != OTTO]
    built += [events.followed(GOAL, person, 5) for person in others]
    built += [more.check_in(GOAL, KR, ALEX, 10 + index, confidence) for index, confidence in enumerate([0.9, 0.6, 0.3])]
    built += [
        more.comment(GOAL, "comment-1", ALEX, 13, mentioned=tuple(sorted(EVERYONE - {OLGA, CORA}))),
        *[more.kudos(GOAL, person, ALEX, 14) for person in sorted(EVERYONE)],
        more.reaction(GOAL, ALEX, 15),
        more.linked(GUILD, GOAL, ALEX, 20),
        more.status_changed(GOAL, "closed", "active", OLGA, 30, outcome="achieved"),
        more.status_changed(GOAL, "active", "closed", OLGA, 31),
        # Moves the organisation's clock past the nudges' deadlines.
        events.followed("goal-elsewhere", ALEX, 40 * DAY),
    ]
    return built


def inbox_kinds(store, org_id: str, person: str) -> set[str]:  # type: ignore[no-untyped-def]
    principal = Principal(org_id=org_id, person_id=person, teams=frozenset(TEAMS[person]), is_admin=person in ADMINS)
    page = Inbox(store.engine, store.tables).list_notifications(principal, unread_only=False, limit=100, before=None)
    return {item.kind for item in page.items}


def stored_rows(store, org_id: str) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    inbox = store.tables.inbox
    with store.engine.connect() as connection:
        rows = connection.execute(select(inbox.c.recipient_id, inbox.c.kind).where(inbox.c.org_id == org_id))
        return [(row.recipient_id, row.kind) for row in rows]


def test_organisation_goal_scenario_covers_every_kind(store, events) -> None:  # type: ignore[no-untyped-def]
    store.apply(*scenario(events, "organisation"))

    kinds = {kind for _, kind in stored_rows(store, events.org_id)}
    assert kinds == set(NOTIFICATION_KINDS)
    assert ALEX not in {person for person, _ in stored_rows(store, events.org_id)}


@pytest.mark.parametrize("visibility", ["organisation", "team", "private"])
def test_nobody_hears_of_a_goal_they_cannot_see(store, events, visibility) -> None:  # type: ignore[no-untyped-def]
    store.apply(*scenario(events, visibility))
    audience = GoalAudience(
        visibility=visibility, owner_id=OLGA, co_owner_ids=frozenset({CORA}),
        teams=frozenset({GOAL_TEAM, CONTRIBUTING_TEAM}), collaborator_ids=frozenset({TINA, PETE}),
    )

    for person in sorted(EVERYONE):
        principal = Principal(org_id=events.org_id, person_id=person, teams=frozenset(TEAMS[person]),
                              is_admin=person in ADMINS)
        listed = inbox_kinds(store, events.org_id, person)
        if audience.can_see(replace(principal, is_admin=False)):
            assert listed, f"{person} may see the {visibility} goal but heard nothing"
        elif not audience.can_see(principal):
            assert listed == set(), f"{person} cannot see the {visibility} goal but heard of {sorted(listed)}"
        # An admin outside a private goal may see it, but the worker does not know who is an admin and
        # notifies only the goal's insiders of it.

    if visibility == "private":
        # Not even stored: only insiders were notified, and Dora only of her tag, before she declined it.
        stored = stored_rows(store, events.org_id)
        assert {person for person, _ in stored} <= INSIDERS | {DORA}
        assert {kind for person, kind in stored if person == DORA} == {TAGGED}
        assert {kind for person, kind in stored if person in INSIDERS} == set(NOTIFICATION_KINDS)


def test_goal_turned_private_hides_earlier_notifications(store, events) -> None:  # type: ignore[no-untyped-def]
    store.apply(*scenario(events, "organisation"))
    assert inbox_kinds(store, events.org_id, OTTO)

    store.apply(events.visibility_changed(GOAL, "private", "organisation", OLGA, 41 * DAY))

    for person in sorted(EVERYONE - INSIDERS - ADMINS):
        assert inbox_kinds(store, events.org_id, person) == set(), person
    assert inbox_kinds(store, events.org_id, TINA)


@pytest.mark.kafka
@pytest.mark.parametrize("visibility", ["organisation", "team", "private"])
def test_worker_and_api_tell_nobody_outside_the_goal(live, events, poll, visibility) -> None:  # type: ignore[no-untyped-def]
    """The same scenario through the real broker, the worker process and the inbox API."""
    live.publish(scenario(events, visibility), poll)
    audience = GoalAudience(
        visibility=visibility, owner_id=OLGA, co_owner_ids=frozenset({CORA}),
        teams=frozenset({GOAL_TEAM, CONTRIBUTING_TEAM}), collaborator_ids=frozenset({TINA, PETE}),
    )

    heard = {}
    for person in sorted(EVERYONE):
        token = issue_token(live.secret, events.org_id, person, teams=TEAMS[person], admin=person in ADMINS)
        response = live.client.get("/inbox", params={"limit": 100}, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.text
        heard[person] = {item["kind"] for item in response.json()["items"]}
        principal = Principal(org_id=events.org_id, person_id=person, teams=frozenset(TEAMS[person]),
                              is_admin=person in ADMINS)
        if not audience.can_see(principal):
            assert heard[person] == set(), f"{person} cannot see the {visibility} goal but heard of it"
    assert set().union(*(heard[person] for person in INSIDERS)) == set(NOTIFICATION_KINDS)
    if visibility == "private":
        assert live.stored_recipients(events.org_id) <= INSIDERS | {DORA}
