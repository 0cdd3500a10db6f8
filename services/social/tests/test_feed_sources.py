"""Who gets which feed item and why, end to end: events go through the real broker, the API returns the feeds.

Every scenario runs on SQLite and PostgreSQL, and once with written items (write fan-out) and
once with every subscriber group read at read time (threshold 1), with the same expectations:
the strategy must not change what anyone sees.
"""

import uuid
from collections.abc import Callable, Iterator
from datetime import date, datetime, timezone

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from spm_events.database import create_database_engine
from spm_events.envelope import Envelope
from spm_events.people import person_id_for
from spm_events.readmodel import Outcome
from spm_events.registry import new_envelope
from spm_events.schemas import (
    CheckInRecordedV1,
    CollaboratorLeftV1,
    CollaboratorTaggedV1,
    CollaboratorUntaggedV1,
    CommentDeletedV1,
    CommentEditedV1,
    CommentPostedV1,
    CommunityCreatedV1,
    CommunityGoalLinkedV1,
    CommunityGoalUnlinkedV1,
    CommunityMemberJoinedV1,
    CommunityMemberLeftV1,
    GoalCreatedV1,
    GoalFollowedV1,
    GoalOwnersChangedV1,
    GoalUnfollowedV1,
    GoalVisibilityChangedV1,
    KeyResultAddedV1,
    KudosGivenV1,
    Payload,
    PeriodV1,
    PersonFollowedV1,
    PersonUnfollowedV1,
    ReactionAddedV1,
    ReactionRemovedV1,
    TagAcceptedV1,
    TagDeclinedV1,
)
from spm_social.domain import graph_id_for
from spm_social.fanout import DEFAULT_READ_TIME_THRESHOLD
from spm_social.readmodel import SocialReadModel, open_read_model
from spm_social.settings import READ_MODEL_FILE, SocialSettings
from spm_social.views import SocialViews

pytestmark = pytest.mark.kafka

HeadersFor = Callable[..., dict[str, str]]
FAN_OUT_THRESHOLDS = {"written": DEFAULT_READ_TIME_THRESHOLD, "read_time": 1}


