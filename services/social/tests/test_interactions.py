"""Goal interactions through the API: tag consent, comments with mentions, reactions, kudos and the rate limit.

Every test runs on SQLite files and on a fresh PostgreSQL database. Goals become known to the
service through their GoalCreated, applied to the read model as the worker would.
"""

import asyncio
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timezone

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from fastapi.testclient import TestClient

from spm_events.envelope import Envelope, decode_envelope
from spm_events.registry import SOCIAL_TOPIC, TOPICS
from spm_events.relay import Relay, RelayPositions, create_idempotent_producer
from spm_social.api import create_app
from spm_social.domain import graph_id_for
from spm_social.readmodel import SocialReadModel
from spm_social.relay import RELAY_NAME, notification_reader
from spm_social.settings import SocialSettings

HeadersFor = Callable[..., dict[str, str]]
OWNER = "owner-1"
UNKNOWN_GOAL_ID = "goal-never-created"


def max_notification_id(client: TestClient) -> int:
    return client.app.state.social.max_notification_id()


def graph_version(client: TestClient, org_id: str, goal_id: str) -> int:
    """Return the version of the goal's graph in the event store, 0 if it has no events."""
    graph = client.app.state.social._load_graph(org_id, goal_id)
    return 0 if graph is None else graph.version


def published_envelopes(client: TestClient) -> list[Envelope]:
    read_notifications = notification_reader(client.app.state.social)
    return [envelope for _, envelope in read_notifications(0, 500) if envelope is not None]


def published_types(client: TestClient) -> list[str]:
    return [envelope.type.removeprefix("spm.social.").removesuffix(".v1") for envelope in published_envelopes(client)]


@pytest.fixture
def goal_id(add_known_goal: Callable[..., str]) -> str:
    return add_known_goal(owner_id=OWNER)


@pytest.fixture
def private_goal(apply_envelopes: Callable[..., None], events, add_people: Callable[..., list[str]]) -> dict[str, str]:
    """Return the ids of a private goal with a co-owner and a tagged collaborator, who is in the directory."""
    goal = f"goal-{uuid.uuid4().hex[:12]}"
    [collaborator] = add_people("insider")
    apply_envelopes(
        events.goal_created(goal, OWNER, visibility="private", co_owner_ids=("co-owner-1",)),
        events.collaborator_tagged(goal, collaborator, OWNER),
    )
    return {"goal_id": goal, "collaborator": collaborator}


