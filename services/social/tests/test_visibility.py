"""Goal visibility end to end: events go through the real broker into the read model, then the API is queried.

Every scenario runs on SQLite files and on a fresh PostgreSQL database. Follows of people who may
no longer see a goal are published as events, as if they had followed while the goal was open,
so the read model stores feed items for them and only the read-time check can hide those items.
"""

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from spm_events.auth import Principal
from spm_events.database import create_database_engine
from spm_events.envelope import Envelope
from spm_events.readmodel import Outcome
from spm_social.readmodel import SocialReadModel, open_read_model
from spm_social.views import SocialViews

pytestmark = pytest.mark.kafka

HeadersFor = Callable[..., dict[str, str]]
GOAL_TEAM = "growth"
CONTRIBUTING_TEAM = "platform"
OTHER_TEAM = "sales"
UNKNOWN_GOAL_ID = "goal-never-created"


@dataclass(frozen=True)
class Reader:
    person_id: str
    teams: tuple[str, ...] = ()
    admin: bool = False


# The insiders belong to another team only, so they can see a team or private goal solely as insiders.
READERS = {
    "owner": Reader("owner-1", (OTHER_TEAM,)),
    "co-owner": Reader("co-owner-1", (OTHER_TEAM,)),
    "tagged collaborator": Reader("collaborator-1", (OTHER_TEAM,)),
    "follower in goal's team": Reader("follower-growth", (GOAL_TEAM,)),
    "follower in contributing team": Reader("follower-platform", (CONTRIBUTING_TEAM,)),
    "follower in another team": Reader("follower-sales", (OTHER_TEAM,)),
    "admin": Reader("admin-1", admin=True),
}
WHO_SEES = {
    "organisation": set(READERS),
    "team": set(READERS) - {"follower in another team"},
    "private": {"owner", "co-owner", "tagged collaborator", "admin"},
}
# What a reader gets from the feed, the followers list and the three commands, in the privacy matrix.
SEES_GOAL = {
    "feed shows the goal": True,
    "followers": 200,
    "follow": 201,
    "tag": 201,
    "unfollow": 200,
    "commands wrote events": True,
}
BLIND_TO_GOAL = {
    "feed shows the goal": False,
    "followers": 404,
    "follow": 404,
    "tag": 404,
    "unfollow": 404,
    "commands wrote events": False,
}
FOLLOWERS = (
    "co-owner",
    "follower in goal's team",
    "follower in contributing team",
    "follower in another team",
    "admin",
)


def headers_of(auth_headers: HeadersFor, reader: Reader) -> dict[str, str]:
    return auth_headers(reader.person_id, teams=reader.teams, admin=reader.admin)


def feed_of(client: TestClient, headers: dict[str, str]) -> list[dict]:
    response = client.get("/feed", params={"limit": 100}, headers=headers)
    assert response.status_code == 200
    body = response.json()
    assert body["next_cursor"] is None
    return body["items"]


def feed_event_ids(client: TestClient, headers: dict[str, str], goal_id: str) -> set[str]:
    return {item["event_id"] for item in feed_of(client, headers) if item["goal_id"] == goal_id}


def stored_item_count(read_model: SocialReadModel, org_id: str, goal_id: str, person_id: str) -> int:
    items = read_model.tables.feed_items
    with read_model.engine.connect() as connection:
        return connection.execute(
            select(func.count())
            .select_from(items)
            .where(items.c.org_id == org_id, items.c.goal_id == goal_id, items.c.person_id == person_id)
        ).scalar()


def max_notification_id(client: TestClient) -> int:
    return client.app.state.social.max_notification_id()


def not_found_body(client: TestClient, headers: dict[str, str], goal_id: str) -> dict:
    """Return the 404 body of an unknown goal, with the goal id put in its place."""
    unknown = client.get(f"/goals/{UNKNOWN_GOAL_ID}/followers", headers=headers)
    assert unknown.status_code == 404
    return {"detail": unknown.json()["detail"].replace(UNKNOWN_GOAL_ID, goal_id)}


