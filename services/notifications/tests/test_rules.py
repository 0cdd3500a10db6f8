"""Who receives which notification, and how it reads, without any database."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from spm_notifications.rules import (
    FOLLOWED_GOAL_CHECK_IN,
    OWNED_GOAL_CHECK_IN,
    TAGGED,
    CheckIn,
    FollowChange,
    OwnersChange,
    VisibilityChange,
    check_in_notifications,
    followers_at,
    latest_before,
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


def check_in_by(actor_id: str, version: int = 10) -> CheckIn:
    return CheckIn(event_id=f"check-in-{version}", actor_id=actor_id, occurred_at=NOON, aggregate_version=version)


def followers_of(changes: list[FollowChange], actor_id: str) -> dict[str, str]:
    """Return the recipients of a check-in on a goal with no known owners or visibility."""
    return check_in_notifications(check_in_by(actor_id), changes, [], [], frozenset())


def test_check_in_notifies_followers_but_not_actor() -> None:
    changes = [change("fay", True, -10, 1), change("alex", True, -9, 2), change("finn", True, -8, 3)]

    assert followers_of(changes, actor_id="alex") == {"fay": FOLLOWED_GOAL_CHECK_IN, "finn": FOLLOWED_GOAL_CHECK_IN}


def test_check_in_skips_person_who_unfollowed_before() -> None:
    changes = [change("fay", True, -10, 1), change("fay", False, -5, 2)]

    assert followers_of(changes, actor_id="alex") == {}


def test_check_in_skips_person_who_followed_after() -> None:
    changes = [change("fay", True, 5, 1)]

    assert followers_of(changes, actor_id="alex") == {}


OWNERS_V1 = OwnersChange(aggregate_version=1, owner_id="olga", co_owner_ids=frozenset({"cora"}))
OWNERS_V5 = OwnersChange(aggregate_version=5, owner_id="olga", co_owner_ids=frozenset({"dan"}))


def test_check_in_notifies_owner_and_co_owners() -> None:
    recipients = check_in_notifications(check_in_by("alex"), [], [OWNERS_V1], [], frozenset())

    assert recipients == {"olga": OWNED_GOAL_CHECK_IN, "cora": OWNED_GOAL_CHECK_IN}


def test_co_owner_checking_in_notifies_owner_only() -> None:
    recipients = check_in_notifications(check_in_by("cora"), [], [OWNERS_V1], [], frozenset())

    assert recipients == {"olga": OWNED_GOAL_CHECK_IN}


def test_following_owner_gets_owner_kind() -> None:
    changes = [change("cora", True, -10, 1)]

    recipients = check_in_notifications(check_in_by("olga"), changes, [OWNERS_V1], [], frozenset())

    assert recipients == {"cora": OWNED_GOAL_CHECK_IN}


def test_owners_at_check_in_version_notified() -> None:
    owners = [OWNERS_V5, OWNERS_V1]

    before_change = check_in_notifications(check_in_by("olga", version=4), [], owners, [], frozenset())
    after_change = check_in_notifications(check_in_by("olga", version=6), [], owners, [], frozenset())

    assert before_change == {"cora": OWNED_GOAL_CHECK_IN}
    assert after_change == {"dan": OWNED_GOAL_CHECK_IN}


def test_private_goal_notifies_insiders_only() -> None:
    changes = [change("fay", True, -10, 1), change("colin", True, -9, 2)]
    private = [VisibilityChange(aggregate_version=1, visibility="private")]

    recipients = check_in_notifications(check_in_by("alex"), changes, [OWNERS_V1], private, frozenset({"colin"}))

    assert recipients == {
        "olga": OWNED_GOAL_CHECK_IN,
        "cora": OWNED_GOAL_CHECK_IN,
        "colin": FOLLOWED_GOAL_CHECK_IN,
    }


@pytest.mark.parametrize("visibility", ["organisation", "team"])
def test_open_goal_notifies_every_follower(visibility: str) -> None:
    changes = [change("fay", True, -10, 1)]
    visibility_changes = [VisibilityChange(aggregate_version=1, visibility=visibility)]

    recipients = check_in_notifications(check_in_by("alex"), changes, [OWNERS_V1], visibility_changes, frozenset())

    assert recipients["fay"] == FOLLOWED_GOAL_CHECK_IN


def test_visibility_in_force_at_check_in_version_decides() -> None:
    changes = [change("fay", True, -10, 1)]
    history = [
        VisibilityChange(aggregate_version=1, visibility="organisation"),
        VisibilityChange(aggregate_version=5, visibility="private"),
        VisibilityChange(aggregate_version=8, visibility="organisation"),
    ]

    def fay_notified(version: int) -> bool:
        return "fay" in check_in_notifications(check_in_by("alex", version), changes, [OWNERS_V1], history, frozenset())

    assert fay_notified(4) is True
    assert fay_notified(6) is False
    assert fay_notified(9) is True


def test_private_goal_with_unknown_owners_notifies_collaborators() -> None:
    changes = [change("fay", True, -10, 1), change("colin", True, -9, 2)]
    private = [VisibilityChange(aggregate_version=2, visibility="private")]

    recipients = check_in_notifications(check_in_by("alex"), changes, [], private, frozenset({"colin"}))

    assert recipients == {"colin": FOLLOWED_GOAL_CHECK_IN}


def test_latest_before_ignores_same_and_later_versions() -> None:
    history = [VisibilityChange(3, "team"), VisibilityChange(1, "organisation"), VisibilityChange(7, "private")]

    assert latest_before(history, 1) is None
    assert latest_before(history, 3) == VisibilityChange(1, "organisation")
    assert latest_before(history, 7) == VisibilityChange(3, "team")
    assert latest_before(history, 100) == VisibilityChange(7, "private")


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
    assert notification_message(OWNED_GOAL_CHECK_IN, "Ship the inbox") == (
        'A check-in was recorded on "Ship the inbox", a goal you own'
    )


def test_message_without_known_title_says_a_goal() -> None:
    assert notification_message(TAGGED, None) == "You were tagged on a goal"


def test_unknown_kind_raises() -> None:
    with pytest.raises(ValueError, match="unknown notification kind 'kudos'"):
        notification_message("kudos", "Ship the inbox")