def post_comment(client: TestClient, goal_id: str, headers: dict[str, str], body: str, **fields: object) -> dict:
    response = client.post(f"/goals/{goal_id}/comments", json={"body": body, **fields}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


# Tag consent


def test_tagged_person_accepts_tag(
    client: TestClient, goal_id: str, auth_headers: HeadersFor, add_people: Callable[..., list[str]]
) -> None:
    [bo] = add_people("bo")
    tag = client.post(
        f"/goals/{goal_id}/collaborators", json={"person_id": bo, "occurred_at": "2021-03-01"}, headers=auth_headers(OWNER)
    )

    accept = client.post(
        f"/goals/{goal_id}/collaborators/me/accept", json={"occurred_at": "2021-03-02"}, headers=auth_headers(bo)
    )

    assert tag.status_code == 201
    assert accept.status_code == 200
    assert accept.json() == {"goal_id": goal_id, "collaborator_id": bo, "state": "accepted"}
    assert published_types(client) == ["CollaboratorTagged", "TagAccepted"]
    accepted = published_envelopes(client)[-1]
    assert accepted.actorid == bo
    assert accepted.data == {"goal_id": goal_id, "collaborator_id": bo}
    assert accepted.time == datetime(2021, 3, 2, tzinfo=timezone.utc)


def test_collaborators_list_states_and_history(
    client: TestClient, goal_id: str, auth_headers: HeadersFor, add_people: Callable[..., list[str]]
) -> None:
    bo, cy = add_people("bo", "cy")
    for person, day in ((bo, "2021-03-01"), (cy, "2021-03-02")):
        client.post(
            f"/goals/{goal_id}/collaborators", json={"person_id": person, "occurred_at": day}, headers=auth_headers(OWNER)
        )
    client.post(f"/goals/{goal_id}/collaborators/me/decline", json={"occurred_at": "2021-03-03"}, headers=auth_headers(bo))

    response = client.get(f"/goals/{goal_id}/collaborators", headers=auth_headers("reader-1"))

    assert response.status_code == 200
    first, second = response.json()["collaborators"]
    assert (first["person_id"], first["state"], first["tagged_by"]) == (bo, "declined", OWNER)
    assert first["tagged_at"] == "2021-03-01T00:00:00Z"
    assert (first["changed_by"], first["changed_at"]) == (bo, "2021-03-03T00:00:00Z")
    assert [change["state"] for change in first["history"]] == ["pending", "declined"]
    assert (second["person_id"], second["state"]) == (cy, "pending")


@pytest.mark.parametrize(
    ("earlier_steps", "step", "expected_status"),
    [
        ((), "decline", 200),
        (("accept",), "leave", 200),
        (("decline",), "accept", 409),
        (("accept",), "decline", 409),
        ((), "leave", 409),
    ],
)
def test_consent_steps_follow_the_tag_state(
    client: TestClient,
    goal_id: str,
    auth_headers: HeadersFor,
    add_people: Callable[..., list[str]],
    earlier_steps: tuple[str, ...],
    step: str,
    expected_status: int,
) -> None:
    [bo] = add_people("bo")
    client.post(f"/goals/{goal_id}/collaborators", json={"person_id": bo}, headers=auth_headers(OWNER))
    for earlier in earlier_steps:
        assert client.post(f"/goals/{goal_id}/collaborators/me/{earlier}", headers=auth_headers(bo)).status_code == 200
    written_before = max_notification_id(client)

    response = client.post(f"/goals/{goal_id}/collaborators/me/{step}", headers=auth_headers(bo))

    assert response.status_code == expected_status, response.text
    if expected_status == 409:
        assert max_notification_id(client) == written_before
        assert "detail" in response.json()


def test_person_without_tag_cannot_accept(client: TestClient, goal_id: str, auth_headers: HeadersFor) -> None:
    response = client.post(f"/goals/{goal_id}/collaborators/me/accept", headers=auth_headers("person-9"))

    assert response.status_code == 409
    assert "not tagged" in response.json()["detail"]
    assert max_notification_id(client) == 0


@pytest.mark.parametrize(
    ("actor", "admin", "expected_status"),
    [(OWNER, False, 200), ("co-owner-1", False, 200), ("admin-1", True, 200), ("tagger-1", False, 403)],
    ids=["owner", "co-owner", "admin", "tagger"],
)
def test_untag_needs_owner_co_owner_or_admin(
    client: TestClient,
    apply_envelopes: Callable[..., None],
    events,
    auth_headers: HeadersFor,
    add_people: Callable[..., list[str]],
    actor: str,
    admin: bool,
    expected_status: int,
) -> None:
    goal_id = "goal-with-co-owner"
    apply_envelopes(events.goal_created(goal_id, OWNER, co_owner_ids=("co-owner-1",)))
    [bo] = add_people("bo")
    client.post(f"/goals/{goal_id}/collaborators", json={"person_id": bo}, headers=auth_headers("tagger-1"))
    written_before = max_notification_id(client)

    response = client.delete(f"/goals/{goal_id}/collaborators/{bo}", headers=auth_headers(actor, admin=admin))

    assert response.status_code == expected_status, response.text
    if expected_status == 200:
        assert response.json() == {"goal_id": goal_id, "collaborator_id": bo, "state": "untagged"}
        assert published_types(client)[-1] == "CollaboratorUntagged"
        assert published_envelopes(client)[-1].actorid == actor
    else:
        assert max_notification_id(client) == written_before


def test_untag_of_person_never_tagged_returns_404(client: TestClient, goal_id: str, auth_headers: HeadersFor) -> None:
    response = client.delete(f"/goals/{goal_id}/collaborators/person-9", headers=auth_headers(OWNER))

    assert response.status_code == 404
    assert "never tagged" in response.json()["detail"]
    assert max_notification_id(client) == 0


def test_tag_again_after_decline_is_pending(
    client: TestClient, goal_id: str, auth_headers: HeadersFor, add_people: Callable[..., list[str]]
) -> None:
    [bo] = add_people("bo")
    client.post(f"/goals/{goal_id}/collaborators", json={"person_id": bo}, headers=auth_headers(OWNER))
    client.post(f"/goals/{goal_id}/collaborators/me/decline", headers=auth_headers(bo))

    again = client.post(f"/goals/{goal_id}/collaborators", json={"person_id": bo}, headers=auth_headers("person-2"))

    assert again.status_code == 201
    assert again.json()["tagged_by"] == "person-2"
    [collaborator] = client.get(f"/goals/{goal_id}/collaborators", headers=auth_headers(OWNER)).json()["collaborators"]
    assert collaborator["state"] == "pending"
    assert collaborator["tagged_by"] == "person-2"


# Comments


def test_comment_with_mention_records_mentioned_ids(
    client: TestClient, goal_id: str, auth_headers: HeadersFor, add_people: Callable[..., list[str]], org_id: str
) -> None:
    bo, cy = add_people("bo", "cy.lee")

    comment = post_comment(client, goal_id, auth_headers("person-1"), "Nice one @bo, cc @cy.lee.")

    assert comment["mentioned_ids"] == [bo, cy]
    assert comment["author_id"] == "person-1"
    assert comment["edited_at"] is None
    [posted] = published_envelopes(client)
    assert posted.type == "spm.social.CommentPosted.v1"
    assert posted.orgid == org_id
    assert posted.actorid == "person-1"
    assert posted.data == {
        "goal_id": goal_id,
        "comment_id": comment["comment_id"],
        "check_in_id": None,
        "body": "Nice one @bo, cc @cy.lee.",
        "mentioned_ids": [bo, cy],
    }


def test_mention_of_outsider_names_nobody(
    client: TestClient, private_goal: dict[str, str], auth_headers: HeadersFor, add_people: Callable[..., list[str]]
) -> None:
    goal_id = private_goal["goal_id"]
    add_people("outsider")
    headers = auth_headers(OWNER)

    to_insider = client.post(f"/goals/{goal_id}/comments", json={"body": "see @insider"}, headers=headers)
    to_outsider = client.post(f"/goals/{goal_id}/comments", json={"body": "see @outsider"}, headers=headers)
    edited = client.patch(
        f"/goals/{goal_id}/comments/{to_insider.json()['comment_id']}",
        json={"body": "see @insider and @outsider"},
        headers=headers,
    )

    assert to_insider.status_code == 201
    assert to_outsider.status_code == 201
    assert edited.status_code == 200
    assert to_insider.json()["mentioned_ids"] == [private_goal["collaborator"]]
    assert to_outsider.json()["mentioned_ids"] == []
    assert edited.json()["mentioned_ids"] == [private_goal["collaborator"]]
    assert [envelope.data["mentioned_ids"] for envelope in published_envelopes(client)] == [
        [private_goal["collaborator"]],
        [],
        [private_goal["collaborator"]],
    ]


def test_comment_edit_and_delete_keep_history(
    client: TestClient, goal_id: str, auth_headers: HeadersFor, add_people: Callable[..., list[str]]
) -> None:
    [bo] = add_people("bo")
    author = auth_headers("person-1")
    comment = post_comment(client, goal_id, author, "first text", occurred_at="2021-03-01")
    path = f"/goals/{goal_id}/comments/{comment['comment_id']}"

    edited = client.patch(path, json={"body": "second text @bo", "occurred_at": "2021-03-02"}, headers=author)
    history = client.get(f"{path}/history", headers=auth_headers("reader-1"))
    deleted = client.delete(path, params={"occurred_at": "2021-03-03"}, headers=auth_headers(OWNER))

    assert edited.status_code == 200
    assert edited.json()["body"] == "second text @bo"
    assert edited.json()["mentioned_ids"] == [bo]
    assert edited.json()["edited_at"] == "2021-03-02T00:00:00Z"
    assert [revision["body"] for revision in history.json()["revisions"]] == ["first text", "second text @bo"]
    assert deleted.status_code == 204
    assert client.get(f"{path}/history", headers=author).status_code == 404
    assert client.get(f"/goals/{goal_id}/comments", headers=author).json()["comments"] == []
    assert published_types(client) == ["CommentPosted", "CommentEdited", "CommentDeleted"]
    assert published_envelopes(client)[-1].actorid == OWNER


def test_comment_delete_twice_writes_once(client: TestClient, goal_id: str, auth_headers: HeadersFor) -> None:
    author = auth_headers("person-1")
    comment = post_comment(client, goal_id, author, "text")
    path = f"/goals/{goal_id}/comments/{comment['comment_id']}"

    first = client.delete(path, headers=author)
    written_after_first = max_notification_id(client)
    second = client.delete(path, headers=author)

    assert (first.status_code, second.status_code) == (204, 204)
    assert max_notification_id(client) == written_after_first


@pytest.mark.parametrize("method", ["PATCH", "DELETE"])
def test_comment_change_by_other_person_returns_403(
    client: TestClient, goal_id: str, auth_headers: HeadersFor, method: str
) -> None:
    comment = post_comment(client, goal_id, auth_headers("person-1"), "text")
    written_before = max_notification_id(client)

    response = client.request(
        method,
        f"/goals/{goal_id}/comments/{comment['comment_id']}",
        json={"body": "changed"} if method == "PATCH" else None,
        headers=auth_headers("person-2"),
    )

    assert response.status_code == 403
    assert max_notification_id(client) == written_before


def test_unknown_comment_returns_404(client: TestClient, goal_id: str, auth_headers: HeadersFor) -> None:
    path = f"/goals/{goal_id}/comments/comment-never-posted"

    responses = [
        client.patch(path, json={"body": "x"}, headers=auth_headers("person-1")),
        client.delete(path, headers=auth_headers("person-1")),
        client.get(f"{path}/history", headers=auth_headers("person-1")),
    ]

    assert [response.status_code for response in responses] == [404, 404, 404]
    assert "comment-never-posted" in responses[0].json()["detail"]
    assert max_notification_id(client) == 0


def test_comments_page_in_posting_order(client: TestClient, goal_id: str, auth_headers: HeadersFor) -> None:
    headers = auth_headers("person-1")
    for day in (3, 1, 2):
        post_comment(client, goal_id, headers, f"day {day}", occurred_at=f"2021-03-0{day}")
    post_comment(client, goal_id, headers, "on a check-in", check_in_id="check-in-1", occurred_at="2021-03-04")

    first = client.get(f"/goals/{goal_id}/comments", params={"limit": 2}, headers=headers).json()
    second = client.get(
        f"/goals/{goal_id}/comments", params={"limit": 2, "cursor": first["next_cursor"]}, headers=headers
    ).json()
    check_in = client.get(f"/goals/{goal_id}/comments", params={"check_in_id": "check-in-1"}, headers=headers).json()

    assert [comment["body"] for comment in first["comments"]] == ["day 1", "day 2"]
    assert [comment["body"] for comment in second["comments"]] == ["day 3", "on a check-in"]
    assert second["next_cursor"] is None
    assert [comment["body"] for comment in check_in["comments"]] == ["on a check-in"]


def test_invalid_cursor_returns_422(client: TestClient, goal_id: str, auth_headers: HeadersFor) -> None:
    response = client.get(f"/goals/{goal_id}/comments", params={"cursor": "not-a-cursor"}, headers=auth_headers("p-1"))

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "cursor"]