@pytest.fixture(params=list(FAN_OUT_THRESHOLDS))
def fan_out(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def read_model(settings: SocialSettings, fan_out: str) -> Iterator[SocialReadModel]:
    """The read model of the app under test, created with the threshold of the fan-out strategy."""
    engine = create_database_engine(settings.sqlalchemy_url(READ_MODEL_FILE))
    yield open_read_model(engine, read_time_threshold=FAN_OUT_THRESHOLDS[fan_out])
    engine.dispose()


class FeedEvents:
    """Integration events of one organisation as the relays publish them, with consecutive versions per subject."""

    def __init__(self, org_id: str) -> None:
        self.org_id = org_id
        self.versions: dict[str, int] = {}

    def person(self, handle: str) -> str:
        return person_id_for(self.org_id, handle)

    def wrap(self, payload: Payload, subject: str, actor_id: str, day: int, hour: int = 9) -> Envelope:
        self.versions[subject] = self.versions.get(subject, 0) + 1
        return new_envelope(
            payload,
            subject=subject,
            org_id=self.org_id,
            actor_id=actor_id,
            aggregate_version=self.versions[subject],
            time=datetime(2021, 1, day, hour, tzinfo=timezone.utc),
        )

    def on_goal(self, payload: Payload, actor_id: str, day: int, hour: int = 9) -> Envelope:
        return self.wrap(payload, payload.goal_id, actor_id, day, hour)  # type: ignore[attr-defined]

    def on_graph(self, payload: Payload, actor_id: str, day: int, hour: int = 9) -> Envelope:
        graph_id = str(graph_id_for(self.org_id, payload.goal_id))  # type: ignore[attr-defined]
        return self.wrap(payload, graph_id, actor_id, day, hour)

    def on_community(self, payload: Payload, actor_id: str, day: int, hour: int = 9) -> Envelope:
        return self.wrap(payload, payload.community_id, actor_id, day, hour)  # type: ignore[attr-defined]

    def goal_created(
        self,
        goal_id: str,
        owner_id: str,
        day: int = 1,
        *,
        visibility: str | None = None,
        co_owners: tuple[str, ...] = (),
    ) -> Envelope:
        period = PeriodV1(name="FY21-Q1", start=date(2021, 1, 1), end=date(2021, 3, 31))
        payload = GoalCreatedV1(
            goal_id=goal_id,
            title=f"Title of {goal_id}",
            owner_id=owner_id,
            team="growth",
            period=period,
            visibility=visibility,
            co_owner_ids=co_owners,
        )
        return self.on_goal(payload, owner_id, day)

    def key_result_added(self, goal_id: str, actor_id: str, day: int = 1) -> Envelope:
        payload = KeyResultAddedV1(
            goal_id=goal_id,
            key_result_id=f"{goal_id}-kr",
            title="Weekly active users",
            metric="number",
            start_value=0,
            target_value=10,
        )
        return self.on_goal(payload, actor_id, day, hour=10)

    def check_in(self, goal_id: str, actor_id: str, day: int, check_in_id: str | None = None) -> Envelope:
        payload = CheckInRecordedV1(
            goal_id=goal_id,
            key_result_id=f"{goal_id}-kr",
            check_in_id=check_in_id or f"check-in-{uuid.uuid4().hex[:8]}",
            value=5,
            progress=0.5,
        )
        return self.on_goal(payload, actor_id, day)

    def person_followed(self, person_id: str, follower_id: str, day: int) -> Envelope:
        payload = PersonFollowedV1(person_id=person_id, follower_id=follower_id)
        return self.wrap(payload, f"people/{person_id}", follower_id, day)

    def person_unfollowed(self, person_id: str, follower_id: str, day: int) -> Envelope:
        payload = PersonUnfollowedV1(person_id=person_id, follower_id=follower_id)
        return self.wrap(payload, f"people/{person_id}", follower_id, day)

    def community_created(self, community_id: str, owner_id: str, day: int = 1) -> Envelope:
        payload = CommunityCreatedV1(community_id=community_id, name="Growth guild", owner_id=owner_id)
        return self.on_community(payload, owner_id, day)


def deliver(broker, read_model: SocialReadModel, *envelopes: Envelope) -> None:
    assert broker.deliver(read_model, *envelopes) == [Outcome.APPLIED] * len(envelopes)


def feed_of(client: TestClient, headers: dict[str, str], path: str = "/feed", **params: object) -> list[dict]:
    response = client.get(path, params={"limit": 100} | params, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["next_cursor"] is None
    return body["items"]


def items_by_event(client: TestClient, headers: dict[str, str], **params: object) -> dict[str, dict]:
    return {item["event_id"]: item for item in feed_of(client, headers, **params)}


def written_item_count(read_model: SocialReadModel, org_id: str, person_id: str) -> int:
    items = read_model.tables.feed_items
    with read_model.engine.connect() as connection:
        return connection.execute(
            select(func.count()).select_from(items).where(items.c.org_id == org_id, items.c.person_id == person_id)
        ).scalar()


@pytest.fixture
def feed_events(org_id: str) -> FeedEvents:
    return FeedEvents(org_id)


def test_each_source_says_why(
    client: TestClient,
    read_model: SocialReadModel,
    broker,
    feed_events: FeedEvents,
    auth_headers: HeadersFor,
    fan_out: str,
) -> None:
    ev = feed_events
    owner, co_owner, follower, collaborator, member, fan, bystander = (
        ev.person(handle) for handle in ("owner", "co-owner", "follower", "collaborator", "member", "fan", "bystander")
    )
    community_id = str(uuid.uuid4())
    check_in = ev.check_in("goal-1", owner, day=3)
    deliver(
        broker,
        read_model,
        ev.goal_created("goal-1", owner, co_owners=(co_owner,)),
        ev.key_result_added("goal-1", owner),
        ev.community_created(community_id, member),
        ev.on_graph(GoalFollowedV1(goal_id="goal-1", follower_id=follower), follower, day=2),
        ev.on_graph(CollaboratorTaggedV1(goal_id="goal-1", collaborator_id=collaborator), owner, day=2),
        ev.on_community(CommunityGoalLinkedV1(community_id=community_id, goal_id="goal-1"), member, day=2),
        ev.person_followed(owner, fan, day=2),
        check_in,
    )

    expected = {
        owner: ("owner", "goal-1"),
        co_owner: ("co_owner", "goal-1"),
        follower: ("followed_goal", "goal-1"),
        collaborator: ("collaborator", "goal-1"),
        member: ("community_member", community_id),
        fan: ("followed_person", owner),
    }
    for person_id, reason in expected.items():
        item = items_by_event(client, auth_headers(person_id))[check_in.id]
        assert (item["source"], item["source_id"]) == reason
        assert item["kind"] == "check_in_recorded"
        assert item["summary"] == "Check-in on 'Weekly active users': progress 50%"
    assert check_in.id not in items_by_event(client, auth_headers(bystander))
    # Only the strategy decides whether the follower's item is a stored row.
    follower_rows = written_item_count(read_model, ev.org_id, follower)
    assert follower_rows == (1 if fan_out == "written" else 0)
    assert written_item_count(read_model, ev.org_id, owner) > 0


def test_items_stop_when_membership_ends(
    client: TestClient, read_model: SocialReadModel, broker, feed_events: FeedEvents, auth_headers: HeadersFor
) -> None:
    ev = feed_events
    owner, follower, collaborator, member, fan = (
        ev.person(handle) for handle in ("owner", "follower", "collaborator", "member", "fan")
    )
    community_id = str(uuid.uuid4())
    before_ends = ev.check_in("goal-1", owner, day=3)
    after_ends = ev.check_in("goal-1", owner, day=5)
    starts = [
        ev.goal_created("goal-1", owner),
        ev.key_result_added("goal-1", owner),
        ev.community_created(community_id, owner),
        ev.on_community(CommunityGoalLinkedV1(community_id=community_id, goal_id="goal-1"), owner, day=1, hour=11),
        ev.on_graph(GoalFollowedV1(goal_id="goal-1", follower_id=follower), follower, day=2),
        ev.on_graph(CollaboratorTaggedV1(goal_id="goal-1", collaborator_id=collaborator), owner, day=2),
        ev.on_community(CommunityMemberJoinedV1(community_id=community_id, member_id=member), member, day=2),
        ev.person_followed(owner, fan, day=2),
    ]
    # The ends arrive after both check-ins, so the later check-in's items must be taken back.
    ends = [
        ev.on_graph(GoalUnfollowedV1(goal_id="goal-1", follower_id=follower), follower, day=4),
        ev.on_graph(TagDeclinedV1(goal_id="goal-1", collaborator_id=collaborator), collaborator, day=4),
        ev.on_community(CommunityMemberLeftV1(community_id=community_id, member_id=member), member, day=4),
        ev.person_unfollowed(owner, fan, day=4),
    ]
    deliver(broker, read_model, *starts, before_ends, after_ends, *ends)

    for person_id in (follower, collaborator, member, fan):
        check_ins = {
            event_id
            for event_id, item in items_by_event(client, auth_headers(person_id)).items()
            if item["kind"] == "check_in_recorded"
        }
        assert check_ins == {before_ends.id}, person_id
    assert {before_ends.id, after_ends.id} <= items_by_event(client, auth_headers(owner)).keys()
    audience = SocialViews(read_model).audience_of(ev.org_id, "goal-1")
    assert audience is not None
    assert not audience.is_insider(collaborator)


def test_tag_consent_decides_private_goal_access(
    client: TestClient, read_model: SocialReadModel, broker, feed_events: FeedEvents, auth_headers: HeadersFor
) -> None:
    ev = feed_events
    owner, accepted, left, untagged = (ev.person(handle) for handle in ("owner", "accepted", "left", "untagged"))
    check_in = ev.check_in("goal-1", owner, day=5)
    tags = [
        ev.on_graph(CollaboratorTaggedV1(goal_id="goal-1", collaborator_id=person_id), owner, day=2)
        for person_id in (accepted, left, untagged)
    ]
    accept = ev.on_graph(TagAcceptedV1(goal_id="goal-1", collaborator_id=accepted), accepted, day=3)
    deliver(
        broker,
        read_model,
        ev.goal_created("goal-1", owner, visibility="private"),
        ev.key_result_added("goal-1", owner),
        *tags,
        accept,
        ev.on_graph(CollaboratorLeftV1(goal_id="goal-1", collaborator_id=left), left, day=4),
        ev.on_graph(CollaboratorUntaggedV1(goal_id="goal-1", collaborator_id=untagged), owner, day=4),
        check_in,
    )

    accepted_items = items_by_event(client, auth_headers(accepted))
    assert check_in.id in accepted_items
    assert accepted_items[accept.id]["summary"] == "You accepted the tag on 'Title of goal-1'"
    assert feed_of(client, auth_headers(left)) == []
    assert feed_of(client, auth_headers(untagged)) == []
    owner_item = items_by_event(client, auth_headers(owner))[accept.id]
    assert (owner_item["kind"], owner_item["subject_id"]) == ("tag_accepted", accepted)
    assert owner_item["summary"] == "A collaborator accepted the tag on 'Title of goal-1'"


def test_kind_filter_keeps_requested_kinds(
    client: TestClient, read_model: SocialReadModel, broker, feed_events: FeedEvents, auth_headers: HeadersFor
) -> None:
    ev = feed_events
    owner, follower = ev.person("owner"), ev.person("follower")
    check_in = ev.check_in("goal-1", owner, day=3)
    comment = ev.on_graph(
        CommentPostedV1(goal_id="goal-1", comment_id="comment-1", body="Nice progress"), follower, day=4
    )
    deliver(
        broker,
        read_model,
        ev.goal_created("goal-1", owner),
        ev.key_result_added("goal-1", owner),
        ev.on_graph(GoalFollowedV1(goal_id="goal-1", follower_id=follower), follower, day=2),
        check_in,
        comment,
    )
    headers = auth_headers(owner)

    every_kind = {item["kind"] for item in feed_of(client, headers)}
    requested = feed_of(client, headers, kind=["check_in_recorded", "comment_posted"])
    only_follows = feed_of(client, headers, kind="goal_followed")

    assert every_kind == {"goal_created", "key_result_added", "goal_followed", "check_in_recorded", "comment_posted"}
    assert [item["event_id"] for item in requested] == [comment.id, check_in.id]
    assert [item["kind"] for item in only_follows] == ["goal_followed"]


@pytest.mark.parametrize("path", ["/feed", "/communities/some-community/feed"])
def test_unknown_kind_is_rejected_with_422(client: TestClient, auth_headers: HeadersFor, path: str) -> None:
    response = client.get(path, params={"kind": ["check_in_recorded", "likes"]}, headers=auth_headers("person-1"))

    assert response.status_code == 422
    error = response.json()["detail"][0]
    assert error["loc"][:2] == ["query", "kind"]
    assert "check_in_recorded" in error["msg"]


def test_comment_edit_shows_and_delete_hides(
    client: TestClient, read_model: SocialReadModel, broker, feed_events: FeedEvents, auth_headers: HeadersFor
) -> None:
    ev = feed_events
    owner, follower = ev.person("owner"), ev.person("follower")
    check_in = ev.check_in("goal-1", owner, day=3, check_in_id="check-in-1")
    edited_comment = ev.on_graph(
        CommentPostedV1(goal_id="goal-1", comment_id="comment-1", body="First words"), follower, day=4
    )
    deleted_comment = ev.on_graph(
        CommentPostedV1(goal_id="goal-1", comment_id="comment-2", check_in_id="check-in-1", body="Secret words"),
        owner,
        day=4,
        hour=10,
    )
    deliver(
        broker,
        read_model,
        ev.goal_created("goal-1", owner),
        ev.key_result_added("goal-1", owner),
        ev.on_graph(GoalFollowedV1(goal_id="goal-1", follower_id=follower), follower, day=2),
        check_in,
        edited_comment,
        deleted_comment,
    )
    before_deletion = items_by_event(client, auth_headers(follower))
    assert before_deletion[deleted_comment.id]["summary"] == "Comment on a check-in of 'Title of goal-1': Secret words"

    deliver(
        broker,
        read_model,
        ev.on_graph(CommentEditedV1(goal_id="goal-1", comment_id="comment-1", body="Better words"), follower, day=5),
        ev.on_graph(CommentDeletedV1(goal_id="goal-1", comment_id="comment-2"), owner, day=5),
    )

    for person_id in (owner, follower):
        response = client.get("/feed", params={"limit": 100}, headers=auth_headers(person_id))
        items = {item["event_id"]: item for item in response.json()["items"]}
        assert items[edited_comment.id]["summary"] == "Comment on 'Title of goal-1': Better words"
        assert items[edited_comment.id]["target_id"] == "comment-1"
        assert deleted_comment.id not in items
        assert "Secret words" not in response.text
        assert "First words" not in response.text


def test_reactions_fold_into_one_item(
    client: TestClient, read_model: SocialReadModel, broker, feed_events: FeedEvents, auth_headers: HeadersFor
) -> None:
    ev = feed_events
    owner, author, follower = ev.person("owner"), ev.person("author"), ev.person("follower")
    fans = [ev.person(f"fan-{number}") for number in range(3)]
    reactions = [
        ev.on_graph(
            ReactionAddedV1(goal_id="goal-1", target_kind="check_in", target_id="check-in-1", reaction="celebrate"),
            fan,
            day=4,
            hour=9 + number,
        )
        for number, fan in enumerate(fans)
    ]
    removed = ev.on_graph(
        ReactionRemovedV1(goal_id="goal-1", target_kind="check_in", target_id="check-in-1", reaction="celebrate"),
        fans[2],
        day=5,
    )
    on_goal = ev.on_graph(
        ReactionAddedV1(goal_id="goal-1", target_kind="goal", target_id="goal-1", reaction="support"), fans[0], day=5
    )
    # The reactions arrive before the check-in they are about, whose author is known only then.
    deliver(
        broker,
        read_model,
        ev.goal_created("goal-1", owner),
        ev.key_result_added("goal-1", owner),
        ev.on_graph(GoalFollowedV1(goal_id="goal-1", follower_id=follower), follower, day=2),
        *reactions,
        removed,
        on_goal,
        ev.check_in("goal-1", author, day=3, check_in_id="check-in-1"),
    )

    author_reactions = [item for item in feed_of(client, auth_headers(author)) if item["kind"] == "reactions"]
    owner_reactions = [item for item in feed_of(client, auth_headers(owner)) if item["kind"] == "reactions"]
    follower_kinds = {item["kind"] for item in feed_of(client, auth_headers(follower))}

    assert [(item["summary"], item["source"]) for item in author_reactions] == [
        ("2 reactions to your check-in on 'Title of goal-1'", "about_you")
    ]
    assert author_reactions[0]["occurred_at"] == "2021-01-04T10:00:00Z"
    assert author_reactions[0]["target_id"] == "check-in-1"
    assert [item["summary"] for item in owner_reactions] == ["1 reaction to your goal 'Title of goal-1'"]
    assert "reactions" not in follower_kinds


def test_kudos_reaches_receiver_and_audiences(
    client: TestClient, read_model: SocialReadModel, broker, feed_events: FeedEvents, auth_headers: HeadersFor
) -> None:
    ev = feed_events
    owner, giver, receiver, follower, fan = (
        ev.person(handle) for handle in ("owner", "giver", "receiver", "follower", "fan")
    )
    kudos = ev.on_graph(
        KudosGivenV1(goal_id="goal-1", kudos_id="kudos-1", receiver_id=receiver, message="Great launch"), giver, day=3
    )
    deliver(
        broker,
        read_model,
        ev.goal_created("goal-1", owner),
        ev.on_graph(GoalFollowedV1(goal_id="goal-1", follower_id=follower), follower, day=2),
        ev.person_followed(giver, fan, day=2),
        kudos,
    )

    received = items_by_event(client, auth_headers(receiver))[kudos.id]
    followed = items_by_event(client, auth_headers(follower))[kudos.id]
    fan_item = items_by_event(client, auth_headers(fan))[kudos.id]

    assert received["source"] == "about_you"
    assert received["summary"] == "You received kudos on 'Title of goal-1': Great launch"
    assert (followed["source"], followed["summary"]) == ("followed_goal", "Kudos on 'Title of goal-1': Great launch")
    assert (fan_item["source"], fan_item["source_id"]) == ("followed_person", giver)
    assert (received["actor_id"], received["subject_id"]) == (giver, receiver)
    assert kudos.id not in items_by_event(client, auth_headers(giver))


def test_community_feed_serves_members_only(
    client: TestClient, read_model: SocialReadModel, broker, feed_events: FeedEvents, auth_headers: HeadersFor
) -> None:
    ev = feed_events
    creator, member, former, outsider = (ev.person(handle) for handle in ("creator", "member", "former", "outsider"))
    community_id = str(uuid.uuid4())
    open_check_in = ev.check_in("goal-open", creator, day=3)
    after_unlink = ev.check_in("goal-open", creator, day=5)
    private_check_in = ev.check_in("goal-private", creator, day=3)
    linked = ev.on_community(CommunityGoalLinkedV1(community_id=community_id, goal_id="goal-open"), creator, day=2)
    joined = ev.on_community(CommunityMemberJoinedV1(community_id=community_id, member_id=member), member, day=2)
    deliver(
        broker,
        read_model,
        ev.goal_created("goal-open", creator),
        ev.key_result_added("goal-open", creator),
        ev.goal_created("goal-private", ev.person("private-owner"), visibility="private"),
        ev.key_result_added("goal-private", ev.person("private-owner")),
        ev.community_created(community_id, creator),
        linked,
        ev.on_community(CommunityGoalLinkedV1(community_id=community_id, goal_id="goal-private"), creator, day=2),
        joined,
        ev.on_community(CommunityMemberJoinedV1(community_id=community_id, member_id=former), former, day=2),
        ev.on_community(CommunityMemberLeftV1(community_id=community_id, member_id=former), former, day=3),
        open_check_in,
        private_check_in,
        ev.on_community(CommunityGoalUnlinkedV1(community_id=community_id, goal_id="goal-open"), creator, day=4),
        after_unlink,
    )
    path = f"/communities/{community_id}/feed"

    member_view = [item["event_id"] for item in feed_of(client, auth_headers(member), path)]
    check_ins_only = feed_of(client, auth_headers(member), path, kind="check_in_recorded")
    unknown = client.get("/communities/no-such-community/feed", headers=auth_headers(outsider))

    assert open_check_in.id in member_view
    assert linked.id in member_view
    assert joined.id in member_view
    assert after_unlink.id not in member_view
    assert private_check_in.id not in member_view
    assert [item["event_id"] for item in check_ins_only] == [open_check_in.id]
    assert {item["source"] for item in check_ins_only} == {"community_member"}
    assert unknown.status_code == 404
    for person_id in (outsider, former):
        response = client.get(path, headers=auth_headers(person_id))
        assert response.status_code == 404
        assert response.json() == {"detail": unknown.json()["detail"].replace("no-such-community", community_id)}


def test_member_joined_shows_while_member(
    client: TestClient, read_model: SocialReadModel, broker, feed_events: FeedEvents, auth_headers: HeadersFor
) -> None:
    ev = feed_events
    creator, newcomer = ev.person("creator"), ev.person("newcomer")
    community_id = str(uuid.uuid4())
    joined = ev.on_community(CommunityMemberJoinedV1(community_id=community_id, member_id=newcomer), newcomer, day=2)
    deliver(broker, read_model, ev.community_created(community_id, creator), joined)

    creator_item = items_by_event(client, auth_headers(creator))[joined.id]
    assert (creator_item["kind"], creator_item["source"]) == ("member_joined", "community_member")
    assert creator_item["summary"] == "A new member joined 'Growth guild'"
    assert creator_item["goal_id"] is None
    assert joined.id not in items_by_event(client, auth_headers(newcomer))

    deliver(
        broker,
        read_model,
        ev.on_community(CommunityMemberLeftV1(community_id=community_id, member_id=creator), creator, day=3),
    )

    assert joined.id not in items_by_event(client, auth_headers(creator))


def test_current_owners_get_goal_items(
    client: TestClient, read_model: SocialReadModel, broker, feed_events: FeedEvents, auth_headers: HeadersFor
) -> None:
    ev = feed_events
    first_owner, new_owner = ev.person("first-owner"), ev.person("new-owner")
    check_in = ev.check_in("goal-1", first_owner, day=2)
    deliver(
        broker, read_model, ev.goal_created("goal-1", first_owner), ev.key_result_added("goal-1", first_owner), check_in
    )
    assert check_in.id in items_by_event(client, auth_headers(first_owner))

    owners_changed = ev.on_goal(GoalOwnersChangedV1(goal_id="goal-1", owner_id=new_owner), first_owner, day=3)
    deliver(broker, read_model, owners_changed)

    new_owner_item = items_by_event(client, auth_headers(new_owner))[check_in.id]
    assert (new_owner_item["source"], new_owner_item["source_id"]) == ("owner", "goal-1")
    assert items_by_event(client, auth_headers(first_owner)) == {}


def test_private_goal_reaches_no_outsider(
    client: TestClient, read_model: SocialReadModel, broker, feed_events: FeedEvents, auth_headers: HeadersFor
) -> None:
    ev = feed_events
    owner, fan, member = ev.person("owner"), ev.person("fan"), ev.person("member")
    community_id = str(uuid.uuid4())
    check_in = ev.check_in("goal-1", owner, day=3)
    deliver(
        broker,
        read_model,
        ev.goal_created("goal-1", owner, visibility="private"),
        ev.key_result_added("goal-1", owner),
        ev.community_created(community_id, member),
        ev.on_community(CommunityGoalLinkedV1(community_id=community_id, goal_id="goal-1"), owner, day=2),
        ev.person_followed(owner, fan, day=2),
        check_in,
    )
    assert feed_of(client, auth_headers(fan)) == []
    assert feed_of(client, auth_headers(member)) == []
    assert feed_of(client, auth_headers(member), f"/communities/{community_id}/feed") == []

    opened = ev.on_goal(
        GoalVisibilityChangedV1(goal_id="goal-1", visibility="organisation", previous_visibility="private"),
        owner,
        day=4,
    )
    deliver(broker, read_model, opened)

    assert items_by_event(client, auth_headers(fan))[check_in.id]["source"] == "followed_person"
    assert items_by_event(client, auth_headers(member))[check_in.id]["source"] == "community_member"
