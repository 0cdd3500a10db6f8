from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient

from spm_events.auth import issue_token
from spm_social.relay import notification_reader

HeadersFor = Callable[..., dict[str, str]]


def max_notification_id(client: TestClient) -> int:
    return client.app.state.social.max_notification_id()


def published_envelopes(client: TestClient) -> list:
    read_notifications = notification_reader(client.app.state.social)
    return [envelope for _, envelope in read_notifications(0, 500) if envelope is not None]


def test_follow_returns_201_and_records_event(
    client: TestClient, add_known_goal: Callable[..., str], auth_headers: HeadersFor, org_id: str
) -> None:
    goal_id = add_known_goal()

    response = client.post(f"/goals/{goal_id}/followers", headers=auth_headers("person-1"))

    assert response.status_code == 201
    assert response.json() == {"goal_id": goal_id, "follower_id": "person-1", "following": True}
    [followed] = published_envelopes(client)
    assert followed.type == "spm.social.GoalFollowed.v1"
    assert followed.orgid == org_id
    assert followed.actorid == "person-1"
    assert followed.data == {"goal_id": goal_id, "follower_id": "person-1"}


def test_follow_accepts_missing_body(
    client: TestClient, add_known_goal: Callable[..., str], auth_headers: HeadersFor
) -> None:
    goal_id = add_known_goal()

    first = client.post(f"/goals/{goal_id}/followers", headers=auth_headers("person-1"))
    second = client.post(f"/goals/{goal_id}/followers", json={}, headers=auth_headers("person-2"))

    assert first.status_code == 201
    assert second.status_code == 201


def test_second_follow_returns_200_and_writes_nothing(
    client: TestClient, add_known_goal: Callable[..., str], auth_headers: HeadersFor
) -> None:
    goal_id = add_known_goal()
    client.post(f"/goals/{goal_id}/followers", headers=auth_headers("person-1"))
    written_before = max_notification_id(client)

    response = client.post(f"/goals/{goal_id}/followers", headers=auth_headers("person-1"))

    assert response.status_code == 200
    assert response.json()["following"] is True
    assert max_notification_id(client) == written_before


def test_follow_uses_given_event_time(
    client: TestClient, add_known_goal: Callable[..., str], auth_headers: HeadersFor
) -> None:
    goal_id = add_known_goal()

    response = client.post(
        f"/goals/{goal_id}/followers", json={"occurred_at": "2021-03-02"}, headers=auth_headers("person-1")
    )

    assert response.status_code == 201
    [followed] = published_envelopes(client)
    assert followed.time == datetime(2021, 3, 2, tzinfo=timezone.utc)


def test_unfollow_is_idempotent(
    client: TestClient, add_known_goal: Callable[..., str], auth_headers: HeadersFor
) -> None:
    goal_id = add_known_goal()
    client.post(f"/goals/{goal_id}/followers", headers=auth_headers("person-1"))

    first = client.delete(
        f"/goals/{goal_id}/followers/me",
        params={"occurred_at": "2021-03-05T10:00:00+01:00"},
        headers=auth_headers("person-1"),
    )
    written_after_first = max_notification_id(client)
    second = client.delete(f"/goals/{goal_id}/followers/me", headers=auth_headers("person-1"))

    assert first.status_code == 200
    assert second.status_code == 200
    assert second.json() == {"goal_id": goal_id, "follower_id": "person-1", "following": False}
    assert max_notification_id(client) == written_after_first
    unfollowed = published_envelopes(client)[-1]
    assert unfollowed.type == "spm.social.GoalUnfollowed.v1"
    assert unfollowed.time == datetime(2021, 3, 5, 9, 0, tzinfo=timezone.utc)


def test_unfollow_of_never_followed_goal_writes_nothing(
    client: TestClient, add_known_goal: Callable[..., str], auth_headers: HeadersFor
) -> None:
    goal_id = add_known_goal()

    response = client.delete(f"/goals/{goal_id}/followers/me", headers=auth_headers("person-1"))

    assert response.status_code == 200
    assert max_notification_id(client) == 0