# Reactions


def test_reactions_summary_counts_per_target(client: TestClient, goal_id: str, auth_headers: HeadersFor) -> None:
    comment = post_comment(client, goal_id, auth_headers("person-1"), "text")
    for person, body in [
        ("person-1", {"reaction": "like"}),
        ("person-2", {"reaction": "like"}),
        ("person-2", {"reaction": "celebrate", "target_kind": "goal", "target_id": goal_id}),
        ("person-1", {"reaction": "insightful", "target_kind": "comment", "target_id": comment["comment_id"]}),
    ]:
        assert client.post(f"/goals/{goal_id}/reactions", json=body, headers=auth_headers(person)).status_code == 201

    response = client.get(f"/goals/{goal_id}/reactions", headers=auth_headers("person-2"))

    assert response.status_code == 200
    assert response.json()["targets"] == [
        {"target_kind": "comment", "target_id": comment["comment_id"], "counts": {"insightful": 1}, "mine": []},
        {"target_kind": "goal", "target_id": goal_id, "counts": {"celebrate": 1, "like": 2}, "mine": ["celebrate", "like"]},
    ]


def test_reaction_add_twice_then_remove(client: TestClient, goal_id: str, auth_headers: HeadersFor) -> None:
    headers = auth_headers("person-1")

    first = client.post(f"/goals/{goal_id}/reactions", json={"reaction": "support"}, headers=headers)
    second = client.post(f"/goals/{goal_id}/reactions", json={"reaction": "support"}, headers=headers)
    removed = client.delete(f"/goals/{goal_id}/reactions/me", params={"reaction": "support"}, headers=headers)

    assert (first.status_code, second.status_code, removed.status_code) == (201, 200, 200)
    assert removed.json() == {
        "goal_id": goal_id,
        "person_id": "person-1",
        "target_kind": "goal",
        "target_id": goal_id,
        "reaction": "support",
        "reacted": False,
    }
    assert published_types(client) == ["ReactionAdded", "ReactionRemoved"]
    assert published_envelopes(client)[0].data == {
        "goal_id": goal_id, "target_kind": "goal", "target_id": goal_id, "reaction": "support"
    }
    assert client.get(f"/goals/{goal_id}/reactions", headers=headers).json()["targets"] == []


