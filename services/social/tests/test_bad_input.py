"""Bad input to every command route: a clear 4xx naming the field, and nothing written.

Each row of BAD_INPUT is sent to an API on SQLite files and on a fresh PostgreSQL database. Before
the request the organisation has a known goal owned by ``owner``, a pending tag of ``tagged``, a
comment by the owner, a kudos of ``actor`` given on 2021-03-01, and a community that
``community-owner`` created and ``member`` joined. After the request, the event store must hold no
new event and no table of the social database may have changed, except the rate limit's counters.

The flood test sends 1,000 follows of one person over real HTTP to a uvicorn server and checks
that exactly the configured number pass, and that every other request gets 429 with Retry-After.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import MetaData, select

from spm_events.people import person_id_for
from spm_social.api import create_app
from spm_social.readmodel import SocialReadModel
from spm_social.relay import notification_reader
from spm_social.settings import SocialSettings

HeadersFor = Callable[..., dict[str, str]]
HANDLES = ("owner", "actor", "bo", "gone", "tagged", "community-owner", "member")
UNKNOWN_GOAL_ID = "goal-never-created"
# The request counters change with every request, rejected ones included, by design.
CHANGED_BY_EVERY_REQUEST = frozenset({"rate_limit_windows"})
# The event store's table on PostgreSQL. The flood test checks the events it contains separately.
EVENT_STORE_TABLES = frozenset({"socialapplication_events"})


@dataclass(frozen=True)
class Case:
    name: str
    actor: str  # a handle of HANDLES, or "admin"
    method: str
    path: str  # formatted with the ids of the world: {goal}, {comment}, {community}, {tagged}, ...
    body: dict[str, Any] | str | None  # a dict's strings are formatted like the path; a str is sent raw
    status: int
    named: str  # a part of the 422's loc after its location, or a text the detail of any other status contains


MANY_MENTIONS = " ".join(f"@person{number}" for number in range(51))
# A feed cursor whose event id contains a NUL character, which PostgreSQL rejects in text.
FORGED_CURSOR = base64.urlsafe_b64encode("2021-01-01T00:00:00+00:00|event\x00id".encode()).decode().rstrip("=")

BAD_INPUT = [
    # Goals that the caller may not use.
    Case("follow a goal of another org", "actor", "POST", "/goals/{other_org_goal}/followers", None, 404, "not found"),
    Case("follow an unknown goal", "actor", "POST", f"/goals/{UNKNOWN_GOAL_ID}/followers", None, 404, "not found"),
    Case("comment on an unknown goal", "actor", "POST", f"/goals/{UNKNOWN_GOAL_ID}/comments", {"body": "hi"}, 404, "not found"),
    Case("goal id of 101 characters", "actor", "POST", "/goals/" + "g" * 101 + "/followers", None, 422, "goal_id"),
    Case("goal id with a NUL character", "actor", "POST", "/goals/goal%00x/followers", None, 422, "goal_id"),
    Case("follow in the future", "actor", "POST", "/goals/{goal}/followers", {"occurred_at": "2999-01-01"}, 422, "occurred_at"),
    Case("unfollow with a naive time", "actor", "DELETE", "/goals/{goal}/followers/me?occurred_at=2021-03-01T10:00:00", None, 422, "occurred_at"),
    # Tags.
    Case("tag a deactivated person", "owner", "POST", "/goals/{goal}/collaborators", {"person_id": "{gone}"}, 422, "person_id"),
    Case("tag a person not in the directory", "owner", "POST", "/goals/{goal}/collaborators", {"person_id": "person-x"}, 422, "person_id"),
    Case("tag yourself", "owner", "POST", "/goals/{goal}/collaborators", {"person_id": "{owner}"}, 422, "person_id"),
    Case("tag a name with spaces", "owner", "POST", "/goals/{goal}/collaborators", {"person_id": "Bo Smith"}, 422, "person_id"),
    Case("untag by a non-owner", "actor", "DELETE", "/goals/{goal}/collaborators/{tagged}", None, 403, "only an owner"),
    Case("untag a person never tagged", "owner", "DELETE", "/goals/{goal}/collaborators/{bo}", None, 404, "never tagged"),
    Case("accept someone else's tag", "actor", "POST", "/goals/{goal}/collaborators/me/accept", None, 409, "not tagged"),
    Case("leave a pending tag", "tagged", "POST", "/goals/{goal}/collaborators/me/leave", None, 409, "decline it instead"),
    Case("accept before the tag", "tagged", "POST", "/goals/{goal}/collaborators/me/accept", {"occurred_at": "2020-01-01"}, 422, "occurred_at"),
    Case("accept with an unknown field", "tagged", "POST", "/goals/{goal}/collaborators/me/accept", {"note": "yes"}, 422, "note"),
    # Comments and mentions.
    Case("comment of 100 KB", "actor", "POST", "/goals/{goal}/comments", {"body": "x" * 100_000}, 413, "larger than the limit"),
    Case("comment of 10,001 characters", "actor", "POST", "/goals/{goal}/comments", {"body": "x" * 10_001}, 422, "body"),
    Case("empty comment", "actor", "POST", "/goals/{goal}/comments", {"body": ""}, 422, "body"),
    Case("blank comment", "actor", "POST", "/goals/{goal}/comments", {"body": " \n "}, 422, "body"),
    Case("comment without a body", "actor", "POST", "/goals/{goal}/comments", {}, 422, "body"),
    Case("mention of an unknown handle", "actor", "POST", "/goals/{goal}/comments", {"body": "hi @nobody-here"}, 422, "body"),
    Case("mention of a deactivated person", "actor", "POST", "/goals/{goal}/comments", {"body": "hi @gone"}, 422, "body"),
    Case("mentions of 51 people", "actor", "POST", "/goals/{goal}/comments", {"body": MANY_MENTIONS}, 422, "body"),
    Case("comment with an unknown field", "actor", "POST", "/goals/{goal}/comments", {"body": "hi", "pinned": True}, 422, "pinned"),
    Case("comment in the future", "actor", "POST", "/goals/{goal}/comments", {"body": "hi", "occurred_at": "2999-01-01"}, 422, "occurred_at"),
    Case("comment on a bad check-in id", "actor", "POST", "/goals/{goal}/comments", {"body": "hi", "check_in_id": "a b"}, 422, "check_in_id"),
    Case("edit another person's comment", "actor", "PATCH", "/goals/{goal}/comments/{comment}", {"body": "mine now"}, 403, "only the author"),
    Case("edit an unknown comment", "owner", "PATCH", "/goals/{goal}/comments/comment-x", {"body": "new"}, 404, "comment 'comment-x' not found"),
    Case("delete another person's comment", "actor", "DELETE", "/goals/{goal}/comments/{comment}", None, 403, "only the author"),
    Case("edit to a blank text", "owner", "PATCH", "/goals/{goal}/comments/{comment}", {"body": "  "}, 422, "body"),
    # Reactions.
    Case("reaction with an unknown emoji", "actor", "POST", "/goals/{goal}/reactions", {"reaction": "🙃"}, 422, "reaction"),
    Case("reaction kind not in the list", "actor", "POST", "/goals/{goal}/reactions", {"reaction": "dislike"}, 422, "reaction"),
    Case("reaction to an unknown target kind", "actor", "POST", "/goals/{goal}/reactions", {"reaction": "like", "target_kind": "team"}, 422, "target_kind"),
    Case("reaction to another goal", "actor", "POST", "/goals/{goal}/reactions", {"reaction": "like", "target_id": "goal-2"}, 422, "target_id"),
    Case("reaction to a check-in without id", "actor", "POST", "/goals/{goal}/reactions", {"reaction": "like", "target_kind": "check_in"}, 422, "target_id"),
    Case("reaction to an unknown comment", "actor", "POST", "/goals/{goal}/reactions", {"reaction": "like", "target_kind": "comment", "target_id": "comment-x"}, 422, "target_id"),
    Case("reaction with NaN", "actor", "POST", "/goals/{goal}/reactions", '{"reaction": NaN}', 422, "reaction"),
    # Kudos.
    Case("kudos twice a day", "actor", "POST", "/goals/{goal}/kudos", {"receiver_id": "{tagged}", "message": "again", "occurred_at": "2021-03-01T20:00:00Z"}, 409, "one kudos per goal per day"),
    Case("kudos to yourself", "actor", "POST", "/goals/{goal}/kudos", {"receiver_id": "{actor}", "message": "me"}, 422, "receiver_id"),
    Case("kudos to a deactivated person", "actor", "POST", "/goals/{goal}/kudos", {"receiver_id": "{gone}", "message": "hi"}, 422, "receiver_id"),
    Case("kudos to a person not in the directory", "actor", "POST", "/goals/{goal}/kudos", {"receiver_id": "person-x", "message": "hi"}, 422, "receiver_id"),
    Case("kudos with an empty message", "actor", "POST", "/goals/{goal}/kudos", {"receiver_id": "{bo}", "message": ""}, 422, "message"),
    Case("kudos message of 1,001 characters", "actor", "POST", "/goals/{goal}/kudos", {"receiver_id": "{bo}", "message": "k" * 1001}, 422, "message"),
    Case("kudos with an unknown field", "actor", "POST", "/goals/{goal}/kudos", {"receiver_id": "{bo}", "message": "x", "stars": 5}, 422, "stars"),
    # Communities.
    Case("join a community twice", "member", "POST", "/communities/{community}/join", None, 200, "community_id"),
    Case("invite into a community one is not in", "actor", "POST", "/communities/{community}/invite", {"person_id": "{bo}"}, 403, "member"),
    Case("invite a deactivated person", "member", "POST", "/communities/{community}/invite", {"person_id": "{gone}"}, 422, "person_id"),
    Case("invite a person not in the directory", "member", "POST", "/communities/{community}/invite", {"person_id": "person-x"}, 422, "person_id"),
    Case("describe as a member who is no owner", "member", "POST", "/communities/{community}/describe", {"name": "Mine"}, 403, "owner"),
    Case("describe with nothing to change", "community-owner", "POST", "/communities/{community}/describe", {}, 422, "description"),
    Case("community name of 201 characters", "actor", "POST", "/communities", {"name": "n" * 201}, 422, "name"),
    Case("community description of 5,001 characters", "actor", "POST", "/communities", {"name": "ok", "description": "d" * 5001}, 422, "description"),
    Case("link an unknown goal", "member", "POST", "/communities/{community}/goals", {"goal_id": UNKNOWN_GOAL_ID}, 404, "not found"),
    Case("link a goal as a non-member", "actor", "POST", "/communities/{community}/goals", {"goal_id": "{goal}"}, 403, "member"),
    Case("remove yourself", "community-owner", "POST", "/communities/{community}/members/{community-owner}/remove", None, 422, "person_id"),
    Case("remove as a member who is no owner", "member", "POST", "/communities/{community}/members/{community-owner}/remove", None, 403, "owner"),
    Case("last owner leaves with members", "community-owner", "POST", "/communities/{community}/leave", None, 409, "owner"),
    Case("join an unknown community", "actor", "POST", f"/communities/{uuid.UUID(int=7)}/join", None, 404, "not found"),
    Case("community id that is not a uuid", "actor", "POST", "/communities/guild/join", None, 422, "community_id"),
    # People follows.
    Case("follow a deactivated person", "actor", "POST", "/people/{gone}/followers", None, 422, "person_id"),
    Case("follow a person not in the directory", "actor", "POST", "/people/person-x/followers", None, 404, "not found"),
    Case("follow yourself", "actor", "POST", "/people/{actor}/followers", None, 422, "person_id"),
    # The people directory and teams.
    Case("people batch by a non-admin", "actor", "POST", "/people/batch", {"people": [{"handle": "zed", "display_name": "Zed", "email": "zed@example.com", "team": "growth"}]}, 403, "admin"),
    Case("people batch with a bad e-mail", "admin", "POST", "/people/batch", {"people": [{"handle": "zed", "display_name": "Zed", "email": "zed", "team": "growth"}]}, 422, "email"),
    Case("people batch repeating a handle", "admin", "POST", "/people/batch", {"people": [{"handle": "zed", "display_name": "Zed", "email": "z@example.com", "team": "growth"}] * 2}, 422, "handle"),
    Case("team batch with an unknown parent", "admin", "POST", "/teams/batch", {"teams": [{"name": "growth", "parent_name": "nowhere"}]}, 422, "parent_name"),
    # Queries.
    Case("feed of an unknown kind", "actor", "GET", "/feed?kind=gossip", None, 422, "kind"),
    Case("feed with an invalid cursor", "actor", "GET", "/feed?before=not-a-cursor", None, 422, "before"),
    Case("feed cursor with a NUL character", "actor", "GET", f"/feed?before={FORGED_CURSOR}", None, 422, "before"),
    Case("community feed id with a NUL character", "member", "GET", "/communities/guild%00/feed", None, 422, "community_id"),
    Case("comments with an invalid cursor", "actor", "GET", "/goals/{goal}/comments?cursor=not-a-cursor", None, 422, "cursor"),
    # "%C2%80" is U+0080, a character outside ASCII, which base64 decoding rejects with ValueError.
    Case("people cursor outside ASCII", "actor", "GET", "/people?cursor=%C2%80", None, 422, "cursor"),
    Case("teams cursor outside ASCII", "actor", "GET", "/teams?cursor=%C2%80", None, 422, "cursor"),
    Case("comments cursor outside ASCII", "actor", "GET", "/goals/{goal}/comments?cursor=%C2%80", None, 422, "cursor"),
    Case("kudos cursor outside ASCII", "actor", "GET", "/goals/{goal}/kudos?cursor=%C2%80", None, 422, "cursor"),
    Case("feed cursor outside ASCII", "actor", "GET", "/feed?before=%C2%80", None, 422, "before"),
    Case("communities cursor outside ASCII", "actor", "GET", "/communities?cursor=%C2%80", None, 422, "cursor"),
]


@dataclass
class World:
    ids: dict[str, str]
    headers: Callable[[str], dict[str, str]]


@pytest.fixture
def world(
    client: TestClient,
    auth_headers: HeadersFor,
    add_people: Callable[..., list[str]],
    add_known_goal: Callable[..., str],
    org_id: str,
) -> World:
    people = dict(zip(HANDLES, add_people(*HANDLES)))
    admin = auth_headers("admin-1", admin=True)
    assert client.post("/people/gone/deactivate", headers=admin).status_code == 200

    def headers(handle: str) -> dict[str, str]:
        return admin if handle == "admin" else auth_headers(people[handle])

    goal_id = add_known_goal(owner_id=people["owner"])
    ids = {
        **people,
        "goal": goal_id,
        "other_org_goal": add_known_goal(org="another-org"),
    }
    setup = [
        ("owner", f"/goals/{goal_id}/collaborators", {"person_id": people["tagged"], "occurred_at": "2021-02-01"}),
        ("owner", f"/goals/{goal_id}/comments", {"body": "First comment", "occurred_at": "2021-02-02"}),
        ("actor", f"/goals/{goal_id}/kudos", {"receiver_id": people["bo"], "message": "first", "occurred_at": "2021-03-01T08:00:00Z"}),
        ("community-owner", "/communities", {"name": "Growth guild"}),
    ]
    for handle, path, body in setup:
        response = client.post(path, json=body, headers=headers(handle))
        assert response.status_code == 201, response.text
        for key in ("comment", "community"):
            if f"{key}_id" in response.json():
                ids[key] = response.json()[f"{key}_id"]
    assert client.post(f"/communities/{ids['community']}/join", headers=headers("member")).status_code == 201
    return World(ids, headers)


def database_state(
    read_model: SocialReadModel, org_id: str, ignored: frozenset[str] = frozenset()
) -> dict[str, list[tuple]]:
    """Return the organisation's rows of every table in the social database but the rate limit's counters.

    On PostgreSQL the event store shares the database, so its rows are part of the state.
    """
    metadata = MetaData()
    metadata.reflect(read_model.engine)
    state = {}
    with read_model.engine.connect() as connection:
        for name, table in metadata.tables.items():
            if name in CHANGED_BY_EVERY_REQUEST | ignored:
                continue
            query = select(table)
            if "org_id" in table.c:
                query = query.where(table.c.org_id == org_id)
            state[name] = sorted(map(tuple, connection.execute(query)), key=repr)
    return state


def formatted(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**ids) if "{" in value else value
    if isinstance(value, dict):
        return {key: formatted(item, ids) for key, item in value.items()}
    if isinstance(value, list):
        return [formatted(item, ids) for item in value]
    return value


@pytest.mark.parametrize("case", BAD_INPUT, ids=[case.name for case in BAD_INPUT])
def test_bad_input_gets_4xx_and_writes_nothing(
    client: TestClient, read_model: SocialReadModel, world: World, org_id: str, case: Case
) -> None:
    path = case.path.format(**world.ids)
    social = client.app.state.social
    events_before = social.max_notification_id()
    state_before = database_state(read_model, org_id)

    if isinstance(case.body, str):
        response = client.request(
            case.method, path, content=case.body, headers={**world.headers(case.actor), "Content-Type": "application/json"}
        )
    else:
        response = client.request(case.method, path, json=formatted(case.body, world.ids), headers=world.headers(case.actor))

    assert response.status_code == case.status, response.text
    detail = response.json()["detail"] if case.status != 200 else None
    if case.status == 422:
        # A rule about several fields is reported on the whole body, with the fields named in its message.
        named = [case.named in error["loc"][1:] or case.named in error["msg"] for error in detail]
        assert any(named), detail
        assert all(error["msg"] for error in detail)
    elif case.status == 200:
        assert case.named in response.json()
    else:
        assert case.named in detail
    assert social.max_notification_id() == events_before
    assert database_state(read_model, org_id) == state_before


# A flood of follows over HTTP


class ServerThread:
    """Runs the app with uvicorn on a free port of 127.0.0.1 in a thread, until stopped."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.bind(("127.0.0.1", 0))
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", limit_concurrency=200))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.socket.getsockname()
        return f"http://{host}:{port}"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start within 30 seconds"
            time.sleep(0.05)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.socket.close()


