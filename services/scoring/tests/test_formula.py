"""The formula on hand-built facts: no database, no broker."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from spm_scoring.activities import ActivityKind, Goal, GoalActivity, Interaction, InteractionKind, interactions_for
from spm_scoring.formula import CheckIn, collaboration, latest_progress, performance, weeks_with_check_ins

AS_OF = datetime(2021, 3, 29, 12, 0, tzinfo=timezone.utc)
DAY = timedelta(days=1)
GOAL = Goal(org_id="org", goal_id="g1", owner_id="alice", team="search")


def check_in(key_result_id: str, progress: float, at: datetime, version: int = 1, event_id: str = "e") -> CheckIn:
    return CheckIn(key_result_id, progress, at, version, event_id)


def activity(kind: ActivityKind, actor: str, target: str | None = None, at: datetime = AS_OF, event_id: str = "e1") -> GoalActivity:
    return GoalActivity("org", event_id, "g1", kind, actor, target, at)


def components_of(score) -> dict[str, tuple[float, float, float]]:  # type: ignore[no-untyped-def]
    return {component.name: (component.value, component.weight, component.contribution) for component in score.components}


def test_week_boundaries_are_rolling_from_as_of() -> None:
    times = [
        AS_OF,                            # week 0 includes as_of itself
        AS_OF - 7 * DAY,                  # week 0 excludes its start, so this is the end of week 1
        AS_OF - 7 * DAY - timedelta(microseconds=1),
        AS_OF - 28 * DAY,                 # the window's start is exclusive
        AS_OF + timedelta(seconds=1),     # after as_of
    ]

    assert weeks_with_check_ins(times, AS_OF) == 1 + 1


def test_week_count_is_four_at_most() -> None:
    times = [AS_OF - n * DAY for n in range(28)]

    assert weeks_with_check_ins(times, AS_OF) == 4


def test_latest_progress_ignores_check_ins_after_as_of() -> None:
    check_ins = [
        check_in("k1", 0.2, AS_OF - 3 * DAY),
        check_in("k1", 0.5, AS_OF - DAY),
        check_in("k1", 0.9, AS_OF + DAY),
    ]

    assert latest_progress(check_ins, AS_OF) == {"k1": 0.5}


def test_latest_progress_breaks_time_ties_by_version() -> None:
    check_ins = [
        check_in("k1", 0.7, AS_OF, version=5, event_id="b"),
        check_in("k1", 0.3, AS_OF, version=4, event_id="c"),
    ]

    assert latest_progress(check_ins, AS_OF) == {"k1": 0.7}
    assert latest_progress(list(reversed(check_ins)), AS_OF) == {"k1": 0.7}


def test_performance_is_null_without_owned_goals() -> None:
    score = performance(False, [], [], AS_OF)

    assert score.score is None
    assert score.components == ()


def test_performance_mixes_mean_progress_and_cadence() -> None:
    check_ins = [
        check_in("k1", 0.4, AS_OF - 20 * DAY),
        check_in("k1", 0.8, AS_OF - 10 * DAY),
        check_in("k2", 1.5, AS_OF - DAY),
    ]

    score = performance(True, ["k1", "k2", "k3"], check_ins, AS_OF)

    # k1 0.8, k2 clamped to 1, k3 without a check-in 0: mean 0.6; weeks 2, 1 and 0 of 4.
    assert components_of(score) == {"mean_progress": (0.6, 70.0, 42.0), "cadence": (0.75, 30.0, 22.5)}
    assert score.score == 64.5


def test_performance_counts_negative_progress_as_zero() -> None:
    score = performance(True, ["k1"], [check_in("k1", -0.4, AS_OF - 40 * DAY)], AS_OF)

    assert score.score == 0.0


def test_performance_of_goals_without_key_results_is_zero() -> None:
    score = performance(True, [], [], AS_OF)

    assert score.score == 0.0
    assert components_of(score)["mean_progress"] == (0.0, 70.0, 0.0)


def test_tag_credits_tagged_person_and_links_tagger() -> None:
    rows = interactions_for(activity(ActivityKind.TAG, "carol", "dave"), GOAL)

    assert [(row.person_id, row.kind, row.other_person_id, row.weight) for row in rows] == [
        ("dave", InteractionKind.TAG_RECEIVED, "carol", 1),
        ("carol", InteractionKind.TAG_GIVEN, "dave", 0),
    ]


def test_help_check_in_credits_actor_and_links_owner() -> None:
    rows = interactions_for(activity(ActivityKind.CHECK_IN, "bob"), GOAL)

    assert [(row.person_id, row.kind, row.other_person_id, row.goal_team, row.weight) for row in rows] == [
        ("bob", InteractionKind.HELP_GIVEN, "alice", "search", 1),
        ("alice", InteractionKind.HELP_RECEIVED, "bob", "search", 0),
    ]


def test_follow_credits_owner_only() -> None:
    rows = interactions_for(activity(ActivityKind.FOLLOW, "erin"), GOAL)

    assert [(row.person_id, row.kind, row.other_person_id, row.weight) for row in rows] == [
        ("alice", InteractionKind.FOLLOW_RECEIVED, "erin", 1),
    ]


@pytest.mark.parametrize(
    "self_activity",
    [
        activity(ActivityKind.TAG, "alice", "alice"),
        activity(ActivityKind.TAG, "bob", "bob"),
        activity(ActivityKind.CHECK_IN, "alice"),
        activity(ActivityKind.FOLLOW, "alice"),
    ],
    ids=["owner tags self", "other tags self", "owner checks in", "owner follows"],
)
def test_self_interaction_credits_nobody(self_activity: GoalActivity) -> None:
    assert interactions_for(self_activity, GOAL) == []


def test_collaboration_sums_weighted_components() -> None:
    goal_other_team = Goal("org", "g2", "frank", "infra")
    rows = [
        *interactions_for(activity(ActivityKind.CHECK_IN, "bob", event_id="c1"), GOAL),
        *interactions_for(activity(ActivityKind.CHECK_IN, "bob", event_id="c2"), GOAL),
        *interactions_for(activity(ActivityKind.CHECK_IN, "bob", event_id="c3"), goal_other_team),
        *interactions_for(activity(ActivityKind.TAG, "carol", "bob", event_id="t1"), GOAL),
        *interactions_for(activity(ActivityKind.TAG, "bob", "dave", event_id="t2"), GOAL),
        *interactions_for(activity(ActivityKind.FOLLOW, "erin", event_id="f1"), GOAL),
    ]

    score = collaboration("bob", rows, AS_OF)

    assert components_of(score) == {
        "distinct_collaborators": (4, 5.0, 20.0),  # alice, frank, carol, dave
        "tags_received": (1, 3.0, 3.0),
        "help_check_ins": (3, 2.0, 6.0),
        "teams_helped": (2, 4.0, 8.0),
        "followers_gained": (0, 1.0, 0.0),
    }
    assert score.score == 37.0


def test_collaboration_counts_only_the_window() -> None:
    inside = interactions_for(activity(ActivityKind.FOLLOW, "erin", at=AS_OF - 28 * DAY + timedelta(seconds=1)), GOAL)
    on_start = interactions_for(activity(ActivityKind.FOLLOW, "erin", at=AS_OF - 28 * DAY, event_id="e2"), GOAL)
    after = interactions_for(activity(ActivityKind.FOLLOW, "erin", at=AS_OF + DAY, event_id="e3"), GOAL)

    score = collaboration("alice", [*inside, *on_start, *after], AS_OF)

    assert score.score == 1.0


def test_collaboration_ignores_rows_naming_self() -> None:
    forged = Interaction("org", "x", "alice", InteractionKind.TAG_RECEIVED, "alice", "g1", "search", 1, AS_OF)

    assert collaboration("alice", [forged], AS_OF).score == 0.0