def test_reactions_to_deleted_comment_leave_summary(client: TestClient, goal_id: str, auth_headers: HeadersFor) -> None:
    headers = auth_headers("person-1")
    comment = post_comment(client, goal_id, headers, "text")
    target = {"target_kind": "comment", "target_id": comment["comment_id"]}
    client.post(f"/goals/{goal_id}/reactions", json={"reaction": "like", **target}, headers=headers)

    client.delete(f"/goals/{goal_id}/comments/{comment['comment_id']}", headers=headers)
    after_delete = client.post(f"/goals/{goal_id}/reactions", json={"reaction": "curious", **target}, headers=headers)

    assert client.get(f"/goals/{goal_id}/reactions", headers=headers).json()["targets"] == []
    assert after_delete.status_code == 422
    assert after_delete.json()["detail"][0]["loc"] == ["body", "target_id"]


# Kudos


def test_kudos_once_per_day_then_next_day(
    client: TestClient, goal_id: str, auth_headers: HeadersFor, add_people: Callable[..., list[str]]
) -> None:
    [bo] = add_people("bo")
    headers = auth_headers("person-1")
    body = {"receiver_id": bo, "message": "Great launch"}

    first = client.post(f"/goals/{goal_id}/kudos", json={**body, "occurred_at": "2021-03-01T08:00:00Z"}, headers=headers)
    same_day = client.post(
        f"/goals/{goal_id}/kudos", json={**body, "occurred_at": "2021-03-01T23:59:00Z"}, headers=headers
    )
    next_day = client.post(f"/goals/{goal_id}/kudos", json={**body, "occurred_at": "2021-03-02"}, headers=headers)
    listed = client.get(f"/goals/{goal_id}/kudos", headers=auth_headers("reader-1"))

    assert first.status_code == 201
    assert first.json()["day"] == "2021-03-01"
    assert same_day.status_code == 409
    assert "2021-03-01" in same_day.json()["detail"]
    assert next_day.status_code == 201
    assert [kudos["day"] for kudos in listed.json()["kudos"]] == ["2021-03-02", "2021-03-01"]
    assert published_types(client) == ["KudosGiven", "KudosGiven"]
    assert published_envelopes(client)[0].data == {
        "goal_id": goal_id, "kudos_id": first.json()["kudos_id"], "receiver_id": bo, "message": "Great launch"
    }


