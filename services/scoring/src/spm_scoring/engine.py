"""Scores every person, team and goal of an organisation under model v2 for one window.

Everything is computed from the organisation's facts, so the same facts, model and window give
the same scores, whatever order the events arrived in.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime

from spm_scoring.collaboration import Network, build_network, goal_collaboration, person_collaboration, team_network
from spm_scoring.components import ScoreResult, weigh, withheld
from spm_scoring.history import GoalView, OrgHistory
from spm_scoring.model import ScoringModelV2
from spm_scoring.performance import performance_components
from spm_scoring.ties import window_activity
from spm_scoring.windows import Window

PERSON, TEAM, GOAL = "person", "team", "goal"


@dataclass(frozen=True)
class SubjectScores:
    subject_kind: str
    subject_id: str
    performance: ScoreResult
    collaboration: ScoreResult
    team: str | None = None
    member_count: int | None = None


@dataclass(frozen=True)
class OrgScores:
    org_id: str
    model_id: str
    window: Window
    people: dict[str, SubjectScores]
    teams: dict[str, SubjectScores]
    goals: dict[str, SubjectScores]

    def subjects(self) -> list[SubjectScores]:
        return [*self.people.values(), *self.teams.values(), *self.goals.values()]


def home_teams(history: OrgHistory, goals: list[GoalView], as_of: datetime) -> dict[str, str]:
    """Place each person in one team as of ``as_of``.

    A person's team is the team of most of the goals they own or co-own. Someone who owns no goal
    belongs to the team whose goals they checked in on most. Ties go to the team name first in
    sort order. People with neither have no team.
    """
    team_of_goal = {goal.goal_id: goal.team for goal in goals}
    owned: dict[str, Counter[str]] = defaultdict(Counter)
    for goal in goals:
        for owner_id in goal.owner_ids:
            owned[owner_id][goal.team] += 1
    checked: dict[str, Counter[str]] = defaultdict(Counter)
    for check_in in history.check_ins:
        team = team_of_goal.get(check_in.goal_id or "")
        if team is not None and check_in.occurred_at <= as_of:
            checked[check_in.actor_id][team] += 1
    teams = {}
    for person_id in sorted(set(owned) | set(checked)):
        counts = owned.get(person_id) or checked[person_id]
        teams[person_id] = min(counts, key=lambda team: (-counts[team], team))
    return teams


def score_org(history: OrgHistory, model: ScoringModelV2, model_id: str, window: Window) -> OrgScores:
    as_of = window.end
    goals = history.goals_as_of(as_of)
    teams_of_people = home_teams(history, goals, as_of)
    network = build_network(window_activity(history, window, model.repeat_decay), teams_of_people, model.brokerage_pivots)
    performance_weights = model.performance.weights()

    goals_by_owner: dict[str, list[GoalView]] = defaultdict(list)
    goals_by_team: dict[str, list[GoalView]] = defaultdict(list)
    for goal in goals:
        for owner_id in goal.owner_ids:
            goals_by_owner[owner_id].append(goal)
        goals_by_team[goal.team].append(goal)

    people = {}
    for person_id in sorted(history.people()):
        owned = goals_by_owner.get(person_id, [])
        people[person_id] = SubjectScores(
            PERSON,
            person_id,
            performance=weigh(performance_components(history, owned, window), performance_weights),
            collaboration=weigh(person_collaboration(network, person_id, model), model.collaboration.weights()),
            team=teams_of_people.get(person_id),
        )

    members_of_team: dict[str, set[str]] = defaultdict(set)
    for person_id, team in teams_of_people.items():
        members_of_team[team].add(person_id)
    team_names = {goal.team for goal in goals} | {team for goal in goals for team in goal.teams} | set(members_of_team)
    teams = {}
    for team in sorted(team_names):
        members = frozenset(members_of_team.get(team, ()))
        teams[team] = SubjectScores(
            TEAM,
            team,
            performance=weigh(performance_components(history, goals_by_team.get(team, []), window), performance_weights),
            collaboration=_team_collaboration(network, members, model),
            member_count=len(members),
        )

    scored_goals = {
        goal.goal_id: SubjectScores(
            GOAL,
            goal.goal_id,
            performance=weigh(performance_components(history, [goal], window), performance_weights),
            collaboration=weigh(goal_collaboration(network, goal, model), model.goal_collaboration.weights()),
            team=goal.team,
        )
        for goal in goals
    }
    return OrgScores(history.org_id, model_id, window, people, teams, scored_goals)


def _team_collaboration(network: Network, members: frozenset[str], model: ScoringModelV2) -> ScoreResult:
    weights = model.team_network.weights()
    if len(members) < model.min_group_size:
        reason = f"teams with fewer than {model.min_group_size} members show no network figure"
        return withheld(weights, reason)
    return weigh(team_network(network, members), weights)
