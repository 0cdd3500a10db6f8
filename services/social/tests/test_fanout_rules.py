"""The pure fan-out rules: membership intervals, channels of an activity, and each reader's best reason."""

from datetime import datetime, timezone

import pytest

from spm_social.fanout import (
    ABOUT_YOU,
    CHECK_IN_RECORDED,
    COLLABORATOR,
    COLLABORATOR_TAGGED,
    COMMUNITY_CHANNEL,
    COMMUNITY_MEMBER,
    FOLLOWED_GOAL,
    FOLLOWED_PERSON,
    GOAL_CHANNEL,
    GOAL_FOLLOWED,
    GOAL_OWNERS_CHANNEL,
    KEY_RESULT_ADDED,
    MEMBER_JOINED,
    OWNER,
    PERSON_CHANNEL,
    REACTIONS,
    Activity,
    Channel,
    Interval,
    MembershipChange,
    Subscription,
    channels_of,
    first_difference,
    intervals_from,
    plan_deliveries,
)


def at(day: int, hour: int = 9) -> datetime:
    return datetime(2021, 1, day, hour, tzinfo=timezone.utc)


def change(version: int, starts: bool, day: int, hour: int = 9) -> MembershipChange:
    return MembershipChange(f"event-{version}", starts, at(day, hour), version)


def activity(kind: str, day: int = 5, **facts: str | None) -> Activity:
    values = {
        "event_id": "event-1",
        "kind": kind,
        "occurred_at": at(day),
        "actor_id": "owner",
        "goal_id": "goal-1",
        "community_id": None,
        "subject_id": None,
        "direct_recipient_id": None,
        "target_kind": None,
    }
    return Activity(**(values | facts))  # type: ignore[arg-type]


def test_follow_unfollow_and_return_give_two_intervals() -> None:
    changes = [change(1, True, 2), change(2, False, 4), change(3, True, 6)]

    assert intervals_from(changes) == [Interval(at(2), at(4)), Interval(at(6), None)]


def test_intervals_ignore_arrival_order() -> None:
    changes = [change(1, True, 2), change(2, False, 4), change(3, True, 6), change(4, False, 8)]

    assert intervals_from(reversed(changes)) == intervals_from(changes)


def test_backdated_unfollow_ends_follow_at_its_start() -> None:
    # Recorded after the follow but dated before it: the follow never covered any time.
    changes = [change(1, True, 5), change(2, False, 3)]

    assert intervals_from(changes) == []


def test_follow_and_unfollow_at_same_time_cover_nothing() -> None:
    assert intervals_from([change(1, True, 4), change(2, False, 4)]) == []


def test_repeated_start_keeps_first_start() -> None:
    changes = [change(1, True, 2), change(2, True, 3), change(3, False, 5)]

    assert intervals_from(changes) == [Interval(at(2), at(5))]


def test_end_without_start_changes_nothing() -> None:
    assert intervals_from([change(1, False, 2)]) == []


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ([Interval(at(2), None)], [Interval(at(2), at(6))], at(6)),
        ([], [Interval(at(3), None)], at(3)),
        ([Interval(at(2), at(4))], [Interval(at(2), at(4)), Interval(at(7), None)], at(7)),
        ([Interval(None, None)], [], None),
    ],
)
def test_first_difference_finds_earliest_changed_time(
    old: list[Interval], new: list[Interval], expected: datetime | None
) -> None:
    assert first_difference(old, new) == expected


def test_check_in_reaches_goal_owners_person_and_communities() -> None:
    channels = channels_of(activity(CHECK_IN_RECORDED), ["community-b", "community-a"])

    assert channels == [
        Channel(GOAL_OWNERS_CHANNEL, "goal-1"),
        Channel(GOAL_CHANNEL, "goal-1"),
        Channel(PERSON_CHANNEL, "owner"),
        Channel(COMMUNITY_CHANNEL, "community-a"),
        Channel(COMMUNITY_CHANNEL, "community-b"),
    ]


def test_key_result_skips_person_followers() -> None:
    channels = channels_of(activity(KEY_RESULT_ADDED), [])

    assert Channel(PERSON_CHANNEL, "owner") not in channels
    assert Channel(GOAL_CHANNEL, "goal-1") in channels