# Visibility and bad input


HIDDEN_GOAL_REQUESTS = [
    ("POST", "/collaborators/me/accept", None),
    ("POST", "/collaborators/me/decline", None),
    ("POST", "/collaborators/me/leave", None),
    ("DELETE", "/collaborators/person-2", None),
    ("POST", "/comments", {"body": "hello @insider"}),
    ("PATCH", "/comments/comment-1", {"body": "hello"}),
    ("DELETE", "/comments/comment-1", None),
    ("POST", "/reactions", {"reaction": "like"}),
    ("DELETE", "/reactions/me?reaction=like", None),
    ("POST", "/kudos", {"receiver_id": "person-2", "message": "thanks"}),
    ("GET", "/collaborators", None),
    ("GET", "/comments", None),
    ("GET", "/comments/comment-1/history", None),
    ("GET", "/reactions", None),
    ("GET", "/kudos", None),
]


@pytest.mark.parametrize(("method", "suffix", "body"), HIDDEN_GOAL_REQUESTS)
def test_hidden_goal_answers_like_unknown_goal(
    client: TestClient,
    private_goal: dict[str, str],
    auth_headers: HeadersFor,
    org_id: str,
    method: str,
    suffix: str,
    body: dict | None,
) -> None:
    goal_id = private_goal["goal_id"]
    outsider = auth_headers("outsider-1")
    version_before = graph_version(client, org_id, goal_id)

    hidden = client.request(method, f"/goals/{goal_id}{suffix}", json=body, headers=outsider)
    unknown = client.request(method, f"/goals/{UNKNOWN_GOAL_ID}{suffix}", json=body, headers=outsider)

    assert hidden.status_code == 404
    assert hidden.json() == {"detail": unknown.json()["detail"].replace(UNKNOWN_GOAL_ID, goal_id)}
    assert graph_version(client, org_id, goal_id) == version_before
    assert max_notification_id(client) == 0