def test_followers_lists_current_followers(
    client: TestClient, add_known_goal: Callable[..., str], auth_headers: HeadersFor
) -> None:
    goal_id = add_known_goal()
    for person_id in ("person-2", "person-1", "person-3"):
        client.post(f"/goals/{goal_id}/followers", headers=auth_headers(person_id))
    client.delete(f"/goals/{goal_id}/followers/me", headers=auth_headers("person-3"))

    response = client.get(f"/goals/{goal_id}/followers", headers=auth_headers("someone"))

    assert response.status_code == 200
    assert response.json() == {"goal_id": goal_id, "follower_count": 2, "followers": ["person-1", "person-2"]}


def test_followers_of_goal_without_follows_is_empty(
    client: TestClient, add_known_goal: Callable[..., str], auth_headers: HeadersFor
) -> None:
    goal_id = add_known_goal()

    response = client.get(f"/goals/{goal_id}/followers", headers=auth_headers("someone"))

    assert response.status_code == 200
    assert response.json() == {"goal_id": goal_id, "follower_count": 0, "followers": []}


def test_tag_collaborator_returns_201_then_200(
    client: TestClient,
    add_known_goal: Callable[..., str],
    auth_headers: HeadersFor,
    add_people: Callable[..., list[str]],
) -> None:
    goal_id = add_known_goal()
    [person_2] = add_people("person-2")

    first = client.post(
        f"/goals/{goal_id}/collaborators", json={"person_id": person_2}, headers=auth_headers("person-1")
    )
    written_after_first = max_notification_id(client)
    second = client.post(
        f"/goals/{goal_id}/collaborators", json={"person_id": person_2}, headers=auth_headers("person-3")
    )

    assert first.status_code == 201
    assert first.json() == {"goal_id": goal_id, "collaborator_id": person_2, "tagged_by": "person-1"}
    assert second.status_code == 200
    assert second.json()["tagged_by"] == "person-1"
    assert max_notification_id(client) == written_after_first
    [tagged] = published_envelopes(client)
    assert tagged.type == "spm.social.CollaboratorTagged.v1"
    assert tagged.actorid == "person-1"
    assert tagged.data == {"goal_id": goal_id, "collaborator_id": person_2}


def test_tagging_yourself_returns_422_and_writes_nothing(
    client: TestClient, add_known_goal: Callable[..., str], auth_headers: HeadersFor
) -> None:
    goal_id = add_known_goal()

    response = client.post(
        f"/goals/{goal_id}/collaborators", json={"person_id": "person-1"}, headers=auth_headers("person-1")
    )

    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "person_id"]
    assert "cannot tag yourself" in error["msg"]
    assert max_notification_id(client) == 0


@pytest.mark.parametrize(
    ("method", "path_template", "body"),
    [
        ("POST", "/goals/{goal_id}/followers", None),
        ("DELETE", "/goals/{goal_id}/followers/me", None),
        ("POST", "/goals/{goal_id}/collaborators", {"person_id": "person-2"}),
        ("GET", "/goals/{goal_id}/followers", None),
    ],
)
def test_unknown_goal_returns_404_and_writes_nothing(
    client: TestClient, auth_headers: HeadersFor, method: str, path_template: str, body: dict | None
) -> None:
    response = client.request(
        method, path_template.format(goal_id="goal-never-created"), json=body, headers=auth_headers("person-1")
    )

    assert response.status_code == 404
    assert "goal-never-created" in response.json()["detail"]
    assert max_notification_id(client) == 0