FLOOD_REQUESTS = 1000
FLOOD_LIMIT = 50
FLOOD_GOALS = 80
# The rate limit's clock is 15 seconds into a 60-second window, so every request falls into it.
FROZEN_CLOCK = 1_000_035.0
EXPECTED_RETRY_AFTER = "45"


@pytest.fixture
def flood_server(settings: SocialSettings, read_model: SocialReadModel) -> Iterator[ServerThread]:
    limited = settings.model_copy(update={"rate_limit_commands": FLOOD_LIMIT, "rate_limit_window_seconds": 60})
    with ServerThread(create_app(limited, rate_limit_clock=lambda: FROZEN_CLOCK)) as server:
        yield server


async def send_follows(base_url: str, headers: dict[str, str], goal_ids: list[str]) -> list[httpx.Response]:
    """Send one follow per goal id, 20 at a time over keep-alive connections, and return the responses."""
    limits = httpx.Limits(max_connections=20, max_keepalive_connections=20)
    async with httpx.AsyncClient(base_url=base_url, headers=headers, limits=limits, timeout=60) as http:
        return await asyncio.gather(*(http.post(f"/goals/{goal_id}/followers") for goal_id in goal_ids))


def test_flood_of_follows_gets_429_past_the_limit(
    flood_server: ServerThread,
    read_model: SocialReadModel,
    add_known_goal: Callable[..., str],
    auth_headers: HeadersFor,
    org_id: str,
) -> None:
    goal_ids = [add_known_goal() for _ in range(FLOOD_GOALS)]
    follower = person_id_for(org_id, "flooder")
    targets = [goal_ids[number % FLOOD_GOALS] for number in range(FLOOD_REQUESTS)]
    state_before = database_state(read_model, org_id, ignored=EVENT_STORE_TABLES)

    started = time.monotonic()
    responses = asyncio.run(send_follows(flood_server.base_url, auth_headers(follower), targets))
    elapsed = time.monotonic() - started

    statuses = [response.status_code for response in responses]
    assert statuses.count(201) + statuses.count(200) == FLOOD_LIMIT
    assert statuses.count(429) == FLOOD_REQUESTS - FLOOD_LIMIT
    rejected = [response for response in responses if response.status_code == 429]
    assert {response.headers["Retry-After"] for response in rejected} == {EXPECTED_RETRY_AFTER}
    assert f"{FLOOD_LIMIT} social commands per person per 60 seconds" in rejected[0].json()["detail"]
    # Only the accepted follows wrote events, one per goal followed for the first time.
    published = [envelope for _, envelope in notification_reader(flood_server.app.state.social)(0, 500) if envelope]
    assert [envelope.type for envelope in published] == ["spm.social.GoalFollowed.v1"] * statuses.count(201)
    assert database_state(read_model, org_id, ignored=EVENT_STORE_TABLES) == state_before
    # Another person keeps their own budget.
    other = asyncio.run(send_follows(flood_server.base_url, auth_headers("someone-else"), goal_ids[:1]))
    assert [response.status_code for response in other] == [201]
    print(f"{FLOOD_REQUESTS} follows over HTTP in {elapsed:.2f} s ({FLOOD_REQUESTS / elapsed:.0f} per second)")
