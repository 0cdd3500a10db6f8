"""Who receives which notification, and how it reads, without any database."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from spm_notifications.rules import (
    FOLLOWED_GOAL_CHECK_IN,
    TAGGED,
    FollowChange,
    check_in_recipients,
    followers_at,
    notification_id_for,
    notification_message,
    tagged_recipients,
)

NOON = datetime(2020, 3, 2, 12, 0, tzinfo=timezone.utc)


def change(person_id: str, following: bool, minutes: int, version: int) -> FollowChange:
    return FollowChange(
        event_id=f"{person_id}-{version}",
        person_id=person_id,
        following=following,
        occurred_at=NOON + timedelta(minutes=minutes),
        aggregate_version=version,
    )


def test_tag_notifies_tagged_person() -> None:
    assert tagged_recipients("tina", actor_id="alex") == {"tina"}


def test_self_tag_notifies_nobody() -> None:
    assert tagged_recipients("alex", actor_id="alex") == set()


def test_check_in_notifies_followers_but_not_actor() -> None:
    changes = [change("fay", True, -10, 1), change("alex", True, -9, 2), change("finn", True, -8, 3)]

    assert check_in_recipients(changes, NOON, actor_id="alex") == {"fay", "finn"}


def test_check_in_skips_person_who_unfollowed_before() -> None:
    changes = [change("fay", True, -10, 1), change("fay", False, -5, 2)]

    assert check_in_recipients(changes, NOON, actor_id="alex") == set()


def test_check_in_skips_person_who_followed_after() -> None:
    changes = [change("fay", True, 5, 1)]

    assert check_in_recipients(changes, NOON, actor_id="alex") == set()


def test_follow_at_same_instant_counts() -> None:
    assert followers_at([change("fay", True, 0, 1)], NOON) == {"fay"}


def test_refollow_after_unfollow_counts() -> None:
    changes = [change("fay", True, -10, 1), change("fay", False, -5, 2), change("fay", True, -1, 3)]

    assert followers_at(changes, NOON) == {"fay"}


def test_version_orders_changes_at_same_instant() -> None:
    follow_then_unfollow = [change("fay", False, -1, 2), change("fay", True, -1, 1)]
    unfollow_then_follow = [change("fay", True, -1, 2), change("fay", False, -1, 1)]

    assert followers_at(follow_then_unfollow, NOON) == set()
    assert followers_at(unfollow_then_follow, NOON) == {"fay"}


def test_notification_id_is_stable_per_event_and_recipient() -> None:
    first = notification_id_for("event-1", "fay")

    assert first == notification_id_for("event-1", "fay")
    assert first != notification_id_for("event-1", "finn")
    assert first != notification_id_for("event-2", "fay")


def test_messages_name_goal_not_people() -> None:
    assert notification_message(TAGGED, "Ship the inbox") == 'You were tagged on "Ship the inbox"'
    assert notification_message(FOLLOWED_GOAL_CHECK_IN, "Ship the inbox") == (
        'A check-in was recorded on "Ship the inbox", a goal you follow'
    )


def test_message_without_known_title_says_a_goal() -> None:
    assert notification_message(TAGGED, None) == "You were tagged on a goal"


def test_unknown_kind_raises() -> None:
    with pytest.raises(ValueError, match="unknown notification kind 'kudos'"):
        notification_message("kudos", "Ship the inbox")
