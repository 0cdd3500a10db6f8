"""The scoring formula, version 1. Every time here is event time, and nothing reads the clock.

The window is the 28 days ending at ``as_of``: an event at time t is inside it when
``as_of - 28 days < t <= as_of``. The API's default ``as_of`` is the latest event time seen for
the organisation, so a replay of the topics gives the same scores as the live system.

performance(p) = 100 * (0.7 * mean_progress + 0.3 * cadence)

- mean_progress: the mean, over the key results of the goals p owns, of the key result's latest
  progress as of ``as_of``, clamped to 0..1. A key result without a check-in counts 0. Only goals
  and key results created at or before ``as_of`` count. A person who owns no goal gets no
  performance score (null); a person whose goals have no key result gets mean_progress 0.
- cadence: the number of weeks with at least one check-in by anyone on p's key results, divided
  by 4. The window is cut into four 7-day weeks ending at ``as_of``, and week k covers
  ``as_of - 7(k+1) days < t <= as_of - 7k days``. The weeks roll with ``as_of`` and are not
  calendar ISO weeks.

collaboration(p) = 5 * distinct_collaborators + 3 * tags_received + 2 * help_check_ins
                   + 4 * teams_helped + 1 * followers_gained, over the window:

- A CollaboratorTagged event credits the tagged person (tags_received) and links the tagged
  person and the tagger as collaborators.
- A CheckInRecorded event by someone other than the goal's owner credits the actor
  (help_check_ins, and the goal's team for teams_helped, which counts distinct teams) and links
  the actor and the owner as collaborators.
- A GoalFollowed event by someone other than the goal's owner credits the owner
  (followers_gained). Each follow event counts, and GoalUnfollowed is ignored, so unfollowing
  and following again counts twice. A follower is not a collaborator.
- distinct_collaborators is the number of distinct other people linked to p in the window.
  Acting on oneself (tagging oneself, checking in or following one's own goal) never counts.

Each score comes with its components (name, value, weight, contribution = value * weight) and
is the sum of the contributions. Performance weights are in points: 70 for mean_progress and
30 for cadence. Scores and contributions are rounded to 2 decimal places, values to 4.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Collection, Iterable

from spm_scoring.activities import COLLABORATOR_LINK_KINDS, Interaction, InteractionKind

WINDOW = timedelta(days=28)
WEEK = timedelta(days=7)
WEEKS_IN_WINDOW = 4

MEAN_PROGRESS_WEIGHT = 70.0
CADENCE_WEIGHT = 30.0
DISTINCT_COLLABORATORS_WEIGHT = 5.0
TAGS_RECEIVED_WEIGHT = 3.0
HELP_CHECK_INS_WEIGHT = 2.0
TEAMS_HELPED_WEIGHT = 4.0
FOLLOWERS_GAINED_WEIGHT = 1.0


@dataclass(frozen=True)
class Component:
    name: str
    value: float
    weight: float

    @property
    def contribution(self) -> float:
        return round(self.value * self.weight, 2)


@dataclass(frozen=True)
class Score:
    """A score (None when the person has nothing to score) and the components that sum to it."""

    score: float | None
    components: tuple[Component, ...]


@dataclass(frozen=True)
class CheckIn:
    key_result_id: str
    progress: float
    occurred_at: datetime
    aggregate_version: int
    event_id: str


def is_in_window(moment: datetime, as_of: datetime) -> bool:
    return as_of - WINDOW < moment <= as_of


def latest_progress(check_ins: Iterable[CheckIn], as_of: datetime) -> dict[str, float]:
    """Return the progress of each key result's latest check-in at or before ``as_of``.

    Check-ins at the same time are ordered by aggregate version, then event id, so the result
    does not depend on the order they arrived in.
    """
    latest: dict[str, CheckIn] = {}
    for check_in in check_ins:
        if check_in.occurred_at > as_of:
            continue
        current = latest.get(check_in.key_result_id)
        if current is None or _sort_key(check_in) > _sort_key(current):
            latest[check_in.key_result_id] = check_in
    return {key_result_id: check_in.progress for key_result_id, check_in in latest.items()}


def weeks_with_check_ins(check_in_times: Iterable[datetime], as_of: datetime) -> int:
    """Count the 7-day weeks of the window ending at ``as_of`` that hold at least one check-in."""
    weeks = {(as_of - moment) // WEEK for moment in check_in_times if is_in_window(moment, as_of)}
    return len(weeks)


def performance(
    owns_goals: bool, key_result_ids: Collection[str], check_ins: Collection[CheckIn], as_of: datetime
) -> Score:
    """Score a person's own goals from the key results they own and the check-ins on them."""
    if not owns_goals:
        return Score(score=None, components=())
    progress_by_key_result = latest_progress(check_ins, as_of)
    clamped = [min(1.0, max(0.0, progress_by_key_result.get(key_result_id, 0.0))) for key_result_id in key_result_ids]
    mean_progress = sum(clamped) / len(clamped) if clamped else 0.0
    cadence = weeks_with_check_ins((check_in.occurred_at for check_in in check_ins), as_of) / WEEKS_IN_WINDOW
    components = (
        Component("mean_progress", round(mean_progress, 4), MEAN_PROGRESS_WEIGHT),
        Component("cadence", cadence, CADENCE_WEIGHT),
    )
    exact = mean_progress * MEAN_PROGRESS_WEIGHT + cadence * CADENCE_WEIGHT
    return Score(score=round(exact, 2), components=components)


def collaboration(person_id: str, interactions: Iterable[Interaction], as_of: datetime) -> Score:
    """Score how a person worked with others, from the interactions crediting them."""
    collaborators: set[str] = set()
    teams_helped: set[str] = set()
    counts = {kind: 0 for kind in InteractionKind}
    for interaction in interactions:
        if interaction.person_id != person_id or interaction.other_person_id == person_id:
            continue
        if not is_in_window(interaction.occurred_at, as_of):
            continue
        counts[interaction.kind] += interaction.weight
        if interaction.kind in COLLABORATOR_LINK_KINDS:
            collaborators.add(interaction.other_person_id)
        if interaction.kind is InteractionKind.HELP_GIVEN:
            teams_helped.add(interaction.goal_team)
    components = (
        Component("distinct_collaborators", len(collaborators), DISTINCT_COLLABORATORS_WEIGHT),
        Component("tags_received", counts[InteractionKind.TAG_RECEIVED], TAGS_RECEIVED_WEIGHT),
        Component("help_check_ins", counts[InteractionKind.HELP_GIVEN], HELP_CHECK_INS_WEIGHT),
        Component("teams_helped", len(teams_helped), TEAMS_HELPED_WEIGHT),
        Component("followers_gained", counts[InteractionKind.FOLLOW_RECEIVED], FOLLOWERS_GAINED_WEIGHT),
    )
    exact = sum(component.value * component.weight for component in components)
    return Score(score=round(exact, 2), components=components)


def _sort_key(check_in: CheckIn) -> tuple[datetime, int, str]:
    return (check_in.occurred_at, check_in.aggregate_version, check_in.event_id)
