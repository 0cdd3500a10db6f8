"""Communities: create, describe, join, leave, invite, remove, link goals and follow, with roles and visibility."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import datetime, timezone

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from fastapi.testclient import TestClient

from spm_events.envelope import Envelope, decode_envelope
from spm_events.people import person_id_for
from spm_events.registry import SOCIAL_TOPIC, TOPICS
from spm_events.relay import Relay, RelayPositions, create_idempotent_producer
from spm_social.application import SocialApplication
from spm_social.readmodel import SocialReadModel
from spm_social.relay import RELAY_NAME, notification_reader

HeadersFor = Callable[..., dict[str, str]]
HANDLES = ("olivia", "mark", "ivy", "dan", "oscar")
BROKER_READ_SECONDS = 30.0


def entry(handle: str) -> dict[str, object]:
    return {"handle": handle, "display_name": f"Name of {handle}", "email": f"{handle}@example.com", "team": "Sales"}


@pytest.fixture
def ids(client: TestClient, auth_headers: HeadersFor, org_id: str) -> dict[str, str]:
    """Put the people of HANDLES in the directory, with dan deactivated, and return their ids by handle."""
    admin = auth_headers("admin-1", admin=True)
    response = client.post("/people/batch", json={"people": [entry(handle) for handle in HANDLES]}, headers=admin)
    assert response.status_code == 200
    assert client.post("/people/dan/deactivate", headers=admin).status_code == 200
    return {handle: person_id_for(org_id, handle) for handle in HANDLES}


@pytest.fixture
def as_person(auth_headers: HeadersFor, ids: dict[str, str]) -> Callable[[str], dict[str, str]]:
    """Return a function giving the Authorization header of one person of ``ids``, by handle."""
    return lambda handle: auth_headers(ids[handle])


@pytest.fixture
def community_id(client: TestClient, as_person: Callable[[str], dict[str, str]]) -> str:
    """A community that olivia created and owns, and that mark joined."""
    created = client.post("/communities", json={"name": "Growth guild"}, headers=as_person("olivia"))
    assert created.status_code == 201
    joined = client.post(f"/communities/{created.json()['community_id']}/join", headers=as_person("mark"))
    assert joined.status_code == 201
    return created.json()["community_id"]


def written(client: TestClient) -> int:
    return client.app.state.social.max_notification_id()


def published(client: TestClient) -> list[Envelope]:
    return [envelope for _, envelope in notification_reader(client.app.state.social)(0, 500) if envelope is not None]


def test_create_makes_creator_owner(
    client: TestClient, as_person: Callable[[str], dict[str, str]], ids: dict[str, str]
) -> None:
    response = client.post(
        "/communities",
        json={"name": "  Growth guild ", "description": "People who grow the user base", "occurred_at": "2021-03-01"},
        headers=as_person("olivia"),
    )

    assert response.status_code == 201
    body = response.json()
    assert body["name"] == "Growth guild"
    assert body["description"] == "People who grow the user base"
    assert body["created_by"] == ids["olivia"]
    assert body["created_at"] == "2021-03-01T00:00:00Z"
    assert body["owner_ids"] == [ids["olivia"]]
    assert body["member_count"] == 1
    assert body["follower_count"] == 0
    assert body["your_role"] == "owner"
    assert body["linked_goals"] == []
    assert body["pending_invitee_ids"] == []


def test_create_publishes_community_created(
    client: TestClient, as_person: Callable[[str], dict[str, str]], ids: dict[str, str], org_id: str
) -> None:
    community = client.post("/communities", json={"name": "Growth guild"}, headers=as_person("olivia")).json()

    [created] = published(client)
    assert created.type == "spm.social.CommunityCreated.v1"
    assert created.subject == community["community_id"]
    assert created.orgid == org_id
    assert created.actorid == ids["olivia"]
    assert created.aggregateversion == 1
    assert created.data == {
        "community_id": community["community_id"],
        "name": "Growth guild",
        "description": "",
        "owner_id": ids["olivia"],
    }


@pytest.mark.parametrize(
    ("body", "location"),
    [
        ({"name": "n" * 201}, ["body", "name"]),
        ({"name": "   "}, ["body", "name"]),
        ({}, ["body", "name"]),
        ({"name": "Guild", "description": "d" * 5001}, ["body", "description"]),
        ({"name": "Guild", "visibility": "private"}, ["body", "visibility"]),
        ({"name": "Guild", "occurred_at": "2999-01-01T00:00:00Z"}, ["body", "occurred_at"]),
        ({"name": "Guild", "occurred_at": "2021-03-01T09:00:00"}, ["body", "occurred_at"]),
    ],
    ids=["long-name", "blank-name", "no-name", "long-description", "extra-field", "future-time", "naive-time"],
)
def test_invalid_create_writes_nothing(
    client: TestClient, as_person: Callable[[str], dict[str, str]], body: dict[str, str], location: list[str]
) -> None:
    response = client.post("/communities", json=body, headers=as_person("olivia"))

    assert response.status_code == 422
    assert location in [error["loc"] for error in response.json()["detail"]]
    assert written(client) == 0
    assert client.get("/communities", headers=as_person("olivia")).json()["communities"] == []


def test_list_pages_in_creation_order(client: TestClient, as_person: Callable[[str], dict[str, str]]) -> None:
    for name in ("First", "Second", "Third"):
        client.post("/communities", json={"name": name}, headers=as_person("olivia"))

    first = client.get("/communities", params={"limit": 2}, headers=as_person("mark")).json()
    second_params = {"limit": 2, "cursor": first["next_cursor"]}
    second = client.get("/communities", params=second_params, headers=as_person("mark")).json()

    assert [community["name"] for community in first["communities"]] == ["First", "Second"]
    assert [community["name"] for community in second["communities"]] == ["Third"]
    assert second["next_cursor"] is None
    assert first["communities"][0]["your_role"] is None
    assert first["communities"][0]["member_count"] == 1


def test_list_rejects_unknown_cursor(client: TestClient, as_person: Callable[[str], dict[str, str]]) -> None:
    client.post("/communities", json={"name": "First"}, headers=as_person("olivia"))

    response = client.get("/communities", params={"cursor": str(uuid.uuid4())}, headers=as_person("olivia"))

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "cursor"]


def test_community_of_another_org_is_not_found(
    client: TestClient, auth_headers: HeadersFor, community_id: str
) -> None:
    outsider = auth_headers("olivia", org="another-org")
    unknown_id = str(uuid.uuid4())

    responses = [
        client.get(f"/communities/{community_id}", headers=outsider),
        client.post(f"/communities/{community_id}/join", headers=outsider),
        client.post(f"/communities/{community_id}/followers", headers=outsider),
    ]
    unknown = client.get(f"/communities/{unknown_id}", headers=outsider)

    for response in responses:
        assert response.status_code == 404
        assert response.json()["detail"] == unknown.json()["detail"].replace(unknown_id, community_id)
    assert client.get("/communities", headers=outsider).json()["communities"] == []


def test_community_id_must_be_a_uuid(client: TestClient, as_person: Callable[[str], dict[str, str]]) -> None:
    response = client.get("/communities/not-an-id", headers=as_person("olivia"))

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["path", "community_id"]


def test_join_and_leave_are_idempotent(
    client: TestClient, as_person: Callable[[str], dict[str, str]], ids: dict[str, str], community_id: str
) -> None:
    written_after_join = written(client)

    second_join = client.post(f"/communities/{community_id}/join", headers=as_person("mark"))
    written_after_second_join = written(client)
    leave = client.post(f"/communities/{community_id}/leave", headers=as_person("mark"))
    written_after_leave = written(client)
    second_leave = client.post(f"/communities/{community_id}/leave", json={}, headers=as_person("mark"))

    assert second_join.status_code == 200
    assert second_join.json()["your_role"] == "member"
    assert second_join.json()["member_count"] == 2
    assert written_after_second_join == written_after_join
    assert leave.status_code == 200
    assert leave.json()["your_role"] is None
    assert leave.json()["member_count"] == 1
    assert second_leave.status_code == 200
    assert written(client) == written_after_leave
    joined, left = published(client)[1:]
    assert joined.type == "spm.social.CommunityMemberJoined.v1"
    assert joined.actorid == ids["mark"]
    assert joined.data == {"community_id": community_id, "member_id": ids["mark"], "role": "member"}
    assert left.type == "spm.social.CommunityMemberLeft.v1"
    assert left.actorid == ids["mark"]
    assert left.data == {"community_id": community_id, "member_id": ids["mark"]}


def test_last_owner_cannot_leave_with_members(
    client: TestClient, as_person: Callable[[str], dict[str, str]], ids: dict[str, str], community_id: str
) -> None:
    written_before = written(client)

    refused = client.post(f"/communities/{community_id}/leave", headers=as_person("olivia"))

    assert refused.status_code == 409
    assert "remove the other members first" in refused.json()["detail"]
    assert written(client) == written_before
    assert client.get(f"/communities/{community_id}", headers=as_person("olivia")).json()["your_role"] == "owner"


def test_empty_community_next_joiner_owns(
    client: TestClient, as_person: Callable[[str], dict[str, str]], ids: dict[str, str], community_id: str
) -> None:
    client.post(f"/communities/{community_id}/members/{ids['mark']}/remove", headers=as_person("olivia"))

    left = client.post(f"/communities/{community_id}/leave", headers=as_person("olivia"))
    joined = client.post(f"/communities/{community_id}/join", headers=as_person("ivy"))

    assert left.status_code == 200
    assert left.json()["member_count"] == 0
    assert joined.status_code == 201
    assert joined.json()["your_role"] == "owner"
    assert joined.json()["owner_ids"] == [ids["ivy"]]
    assert published(client)[-1].data["role"] == "owner"


def test_invite_needs_a_member_and_an_active_person(
    client: TestClient, as_person: Callable[[str], dict[str, str]], ids: dict[str, str], community_id: str
) -> None:
    written_before = written(client)
    url = f"/communities/{community_id}/invite"

    by_outsider = client.post(url, json={"person_id": ids["ivy"]}, headers=as_person("oscar"))
    unknown = client.post(url, json={"person_id": "nobody-1"}, headers=as_person("mark"))
    deactivated = client.post(url, json={"person_id": ids["dan"]}, headers=as_person("mark"))
    malformed = client.post(url, json={"person_id": "not a person"}, headers=as_person("mark"))

    assert by_outsider.status_code == 403
    assert "join the community first" in by_outsider.json()["detail"]
    for response in (unknown, deactivated, malformed):
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["body", "person_id"]
    assert "deactivated" in deactivated.json()["detail"][0]["msg"]
    assert written(client) == written_before


def test_invitee_sees_invitation_until_joining(
    client: TestClient, as_person: Callable[[str], dict[str, str]], ids: dict[str, str], community_id: str
) -> None:
    url = f"/communities/{community_id}/invite"

    invited = client.post(url, json={"person_id": ids["ivy"]}, headers=as_person("mark"))
    written_after_invite = written(client)
    again = client.post(url, json={"person_id": ids["ivy"]}, headers=as_person("olivia"))
    member_again = client.post(url, json={"person_id": ids["olivia"]}, headers=as_person("mark"))
    seen_by_invitee = client.get(f"/communities/{community_id}", headers=as_person("ivy")).json()
    joined = client.post(f"/communities/{community_id}/join", headers=as_person("ivy")).json()

    assert invited.status_code == 201
    assert invited.json()["pending_invitee_ids"] == [ids["ivy"]]
    assert again.status_code == 200
    assert member_again.status_code == 200
    assert written(client) == written_after_invite + 1  # ivy's join is the only write after the invitation
    assert seen_by_invitee["invited"] is True
    assert seen_by_invitee["pending_invitee_ids"] is None
    assert joined["invited"] is False
    assert joined["pending_invitee_ids"] == []
    invitation = next(envelope for envelope in published(client) if envelope.type.endswith("CommunityMemberInvited.v1"))
    assert invitation.actorid == ids["mark"]
    assert invitation.data == {"community_id": community_id, "invitee_id": ids["ivy"]}


def test_only_owners_remove_members(
    client: TestClient, as_person: Callable[[str], dict[str, str]], ids: dict[str, str], community_id: str
) -> None:
    written_before = written(client)

    by_member = client.post(f"/communities/{community_id}/members/{ids['olivia']}/remove", headers=as_person("mark"))
    by_self = client.post(f"/communities/{community_id}/members/{ids['olivia']}/remove", headers=as_person("olivia"))

    assert by_member.status_code == 403
    assert "ask an owner" in by_member.json()["detail"]
    assert by_self.status_code == 422
    assert by_self.json()["detail"][0]["loc"] == ["path", "person_id"]
    assert written(client) == written_before


def test_owner_removes_member_once(
    client: TestClient, as_person: Callable[[str], dict[str, str]], ids: dict[str, str], community_id: str
) -> None:
    removed = client.post(f"/communities/{community_id}/members/{ids['mark']}/remove", headers=as_person("olivia"))
    written_after_remove = written(client)
    again = client.post(f"/communities/{community_id}/members/{ids['mark']}/remove", headers=as_person("olivia"))

    assert removed.status_code == 200
    assert removed.json()["member_count"] == 1
    assert again.status_code == 200
    assert written(client) == written_after_remove
    left = published(client)[-1]
    assert left.type == "spm.social.CommunityMemberLeft.v1"
    assert left.actorid == ids["olivia"]
    assert left.data["member_id"] == ids["mark"]


def test_only_owners_describe(
    client: TestClient, as_person: Callable[[str], dict[str, str]], community_id: str
) -> None:
    url = f"/communities/{community_id}/describe"

    by_member = client.post(url, json={"name": "Taken over"}, headers=as_person("mark"))
    empty = client.post(url, json={}, headers=as_person("olivia"))
    described = client.post(url, json={"description": "Weekly growth reviews"}, headers=as_person("olivia"))
    written_after_describe = written(client)
    unchanged = client.post(url, json={"name": "Growth guild"}, headers=as_person("olivia"))

    assert by_member.status_code == 403
    assert empty.status_code == 422
    assert described.status_code == 200
    assert described.json()["name"] == "Growth guild"
    assert described.json()["description"] == "Weekly growth reviews"
    assert unchanged.status_code == 200
    assert written(client) == written_after_describe
    event = published(client)[-1]
    assert event.type == "spm.social.CommunityDescribed.v1"
    assert event.data == {"community_id": community_id, "name": "Growth guild", "description": "Weekly growth reviews"}


def test_members_link_goals_they_may_see(
    client: TestClient,
    as_person: Callable[[str], dict[str, str]],
    ids: dict[str, str],
    community_id: str,
    add_known_goal: Callable[..., str],
    apply_envelopes: Callable[..., None],
    events,  # noqa: ANN001 - the EnvelopeFactory fixture of conftest.py
) -> None:
    goal_id = add_known_goal(owner_id=ids["oscar"])
    private_goal_id = f"goal-{uuid.uuid4().hex[:12]}"
    apply_envelopes(events.goal_created(private_goal_id, ids["oscar"], visibility="private"))
    url = f"/communities/{community_id}/goals"
    written_before = written(client)

    by_outsider = client.post(url, json={"goal_id": goal_id}, headers=as_person("oscar"))
    hidden = client.post(url, json={"goal_id": private_goal_id}, headers=as_person("mark"))
    unknown = client.post(url, json={"goal_id": "goal-unknown"}, headers=as_person("mark"))

    assert by_outsider.status_code == 403
    assert hidden.status_code == 404
    assert hidden.json()["detail"] == unknown.json()["detail"].replace("goal-unknown", private_goal_id)
    assert written(client) == written_before

    linked = client.post(url, json={"goal_id": goal_id}, headers=as_person("mark"))
    written_after_link = written(client)
    again = client.post(url, json={"goal_id": goal_id}, headers=as_person("olivia"))

    assert linked.status_code == 201
    assert [(link["goal_id"], link["linked_by"]) for link in linked.json()["linked_goals"]] == [(goal_id, ids["mark"])]
    assert again.status_code == 200
    assert written(client) == written_after_link
    event = published(client)[-1]
    assert event.type == "spm.social.CommunityGoalLinked.v1"
    assert event.actorid == ids["mark"]
    assert event.data == {"community_id": community_id, "goal_id": goal_id}


def test_read_hides_invisible_linked_goals(
    client: TestClient,
    as_person: Callable[[str], dict[str, str]],
    ids: dict[str, str],
    community_id: str,
    add_known_goal: Callable[..., str],
    apply_envelopes: Callable[..., None],
    events,  # noqa: ANN001 - the EnvelopeFactory fixture of conftest.py
) -> None:
    open_goal_id = add_known_goal(owner_id=ids["olivia"])
    private_goal_id = f"goal-{uuid.uuid4().hex[:12]}"
    apply_envelopes(events.goal_created(private_goal_id, ids["olivia"], visibility="private"))
    for goal_id in (open_goal_id, private_goal_id):
        link_body = {"goal_id": goal_id}
        linked = client.post(f"/communities/{community_id}/goals", json=link_body, headers=as_person("olivia"))
        assert linked.status_code == 201

    seen_by_owner = client.get(f"/communities/{community_id}", headers=as_person("olivia")).json()
    seen_by_member = client.get(f"/communities/{community_id}", headers=as_person("mark")).json()
    listed_for_member = client.get("/communities", headers=as_person("mark")).json()["communities"][0]
    apply_envelopes(events.goal_visibility_changed(private_goal_id, "organisation", "private", ids["olivia"]))
    seen_after_opening = client.get(f"/communities/{community_id}", headers=as_person("mark")).json()

    assert [link["goal_id"] for link in seen_by_owner["linked_goals"]] == [open_goal_id, private_goal_id]
    assert [link["goal_id"] for link in seen_by_member["linked_goals"]] == [open_goal_id]
    assert private_goal_id not in str(seen_by_member)
    assert private_goal_id not in str(listed_for_member)
    assert [link["goal_id"] for link in seen_after_opening["linked_goals"]] == [open_goal_id, private_goal_id]


def test_unlink_is_for_owners_and_the_linker(
    client: TestClient,
    as_person: Callable[[str], dict[str, str]],
    ids: dict[str, str],
    community_id: str,
    add_known_goal: Callable[..., str],
) -> None:
    goal_id = add_known_goal(owner_id=ids["oscar"])
    client.post(f"/communities/{community_id}/join", headers=as_person("ivy"))
    client.post(f"/communities/{community_id}/goals", json={"goal_id": goal_id}, headers=as_person("mark"))
    url = f"/communities/{community_id}/goals/{goal_id}"
    written_before = written(client)

    by_other_member = client.delete(url, headers=as_person("ivy"))
    assert by_other_member.status_code == 403
    assert written(client) == written_before

    by_linker = client.delete(url, headers=as_person("mark"))
    client.post(f"/communities/{community_id}/goals", json={"goal_id": goal_id}, headers=as_person("ivy"))
    by_owner = client.delete(url, params={"occurred_at": "2021-03-05"}, headers=as_person("olivia"))
    written_after_unlink = written(client)
    again = client.delete(url, headers=as_person("olivia"))
    unknown_goal = client.delete(f"/communities/{community_id}/goals/goal-unknown", headers=as_person("olivia"))

    assert by_linker.status_code == 200
    assert by_linker.json()["linked_goals"] == []
    assert by_owner.status_code == 200
    assert by_owner.json()["linked_goals"] == []
    assert again.status_code == 200
    assert unknown_goal.status_code == 404
    assert written(client) == written_after_unlink
    unlinked = published(client)[-1]
    assert unlinked.type == "spm.social.CommunityGoalUnlinked.v1"
    assert unlinked.actorid == ids["olivia"]
    assert unlinked.time == datetime(2021, 3, 5, tzinfo=timezone.utc)


def test_follow_and_unfollow_are_idempotent(
    client: TestClient, as_person: Callable[[str], dict[str, str]], ids: dict[str, str], community_id: str
) -> None:
    url = f"/communities/{community_id}/followers"

    followed = client.post(url, headers=as_person("oscar"))
    followed_again = client.post(url, json={}, headers=as_person("oscar"))
    written_after_follow = written(client)
    unfollowed = client.delete(url, headers=as_person("oscar"))
    unfollowed_again = client.delete(url, headers=as_person("oscar"))

    assert followed.status_code == 201
    assert followed.json()["follower_count"] == 1
    assert followed.json()["following"] is True
    assert followed.json()["your_role"] is None
    assert followed_again.status_code == 200
    assert unfollowed.status_code == 200
    assert unfollowed.json()["follower_count"] == 0
    assert unfollowed.json()["following"] is False
    assert unfollowed_again.status_code == 200
    assert written(client) == written_after_follow + 1
    follow, unfollow = published(client)[-2:]
    assert follow.type == "spm.social.CommunityFollowed.v1"
    assert follow.actorid == ids["oscar"]
    assert follow.data == {"community_id": community_id, "follower_id": ids["oscar"]}
    assert unfollow.type == "spm.social.CommunityUnfollowed.v1"
    assert unfollow.actorid == ids["oscar"]


def test_relay_publishes_community_events_in_order(
    kafka_bootstrap: str,
    client: TestClient,
    read_model: SocialReadModel,
    as_person: Callable[[str], dict[str, str]],
    ids: dict[str, str],
    org_id: str,
) -> None:
    created_body = {"name": "Growth guild", "occurred_at": "2021-03-01T09:00:00Z"}
    community_id = client.post("/communities", json=created_body, headers=as_person("olivia")).json()["community_id"]
    url = f"/communities/{community_id}"
    invitation = {"person_id": ids["mark"], "occurred_at": "2021-03-02"}
    client.post(f"{url}/invite", json=invitation, headers=as_person("olivia"))
    client.post(f"{url}/join", json={"occurred_at": "2021-03-03"}, headers=as_person("mark"))
    client.post(f"{url}/followers", json={"occurred_at": "2021-03-04"}, headers=as_person("oscar"))
    positions = RelayPositions(read_model.engine)
    social = client.app.state.social

    envelopes = asyncio.run(relay_and_read_back(kafka_bootstrap, social, positions, community_id, expected=4))

    assert [envelope.type for envelope in envelopes] == [
        "spm.social.CommunityCreated.v1",
        "spm.social.CommunityMemberInvited.v1",
        "spm.social.CommunityMemberJoined.v1",
        "spm.social.CommunityFollowed.v1",
    ]
    assert [envelope.aggregateversion for envelope in envelopes] == [1, 2, 3, 4]
    assert [envelope.actorid for envelope in envelopes] == [ids["olivia"], ids["olivia"], ids["mark"], ids["oscar"]]
    assert [envelope.time.day for envelope in envelopes] == [1, 2, 3, 4]
    assert {envelope.orgid for envelope in envelopes} == {org_id}
    assert {envelope.data["community_id"] for envelope in envelopes} == {community_id}


async def relay_and_read_back(
    bootstrap: str, social: SocialApplication, positions: RelayPositions, subject: str, expected: int
) -> list[Envelope]:
    """Run one relay batch and return the envelopes of ``subject`` it published, read back from the broker."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partition_count = TOPICS[SOCIAL_TOPIC.name].partitions
        partitions = [TopicPartition(SOCIAL_TOPIC.name, number) for number in range(partition_count)]
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for partition in partitions:
            await consumer.position(partition)
        producer = create_idempotent_producer(bootstrap)
        await producer.start()
        try:
            await Relay(RELAY_NAME, notification_reader(social), positions, producer).publish_next_batch(0)
        finally:
            await producer.stop()
        found: list[Envelope] = []
        deadline = asyncio.get_running_loop().time() + BROKER_READ_SECONDS
        while len(found) < expected and asyncio.get_running_loop().time() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for messages in batches.values():
                envelopes = [decode_envelope(message.value) for message in messages]
                found.extend(envelope for envelope in envelopes if envelope.subject == subject)
        return found
    finally:
        await consumer.stop()
