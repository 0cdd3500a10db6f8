"""A seeded, demo-like event history: the Sourcegraph FY21-Q1 OKRs with a quarter of made-up activity.

Goals, key results, owners and teams come from data/okrs/sourcegraph-fy21-q1. A seeded random
generator adds weekly check-ins with confidence, tags that are accepted or declined, comments (some
deleted), kudos (with repeated pairs and self-kudos), reactions (some removed, some repeated, some
by the owner), follows, owner and visibility changes, and the goals' closing with an outcome.
The envelopes are those the goals and social services would publish, with versions counting up
per aggregate in event-time order.
"""

from __future__ import annotations

import csv
import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

from spm_events.envelope import Envelope
from spm_events.registry import new_envelope
from spm_events.schemas import (
    CheckInRecordedV1,
    CollaboratorLeftV1,
    CollaboratorTaggedV1,
    CommentDeletedV1,
    CommentPostedV1,
    GoalCreatedV1,
    GoalFollowedV1,
    GoalOwnersChangedV1,
    GoalStatusChangedV1,
    GoalVisibilityChangedV1,
    KeyResultAddedV1,
    KudosGivenV1,
    Payload,
    PeriodV1,
    ReactionAddedV1,
    ReactionRemovedV1,
    TagAcceptedV1,
    TagDeclinedV1,
)

DATASET_DIR = Path(__file__).resolve().parents[3] / "data" / "okrs" / "sourcegraph-fy21-q1"
DAY = timedelta(days=1)


@dataclass(frozen=True)
class Objective:
    ref: str
    owner: str
    team: str
    contributing_teams: tuple[str, ...]
    period: PeriodV1
    key_results: tuple[tuple[str, float | None], ...]