def test_insider_of_private_goal_may_comment(
    client: TestClient, private_goal: dict[str, str], auth_headers: HeadersFor
) -> None:
    response = client.post(
        f"/goals/{private_goal['goal_id']}/comments",
        json={"body": "on it"},
        headers=auth_headers(private_goal["collaborator"]),
    )

    assert response.status_code == 201


# Rate limit


@pytest.fixture
def strict_client(settings: SocialSettings, read_model: SocialReadModel) -> Iterator[TestClient]:
    """A client whose API allows 5 commands per person per minute, with the clock held 20 seconds into a window."""
    strict = settings.model_copy(update={"rate_limit_commands": 5, "rate_limit_window_seconds": 60})
    with TestClient(create_app(strict, rate_limit_clock=lambda: 1_000_040.0)) as test_client:
        yield test_client


def test_rapid_follows_get_429_past_the_limit(
    strict_client: TestClient, add_known_goal: Callable[..., str], auth_headers: HeadersFor
) -> None:
    goal_ids = [add_known_goal() for _ in range(12)]
    headers = auth_headers("person-1")

    responses = [strict_client.post(f"/goals/{goal_id}/followers", headers=headers) for goal_id in goal_ids]

    assert [response.status_code for response in responses] == [201] * 5 + [429] * 7
    rejected = responses[-1]
    assert rejected.headers["Retry-After"] == "40"
    assert "5 social commands per person per 60 seconds" in rejected.json()["detail"]
    assert published_types(strict_client) == ["GoalFollowed"] * 5
    assert strict_client.post(f"/goals/{goal_ids[-1]}/followers", headers=auth_headers("person-2")).status_code == 201