def test_goal_of_another_org_returns_404(
    client: TestClient, add_known_goal: Callable[..., str], auth_headers: HeadersFor
) -> None:
    goal_id = add_known_goal(org="another-org")

    follow = client.post(f"/goals/{goal_id}/followers", headers=auth_headers("person-1"))
    followers = client.get(f"/goals/{goal_id}/followers", headers=auth_headers("person-1"))

    assert follow.status_code == 404
    assert followers.status_code == 404
    assert max_notification_id(client) == 0


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer not-a-jwt", "Basic dXNlcjpwYXNz", "wrong-secret"],
    ids=["missing", "garbage", "basic", "wrong-secret"],
)
def test_invalid_token_returns_401_and_writes_nothing(
    client: TestClient, add_known_goal: Callable[..., str], org_id: str, authorization: str | None
) -> None:
    goal_id = add_known_goal()
    headers = {}
    if authorization == "wrong-secret":
        headers["Authorization"] = f"Bearer {issue_token('another-secret-of-at-least-32-bytes!', org_id, 'p-1')}"
    elif authorization:
        headers["Authorization"] = authorization

    response = client.post(f"/goals/{goal_id}/followers", headers=headers)

    assert response.status_code == 401
    assert max_notification_id(client) == 0


def test_body_over_limit_returns_413_and_writes_nothing(
    client: TestClient, add_known_goal: Callable[..., str], auth_headers: HeadersFor
) -> None:
    goal_id = add_known_goal()
    oversized = '{"person_id": "person-2", "padding": "' + "x" * (64 * 1024) + '"}'

    response = client.post(
        f"/goals/{goal_id}/collaborators",
        content=oversized,
        headers={**auth_headers("person-1"), "Content-Type": "application/json"},
    )

    assert response.status_code == 413
    assert max_notification_id(client) == 0


FUTURE = (datetime.now(timezone.utc) + timedelta(days=1)).isoformat()


@pytest.mark.parametrize(
    ("path_suffix", "raw_body", "field"),
    [
        ("collaborators", '{"person_id": NaN}', "person_id"),
        ("collaborators", '{"person_id": Infinity}', "person_id"),
        ("collaborators", '{"person_id": ""}', "person_id"),
        ("collaborators", '{"person_id": "' + "p" * 101 + '"}', "person_id"),
        ("collaborators", '{"person_id": "Jane Doe"}', "person_id"),
        ("collaborators", "{}", "person_id"),
        ("collaborators", '{"person_id": "person-2", "role": "admin"}', "role"),
        ("collaborators", '{"person_id": "person-2", "occurred_at": "' + FUTURE + '"}', "occurred_at"),
        ("followers", '{"occurred_at": "2021-03-02T10:00:00"}', "occurred_at"),
        ("followers", '{"occurred_at": 1614679200}', "occurred_at"),
        ("followers", '{"occurred_at": "yesterday"}', "occurred_at"),
        ("followers", '{"occurred_at": "' + FUTURE + '"}', "occurred_at"),
        ("followers", '{"occurred_at": NaN}', "occurred_at"),
        ("followers", "[" * 40 + "]" * 40, None),
    ],
)
def test_invalid_body_returns_422(
    client: TestClient,
    add_known_goal: Callable[..., str],
    auth_headers: HeadersFor,
    path_suffix: str,
    raw_body: str,
    field: str | None,
) -> None:
    goal_id = add_known_goal()

    response = client.post(
        f"/goals/{goal_id}/{path_suffix}",
        content=raw_body,
        headers={**auth_headers("person-1"), "Content-Type": "application/json"},
    )

    assert response.status_code == 422
    if field is not None:
        locations = [error["loc"] for error in response.json()["detail"]]
        assert any(location[-1] == field for location in locations), locations
    assert max_notification_id(client) == 0


def test_unfollow_with_future_time_returns_422(
    client: TestClient, add_known_goal: Callable[..., str], auth_headers: HeadersFor
) -> None:
    goal_id = add_known_goal()
    client.post(f"/goals/{goal_id}/followers", headers=auth_headers("person-1"))
    written_before = max_notification_id(client)

    response = client.delete(
        f"/goals/{goal_id}/followers/me", params={"occurred_at": FUTURE}, headers=auth_headers("person-1")
    )

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "occurred_at"]
    assert max_notification_id(client) == written_before


def test_goal_id_over_100_characters_returns_422(client: TestClient, auth_headers: HeadersFor) -> None:
    response = client.post(f"/goals/{'g' * 101}/followers", headers=auth_headers("person-1"))

    assert response.status_code == 422
    assert max_notification_id(client) == 0
