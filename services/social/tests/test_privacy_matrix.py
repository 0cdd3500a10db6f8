"""Privacy matrix: what the API returns to each reader of a goal, for every visibility and relationship.

The goal starts open to the organisation, so every reader can follow it, be tagged on it, join a
community it is linked to or follow its owner through the API. Its owner comments, a follower
reacts, the owner gives kudos, and a check-in is recorded. Then the goal turns ``team`` or
``private`` (or stays open), and the owner posts a comment mentioning every reader. Every
command-side event reaches the read model the way the worker receives it: the relay's envelopes
and the goals service's envelopes are published to the real broker, read back from their
partitions and applied. The expected tables below state, per reader, what the API returns.

A reader who may not see the goal must get exactly the response of an unknown goal from every goal
route, and no body they receive may contain the goal's id, title, comment text or kudos message.
Each case runs on SQLite and PostgreSQL, once with written feed items and once with every
subscriber group read at read time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timezone

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from spm_events.database import create_database_engine
from spm_events.envelope import Envelope
from spm_events.people import person_id_for
from spm_events.readmodel import Outcome
from spm_events.registry import new_envelope
from spm_events.schemas import CheckInRecordedV1, GoalCreatedV1, GoalVisibilityChangedV1, KeyResultAddedV1, PeriodV1
from spm_social.fanout import DEFAULT_READ_TIME_THRESHOLD
from spm_social.people import PeopleDirectory, PersonEntry
from spm_social.readmodel import SocialReadModel, open_read_model
from spm_social.relay import notification_reader
from spm_social.settings import READ_MODEL_FILE, SocialSettings

pytestmark = pytest.mark.kafka

GOAL_TEAM = "growth"
CONTRIBUTING_TEAM = "platform"
OTHER_TEAM = "sales"
GOAL_ID = "goal-berlin"
UNKNOWN_GOAL_ID = "goal-never-created"
# Texts that only a reader who may see the goal may ever receive.
GOAL_TITLE = "Open the Berlin office"
COMMENT_TEXT = "Lease for Kreuzberg signed"
KUDOS_MESSAGE = "Great negotiating on Kreuzberg"
SECRETS = (GOAL_ID, GOAL_TITLE, COMMENT_TEXT, KUDOS_MESSAGE)


@dataclass(frozen=True)
class Reader:
    handle: str
    team: str  # both the token's teams claim and the person's team in the people directory
    admin: bool = False


# Insiders and people with another relationship belong to OTHER_TEAM, so a team or private goal is
# visible to them only through the relationship under test.
READERS = {
    "owner": Reader("owner", OTHER_TEAM),
    "co-owner": Reader("co-owner", OTHER_TEAM),
    "pending collaborator": Reader("pending", OTHER_TEAM),
    "accepted collaborator": Reader("accepted", OTHER_TEAM),
    "declined collaborator": Reader("declined", OTHER_TEAM),
    "left collaborator": Reader("left", OTHER_TEAM),
    "follower in goal's team": Reader("follower-growth", GOAL_TEAM),
    "follower in contributing team": Reader("follower-platform", CONTRIBUTING_TEAM),
    "follower in another team": Reader("follower-sales", OTHER_TEAM),
    "community member": Reader("member", OTHER_TEAM),
    "follower of the owner": Reader("owner-fan", OTHER_TEAM),
    "admin": Reader("admin", OTHER_TEAM, admin=True),
}

# Columns:
#   check-in item   the `source` of the check-in's item in the personal feed, "-" for no item
#   feed            whether the personal feed shows any item of the goal
#   community feed  GET /communities/{id}/feed of the community the goal is linked to:
#                   "goal items", "no goal items" (a member who may not see the goal), or 404
#   community goal  whether GET /communities/{id} lists the goal in linked_goals
#   goal reads      the status of every goal route: followers (with their count), collaborators
#                   and their tag history, comments, one comment's history, reactions (with their
#                   counts) and kudos. 404 means every route returns what it returns for an unknown goal
#   mention         whether the owner's comment that mentions everyone names this reader in its
#                   event, so that a consumer could notify them
EXPECTED = {
    "organisation": """
        reader                        | check-in item    | feed | community feed | community goal | goal reads | mention
        owner                         | owner            | yes  | 404            | yes            | 200        | yes
        co-owner                      | co_owner         | yes  | 404            | yes            | 200        | yes
        pending collaborator          | collaborator     | yes  | 404            | yes            | 200        | yes
        accepted collaborator         | collaborator     | yes  | 404            | yes            | 200        | yes
        declined collaborator         | -                | yes  | 404            | yes            | 200        | yes
        left collaborator             | -                | yes  | 404            | yes            | 200        | yes
        follower in goal's team       | followed_goal    | yes  | 404            | yes            | 200        | yes
        follower in contributing team | followed_goal    | yes  | 404            | yes            | 200        | yes
        follower in another team      | followed_goal    | yes  | 404            | yes            | 200        | yes
        community member              | community_member | yes  | goal items     | yes            | 200        | yes
        follower of the owner         | followed_person  | yes  | 404            | yes            | 200        | yes
        admin                         | -                | no   | 404            | yes            | 200        | yes
    """,
    "team": """
        reader                        | check-in item    | feed | community feed | community goal | goal reads | mention
        owner                         | owner            | yes  | 404            | yes            | 200        | yes
        co-owner                      | co_owner         | yes  | 404            | yes            | 200        | yes
        pending collaborator          | collaborator     | yes  | 404            | yes            | 200        | yes
        accepted collaborator         | collaborator     | yes  | 404            | yes            | 200        | yes
        declined collaborator         | -                | no   | 404            | no             | 404        | no
        left collaborator             | -                | no   | 404            | no             | 404        | no
        follower in goal's team       | followed_goal    | yes  | 404            | yes            | 200        | yes
        follower in contributing team | followed_goal    | yes  | 404            | yes            | 200        | yes
        follower in another team      | -                | no   | 404            | no             | 404        | no
        community member              | -                | no   | no goal items  | no             | 404        | no
        follower of the owner         | -                | no   | 404            | no             | 404        | no
        admin                         | -                | no   | 404            | yes            | 200        | no
    """,
    "private": """
        reader                        | check-in item    | feed | community feed | community goal | goal reads | mention
        owner                         | owner            | yes  | 404            | yes            | 200        | yes
        co-owner                      | co_owner         | yes  | 404            | yes            | 200        | yes
        pending collaborator          | collaborator     | yes  | 404            | yes            | 200        | yes
        accepted collaborator         | collaborator     | yes  | 404            | yes            | 200        | yes
        declined collaborator         | -                | no   | 404            | no             | 404        | no
        left collaborator             | -                | no   | 404            | no             | 404        | no
        follower in goal's team       | -                | no   | 404            | no             | 404        | no
        follower in contributing team | -                | no   | 404            | no             | 404        | no
        follower in another team      | -                | no   | 404            | no             | 404        | no
        community member              | -                | no   | no goal items  | no             | 404        | no
        follower of the owner         | -                | no   | 404            | no             | 404        | no
        admin                         | -                | no   | 404            | yes            | 200        | no
    """,
}
# The admin is missed by mentions on team and private goals: the people directory records no
# admin role, so the comment's event leaves them out rather than risk naming an outsider.


def parse_table(text: str) -> dict[str, dict[str, object]]:
    """Turn an expected table into {reader: {column: value}}, reading yes/no as booleans and digits as ints."""

    def value_of(cell: str) -> object:
        if cell in ("yes", "no"):
            return cell == "yes"
        if cell == "-":
            return None
        return int(cell) if cell.isdigit() else cell

    lines = [line.strip() for line in text.strip().splitlines()]
    header = [cell.strip() for cell in lines[0].split("|")]
    table = {}
    for line in lines[1:]:
        cells = [cell.strip() for cell in line.split("|")]
        table[cells[0]] = {column: value_of(cell) for column, cell in zip(header[1:], cells[1:])}
    return table


# Fixtures


@pytest.fixture(params=[DEFAULT_READ_TIME_THRESHOLD, 1], ids=["written_items", "read_time_groups"])
def read_model(request: pytest.FixtureRequest, settings: SocialSettings) -> Iterator[SocialReadModel]:
    """The read model of the API under test, with written feed items or with every group read at read time."""
    engine: Engine = create_database_engine(settings.sqlalchemy_url(READ_MODEL_FILE))
    yield open_read_model(engine, read_time_threshold=request.param)
    engine.dispose()


class World:
    """The goal, its readers and their relationships, built through the API and the broker."""

    def __init__(self, client: TestClient, read_model: SocialReadModel, broker, auth_headers, org_id: str) -> None:
        self.client = client
        self.read_model = read_model
        self.broker = broker
        self.auth_headers = auth_headers
        self.org_id = org_id
        self.goal_version = 0
        self.relayed_up_to = 0
        self.ids = {name: person_id_for(org_id, reader.handle) for name, reader in READERS.items()}
        self.community_id = ""
        self.comment_id = ""
        self.relayed: list[Envelope] = []

    def headers(self, name: str) -> dict[str, str]:
        reader = READERS[name]
        return self.auth_headers(self.ids[name], teams=(reader.team,), admin=reader.admin)

    def command(self, name: str, method: str, path: str, day: int, hour: int, body: dict | None = None) -> dict:
        """Send a command as the reader at an event time of January 2021, and return its JSON body."""
        occurred_at = datetime(2021, 1, day, hour, tzinfo=timezone.utc).isoformat()
        if method == "DELETE":
            query = {"occurred_at": occurred_at}
            response = self.client.request(method, path, params=query, headers=self.headers(name))
        else:
            body = {**(body or {}), "occurred_at": occurred_at}
            response = self.client.request(method, path, json=body, headers=self.headers(name))
        assert response.status_code in (200, 201), f"{name} {method} {path}: {response.text}"
        return response.json()

    def goal_event(self, payload, day: int, hour: int = 9) -> Envelope:
        self.goal_version += 1
        return new_envelope(
            payload,
            subject=GOAL_ID,
            org_id=self.org_id,
            actor_id=self.ids["owner"],
            aggregate_version=self.goal_version,
            time=datetime(2021, 1, day, hour, tzinfo=timezone.utc),
        )

    def deliver(self, *envelopes: Envelope) -> None:
        outcomes = self.broker.deliver(self.read_model, *envelopes)
        assert outcomes == [Outcome.APPLIED] * len(envelopes)

    def relay(self) -> list[Envelope]:
        """Deliver the envelopes of every event the API stored since the last call, and return them."""
        social = self.client.app.state.social
        batch = notification_reader(social)(self.relayed_up_to, 500)
        envelopes = [envelope for _, envelope in batch if envelope is not None]
        self.relayed_up_to = social.max_notification_id()
        self.deliver(*envelopes)
        self.relayed += envelopes
        return envelopes

    def build(self, visibility: str) -> list[str]:
        """Create the goal and every relationship, then set the visibility.

        Returns the ``mentioned_ids`` of the published event of the owner's comment that mentions everyone.
        """
        directory = PeopleDirectory(self.read_model.engine)
        directory.upsert_batch(
            self.org_id,
            [
                PersonEntry(reader.handle, display_name(reader), f"{reader.handle}@example.com", reader.team, None)
                for reader in READERS.values()
            ],
        )
        created = GoalCreatedV1(
            goal_id=GOAL_ID,
            title=GOAL_TITLE,
            owner_id=self.ids["owner"],
            team=GOAL_TEAM,
            contributing_teams=(CONTRIBUTING_TEAM,),
            period=PeriodV1(name="FY21-Q1", start=date(2021, 1, 1), end=date(2021, 3, 31)),
            co_owner_ids=(self.ids["co-owner"],),
            visibility="organisation",
        )
        key_result = KeyResultAddedV1(
            goal_id=GOAL_ID, key_result_id="kr-1", title="Desks", metric="number", start_value=0, target_value=40
        )
        self.deliver(self.goal_event(created, day=1), self.goal_event(key_result, day=1, hour=10))

        goal = f"/goals/{GOAL_ID}"
        for name in ("follower in goal's team", "follower in contributing team", "follower in another team"):
            self.command(name, "POST", f"{goal}/followers", day=2, hour=9)
        for name in ("pending collaborator", "accepted collaborator", "declined collaborator", "left collaborator"):
            self.command("owner", "POST", f"{goal}/collaborators", day=2, hour=9, body={"person_id": self.ids[name]})
        community = self.command("community member", "POST", "/communities", day=2, hour=9, body={"name": "Berlin"})
        self.community_id = community["community_id"]
        self.command("community member", "POST", f"/communities/{self.community_id}/goals", 2, 10, {"goal_id": GOAL_ID})
        self.command("follower of the owner", "POST", f"/people/{self.ids['owner']}/followers", day=2, hour=9)
        self.command("accepted collaborator", "POST", f"{goal}/collaborators/me/accept", day=2, hour=11)
        self.command("left collaborator", "POST", f"{goal}/collaborators/me/accept", day=2, hour=11)
        self.command("declined collaborator", "POST", f"{goal}/collaborators/me/decline", day=2, hour=11)
        self.command("left collaborator", "POST", f"{goal}/collaborators/me/leave", day=2, hour=12)
        comment = self.command("owner", "POST", f"{goal}/comments", day=2, hour=13, body={"body": COMMENT_TEXT})
        self.comment_id = comment["comment_id"]
        self.command("owner", "PATCH", f"{goal}/comments/{self.comment_id}", 2, 14, {"body": f"{COMMENT_TEXT}!"})
        reaction = {"reaction": "celebrate", "target_kind": "comment", "target_id": self.comment_id}
        self.command("follower in goal's team", "POST", f"{goal}/reactions", day=2, hour=14, body=reaction)
        kudos = {"receiver_id": self.ids["accepted collaborator"], "message": KUDOS_MESSAGE}
        self.command("owner", "POST", f"{goal}/kudos", day=2, hour=15, body=kudos)
        self.relay()

        check_in = CheckInRecordedV1(
            goal_id=GOAL_ID, key_result_id="kr-1", check_in_id="check-in-1", value=8, progress=0.2
        )
        envelopes = [self.goal_event(check_in, day=3)]
        if visibility != "organisation":
            changed = GoalVisibilityChangedV1(
                goal_id=GOAL_ID, visibility=visibility, previous_visibility="organisation"
            )
            envelopes.append(self.goal_event(changed, day=4))
        self.deliver(*envelopes)

        everyone = " ".join(f"@{reader.handle}" for reader in READERS.values())
        mention = self.command("owner", "POST", f"{goal}/comments", day=5, hour=9, body={"body": f"Thanks {everyone}"})
        [posted] = self.relay()
        assert posted.type == "spm.social.CommentPosted.v1"
        assert posted.data["mentioned_ids"] == mention["mentioned_ids"]
        return list(posted.data["mentioned_ids"])


def display_name(reader: Reader) -> str:
    return f"{reader.handle.title()} Example"


def goal_routes(goal_id: str, comment_id: str) -> list[str]:
    return [
        f"/goals/{goal_id}/followers",
        f"/goals/{goal_id}/collaborators",
        f"/goals/{goal_id}/comments",
        f"/goals/{goal_id}/comments/{comment_id}/history",
        f"/goals/{goal_id}/reactions",
        f"/goals/{goal_id}/kudos",
    ]


# Commands a reader who may not see the goal sends. Each must return the unknown goal's response and write nothing.
def blind_commands(goal_id: str, comment_id: str, receiver_id: str) -> list[tuple[str, str, dict | None]]:
    return [
        ("POST", f"/goals/{goal_id}/followers", None),
        ("POST", f"/goals/{goal_id}/comments", {"body": "hello"}),
        ("POST", f"/goals/{goal_id}/reactions", {"reaction": "like"}),
        ("POST", f"/goals/{goal_id}/kudos", {"receiver_id": receiver_id, "message": "thanks"}),
        ("POST", f"/goals/{goal_id}/collaborators/me/accept", None),
        ("DELETE", f"/goals/{goal_id}/comments/{comment_id}", None),
    ]


def observe(world: World, name: str, leaks: list[tuple[str, str, str]]) -> dict[str, object]:
    """Return what the reader gets in the table's columns, and add every leak to ``leaks``."""
    client, headers = world.client, world.headers(name)
    feed = client.get("/feed", params={"limit": 100}, headers=headers)
    assert feed.status_code == 200
    assert feed.json()["next_cursor"] is None
    goal_items = [item for item in feed.json()["items"] if item["goal_id"] == GOAL_ID]
    check_in_items = [item for item in goal_items if item["target_id"] == "check-in-1"]
    assert len(check_in_items) <= 1

    community_feed = client.get(f"/communities/{world.community_id}/feed", params={"limit": 100}, headers=headers)
    if community_feed.status_code == 200:
        has_goal_items = any(item["goal_id"] == GOAL_ID for item in community_feed.json()["items"])
        community_feed_value: object = "goal items" if has_goal_items else "no goal items"
    else:
        community_feed_value = community_feed.status_code
    community = client.get(f"/communities/{world.community_id}", headers=headers)
    assert community.status_code == 200
    communities = client.get("/communities", headers=headers)
    owner_followers = client.get(f"/people/{world.ids['owner']}/followers", headers=headers)

    reads = {path: client.get(path, headers=headers) for path in goal_routes(GOAL_ID, world.comment_id)}
    statuses = {response.status_code for response in reads.values()}
    goal_reads: object = statuses.pop() if len(statuses) == 1 else {path: r.status_code for path, r in reads.items()}

    # Every body this reader received besides the goal routes' own 404s must be free of the goal.
    bodies = {"feed": feed, "community feed": community_feed, "community": community, "communities": communities}
    bodies["owner's followers"] = owner_followers
    sees_goal = goal_reads == 200
    if not sees_goal:
        for label, response in bodies.items():
            leaks.extend((name, label, secret) for secret in SECRETS if secret in response.text)
        unknown_routes = goal_routes(UNKNOWN_GOAL_ID, world.comment_id)
        for (path, response), unknown_path in zip(reads.items(), unknown_routes):
            unknown = client.get(unknown_path, headers=headers)
            if (response.status_code, response.json()) != (unknown.status_code, hidden_like(unknown)):
                leaks.append((name, path, response.text))
        leaks.extend(commands_leaks(world, name))

    return {
        "check-in item": check_in_items[0]["source"] if check_in_items else None,
        "feed": bool(goal_items),
        "community feed": community_feed_value,
        "community goal": any(link["goal_id"] == GOAL_ID for link in community.json()["linked_goals"]),
        "goal reads": goal_reads,
    }