def deliver_all_applied(broker, read_model: SocialReadModel, *envelopes: Envelope) -> None:
    outcomes = broker.deliver(read_model, *envelopes)
    assert outcomes == [Outcome.APPLIED] * len(envelopes)


def goal_with_every_reader(events, goal_id: str, visibility: str) -> list[Envelope]:
    """Return the events of a goal that every reader but the owner follows or is tagged on, then a check-in."""
    envelopes = [
        events.goal_created(
            goal_id,
            READERS["owner"].person_id,
            title="Open the Berlin office",
            visibility=visibility,
            co_owner_ids=(READERS["co-owner"].person_id,),
            team=GOAL_TEAM,
            contributing_teams=(CONTRIBUTING_TEAM,),
            day=1,
        ),
        events.key_result_added(goal_id, "kr-1", READERS["owner"].person_id, day=1, hour=10),
    ]
    envelopes += [events.goal_followed(goal_id, READERS[name].person_id, day=2) for name in FOLLOWERS]
    envelopes.append(
        events.collaborator_tagged(goal_id, READERS["tagged collaborator"].person_id, READERS["owner"].person_id, day=2)
    )
    envelopes.append(events.check_in_recorded(goal_id, "kr-1", READERS["owner"].person_id, day=3))
    return envelopes


@pytest.mark.parametrize("visibility", ["organisation", "team", "private"])
def test_privacy_matrix(
    client: TestClient,
    read_model: SocialReadModel,
    broker,
    events,
    auth_headers: HeadersFor,
    add_people: Callable[..., list[str]],
    org_id: str,
    visibility: str,
) -> None:
    goal_id = f"goal-{visibility}"
    # Each reader tags a person of the directory, because a tag names an active person.
    tag_candidates = dict(zip(READERS, add_people(*(f"tagged-by-{reader.person_id}" for reader in READERS.values()))))
    deliver_all_applied(broker, read_model, *goal_with_every_reader(events, goal_id, visibility))
    # The fan-out stored items for every reader, so only the read-time check can hide them.
    for name, reader in READERS.items():
        assert stored_item_count(read_model, org_id, goal_id, reader.person_id) > 0, name

    observed = {}
    leaks = []
    for name, reader in READERS.items():
        headers = headers_of(auth_headers, reader)
        feed = client.get("/feed", params={"limit": 100}, headers=headers)
        followers = client.get(f"/goals/{goal_id}/followers", headers=headers)
        written_before = max_notification_id(client)
        follow = client.post(f"/goals/{goal_id}/followers", headers=headers)
        tag = client.post(
            f"/goals/{goal_id}/collaborators", json={"person_id": tag_candidates[name]}, headers=headers
        )
        unfollow = client.delete(f"/goals/{goal_id}/followers/me", headers=headers)
        commands_wrote = max_notification_id(client) > written_before
        observed[name] = {
            "feed shows the goal": any(item["goal_id"] == goal_id for item in feed.json()["items"]),
            "followers": followers.status_code,
            "follow": follow.status_code,
            "tag": tag.status_code,
            "unfollow": unfollow.status_code,
            "commands wrote events": commands_wrote,
        }
        if name not in WHO_SEES[visibility]:
            hidden_body = not_found_body(client, headers, goal_id)
            for response in (followers, follow, tag, unfollow):
                if response.status_code == 404 and response.json() != hidden_body:
                    leaks.append((name, response.request.method, response.json()))
            if goal_id in feed.text or "Berlin" in feed.text:
                leaks.append((name, "feed", feed.text))

    expected = {name: SEES_GOAL if name in WHO_SEES[visibility] else BLIND_TO_GOAL for name in READERS}
    assert observed == expected
    assert leaks == []


