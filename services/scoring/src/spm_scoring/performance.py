"""Model v2 performance components over a set of goals: pace, cadence, confidence calibration, goals achieved.

The same components score a person (the goals they own or co-own), a team (the goals of the
team) and a single goal.
"""

from __future__ import annotations

from datetime import datetime

from spm_scoring.components import ComponentResult, Evidence
from spm_scoring.facts import Fact
from spm_scoring.history import GoalView, OrgHistory
from spm_scoring.windows import Window


def performance_components(history: OrgHistory, goals: list[GoalView], window: Window) -> list[ComponentResult]:
    as_of = window.end
    worked_on = [goal for goal in goals if goal.is_worked_on]
    closed = [goal for goal in goals if goal.outcome is not None and window.contains(goal.closed_at)]  # type: ignore[arg-type]
    return [
        pace(history, worked_on, as_of),
        cadence(history, worked_on, window),
        confidence_calibration(history, closed),
        goals_achieved(closed),
    ]


def expected_progress(goal: GoalView, as_of: datetime) -> float:
    """Return the share of the goal's period elapsed at ``as_of``: the straight-line trajectory from 0 to 1."""
    start, end = goal.period.starts_at, goal.period.ends_before
    elapsed = (min(as_of, end) - start) / (end - start)
    return min(1.0, max(0.0, elapsed))


def latest_check_in(history: OrgHistory, goal_id: str, key_result_id: str, as_of: datetime) -> Fact | None:
    latest = None
    for check_in in history.check_ins_by_goal.get(goal_id, ()):
        if check_in.object_id == key_result_id and check_in.occurred_at <= as_of:
            latest = check_in
    return latest


def pace(history: OrgHistory, goals: list[GoalView], as_of: datetime) -> ComponentResult:
    """Compute the weighted mean over key results of min(1, progress / expected progress), for periods already started."""
    items: list[tuple[float, float, Fact | None]] = []
    for goal in goals:
        expected = expected_progress(goal, as_of)
        if expected <= 0:
            continue
        for key_result in goal.key_results:
            latest = latest_check_in(history, goal.goal_id, key_result.key_result_id, as_of)
            progress = 0.0 if latest is None else max(0.0, float(latest.details["progress"]))
            items.append((key_result.weight, min(1.0, progress / expected), latest))
    if not items:
        return ComponentResult("pace", None)
    total_weight = sum(weight for weight, _ratio, _fact in items)
    value = sum(weight * ratio for weight, ratio, _fact in items) / total_weight
    evidence = tuple(
        Evidence(fact, weight * ratio / total_weight) for weight, ratio, fact in items if fact is not None
    )
    return ComponentResult("pace", value, None, evidence)


def cadence(history: OrgHistory, goals: list[GoalView], window: Window) -> ComponentResult:
    """Compute the mean over goals of the share of the window's weeks, while the goal was live, with a check-in on it."""
    weeks = window.weeks()
    shares: list[float] = []
    evidence: list[tuple[Fact, float]] = []
    for goal in goals:
        live_until = goal.live_until
        expected = [
            week for week in weeks
            if goal.created_at <= week.end and (live_until is None or live_until > week.start)
        ]
        if not expected:
            continue
        check_ins = [fact for fact in history.check_ins_by_goal.get(goal.goal_id, ()) if window.contains(fact.occurred_at)]
        covered = 0
        for week in expected:
            first = next((fact for fact in check_ins if week.contains(fact.occurred_at)), None)
            if first is not None:
                covered += 1
                evidence.append((first, 1 / len(expected)))
        shares.append(covered / len(expected))
    if not shares:
        return ComponentResult("cadence", None)
    value = sum(shares) / len(shares)
    return ComponentResult("cadence", value, None, tuple(Evidence(fact, impact / len(shares)) for fact, impact in evidence))


def confidence_calibration(history: OrgHistory, closed: list[GoalView]) -> ComponentResult:
    """Compute 1 minus the Brier score of the confidences given in check-ins against each closed goal's outcome."""
    pairs: list[tuple[float, float, Fact]] = []
    for goal in closed:
        outcome = goal.outcome
        assert outcome is not None and goal.closed_at is not None
        for check_in in history.check_ins_by_goal.get(goal.goal_id, ()):
            confidence = check_in.details.get("confidence")
            if confidence is not None and check_in.occurred_at <= goal.closed_at:
                pairs.append((float(confidence), outcome, check_in))
    if not pairs:
        return ComponentResult("confidence_calibration", None)
    accuracies = [(1.0 - (confidence - outcome) ** 2, fact) for confidence, outcome, fact in pairs]
    value = sum(accuracy for accuracy, _fact in accuracies) / len(accuracies)
    evidence = tuple(Evidence(fact, accuracy / len(accuracies)) for accuracy, fact in accuracies)
    return ComponentResult("confidence_calibration", value, float(len(pairs)), evidence)


def goals_achieved(closed: list[GoalView]) -> ComponentResult:
    """Compute the mean outcome of the goals closed in the window: achieved 1, partially 0.5, missed 0."""
    if not closed:
        return ComponentResult("goals_achieved", None)
    outcomes = [(goal.outcome or 0.0, goal.closing) for goal in closed]
    value = sum(outcome for outcome, _fact in outcomes) / len(outcomes)
    evidence = tuple(Evidence(fact, outcome / len(outcomes)) for outcome, fact in outcomes if fact is not None)
    return ComponentResult("goals_achieved", value, float(len(closed)), evidence)
