"""A seeded simulation of one quarter's social activity, played through the public HTTP APIs.

Every action carries the date it happens in the quarter (event time), and actions are sent in
date order. The last check-in of every key result lands on the period's last day with the
published final value where the dataset gives one, so the quarter ends as it really ended.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Callable

import httpx

from spm_local.importer import ImportResult
from spm_local.okr_csv import OkrRow
from spm_local.people import Person, person_id_for

logger = logging.getLogger(__name__)

SEED = 2020
CHECK_IN_PROBABILITY_PER_WEEK = 0.75
UNFOLLOW_SHARE = 0.05


@dataclass(frozen=True, order=True)
class Action:
    occurred_at: datetime
    sequence: int
    kind: str = field(compare=False)
    actor_id: str = field(compare=False)
    goal_id: str = field(compare=False)
    key_result_id: str | None = field(default=None, compare=False)
    value: float | None = field(default=None, compare=False)
    other_person_id: str | None = field(default=None, compare=False)


@dataclass(frozen=True)
class SentCheckIn:
    goal_id: str
    key_result_id: str
    occurred_at: datetime
    acknowledged_at: float  # time.time() when the 201 arrived


@dataclass
class SimulationResult:
    check_ins: list[SentCheckIn] = field(default_factory=list)
    follows: int = 0
    unfollows: int = 0
    tags: int = 0


def _moment(day: date, rng: random.Random) -> datetime:
    return datetime(day.year, day.month, day.day, 9, 0, tzinfo=timezone.utc) + timedelta(minutes=rng.randrange(8 * 60))


def _weekly_fridays(start: date, end: date) -> list[date]:
    first_friday = start + timedelta(days=(4 - start.weekday()) % 7)
    days = []
    day = first_friday
    while day < end:
        days.append(day)
        day += timedelta(days=7)
    return days


class QuarterSimulation:
    def __init__(self, org_id: str, rows: list[OkrRow], people: list[Person], imported: ImportResult) -> None:
        self.org_id = org_id
        self.rng = random.Random(SEED)
        self.rows = rows
        self.imported = imported
        self.people = people
        self.people_by_team: dict[str, list[Person]] = {}
        for person in people:
            self.people_by_team.setdefault(person.team, []).append(person)
        self.objectives = [row for row in rows if row.kind == "objective"]
        self.key_results = [row for row in rows if row.kind == "key_result"]
        self.rows_by_ref = {row.ref: row for row in rows}
        self._sequence = 0
        self.tagged: dict[str, list[str]] = {}

    def _action(self, occurred_at: datetime, kind: str, actor_id: str, goal_id: str, **extra) -> Action:  # type: ignore[no-untyped-def]
        self._sequence += 1
        return Action(occurred_at, self._sequence, kind, actor_id, goal_id, **extra)

    def plan(self) -> list[Action]:
        actions = self._plan_follows() + self._plan_tags()
        actions += self._plan_check_ins()
        return sorted(actions)

    def _plan_follows(self) -> list[Action]:
        actions = []
        for person in self.people:
            own_team = [row for row in self.objectives if row.team == person.team]
            others = [row for row in self.objectives if row.team != person.team]
            chosen = [row for row in own_team if self.rng.random() < 0.6]
            chosen += self.rng.sample(others, k=min(len(others), self.rng.randint(1, 3)))
            for row in chosen:
                if person_id_for(self.org_id, row.owner_handle) == person.person_id:
                    continue
                goal_id = self.imported.goal_ids[row.ref]
                followed_at = _moment(row.period_start + timedelta(days=self.rng.randrange(14)), self.rng)
                actions.append(self._action(followed_at, "follow", person.person_id, goal_id))
                if self.rng.random() < UNFOLLOW_SHARE:
                    unfollowed_at = _moment(row.period_end - timedelta(days=self.rng.randrange(20, 40)), self.rng)
                    actions.append(self._action(unfollowed_at, "unfollow", person.person_id, goal_id))
        return actions

    def _plan_tags(self) -> list[Action]:
        actions = []
        for row in self.objectives:
            owner_id = person_id_for(self.org_id, row.owner_handle)
            pool = [person for team in row.contributing_teams for person in self.people_by_team.get(team, [])]
            pool += [person for person in self.people_by_team.get(row.team, []) if person.person_id != owner_id]
            if not pool:
                continue
            goal_id = self.imported.goal_ids[row.ref]
            for person in self.rng.sample(pool, k=min(len(pool), self.rng.randint(1, 3))):
                if person.person_id in self.tagged.get(goal_id, []):
                    continue
                self.tagged.setdefault(goal_id, []).append(person.person_id)
                tagged_at = _moment(row.period_start + timedelta(days=self.rng.randrange(2, 20)), self.rng)
                actions.append(self._action(tagged_at, "tag", owner_id, goal_id, other_person_id=person.person_id))
        return actions

    def _final_value(self, row: OkrRow) -> float:
        assert row.start_value is not None and row.target_value is not None
        if row.final_value is not None:
            return row.final_value
        if row.metric == "milestone":
            return float(self.rng.random() < 0.6)
        progress = round(self.rng.uniform(0.2, 1.1), 2)
        return row.start_value + progress * (row.target_value - row.start_value)

    def _check_in_actor(self, objective: OkrRow, goal_id: str) -> str:
        roll = self.rng.random()
        team_members = self.people_by_team.get(objective.team, [])
        if roll < 0.25 and team_members:
            return self.rng.choice(team_members).person_id
        if roll < 0.40 and self.tagged.get(goal_id):
            return self.rng.choice(self.tagged[goal_id])
        return person_id_for(self.org_id, objective.owner_handle)

    def _plan_check_ins(self) -> list[Action]:
        actions = []
        for row in self.key_results:
            objective = self.rows_by_ref[row.parent_ref]  # type: ignore[index]
            goal_id, key_result_id = self.imported.key_result_ids[row.ref]
            final_value = self._final_value(row)
            start_value = row.start_value or 0.0
            fridays = _weekly_fridays(row.period_start, row.period_end)
            for week, friday in enumerate(fridays):
                if self.rng.random() > CHECK_IN_PROBABILITY_PER_WEEK:
                    continue
                share = (week + 1) / (len(fridays) + 1)
                if row.metric == "milestone":
                    value = 0.0
                else:
                    noise = self.rng.uniform(-0.05, 0.05) * abs(final_value - start_value)
                    value = round(start_value + share * (final_value - start_value) + noise, 2)
                actor_id = self._check_in_actor(objective, goal_id)
                actions.append(self._action(_moment(friday, self.rng), "check_in", actor_id, goal_id,
                                            key_result_id=key_result_id, value=value))
            closing = datetime.combine(row.period_end, datetime.min.time(), tzinfo=timezone.utc) + timedelta(hours=17)
            owner_id = person_id_for(self.org_id, objective.owner_handle)
            actions.append(self._action(closing, "check_in", owner_id, goal_id,
                                        key_result_id=key_result_id, value=final_value))
        return actions


def play(
    actions: list[Action],
    goals: httpx.Client,
    social: httpx.Client,
    token_for: Callable[[str], str],
) -> SimulationResult:
    """Send every action in order; an unexpected status code stops the simulation with SimulationError."""
    result = SimulationResult()
    for action in actions:
        headers = {"Authorization": f"Bearer {token_for(action.actor_id)}"}
        body = {"occurred_at": action.occurred_at.isoformat()}
        if action.kind == "check_in":
            body |= {"value": action.value, "comment": "weekly update"}
            path = f"/goals/{action.goal_id}/key-results/{action.key_result_id}/check-ins"
            response = goals.post(path, json=body, headers=headers)
            _expect(response, (201,), action)
            result.check_ins.append(SentCheckIn(action.goal_id, action.key_result_id, action.occurred_at, time.time()))
        elif action.kind == "follow":
            _expect(social.post(f"/goals/{action.goal_id}/followers", json=body, headers=headers), (200, 201), action)
            result.follows += 1
        elif action.kind == "unfollow":
            response = social.delete(
                f"/goals/{action.goal_id}/followers/me", params={"occurred_at": action.occurred_at.isoformat()}, headers=headers
            )
            _expect(response, (200, 204), action)
            result.unfollows += 1
        elif action.kind == "tag":
            body |= {"person_id": action.other_person_id}
            _expect(social.post(f"/goals/{action.goal_id}/collaborators", json=body, headers=headers), (200, 201), action)
            result.tags += 1
    logger.info("simulation sent check_ins=%s follows=%s unfollows=%s tags=%s",
                len(result.check_ins), result.follows, result.unfollows, result.tags)
    return result


class SimulationError(RuntimeError):
    pass


def _expect(response: httpx.Response, statuses: tuple[int, ...], action: Action) -> None:
    if response.status_code not in statuses:
        raise SimulationError(
            f"{action.kind} on goal {action.goal_id} at {action.occurred_at.isoformat()} got "
            f"{response.status_code}: {response.text[:500]}"
        )