def test_goal_turned_private_hides_items_until_reopened(
    client: TestClient, read_model: SocialReadModel, broker, events, auth_headers: HeadersFor
) -> None:
    follower = auth_headers("follower-1", teams=(GOAL_TEAM,))
    created = events.goal_created("goal-1", "owner-1", visibility="organisation", team=GOAL_TEAM, day=1)
    key_result = events.key_result_added("goal-1", "kr-1", "owner-1", day=1, hour=10)
    followed = events.goal_followed("goal-1", "follower-1", day=2)
    first_check_in = events.check_in_recorded("goal-1", "kr-1", "owner-1", day=3)
    deliver_all_applied(broker, read_model, created, key_result, followed, first_check_in)
    items_while_open = feed_of(client, follower)
    assert {item["event_id"] for item in items_while_open} == {first_check_in.id}

    made_private = events.goal_visibility_changed("goal-1", "private", "organisation", "owner-1", day=4)
    check_in_while_private = events.check_in_recorded("goal-1", "kr-1", "owner-1", day=5)
    deliver_all_applied(broker, read_model, made_private, check_in_while_private)

    assert feed_of(client, follower) == []
    assert client.get("/goals/goal-1/followers", headers=follower).status_code == 404
    assert client.delete("/goals/goal-1/followers/me", headers=follower).status_code == 404
    assert feed_event_ids(client, auth_headers("owner-1"), "goal-1") >= {first_check_in.id, check_in_while_private.id}

    reopened = events.goal_visibility_changed("goal-1", "organisation", "private", "owner-1", day=6)
    deliver_all_applied(broker, read_model, reopened)

    items_after_reopening = feed_of(client, follower)
    assert [item["event_id"] for item in items_after_reopening] == [check_in_while_private.id, first_check_in.id]
    assert items_after_reopening[1] == items_while_open[0]
    assert client.get("/goals/goal-1/followers", headers=follower).status_code == 200


def test_goal_turned_team_hides_items_from_other_teams(
    client: TestClient, read_model: SocialReadModel, broker, events, auth_headers: HeadersFor
) -> None:
    created = events.goal_created("goal-1", "owner-1", team=GOAL_TEAM, contributing_teams=(CONTRIBUTING_TEAM,), day=1)
    followed_in_team = events.goal_followed("goal-1", "member-1", day=2)
    followed_outside = events.goal_followed("goal-1", "outsider-1", day=2)
    check_in = events.check_in_recorded("goal-1", "kr-1", "owner-1", day=3)
    made_team = events.goal_visibility_changed("goal-1", "team", "organisation", "owner-1", day=4)

    deliver_all_applied(broker, read_model, created, followed_in_team, followed_outside, check_in, made_team)

    assert feed_event_ids(client, auth_headers("member-1", teams=(CONTRIBUTING_TEAM,)), "goal-1") == {check_in.id}
    assert feed_event_ids(client, auth_headers("outsider-1", teams=(OTHER_TEAM,)), "goal-1") == set()
    assert feed_event_ids(client, auth_headers("outsider-1"), "goal-1") == set()


def test_removed_co_owner_loses_private_goal(
    client: TestClient, read_model: SocialReadModel, broker, events, auth_headers: HeadersFor
) -> None:
    removed = auth_headers("co-owner-1")
    added = auth_headers("co-owner-2")
    created = events.goal_created("goal-1", "owner-1", visibility="private", co_owner_ids=("co-owner-1",), day=1)
    followed = events.goal_followed("goal-1", "co-owner-1", day=2)
    check_in = events.check_in_recorded("goal-1", "kr-1", "owner-1", day=3)
    deliver_all_applied(broker, read_model, created, followed, check_in)
    assert feed_event_ids(client, removed, "goal-1") == {created.id, check_in.id}
    assert client.get("/goals/goal-1/followers", headers=removed).status_code == 200
    assert client.get("/goals/goal-1/followers", headers=added).status_code == 404

    owners_changed = events.goal_owners_changed("goal-1", "owner-1", ("co-owner-2",), day=4)
    deliver_all_applied(broker, read_model, owners_changed)

    assert feed_of(client, removed) == []
    assert client.get("/goals/goal-1/followers", headers=removed).json() == not_found_body(client, removed, "goal-1")
    written_before = max_notification_id(client)
    assert client.post("/goals/goal-1/followers", headers=removed).status_code == 404
    assert max_notification_id(client) == written_before
    assert client.get("/goals/goal-1/followers", headers=added).status_code == 200
    assert client.post("/goals/goal-1/followers", headers=added).status_code == 201


