"""Following people: idempotent follows of active people of the directory, follower lists, and the published events."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timezone

import pytest
from fastapi.testclient import TestClient

from aiokafka import AIOKafkaConsumer, TopicPartition

from spm_events.envelope import Envelope, decode_envelope
from spm_events.people import person_id_for
from spm_events.registry import SOCIAL_TOPIC, TOPICS
from spm_events.relay import Relay, RelayPositions, create_idempotent_producer
from spm_social.application import SocialApplication
from spm_social.person_graph import person_graph_id_for
from spm_social.readmodel import SocialReadModel
from spm_social.relay import RELAY_NAME, notification_reader

HeadersFor = Callable[..., dict[str, str]]
FOLLOWED_AT = datetime(2021, 3, 1, 9, 0, tzinfo=timezone.utc)
UNFOLLOWED_AT = datetime(2021, 3, 2, 9, 0, tzinfo=timezone.utc)
BROKER_READ_SECONDS = 30.0


def entry(handle: str) -> dict[str, object]:
    return {"handle": handle, "display_name": f"Name of {handle}", "email": f"{handle}@example.com", "team": "Sales"}


@pytest.fixture
def ids(client: TestClient, auth_headers: HeadersFor, org_id: str) -> dict[str, str]:
    """Put alice, bob, carol and dan (deactivated) in the directory and return their person ids by handle."""
    admin = auth_headers("admin-1", admin=True)
    handles = ("alice", "bob", "carol", "dan")
    response = client.post("/people/batch", json={"people": [entry(handle) for handle in handles]}, headers=admin)
    assert response.status_code == 200
    assert client.post("/people/dan/deactivate", headers=admin).status_code == 200
    return {handle: person_id_for(org_id, handle) for handle in handles}


def written(client: TestClient) -> int:
    return client.app.state.social.max_notification_id()


def published(client: TestClient) -> list[Envelope]:
    return [envelope for _, envelope in notification_reader(client.app.state.social)(0, 500) if envelope is not None]


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


def test_follow_returns_201_and_records_event(
    client: TestClient, auth_headers: HeadersFor, ids: dict[str, str], org_id: str
) -> None:
    response = client.post(f"/people/{ids['alice']}/followers", headers=auth_headers(ids["bob"]))

    assert response.status_code == 201
    assert response.json() == {"person_id": ids["alice"], "follower_id": ids["bob"], "following": True}
    [followed] = published(client)
    assert followed.type == "spm.social.PersonFollowed.v1"
    assert followed.subject == str(person_graph_id_for(org_id, ids["alice"]))
    assert followed.orgid == org_id
    assert followed.actorid == ids["bob"]
    assert followed.data == {"person_id": ids["alice"], "follower_id": ids["bob"]}


def test_second_follow_returns_200_and_writes_nothing(
    client: TestClient, auth_headers: HeadersFor, ids: dict[str, str]
) -> None:
    client.post(f"/people/{ids['alice']}/followers", headers=auth_headers(ids["bob"]))
    written_before = written(client)

    response = client.post(f"/people/{ids['alice']}/followers", json={}, headers=auth_headers(ids["bob"]))

    assert response.status_code == 200
    assert response.json()["following"] is True
    assert written(client) == written_before


def test_follow_yourself_is_rejected(client: TestClient, auth_headers: HeadersFor, ids: dict[str, str]) -> None:
    response = client.post(f"/people/{ids['alice']}/followers", headers=auth_headers(ids["alice"]))

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["path", "person_id"]
    assert written(client) == 0


def test_follow_deactivated_person_is_rejected(
    client: TestClient, auth_headers: HeadersFor, ids: dict[str, str]
) -> None:
    response = client.post(f"/people/{ids['dan']}/followers", headers=auth_headers(ids["bob"]))

    assert response.status_code == 422
    error = response.json()["detail"][0]
    assert error["loc"] == ["path", "person_id"]
    assert "deactivated" in error["msg"]
    assert written(client) == 0


def test_unknown_or_other_org_person_is_not_found(
    client: TestClient, auth_headers: HeadersFor, ids: dict[str, str], org_id: str
) -> None:
    other_org_person = person_id_for("another-org", "alice")
    other_admin = auth_headers("admin-1", org="another-org", admin=True)
    client.post("/people/batch", json={"people": [entry("alice")]}, headers=other_admin)

    follow_unknown = client.post("/people/nobody-1/followers", headers=auth_headers(ids["bob"]))
    follow_other_org = client.post(f"/people/{other_org_person}/followers", headers=auth_headers(ids["bob"]))
    unfollow_unknown = client.delete("/people/nobody-1/followers", headers=auth_headers(ids["bob"]))
    read_unknown = client.get("/people/nobody-1/followers", headers=auth_headers(ids["bob"]))

    for response in (follow_unknown, follow_other_org, unfollow_unknown, read_unknown):
        assert response.status_code == 404
        assert "GET /people" in response.json()["detail"]
    assert written(client) == 0


@pytest.mark.parametrize(
    ("request_kwargs", "location"),
    [
        ({"json": {"occurred_at": "2999-01-01T00:00:00Z"}}, ["body", "occurred_at"]),
        ({"json": {"occurred_at": "2021-03-01T09:00:00"}}, ["body", "occurred_at"]),
        ({"json": {"follower_id": "someone-else"}}, ["body", "follower_id"]),
    ],
    ids=["future-time", "naive-time", "extra-field"],
)
def test_invalid_follow_writes_nothing(
    client: TestClient,
    auth_headers: HeadersFor,
    ids: dict[str, str],
    request_kwargs: dict[str, object],
    location: list[str],
) -> None:
    response = client.post(f"/people/{ids['alice']}/followers", headers=auth_headers(ids["bob"]), **request_kwargs)

    assert response.status_code == 422
    assert location in [error["loc"] for error in response.json()["detail"]]
    assert written(client) == 0


def test_person_id_with_spaces_is_rejected(client: TestClient, auth_headers: HeadersFor, ids: dict[str, str]) -> None:
    response = client.post("/people/not a person/followers", headers=auth_headers(ids["bob"]))

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["path", "person_id"]


def test_followers_list_counts_current_followers(
    client: TestClient, auth_headers: HeadersFor, ids: dict[str, str]
) -> None:
    for follower in ("bob", "carol"):
        client.post(f"/people/{ids['alice']}/followers", headers=auth_headers(ids[follower]))
    client.delete(f"/people/{ids['alice']}/followers", headers=auth_headers(ids["bob"]))

    response = client.get(f"/people/{ids['alice']}/followers", headers=auth_headers(ids["dan"]))

    assert response.status_code == 200
    assert response.json() == {"person_id": ids["alice"], "follower_count": 1, "followers": [ids["carol"]]}


def test_unfollow_is_idempotent(client: TestClient, auth_headers: HeadersFor, ids: dict[str, str]) -> None:
    client.post(f"/people/{ids['alice']}/followers", headers=auth_headers(ids["bob"]))

    first = client.delete(f"/people/{ids['alice']}/followers", headers=auth_headers(ids["bob"]))
    written_after_first = written(client)
    second = client.delete(f"/people/{ids['alice']}/followers", headers=auth_headers(ids["bob"]))

    assert first.status_code == 200
    assert second.status_code == 200
    assert second.json() == {"person_id": ids["alice"], "follower_id": ids["bob"], "following": False}
    assert written(client) == written_after_first
    assert [envelope.type for envelope in published(client)] == [
        "spm.social.PersonFollowed.v1",
        "spm.social.PersonUnfollowed.v1",
    ]


def test_deactivated_person_can_be_unfollowed(
    client: TestClient, auth_headers: HeadersFor, ids: dict[str, str], org_id: str
) -> None:
    admin = auth_headers("admin-1", admin=True)
    client.post("/people/batch", json={"people": [entry("erin")]}, headers=admin)
    erin = person_id_for(org_id, "erin")
    client.post(f"/people/{erin}/followers", headers=auth_headers(ids["bob"]))
    client.post("/people/erin/deactivate", headers=admin)

    response = client.delete(f"/people/{erin}/followers", headers=auth_headers(ids["bob"]))

    assert response.status_code == 200
    assert client.get(f"/people/{erin}/followers", headers=auth_headers(ids["bob"])).json()["follower_count"] == 0


def test_relay_publishes_follows_with_event_time(
    kafka_bootstrap: str,
    client: TestClient,
    read_model: SocialReadModel,
    auth_headers: HeadersFor,
    ids: dict[str, str],
    org_id: str,
) -> None:
    follow_url = f"/people/{ids['alice']}/followers"
    client.post(follow_url, json={"occurred_at": FOLLOWED_AT.isoformat()}, headers=auth_headers(ids["bob"]))
    client.delete(follow_url, params={"occurred_at": UNFOLLOWED_AT.isoformat()}, headers=auth_headers(ids["bob"]))
    social = client.app.state.social
    positions = RelayPositions(read_model.engine)
    subject = str(person_graph_id_for(org_id, ids["alice"]))

    envelopes = asyncio.run(relay_and_read_back(kafka_bootstrap, social, positions, subject, expected=2))

    assert [envelope.type for envelope in envelopes] == [
        "spm.social.PersonFollowed.v1",
        "spm.social.PersonUnfollowed.v1",
    ]
    assert [envelope.time for envelope in envelopes] == [FOLLOWED_AT, UNFOLLOWED_AT]
    assert [envelope.aggregateversion for envelope in envelopes] == [2, 3]
    assert {envelope.actorid for envelope in envelopes} == {ids["bob"]}