def hidden_like(unknown) -> object:
    """Return the body an unknown goal's response would have with GOAL_ID in place of the unknown id."""
    return {"detail": unknown.json()["detail"].replace(UNKNOWN_GOAL_ID, GOAL_ID)}


def commands_leaks(world: World, name: str) -> list[tuple[str, str, str]]:
    """Send the blind reader's commands; return each that differs from the unknown goal's response or wrote events."""
    client, headers = world.client, world.headers(name)
    receiver = world.ids["owner"]
    social = client.app.state.social
    leaks = []
    hidden_commands = blind_commands(GOAL_ID, world.comment_id, receiver)
    unknown_commands = blind_commands(UNKNOWN_GOAL_ID, world.comment_id, receiver)
    for (method, path, body), (_, unknown_path, _) in zip(hidden_commands, unknown_commands):
        written_before = social.max_notification_id()
        response = client.request(method, path, json=body, headers=headers)
        unknown = client.request(method, unknown_path, json=body, headers=headers)
        if (response.status_code, response.json()) != (unknown.status_code, hidden_like(unknown)):
            leaks.append((name, f"{method} {path}", response.text))
        if social.max_notification_id() != written_before:
            leaks.append((name, f"{method} {path}", "wrote events"))
    return leaks


@pytest.mark.parametrize("visibility", ["organisation", "team", "private"])
def test_privacy_matrix(
    client: TestClient, read_model: SocialReadModel, broker, auth_headers, org_id: str, visibility: str
) -> None:
    world = World(client, read_model, broker, auth_headers, org_id)
    mentioned_ids = world.build(visibility)
    leaks: list[tuple[str, str, str]] = []

    observed = {}
    for name in READERS:
        observed[name] = observe(world, name, leaks) | {"mention": world.ids[name] in mentioned_ids}

    expected = parse_table(EXPECTED[visibility])
    assert list(expected) == list(READERS)
    for name in READERS:
        assert observed[name] == expected[name], name
    assert leaks == []