def test_goal_without_goal_created_shows_nothing(
    client: TestClient, read_model: SocialReadModel, broker, events, auth_headers: HeadersFor, org_id: str
) -> None:
    created = events.goal_created("goal-1", "owner-1", visibility="private", day=1)
    opened = events.goal_visibility_changed("goal-1", "organisation", "private", "owner-1", day=1, hour=12)
    tagged = events.collaborator_tagged("goal-1", "collaborator-1", "owner-1", day=2)
    followed = events.goal_followed("goal-1", "follower-1", day=2)
    check_in = events.check_in_recorded("goal-1", "kr-1", "owner-1", day=3)
    # Every audience fact but the creation, as a replay that reached the goal's later events first stores them.
    deliver_all_applied(broker, read_model, opened, tagged, followed, check_in)
    assert stored_item_count(read_model, org_id, "goal-1", "collaborator-1") == 2
    assert stored_item_count(read_model, org_id, "goal-1", "follower-1") == 1

    for headers in (auth_headers("collaborator-1"), auth_headers("follower-1"), auth_headers("admin-1", admin=True)):
        assert feed_of(client, headers) == []
        followers = client.get("/goals/goal-1/followers", headers=headers)
        assert followers.json() == not_found_body(client, headers, "goal-1")

    deliver_all_applied(broker, read_model, created)

    assert feed_event_ids(client, auth_headers("collaborator-1"), "goal-1") == {tagged.id, check_in.id}
    assert feed_event_ids(client, auth_headers("follower-1"), "goal-1") == {check_in.id}


def test_feed_pages_stay_full_around_hidden_goals(
    client: TestClient, read_model: SocialReadModel, broker, events, auth_headers: HeadersFor
) -> None:
    envelopes = [
        events.goal_created("goal-open", "owner-1", visibility="organisation", day=1),
        events.goal_created("goal-private", "owner-2", visibility="private", day=1),
        events.goal_followed("goal-open", "follower-1", day=1, hour=12),
        events.goal_followed("goal-private", "follower-1", day=1, hour=12),
    ]
    # Check-ins alternate between the goals, so every page of the follower's items mixes both.
    visible_check_ins = []
    for day in range(2, 14):
        goal_id = "goal-open" if day % 2 == 0 else "goal-private"
        check_in = events.check_in_recorded(goal_id, "kr-1", "owner-1", day=day)
        envelopes.append(check_in)
        if goal_id == "goal-open":
            visible_check_ins.append(check_in.id)
    deliver_all_applied(broker, read_model, *envelopes)
    headers = auth_headers("follower-1")

    pages = []
    cursor = None
    for _ in range(10):
        params = {"limit": 2} | ({"before": cursor} if cursor else {})
        page = client.get("/feed", params=params, headers=headers).json()
        pages.append([item["event_id"] for item in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert [len(page) for page in pages] == [2, 2, 2]
    assert [event_id for page in pages for event_id in page] == list(reversed(visible_check_ins))


@pytest.fixture(params=["sqlite", "postgres"])
def empty_read_models(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], SocialReadModel]]:
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


def what_readers_see(read_model: SocialReadModel, org_id: str, readers: dict[str, Principal]) -> dict[str, object]:
    """Return, per reader, the event ids of their visible feed and which goals they may see."""
    views = SocialViews(read_model)
    seen: dict[str, object] = {}
    for name, principal in readers.items():
        page = views.feed_page(principal, 100, None)
        assert page.next_cursor is None
        visible_goals = sorted(
            goal_id
            for goal_id in ("goal-1", "goal-2")
            if (audience := views.audience_of(org_id, goal_id)) is not None and audience.can_see(principal)
        )
        seen[name] = {"feed": sorted(item["event_id"] for item in page.items), "goals": visible_goals}
    return seen


