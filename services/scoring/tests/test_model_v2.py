"""Model v2 on hand-built events applied to a real read model (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from spm_scoring.engine import OrgScores, SubjectScores
from spm_scoring.model import ScoringModelV2
from spm_scoring.windows import InvalidWindowError

T0 = datetime(2021, 3, 1, 9, 0, tzinfo=timezone.utc)
DAY = timedelta(days=1)


def component(subject: SubjectScores, kind: str, name: str):  # type: ignore[no-untyped-def]
    score = subject.performance if kind == "performance" else subject.collaboration
    return next(item for item in score.components if item.name == name)


def raw(scores: OrgScores, person: str, name: str) -> float | None:
    return component(scores.people[person], "collaboration", name).raw


def test_only_accepted_tags_count(feeder, org_events, v2_scores) -> None:  # type: ignore[no-untyped-def]
    feeder.apply(
        [
            org_events.goal_created("g1", owner="alice", team="search", at=T0),
            org_events.collaborator_tagged("g1", tagger="alice", tagged="bob", at=T0 + DAY),
            org_events.collaborator_tagged("g1", tagger="alice", tagged="carol", at=T0 + DAY),
            org_events.collaborator_tagged("g1", tagger="alice", tagged="dave", at=T0 + DAY),
            org_events.tag_accepted("g1", "bob", at=T0 + 2 * DAY),
            org_events.tag_declined("g1", "dave", at=T0 + 2 * DAY),
        ]
    )

    scores = v2_scores(feeder.store, org_events.org_id)

    assert raw(scores, "bob", "accepted_tags") == 1
    assert raw(scores, "bob", "distinct_collaborators") == 1
    assert component(scores.people["bob"], "collaboration", "reciprocity").value == 1.0
    assert raw(scores, "carol", "accepted_tags") == 0
    assert raw(scores, "carol", "distinct_collaborators") == 0
    assert raw(scores, "dave", "distinct_collaborators") == 0
    assert raw(scores, "alice", "accepted_tags") == 0
    assert raw(scores, "alice", "distinct_collaborators") == 1


def test_accepted_tag_stops_counting_after_leaving(feeder, org_events, v2_scores) -> None:  # type: ignore[no-untyped-def]
    feeder.apply(
        [
            org_events.goal_created("g1", owner="alice", team="search", at=T0),
            org_events.collaborator_tagged("g1", tagger="alice", tagged="bob", at=T0 + DAY),
            org_events.tag_accepted("g1", "bob", at=T0 + 2 * DAY),
            org_events.collaborator_left("g1", "bob", at=T0 + 10 * DAY),
            org_events.goal_created("g2", owner="erin", team="infra", at=T0 + 40 * DAY),
        ]
    )

    while_collaborating = v2_scores(feeder.store, org_events.org_id, as_of=T0 + 12 * DAY)
    after_leaving = v2_scores(feeder.store, org_events.org_id)

    # The 28-day window ending at T0+12d still contains days 2 to 10 of the collaboration.
    assert raw(while_collaborating, "bob", "accepted_tags") == 1
    assert raw(after_leaving, "bob", "accepted_tags") == 0


@pytest.mark.parametrize("ending", ["tag_declined", "collaborator_left", "collaborator_untagged"])
def test_ended_tag_stops_the_tie_at_its_time(feeder, org_events, v2_scores, ending) -> None:  # type: ignore[no-untyped-def]
    events = [
        org_events.goal_created("g1", owner="alice", team="search", at=T0),
        org_events.collaborator_tagged("g1", tagger="alice", tagged="bob", at=T0 + DAY),
        org_events.tag_accepted("g1", "bob", at=T0 + 2 * DAY),
    ]
    # Built after the acceptance, so its social-graph version is the later one.
    end_tag = getattr(org_events, ending)
    if ending == "collaborator_untagged":
        events.append(end_tag("g1", "bob", actor="alice", at=T0 + 10 * DAY))
    else:
        events.append(end_tag("g1", "bob", at=T0 + 10 * DAY))
    events.append(org_events.goal_created("g2", owner="erin", team="infra", at=T0 + 20 * DAY))
    feeder.apply(events)

    # The 7-day windows end 1 second before and 1 second after 7 days past the tag's end.
    last_window_with_tie = v2_scores(feeder.store, org_events.org_id, window="7d", as_of=T0 + 17 * DAY - timedelta(seconds=1))
    first_window_without = v2_scores(feeder.store, org_events.org_id, window="7d", as_of=T0 + 17 * DAY + timedelta(seconds=1))

    assert raw(last_window_with_tie, "bob", "accepted_tags") == 1
    assert raw(last_window_with_tie, "alice", "distinct_collaborators") == 1
    assert raw(first_window_without, "bob", "accepted_tags") == 0
    assert raw(first_window_without, "bob", "distinct_collaborators") == 0
    assert raw(first_window_without, "alice", "distinct_collaborators") == 0


def test_repeated_kudos_count_less(feeder, org_events, v2_scores) -> None:  # type: ignore[no-untyped-def]
    feeder.apply(
        [
            org_events.goal_created("g1", owner="dave", team="search", at=T0),
            org_events.kudos_given("g1", giver="carol", receiver="dave", at=T0 + DAY),
            org_events.kudos_given("g1", giver="carol", receiver="dave", at=T0 + 2 * DAY),
            org_events.kudos_given("g1", giver="carol", receiver="dave", at=T0 + 3 * DAY),
            org_events.kudos_given("g1", giver="dave", receiver="dave", at=T0 + 3 * DAY),
            org_events.kudos_given("g1", giver="dave", receiver="carol", at=T0 + 4 * DAY),
        ]
    )

    scores = v2_scores(feeder.store, org_events.org_id)
    received = component(scores.people["dave"], "collaboration", "kudos_received")

    assert received.raw == 1 + 0.5 + 0.25
    assert received.value == round(1.75 / (1.75 + 3), 4)
    assert [item.impact for item in received.evidence] == [1.0, 0.5, 0.25]
    assert raw(scores, "dave", "kudos_given") == 1
    assert raw(scores, "carol", "kudos_given") == 1.75
    assert raw(scores, "carol", "kudos_received") == 1


def test_comments_help_unless_deleted_or_own(feeder, org_events, v2_scores) -> None:  # type: ignore[no-untyped-def]
    feeder.apply(
        [
            org_events.goal_created("g1", owner="alice", team="search", at=T0),
            org_events.key_result_added("g1", "k1", actor="alice", at=T0),
            org_events.check_in("g1", "k1", actor="bob", progress=0.2, at=T0 + DAY),
            org_events.comment_posted("g1", "bob", "c1", at=T0 + DAY),
            org_events.comment_posted("g1", "bob", "c2", at=T0 + 2 * DAY),
            org_events.comment_posted("g1", "bob", "c3", at=T0 + 3 * DAY),
            org_events.comment_deleted("g1", "bob", "c3", at=T0 + 4 * DAY),
            org_events.comment_posted("g1", "alice", "c4", at=T0 + 4 * DAY),
        ]
    )

    scores = v2_scores(feeder.store, org_events.org_id)

    # One check-in, then two comments to the same owner at 1 and 0.5; c3 was deleted.
    assert raw(scores, "bob", "help_on_others_goals") == 2.5
    assert raw(scores, "alice", "help_on_others_goals") == 0
    goal = next(iter(scores.goals.values()))
    assert component(goal, "collaboration", "comments").raw == 1.5
    assert component(goal, "collaboration", "contributors").raw == 1


def test_reactions_help_unless_removed_or_own(feeder, org_events, v2_scores) -> None:  # type: ignore[no-untyped-def]
    feeder.apply(
        [
            org_events.goal_created("g1", owner="alice", team="search", at=T0),
            org_events.comment_posted("g1", "carol", "c1", at=T0 + DAY),
            org_events.reaction_added("g1", "bob", at=T0 + DAY),
            org_events.reaction_added("g1", "bob", at=T0 + 2 * DAY, target=("comment", "c1"), reaction="insightful"),
            org_events.reaction_added("g1", "bob", at=T0 + 3 * DAY, reaction="celebrate"),
            org_events.reaction_added("g1", "dave", at=T0 + 3 * DAY),
            org_events.reaction_removed("g1", "dave", at=T0 + 4 * DAY),
            org_events.reaction_added("g1", "alice", at=T0 + 4 * DAY),
            org_events.reaction_added("g1", "erin", at=T0 + 5 * DAY),
            org_events.reaction_removed("g1", "erin", at=T0 + 6 * DAY),
            org_events.reaction_added("g1", "erin", at=T0 + 7 * DAY),
        ]
    )

    scores = v2_scores(feeder.store, org_events.org_id)
    before_removal = v2_scores(feeder.store, org_events.org_id, as_of=T0 + 3 * DAY + timedelta(hours=1))
    help_of_bob = component(scores.people["bob"], "collaboration", "help_on_others_goals")
    goal = next(iter(scores.goals.values()))

    # bob's three reactions to alice's goal count 1, 0.5 and 0.25, and tie him to alice.
    assert help_of_bob.raw == 1.75
    assert [item.impact for item in help_of_bob.evidence] == [1.0, 0.5, 0.25]
    assert {item.fact.event_type for item in help_of_bob.evidence} == {"spm.social.ReactionAdded.v1"}
    assert raw(scores, "bob", "distinct_collaborators") == 1
    # dave removed his reaction: it counts until the removal and never after.
    assert raw(before_removal, "dave", "help_on_others_goals") == 1
    assert raw(scores, "dave", "help_on_others_goals") == 0
    assert raw(scores, "dave", "distinct_collaborators") == 0
    # erin removed her first reaction and reacted again: the second one counts.
    assert raw(scores, "erin", "help_on_others_goals") == 1
    # The owner reacting to her own goal is credited nothing.
    assert raw(scores, "alice", "help_on_others_goals") == 0
    assert raw(scores, "alice", "distinct_collaborators") == 3
    assert component(goal, "collaboration", "contributors").raw == 3
    assert component(goal, "collaboration", "comments").raw == 1


def test_pace_compares_progress_with_the_trajectory(feeder, org_events, v2_scores) -> None:  # type: ignore[no-untyped-def]
    halfway = datetime(2021, 3, 17, 12, 0, tzinfo=timezone.utc)  # 44.5 of the period's 89 days
    feeder.apply(
        [
            org_events.goal_created("g1", owner="alice", team="search", at=T0 - 20 * DAY),
            org_events.key_result_added("g1", "k1", actor="alice", at=T0 - 20 * DAY),
            org_events.key_result_added("g1", "k2", actor="alice", at=T0 - 20 * DAY, weight=3),
            org_events.check_in("g1", "k1", actor="alice", progress=0.25, at=halfway - DAY),
            org_events.check_in("g1", "k2", actor="alice", progress=0.8, at=halfway),
        ]
    )

    scores = v2_scores(feeder.store, org_events.org_id)
    pace = component(scores.people["alice"], "performance", "pace")

    # k1 is at half the expected 0.5; k2 is ahead and counts 1. Weighted: (1 * 0.5 + 3 * 1) / 4.
    assert pace.value == 0.875
    assert [item.fact.object_id for item in pace.evidence] == [org_events.goal_id("k2"), org_events.goal_id("k1")]


def test_cadence_counts_weeks_while_each_goal_is_live(feeder, org_events, v2_scores) -> None:  # type: ignore[no-untyped-def]
    end = T0 + 30 * DAY
    feeder.apply(
        [
            org_events.goal_created("g1", owner="alice", team="search", at=T0 - 5 * DAY),
            org_events.key_result_added("g1", "k1", actor="alice", at=T0 - 5 * DAY),
            org_events.goal_created("g2", owner="alice", team="search", at=end - 10 * DAY),
            org_events.key_result_added("g2", "k2", actor="alice", at=end - 10 * DAY),
            org_events.check_in("g1", "k1", actor="alice", progress=0.1, at=end - 15 * DAY),
            org_events.check_in("g1", "k1", actor="bob", progress=0.2, at=end - 8 * DAY),
            org_events.check_in("g1", "k1", actor="alice", progress=0.3, at=end - 2 * DAY),
            org_events.check_in("g1", "k1", actor="alice", progress=0.4, at=end - DAY),
            org_events.check_in("g2", "k2", actor="alice", progress=0.1, at=end - 3 * DAY),
            org_events.check_in("g2", "k2", actor="alice", progress=0.2, at=end),
        ]
    )

    four_weeks = v2_scores(feeder.store, org_events.org_id)
    one_week = v2_scores(feeder.store, org_events.org_id, window="7d")

    # g1: 3 of 4 weeks. g2, created 10 days back, is live in 2 weeks and has a check-in in 1.
    assert component(four_weeks.people["alice"], "performance", "cadence").value == (0.75 + 0.5) / 2
    assert component(one_week.people["alice"], "performance", "cadence").value == 1.0


def test_confidence_and_outcomes_of_closed_goals(feeder, org_events, v2_scores) -> None:  # type: ignore[no-untyped-def]
    feeder.apply(
        [
            org_events.goal_created("g1", owner="alice", team="search", at=T0),
            org_events.key_result_added("g1", "k1", actor="alice", at=T0),
            org_events.check_in("g1", "k1", actor="alice", progress=0.5, at=T0 + DAY, confidence=0.9),
            org_events.check_in("g1", "k1", actor="alice", progress=1.0, at=T0 + 2 * DAY, confidence=0.7),
            org_events.status_changed("g1", "closed", "active", actor="alice", at=T0 + 3 * DAY, outcome="achieved"),
            org_events.status_changed("g1", "archived", "closed", actor="alice", at=T0 + 4 * DAY),
            org_events.goal_created("g2", owner="alice", team="search", at=T0),
            org_events.key_result_added("g2", "k2", actor="alice", at=T0),
            org_events.check_in("g2", "k2", actor="alice", progress=0.1, at=T0 + DAY, confidence=0.8),
            org_events.status_changed("g2", "closed", "active", actor="alice", at=T0 + 3 * DAY, outcome="missed"),
            org_events.goal_created("g3", owner="alice", team="search", at=T0),
            org_events.status_changed("g3", "closed", "active", actor="alice", at=T0 + 3 * DAY, outcome="achieved"),
            org_events.status_changed("g3", "active", "closed", actor="alice", at=T0 + 5 * DAY),
        ]
    )

    alice = v2_scores(feeder.store, org_events.org_id).people["alice"]

    # Brier: (0.9-1)^2, (0.7-1)^2, (0.8-0)^2; g3 was reopened and counts in neither component.
    assert component(alice, "performance", "confidence_calibration").value == round(1 - (0.01 + 0.09 + 0.64) / 3, 4)
    assert component(alice, "performance", "goals_achieved").value == 0.5
    assert component(alice, "performance", "goals_achieved").raw == 2


def test_help_follows_the_owners_at_the_time(feeder, org_events, v2_scores) -> None:  # type: ignore[no-untyped-def]
    feeder.apply(
        [
            org_events.goal_created("g1", owner="alice", team="search", at=T0),
            org_events.key_result_added("g1", "k1", actor="alice", at=T0),
            org_events.check_in("g1", "k1", actor="bob", progress=0.1, at=T0 + DAY / 2),
            org_events.owners_changed("g1", owner="bob", actor="alice", at=T0 + DAY),
            org_events.check_in("g1", "k1", actor="bob", progress=0.2, at=T0 + 2 * DAY),
            org_events.check_in("g1", "k1", actor="alice", progress=0.3, at=T0 + 3 * DAY),
        ]
    )

    scores = v2_scores(feeder.store, org_events.org_id)

    assert raw(scores, "bob", "help_on_others_goals") == 1
    assert raw(scores, "alice", "help_on_others_goals") == 1
    assert scores.people["alice"].performance.score is None
    assert scores.people["bob"].performance.score is not None


def test_cross_team_share_reciprocity_and_brokerage(feeder, org_events, v2_scores) -> None:  # type: ignore[no-untyped-def]
    feeder.apply(
        [
            org_events.goal_created("g1", owner="alice", team="search", at=T0),
            org_events.key_result_added("g1", "k1", actor="alice", at=T0),
            org_events.goal_created("g2", owner="bob", team="infra", at=T0),
            org_events.key_result_added("g2", "k2", actor="bob", at=T0),
            org_events.goal_created("g3", owner="carol", team="search", at=T0),
            org_events.check_in("g1", "k1", actor="bob", progress=0.1, at=T0 + DAY),
            org_events.check_in("g2", "k2", actor="alice", progress=0.1, at=T0 + DAY),
            org_events.comment_posted("g1", "carol", "c1", at=T0 + 2 * DAY),
        ]
    )

    alice = v2_scores(feeder.store, org_events.org_id).people["alice"]
    bob = v2_scores(feeder.store, org_events.org_id).people["bob"]

    assert alice.team == "search"
    assert component(alice, "collaboration", "cross_team_share").value == 0.5
    assert component(alice, "collaboration", "reciprocity").value == 0.5
    assert component(alice, "collaboration", "degree").value == 1.0
    assert component(alice, "collaboration", "brokerage").value == 1.0
    assert component(bob, "collaboration", "degree").value == 0.5
    assert component(bob, "collaboration", "brokerage").value == 0.0


def test_self_interaction_never_counts(feeder, org_events, v2_scores) -> None:  # type: ignore[no-untyped-def]
    feeder.apply(
        [
            org_events.goal_created("g1", owner="alice", team="search", at=T0),
            org_events.key_result_added("g1", "k1", actor="alice", at=T0),
            org_events.check_in("g1", "k1", actor="alice", progress=0.3, at=T0 + DAY),
            org_events.comment_posted("g1", "alice", "c1", at=T0 + DAY),
            org_events.kudos_given("g1", giver="alice", receiver="alice", at=T0 + DAY),
            org_events.collaborator_tagged("g1", tagger="alice", tagged="alice", at=T0 + DAY),
            org_events.tag_accepted("g1", "alice", at=T0 + 2 * DAY),
        ]
    )

    alice = v2_scores(feeder.store, org_events.org_id).people["alice"]

    for name in ("distinct_collaborators", "help_on_others_goals", "kudos_received", "kudos_given"):
        assert component(alice, "collaboration", name).raw == 0, name
    assert alice.collaboration.score == 0.0


def test_small_team_shows_no_network_figure(feeder, org_events, v2_scores) -> None:  # type: ignore[no-untyped-def]
    events = []
    for index in range(5):
        events.append(org_events.goal_created(f"s{index}", owner=f"searcher{index}", team="search", at=T0))
        events.append(org_events.key_result_added(f"s{index}", f"sk{index}", actor=f"searcher{index}", at=T0))
    for index in range(2):
        events.append(org_events.goal_created(f"l{index}", owner=f"seller{index}", team="sales", at=T0))
    events.append(org_events.check_in("s0", "sk0", actor="searcher1", progress=0.4, at=T0 + DAY))
    events.append(org_events.check_in("s1", "sk1", actor="seller0", progress=0.4, at=T0 + DAY))
    feeder.apply(events)

    teams = v2_scores(feeder.store, org_events.org_id).teams

    assert teams["search"].member_count == 5
    assert teams["search"].collaboration.score is not None
    assert teams["search"].collaboration.withheld_reason is None
    assert teams["sales"].member_count == 2
    assert teams["sales"].collaboration.score is None
    assert teams["sales"].collaboration.withheld_reason == "teams with fewer than 5 members show no network figure"
    assert teams["sales"].performance.score is not None


def test_minimum_group_size_is_configurable(feeder, org_events, v2_scores) -> None:  # type: ignore[no-untyped-def]
    feeder.apply(
        [
            org_events.goal_created("l0", owner="seller0", team="sales", at=T0),
            org_events.goal_created("l1", owner="seller1", team="sales", at=T0),
        ]
    )

    teams = v2_scores(feeder.store, org_events.org_id, model=ScoringModelV2(min_group_size=2)).teams

    assert teams["sales"].collaboration.withheld_reason is None


def test_windows_and_periods(feeder, org_events, v2_scores) -> None:  # type: ignore[no-untyped-def]
    feeder.apply(
        [
            org_events.goal_created("g1", owner="alice", team="search", at=T0),
            org_events.key_result_added("g1", "k1", actor="alice", at=T0),
            org_events.check_in("g1", "k1", actor="bob", progress=0.3, at=T0 - 29 * DAY),
            org_events.check_in("g1", "k1", actor="bob", progress=0.3, at=T0 + 60 * DAY),
        ]
    )

    quarter = v2_scores(feeder.store, org_events.org_id, window="period:FY21-Q1")
    last_90_days = v2_scores(feeder.store, org_events.org_id, window="90d")

    # The period runs from 2021-02-01 to 2021-04-30: it leaves out the check-in of 2021-01-31, which
    # the 90 days before 2021-04-30 09:00 hold.
    assert quarter.window.start == datetime(2021, 2, 1, tzinfo=timezone.utc)
    assert quarter.window.end == T0 + 60 * DAY
    assert raw(quarter, "bob", "help_on_others_goals") == 1
    assert raw(last_90_days, "bob", "help_on_others_goals") == 2
    with pytest.raises(InvalidWindowError):
        v2_scores(feeder.store, org_events.org_id, window="period:FY99")
    with pytest.raises(InvalidWindowError):
        v2_scores(feeder.store, org_events.org_id, window="14d")