def test_rate_limit_covers_every_command_but_not_queries(
    strict_client: TestClient, add_known_goal: Callable[..., str], auth_headers: HeadersFor
) -> None:
    goal_id = add_known_goal()
    headers = auth_headers("person-1")
    commands = [
        ("POST", f"/goals/{goal_id}/followers", None),
        ("POST", f"/goals/{goal_id}/comments", {"body": "one"}),
        ("POST", f"/goals/{goal_id}/reactions", {"reaction": "like"}),
        ("DELETE", f"/goals/{goal_id}/followers/me", None),
        ("POST", f"/goals/{goal_id}/comments", {"body": "three"}),
    ]
    for method, path, body in commands:
        assert strict_client.request(method, path, json=body, headers=headers).status_code < 400

    over_limit = [
        strict_client.post(f"/goals/{goal_id}/comments", json={"body": "two"}, headers=headers),
        strict_client.post(f"/goals/{goal_id}/reactions", json={"reaction": "dislike"}, headers=headers),
        strict_client.post(f"/goals/{goal_id}/kudos", json={"receiver_id": "p-2", "message": "x"}, headers=headers),
        strict_client.post(f"/goals/{goal_id}/collaborators/me/accept", headers=headers),
    ]
    written = strict_client.app.state.social.max_notification_id()

    assert [response.status_code for response in over_limit] == [429] * 4
    assert strict_client.get(f"/goals/{goal_id}/comments", headers=headers).status_code == 200
    assert strict_client.get(f"/goals/{goal_id}/followers", headers=headers).status_code == 200
    assert strict_client.app.state.social.max_notification_id() == written


# Relay through the broker


async def read_from_end(bootstrap: str, subject: str, publish: Callable[[], object], expected: int) -> list[Envelope]:
    """Publish with ``publish`` and return the first ``expected`` envelopes of ``subject`` written after it started."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(SOCIAL_TOPIC.name, p) for p in range(TOPICS[SOCIAL_TOPIC.name].partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for partition in partitions:
            await consumer.position(partition)
        await publish()  # type: ignore[misc]
        found: list[Envelope] = []
        deadline = asyncio.get_running_loop().time() + 30
        while len(found) < expected and asyncio.get_running_loop().time() < deadline:
            for messages in (await consumer.getmany(timeout_ms=500)).values():
                envelopes = [decode_envelope(message.value) for message in messages]
                found.extend(envelope for envelope in envelopes if envelope.subject == subject)
        return found
    finally:
        await consumer.stop()


@pytest.mark.kafka
def test_relay_publishes_interaction_events_in_order(
    kafka_bootstrap: str,
    client: TestClient,
    read_model: SocialReadModel,
    goal_id: str,
    auth_headers: HeadersFor,
    add_people: Callable[..., list[str]],
    org_id: str,
) -> None:
    [bo] = add_people("bo")
    client.post(f"/goals/{goal_id}/collaborators", json={"person_id": bo, "occurred_at": "2021-03-01"}, headers=auth_headers(OWNER))
    client.post(f"/goals/{goal_id}/collaborators/me/accept", json={"occurred_at": "2021-03-02"}, headers=auth_headers(bo))
    comment = post_comment(client, goal_id, auth_headers(OWNER), "thanks @bo", occurred_at="2021-03-03")
    client.post(
        f"/goals/{goal_id}/reactions",
        json={"reaction": "celebrate", "target_kind": "comment", "target_id": comment["comment_id"], "occurred_at": "2021-03-04"},
        headers=auth_headers(bo),
    )
    client.post(
        f"/goals/{goal_id}/kudos", json={"receiver_id": bo, "message": "well done", "occurred_at": "2021-03-05"},
        headers=auth_headers(OWNER),
    )
    client.post(f"/goals/{goal_id}/collaborators/me/leave", json={"occurred_at": "2021-03-06"}, headers=auth_headers(bo))
    social = client.app.state.social
    positions = RelayPositions(read_model.engine)

    async def publish() -> None:
        producer = create_idempotent_producer(kafka_bootstrap)
        await producer.start()
        try:
            await Relay(RELAY_NAME, notification_reader(social), positions, producer).publish_next_batch(0)
        finally:
            await producer.stop()

    published = asyncio.run(read_from_end(kafka_bootstrap, str(graph_id_for(org_id, goal_id)), publish, expected=6))

    assert [envelope.type.split(".")[2] for envelope in published] == [
        "CollaboratorTagged", "TagAccepted", "CommentPosted", "ReactionAdded", "KudosGiven", "CollaboratorLeft",
    ]
    assert [envelope.time.day for envelope in published] == [1, 2, 3, 4, 5, 6]
    assert [envelope.aggregateversion for envelope in published] == [2, 3, 4, 5, 6, 7]
    assert published[2].data["mentioned_ids"] == [bo]
    assert published[4].data["receiver_id"] == bo
    assert positions.read(RELAY_NAME) == social.max_notification_id()