def test_audience_order_changes_nothing(
    empty_read_models: Callable[[], SocialReadModel], broker, events, org_id: str
) -> None:
    audience_events = [
        events.goal_created(
            "goal-1", "owner-1", visibility="private", co_owner_ids=("co-owner-1",), team=GOAL_TEAM, day=1
        ),
        events.goal_created("goal-2", "owner-2", visibility="organisation", team=OTHER_TEAM, day=1),
        events.goal_followed("goal-1", "co-owner-1", day=2),
        events.goal_followed("goal-1", "member-1", day=2),
        events.goal_followed("goal-2", "member-1", day=2),
        events.goal_followed("goal-2", "member-2", day=2),
        events.collaborator_tagged("goal-1", "collaborator-1", "owner-1", day=2),
        events.goal_visibility_changed("goal-1", "team", "private", "owner-1", day=3),
        events.goal_owners_changed("goal-1", "owner-1", ("co-owner-2",), day=3),
        events.goal_visibility_changed("goal-2", "private", "organisation", "owner-2", day=3),
        events.goal_visibility_changed("goal-2", "team", "private", "owner-2", day=4),
    ]
    goal_1_key_result = events.key_result_added("goal-1", "kr-1", "owner-1", day=2, hour=12)
    goal_1_check_in = events.check_in_recorded("goal-1", "kr-1", "owner-1", day=5)
    goal_2_key_result = events.key_result_added("goal-2", "kr-2", "owner-2", day=2, hour=12)
    goal_2_check_in = events.check_in_recorded("goal-2", "kr-2", "owner-2", day=5)
    item_events = [goal_1_key_result, goal_1_check_in, goal_2_key_result, goal_2_check_in]
    readers = {
        "removed co-owner": Principal(org_id, "co-owner-1"),
        "new co-owner": Principal(org_id, "co-owner-2"),
        "collaborator": Principal(org_id, "collaborator-1"),
        "follower in goal-1's team": Principal(org_id, "member-1", teams=frozenset({GOAL_TEAM})),
        "follower in goal-2's team": Principal(org_id, "member-2", teams=frozenset({OTHER_TEAM})),
        "admin": Principal(org_id, "admin-1", is_admin=True),
    }
    orders = {
        "audience before items": audience_events + item_events,
        "items before audience": item_events + audience_events,
        "newest audience facts first": list(reversed(audience_events)) + item_events,
    }

    answers = {}
    for name, order in orders.items():
        read_model = empty_read_models()
        deliver_all_applied(broker, read_model, *order)
        answers[name] = what_readers_see(read_model, org_id, readers)

    reference = answers["audience before items"]
    for name, answer in answers.items():
        assert answer == reference, name
    assert reference["removed co-owner"] == {"feed": [], "goals": []}
    # Owners and co-owners as the read model has them now get all of the goal's items.
    goal_1_activity = [envelope for envelope in audience_events if envelope.data.get("goal_id") == "goal-1"]
    goal_1_items = [
        envelope.id
        for envelope in [*goal_1_activity, goal_1_key_result, goal_1_check_in]
        if envelope.type.split(".")[2] in ("GoalCreated", "GoalFollowed", "CollaboratorTagged", "KeyResultAdded", "CheckInRecorded")
    ]
    assert reference["new co-owner"] == {"feed": sorted(goal_1_items), "goals": ["goal-1"]}
    assert goal_1_check_in.id in reference["collaborator"]["feed"]
    assert reference["follower in goal-1's team"] == {
        "feed": sorted([goal_1_key_result.id, goal_1_check_in.id]),
        "goals": ["goal-1"],
    }
    assert reference["follower in goal-2's team"] == {
        "feed": sorted([goal_2_key_result.id, goal_2_check_in.id]),
        "goals": ["goal-2"],
    }
    assert reference["admin"] == {"feed": [], "goals": ["goal-1", "goal-2"]}