def test_mention_names_only_goal_readers(
    client: TestClient, read_model: SocialReadModel, broker, auth_headers, org_id: str
) -> None:
    world = World(client, read_model, broker, auth_headers, org_id)
    mentioned_ids = world.build("private")

    insiders = ["owner", "co-owner", "pending collaborator", "accepted collaborator"]
    assert mentioned_ids == [world.ids[name] for name in insiders]
    comments = client.get(f"/goals/{GOAL_ID}/comments", headers=world.headers("owner")).json()["comments"]
    assert comments[-1]["mentioned_ids"] == mentioned_ids
    # The outsiders' handles stay in the text, which only readers of the goal receive.
    assert "@follower-sales" in comments[-1]["body"]
    outsider = world.headers("follower in another team")
    assert client.get(f"/goals/{GOAL_ID}/comments", headers=outsider).status_code == 404


def test_events_carry_no_personal_details(
    client: TestClient, read_model: SocialReadModel, broker, auth_headers, org_id: str
) -> None:
    world = World(client, read_model, broker, auth_headers, org_id)
    world.build("organisation")

    published = [envelope.model_dump_json() for envelope in world.relayed]
    assert len(published) > 15
    for reader in READERS.values():
        assert not any(f"{reader.handle}@example.com" in text for text in published), reader.handle
        assert not any(display_name(reader) in text for text in published), reader.handle