def read_dataset() -> tuple[dict[str, str], list[Objective]]:
    """Return each person's team by handle, and the objectives with their key results' published progress."""
    with open(DATASET_DIR / "people.csv", newline="") as file:
        teams = {row["handle"]: row["team"] for row in csv.DictReader(file)}
    with open(DATASET_DIR / "okrs.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    key_results: dict[str, list[tuple[str, float | None]]] = defaultdict(list)
    for row in rows:
        if row["kind"] == "key_result":
            final = float(row["final_progress"]) if row["final_progress"] else None
            key_results[row["parent_ref"]].append((row["ref"], final))
    objectives = [
        Objective(
            ref=row["ref"],
            owner=row["owner_handle"],
            team=row["team"],
            contributing_teams=tuple(team.strip() for team in row["contributing_teams"].split(";") if team.strip()),
            period=PeriodV1(name=row["period"], start=date.fromisoformat(row["period_start"]), end=date.fromisoformat(row["period_end"])),
            key_results=tuple(key_results[row["ref"]]),
        )
        for row in rows
        if row["kind"] == "objective"
    ]
    return teams, objectives


class QuarterHistory:
    """Plans the quarter's actions with a seeded generator, then builds the envelopes in event-time order."""

    def __init__(self, org_id: str, seed: int) -> None:
        self.org_id = org_id
        self.seed = seed
        self.rng = random.Random(seed)
        self.teams, self.objectives = read_dataset()
        self.people_by_team: dict[str, list[str]] = defaultdict(list)
        for handle, team in sorted(self.teams.items()):
            self.people_by_team[team].append(handle)
        self.plan: list[tuple[datetime, int, str, Payload, str]] = []
        self.owner_of: dict[str, str] = {}
        self.tagged: dict[str, list[str]] = defaultdict(list)

    def _add(self, at: datetime, subject: str, payload: Payload, actor: str) -> None:
        self.plan.append((at, len(self.plan), subject, payload, actor))

    def _moment(self, day: date) -> datetime:
        return datetime.combine(day, time(9, 0), tzinfo=timezone.utc) + timedelta(minutes=self.rng.randrange(8 * 60))

    def build(self) -> list[Envelope]:
        rng = self.rng
        start = self.objectives[0].period.start
        end = self.objectives[0].period.end
        private = set(rng.sample([objective.ref for objective in self.objectives], 2))
        team_only = set(rng.sample([objective.ref for objective in self.objectives if objective.ref not in private], 2))
        for objective in self.objectives:
            self._plan_goal(objective, private, team_only)
        for objective in self.objectives:
            self._plan_tags(objective)
        for objective in self.objectives:
            self._plan_check_ins_and_closing(objective)
        for objective in rng.sample(self.objectives, 2):
            team_members = [person for person in self.people_by_team[objective.team] if person != objective.owner]
            if team_members:
                new_owner = rng.choice(team_members)
                self._add(self._moment(date(2020, 3, 15)), objective.ref,
                          GoalOwnersChangedV1(goal_id=objective.ref, owner_id=new_owner), objective.owner)
        opened = sorted(private)[0]
        self._add(self._moment(date(2020, 3, 20)), opened,
                  GoalVisibilityChangedV1(goal_id=opened, visibility="organisation", previous_visibility="private"), "ceo")
        self._plan_comments(start, end)
        self._plan_kudos(start, end)
        self._plan_follows(start)
        self._plan_reactions(start, end)
        return self._envelopes()

    def _plan_goal(self, objective: Objective, private: set[str], team_only: set[str]) -> None:
        created = self._moment(objective.period.start) + timedelta(hours=self.rng.randrange(48))
        co_owners: tuple[str, ...] = ()
        team_members = [person for person in self.people_by_team[objective.team] if person != objective.owner]
        if team_members and self.rng.random() < 0.2:
            co_owners = (self.rng.choice(team_members),)
        visibility = None
        if objective.ref in private:
            visibility = "private"
        elif objective.ref in team_only:
            visibility = "team"
        payload = GoalCreatedV1(
            goal_id=objective.ref, title=f"Objective {objective.ref}", owner_id=objective.owner, team=objective.team,
            contributing_teams=objective.contributing_teams, period=objective.period, co_owner_ids=co_owners,
            visibility=visibility,  # type: ignore[arg-type]
        )
        self._add(created, objective.ref, payload, "ceo")
        self.owner_of[objective.ref] = objective.owner
        for key_result_ref, _final in objective.key_results:
            payload = KeyResultAddedV1(
                goal_id=objective.ref, key_result_id=key_result_ref, title=f"Key result {key_result_ref}",
                metric="percent", start_value=0, target_value=100, weight=self.rng.choice([1.0, 1.0, 2.0]),
            )
            self._add(created + timedelta(hours=1), objective.ref, payload, "ceo")

    def _plan_tags(self, objective: Objective) -> None:
        rng = self.rng
        pool = [person for team in objective.contributing_teams for person in self.people_by_team[team]]
        pool += [person for person in self.people_by_team[objective.team] if person != objective.owner]
        social = f"social-{objective.ref}"
        for person in rng.sample(sorted(set(pool)), k=min(len(set(pool)), rng.randint(1, 3))):
            tagged_at = self._moment(objective.period.start + timedelta(days=rng.randrange(2, 20)))
            self._add(tagged_at, social, CollaboratorTaggedV1(goal_id=objective.ref, collaborator_id=person), objective.owner)
            self.tagged[objective.ref].append(person)
            answer = rng.random()
            answered_at = tagged_at + timedelta(days=rng.randint(1, 3))
            if answer < 0.7:
                self._add(answered_at, social, TagAcceptedV1(goal_id=objective.ref, collaborator_id=person), person)
                if rng.random() < 0.15:
                    left_at = answered_at + timedelta(days=rng.randint(10, 30))
                    self._add(left_at, social, CollaboratorLeftV1(goal_id=objective.ref, collaborator_id=person), person)
            elif answer < 0.85:
                self._add(answered_at, social, TagDeclinedV1(goal_id=objective.ref, collaborator_id=person), person)

    def _plan_check_ins_and_closing(self, objective: Objective) -> None:
        rng = self.rng
        period = objective.period
        first_friday = period.start + timedelta(days=(4 - period.start.weekday()) % 7)
        fridays = [first_friday + timedelta(days=7 * week) for week in range(13) if first_friday + timedelta(days=7 * week) < period.end]
        finals = []
        for key_result_ref, published in objective.key_results:
            final = published if published is not None else round(rng.uniform(0.2, 1.1), 2)
            finals.append(final)
            for week, friday in enumerate(fridays):
                if rng.random() > 0.75:
                    continue
                share = (week + 1) / (len(fridays) + 1)
                progress = round(share * final + rng.uniform(-0.05, 0.05), 3)
                actor = self._check_in_actor(objective)
                confidence = round(rng.uniform(0.3, 1.0), 2) if actor == objective.owner else None
                self._add(self._moment(friday), objective.ref, self._check_in(objective, key_result_ref, progress, confidence), actor)
            closing = datetime.combine(period.end, time(17, 0), tzinfo=timezone.utc)
            self._add(closing, objective.ref, self._check_in(objective, key_result_ref, final, round(rng.uniform(0.5, 1.0), 2)), objective.owner)
        mean_final = sum(finals) / len(finals) if finals else 0.0
        outcome = "missed"
        if mean_final >= 0.95:
            outcome = "achieved"
        elif mean_final >= 0.5:
            outcome = "partially"
        closed_at = datetime.combine(period.end, time(18, 0), tzinfo=timezone.utc)
        if rng.random() < 0.1:
            early = self._moment(date(2020, 4, 10))
            self._add(early, objective.ref, GoalStatusChangedV1(goal_id=objective.ref, status="closed", previous_status="active", outcome="missed"), objective.owner)
            self._add(early + 2 * DAY, objective.ref, GoalStatusChangedV1(goal_id=objective.ref, status="active", previous_status="closed"), objective.owner)
        self._add(closed_at, objective.ref, GoalStatusChangedV1(goal_id=objective.ref, status="closed", previous_status="active", outcome=outcome), objective.owner)

    def _check_in(self, objective: Objective, key_result_ref: str, progress: float, confidence: float | None) -> CheckInRecordedV1:
        return CheckInRecordedV1(
            goal_id=objective.ref, key_result_id=key_result_ref, check_in_id=f"ci-{len(self.plan)}",
            value=progress * 100, progress=progress, confidence=confidence,
        )

    def _check_in_actor(self, objective: Objective) -> str:
        roll = self.rng.random()
        team_members = self.people_by_team[objective.team]
        if roll < 0.25 and team_members:
            return self.rng.choice(team_members)
        if roll < 0.40 and self.tagged[objective.ref]:
            return self.rng.choice(self.tagged[objective.ref])
        return objective.owner

    def _plan_comments(self, start: date, end: date) -> None:
        rng = self.rng
        people = sorted(self.teams)
        days = (end - start).days
        for number in range(150):
            objective = rng.choice(self.objectives)
            author = objective.owner if rng.random() < 0.3 else rng.choice(people)
            self._comment(objective, author, start + timedelta(days=rng.randrange(2, days)), number)
        # One person who comments again and again on the same owner's goal.
        repeated = self.objectives[3]
        for number in range(6):
            self._comment(repeated, "sales-1", start + timedelta(days=20 + number), 1000 + number)

    def _comment(self, objective: Objective, author: str, day: date, number: int) -> None:
        social = f"social-{objective.ref}"
        posted_at = self._moment(day)
        comment_id = f"cm-{number}"
        self._add(posted_at, social, CommentPostedV1(goal_id=objective.ref, comment_id=comment_id, body="Good progress"), author)
        if self.rng.random() < 0.1:
            self._add(posted_at + timedelta(days=self.rng.randint(1, 5)), social,
                      CommentDeletedV1(goal_id=objective.ref, comment_id=comment_id), author)

    def _plan_kudos(self, start: date, end: date) -> None:
        rng = self.rng
        people = sorted(self.teams)
        days = (end - start).days
        for number in range(80):
            objective = rng.choice(self.objectives)
            receiver = rng.choice([objective.owner, *self.tagged[objective.ref]])
            self._kudos(objective, rng.choice(people), receiver, start + timedelta(days=rng.randrange(2, days)), number)
        for number in range(5):
            self._kudos(self.objectives[5], "marketing-1", self.objectives[5].owner, start + timedelta(days=30 + number), 1000 + number)
        for number in range(2):
            self._kudos(self.objectives[7], self.objectives[7].owner, self.objectives[7].owner, start + timedelta(days=40 + number), 2000 + number)

    def _kudos(self, objective: Objective, giver: str, receiver: str, day: date, number: int) -> None:
        payload = KudosGivenV1(goal_id=objective.ref, kudos_id=f"kd-{number}", receiver_id=receiver, message="Thanks")
        self._add(self._moment(day), f"social-{objective.ref}", payload, giver)

    def _plan_follows(self, start: date) -> None:
        people = sorted(self.teams)
        for _number in range(40):
            objective = self.rng.choice(self.objectives)
            follower = self.rng.choice(people)
            self._add(self._moment(start + timedelta(days=self.rng.randrange(14))), f"social-{objective.ref}",
                      GoalFollowedV1(goal_id=objective.ref, follower_id=follower), follower)

    def _plan_reactions(self, start: date, end: date) -> None:
        """Plan reactions with a generator of their own, so the activity planned before them stays the same."""
        rng = random.Random(self.seed * 31 + 1)
        people = sorted(self.teams)
        days = (end - start).days
        kinds = ("like", "celebrate", "support", "insightful", "curious")
        for number in range(120):
            objective = rng.choice(self.objectives)
            actor = objective.owner if rng.random() < 0.2 else rng.choice(people)
            at = datetime.combine(start + timedelta(days=rng.randrange(2, days)), time(9, 0), tzinfo=timezone.utc)
            at += timedelta(minutes=rng.randrange(8 * 60))
            self._react(objective, actor, at, rng.choice(kinds), removed_after=rng.randint(1, 10) if rng.random() < 0.15 else None)
        # One person who reacts again and again to the same owner's goal.
        repeated = self.objectives[4]
        for number in range(6):
            at = datetime.combine(start + timedelta(days=25 + number), time(10, 0), tzinfo=timezone.utc)
            self._react(repeated, "engineering-1", at, "like", removed_after=None)

    def _react(self, objective: Objective, actor: str, at: datetime, reaction: str, removed_after: int | None) -> None:
        social = f"social-{objective.ref}"
        target = {"goal_id": objective.ref, "target_kind": "goal", "target_id": objective.ref, "reaction": reaction}
        self._add(at, social, ReactionAddedV1(**target), actor)  # type: ignore[arg-type]
        if removed_after is not None:
            self._add(at + timedelta(days=removed_after), social, ReactionRemovedV1(**target), actor)  # type: ignore[arg-type]

    def _envelopes(self) -> list[Envelope]:
        versions: dict[str, int] = defaultdict(int)
        envelopes = []
        for at, _sequence, subject, payload, actor in sorted(self.plan, key=lambda step: (step[0], step[1])):
            versions[subject] += 1
            envelopes.append(
                new_envelope(payload, subject=subject, org_id=self.org_id, actor_id=actor, aggregate_version=versions[subject], time=at)
            )
        return envelopes


def quarter_history(org_id: str, seed: int = 2020) -> list[Envelope]:
    return QuarterHistory(org_id, seed).build()