def test_follow_news_go_to_owners_only() -> None:
    assert channels_of(activity(GOAL_FOLLOWED), ["community-a"]) == [Channel(GOAL_OWNERS_CHANNEL, "goal-1")]


def test_member_joined_goes_to_its_community() -> None:
    joined = activity(MEMBER_JOINED, goal_id=None, community_id="community-a")

    assert channels_of(joined, []) == [Channel(COMMUNITY_CHANNEL, "community-a")]


@pytest.mark.parametrize(
    ("target_kind", "expected"),
    [("goal", [Channel(GOAL_OWNERS_CHANNEL, "goal-1")]), ("check_in", []), ("comment", [])],
)
def test_reactions_reach_owners_only_for_goal(target_kind: str, expected: list[Channel]) -> None:
    reactions = activity(REACTIONS, target_kind=target_kind, direct_recipient_id="author")

    assert channels_of(reactions, []) == expected


def subscription(person_id: str, channel: Channel, source: str, starts: int, ends: int | None = None) -> Subscription:
    return Subscription(person_id, channel, source, Interval(at(starts), None if ends is None else at(ends)))


def test_reader_gets_best_reason_once() -> None:
    goal = Channel(GOAL_CHANNEL, "goal-1")
    owners = Channel(GOAL_OWNERS_CHANNEL, "goal-1")
    community = Channel(COMMUNITY_CHANNEL, "community-a")
    person = Channel(PERSON_CHANNEL, "owner")
    subscriptions = {
        owners: [Subscription("owner", owners, OWNER, Interval(None, None))],
        goal: [
            subscription("reader", goal, FOLLOWED_GOAL, 1),
            subscription("collaborator", goal, COLLABORATOR, 1),
            subscription("former", goal, FOLLOWED_GOAL, 1, 3),
        ],
        community: [subscription("reader", community, COMMUNITY_MEMBER, 1)],
        person: [
            subscription("fan", person, FOLLOWED_PERSON, 1),
            subscription("collaborator", person, FOLLOWED_PERSON, 1),
        ],
    }
    check_in = activity(CHECK_IN_RECORDED)

    deliveries = plan_deliveries(check_in, [owners, goal, person, community], subscriptions)

    assert {person_id: (delivery.source, delivery.source_id) for person_id, delivery in deliveries.items()} == {
        "owner": (OWNER, "goal-1"),
        "reader": (FOLLOWED_GOAL, "goal-1"),
        "collaborator": (COLLABORATOR, "goal-1"),
        "fan": (FOLLOWED_PERSON, "owner"),
    }


def test_tagged_person_hears_about_own_tag() -> None:
    owners = Channel(GOAL_OWNERS_CHANNEL, "goal-1")
    subscriptions = {owners: [Subscription("owner", owners, OWNER, Interval(None, None))]}
    tagged = activity(COLLABORATOR_TAGGED, subject_id="owner", direct_recipient_id="owner")

    deliveries = plan_deliveries(tagged, [owners], subscriptions)

    assert deliveries["owner"].source == ABOUT_YOU


def test_owner_hears_of_no_own_follow() -> None:
    owners = Channel(GOAL_OWNERS_CHANNEL, "goal-1")
    subscriptions = {
        owners: [
            Subscription("owner", owners, OWNER, Interval(None, None)),
            Subscription("co-owner", owners, OWNER, Interval(None, None)),
        ]
    }
    followed = activity(GOAL_FOLLOWED, subject_id="owner", actor_id="owner")

    assert set(plan_deliveries(followed, [owners], subscriptions)) == {"co-owner"}


def test_people_filter_narrows_deliveries() -> None:
    goal = Channel(GOAL_CHANNEL, "goal-1")
    subscriptions = {goal: [subscription("a", goal, FOLLOWED_GOAL, 1), subscription("b", goal, FOLLOWED_GOAL, 1)]}

    deliveries = plan_deliveries(activity(CHECK_IN_RECORDED), [goal], subscriptions, frozenset({"b"}))

    assert set(deliveries) == {"b"}
