"""Recipients of activities, group keys and nudge deadlines, without any database."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from spm_notifications.rules import (
    COMMENT_ACTIVITY,
    COMMUNITY_LINK_ACTIVITY,
    FOLLOW_ACTIVITY,
    GOAL_COMMENTED,
    GOAL_FOLLOWED,
    KUDOS_ACTIVITY,
    MENTIONED,
    NOTIFICATION_KINDS,
    STATUS_ACTIVITY,
    Activity,
    CollaboratorChange,
    Deadline,
    FollowChange,
    GoalFacts,
    KeyResultCheckIn,
    OwnersChange,
    VisibilityChange,
    activity_recipients,
    check_in_deadlines,
    current_collaborators,
    falling_confidence_streaks,
    group_key_for,
    latest_at,
    notification_message,
    tag_deadlines,
)

NOON = datetime(2020, 3, 2, 12, 0, tzinfo=timezone.utc)


def minutes(count: float) -> datetime:
    return NOON + timedelta(minutes=count)


def days(count: float) -> datetime:
    return NOON + timedelta(days=count)


def facts(visibility: str = "organisation", **extra) -> GoalFacts:  # type: ignore[no-untyped-def]
    return GoalFacts(
        owners_changes=[OwnersChange(1, "olga", frozenset({"cora"}), minutes(-60))],
        visibility_changes=[VisibilityChange(1, visibility, minutes(-60))],
        **extra,
    )


def social(source: str, actor_id: str = "alex", **fields) -> Activity:  # type: ignore[no-untyped-def]
    return Activity(event_id="e1", source=source, goal_id="g", actor_id=actor_id, occurred_at=NOON, **fields)


def test_mention_wins_over_owner_kind() -> None:
    comment = social(COMMENT_ACTIVITY, people=frozenset({"cora", "fay", "alex"}))

    assert activity_recipients(comment, facts()) == {"olga": GOAL_COMMENTED, "cora": MENTIONED, "fay": MENTIONED}


def test_private_goal_mention_of_outsider_notifies_nobody() -> None:
    comment = social(COMMENT_ACTIVITY, people=frozenset({"fay"}))

    assert activity_recipients(comment, facts("private")) == {"olga": GOAL_COMMENTED, "cora": GOAL_COMMENTED}


def test_collaborator_hears_of_private_goal() -> None:
    kudos = social(KUDOS_ACTIVITY, people=frozenset({"tina", "fay"}))

    recipients = activity_recipients(kudos, facts("private", collaborator_ids=frozenset({"tina"})))

    assert set(recipients) == {"olga", "cora", "tina"}


def test_follow_of_unknown_goal_notifies_nobody() -> None:
    follow = social(FOLLOW_ACTIVITY)

    assert activity_recipients(follow, GoalFacts()) == {}


def test_follower_is_not_told_of_own_follow() -> None:
    assert activity_recipients(social(FOLLOW_ACTIVITY, actor_id="cora"), facts()) == {"olga": GOAL_FOLLOWED}


def test_status_change_goes_to_followers_at_its_time() -> None:
    follows = [FollowChange("f1", "fay", True, minutes(-5), 1), FollowChange("f2", "finn", True, minutes(5), 2)]
    closed = social(STATUS_ACTIVITY, actor_id="olga", goal_version=3, detail="closed")

    assert activity_recipients(closed, facts(follow_changes=follows)) == {"fay": "followed_goal_closed"}


def test_community_link_goes_to_members_at_its_time() -> None:
    members = {"guild": [FollowChange("j1", "mia", True, minutes(-5), 1), FollowChange("j2", "otto", True, minutes(5), 2)]}
    link = social(COMMUNITY_LINK_ACTIVITY, community_id="guild")

    assert activity_recipients(link, facts(member_changes=members)) == {"mia": "community_goal_linked"}


def test_latest_at_falls_back_to_first_fact() -> None:
    changes = [VisibilityChange(1, "private", minutes(10)), VisibilityChange(2, "organisation", minutes(20))]

    assert latest_at(changes, minutes(15)) == changes[0]
    assert latest_at(changes, minutes(25)) == changes[1]
    assert latest_at(changes, minutes(5)) == changes[0]
    assert latest_at([], minutes(5)) is None


def test_group_key_only_for_burst_kinds() -> None:
    assert group_key_for(GOAL_FOLLOWED, "g", NOON) == "goal_followed|g|2020-03-02"
    assert group_key_for(GOAL_FOLLOWED, "g", NOON + timedelta(hours=12)) == "goal_followed|g|2020-03-03"
    assert group_key_for(MENTIONED, "g", NOON) is None


@pytest.mark.parametrize("kind", sorted(NOTIFICATION_KINDS))
def test_every_kind_has_single_and_grouped_message(kind: str) -> None:
    single, grouped = notification_message(kind, "Grow revenue"), notification_message(kind, "Grow revenue", 3)

    assert '"Grow revenue"' in single
    assert '"Grow revenue"' in grouped
    assert single[0].isupper() or single[0] == '"'
    assert "a goal" in notification_message(kind, None).lower()


def test_unknown_kind_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown notification kind 'nope'"):
        notification_message("nope", "Grow revenue")


def check_in(event_id: str, when: datetime, confidence: float | None = None, version: int = 1) -> KeyResultCheckIn:
    return KeyResultCheckIn(event_id, "alex", when, version, confidence)


def test_check_in_deadlines_one_per_silence() -> None:
    added = check_in("added", days(0))
    history = [check_in("c1", days(5)), check_in("c2", days(25)), check_in("c3", days(30))]

    assert check_in_deadlines(added, history) == [Deadline("c1", days(19)), Deadline("c3", days(44))]


def test_check_in_dated_before_key_result_is_ignored() -> None:
    assert check_in_deadlines(check_in("added", days(0)), [check_in("old", days(-3))]) == [Deadline("added", days(14))]


def test_confidence_streaks_fire_at_second_drop() -> None:
    values = [0.9, 0.8, None, 0.7, 0.6, 0.7, 0.7, 0.5, 0.4]
    history = [check_in(f"c{index}", days(index), value) for index, value in enumerate(values)]

    assert [found.event_id for found in falling_confidence_streaks(history)] == ["c3", "c8"]


def test_tag_deadlines_skip_answered_and_self_tags() -> None:
    changes = [
        CollaboratorChange("t1", "tina", "tagged", days(0), 1, "olga"),
        CollaboratorChange("t2", "fay", "tagged", days(0), 2, "olga"),
        CollaboratorChange("a2", "fay", "accepted", days(1), 3, "fay"),
        CollaboratorChange("t3", "mia", "tagged", days(0), 4, "mia"),
        CollaboratorChange("t4", "finn", "tagged", days(0), 5, "olga"),
        CollaboratorChange("d4", "finn", "declined", days(4), 6, "finn"),
    ]

    assert tag_deadlines(changes) == {
        "t1": ("tina", Deadline("t1", days(3))),
        "t4": ("finn", Deadline("t4", days(3))),
    }
    assert current_collaborators(changes) == {"tina", "fay", "mia"}
