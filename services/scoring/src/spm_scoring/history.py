"""An organisation's score facts, indexed, with the state of each goal at any event time.

Every lookup picks facts by event time and breaks ties by aggregate version, so the results do
not depend on the order the facts were stored in. A goal's owners, status and visibility follow
the goal aggregate's versions; a person's tag state follows the goal's social graph versions.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Iterable

from spm_events.visibility import GoalAudience
from spm_scoring.facts import TAG_ENDING_KINDS, TAG_FACT_KINDS, Fact, FactKind

OUTCOME_VALUES = {"achieved": 1.0, "partially": 0.5, "missed": 0.0}
# Goals in these statuses are not worked on, so they have no pace or cadence.
INACTIVE_STATUSES = frozenset({"draft", "archived"})


@dataclass(frozen=True)
class Period:
    name: str
    start: date
    end: date

    @property
    def starts_at(self) -> datetime:
        return datetime.combine(self.start, time.min, tzinfo=timezone.utc)

    @property
    def ends_before(self) -> datetime:
        """The first moment after the period: midnight UTC after its last day."""
        return datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=timezone.utc)


@dataclass(frozen=True)
class KeyResultView:
    key_result_id: str
    weight: float
    added_at: datetime


@dataclass(frozen=True)
class GoalView:
    """A goal as of one event time."""

    goal_id: str
    team: str
    teams: frozenset[str]
    period: Period
    created_at: datetime
    owner_id: str
    owner_ids: frozenset[str]
    status: str
    status_fact: Fact
    closing: Fact | None
    key_results: tuple[KeyResultView, ...]

    @property
    def closed_at(self) -> datetime | None:
        return None if self.closing is None else self.closing.occurred_at

    @property
    def outcome(self) -> float | None:
        """1, 0.5 or 0 for a goal closed as achieved, partially or missed; None when it has no outcome."""
        if self.closing is None:
            return None
        return OUTCOME_VALUES.get(self.closing.details.get("outcome") or "")

    @property
    def is_worked_on(self) -> bool:
        """Whether the goal expects progress and check-ins: neither a draft nor archived."""
        return self.status not in INACTIVE_STATUSES

    @property
    def live_until(self) -> datetime | None:
        """When the goal stopped expecting check-ins (closed or archived); None while it still does."""
        if self.closing is not None:
            return self.closing.occurred_at
        return self.status_fact.occurred_at if self.status == "archived" else None


@dataclass(frozen=True)
class AcceptedTag:
    """A span during which a person collaborated on a goal after accepting a tag; ``ended_at`` None while it lasts."""

    goal_id: str
    person_id: str
    tagger_id: str
    accepted: Fact
    ended_at: datetime | None

    def overlaps(self, start: datetime, end: datetime) -> bool:
        return self.accepted.occurred_at <= end and (self.ended_at is None or self.ended_at > start)


def _by_version(fact: Fact) -> tuple[int, datetime, str]:
    return (fact.aggregate_version, fact.occurred_at, fact.event_id)


class OrgHistory:
    def __init__(self, org_id: str, facts: Iterable[Fact]) -> None:
        self.org_id = org_id
        self.facts = sorted(facts, key=lambda fact: fact.order_key)
        self.created: dict[str, Fact] = {}
        self.owner_facts: dict[str, list[Fact]] = defaultdict(list)
        self.status_facts: dict[str, list[Fact]] = defaultdict(list)
        self.visibility_facts: dict[str, list[Fact]] = defaultdict(list)
        self.key_result_facts: dict[str, list[Fact]] = defaultdict(list)
        self.check_ins: list[Fact] = []
        self.tag_facts: dict[tuple[str, str], list[Fact]] = defaultdict(list)
        self.comments: list[Fact] = []
        self.comment_deletions: dict[tuple[str, str], Fact] = {}
        self.kudos: list[Fact] = []
        self.reactions: list[Fact] = []
        self.reaction_removals: dict[tuple[str, str, str, str, str], list[Fact]] = defaultdict(list)
        for fact in self.facts:
            self._index(fact)
        for facts_of_goal in (*self.owner_facts.values(), *self.status_facts.values(), *self.visibility_facts.values()):
            facts_of_goal.sort(key=_by_version)
        for tag_facts in self.tag_facts.values():
            tag_facts.sort(key=_by_version)
        self.check_ins_by_goal: dict[str, list[Fact]] = defaultdict(list)
        for check_in in self.check_ins:
            self.check_ins_by_goal[check_in.goal_id or ""].append(check_in)
        self.latest_time = self.facts[-1].occurred_at if self.facts else None
        self.accepted_tags = self._accepted_tags()
        self.tagged_insiders: dict[str, set[str]] = defaultdict(set)
        for (goal_id, person_id), facts in self.tag_facts.items():
            if facts[-1].kind in (FactKind.TAGGED, FactKind.TAG_ACCEPTED):
                self.tagged_insiders[goal_id].add(person_id)

    def _index(self, fact: Fact) -> None:
        kind, goal_id = fact.kind, fact.goal_id or ""
        if kind is FactKind.GOAL_CREATED:
            self.created.setdefault(goal_id, fact)
            self.owner_facts[goal_id].append(fact)
            self.status_facts[goal_id].append(fact)
            self.visibility_facts[goal_id].append(fact)
        elif kind is FactKind.OWNERS_CHANGED:
            self.owner_facts[goal_id].append(fact)
        elif kind is FactKind.STATUS_CHANGED:
            self.status_facts[goal_id].append(fact)
        elif kind is FactKind.VISIBILITY_CHANGED:
            self.visibility_facts[goal_id].append(fact)
        elif kind is FactKind.KEY_RESULT_ADDED:
            self.key_result_facts[goal_id].append(fact)
        elif kind is FactKind.CHECK_IN:
            self.check_ins.append(fact)
        elif kind in TAG_FACT_KINDS:
            self.tag_facts[(goal_id, fact.person_id or "")].append(fact)
        elif kind is FactKind.COMMENT_POSTED:
            self.comments.append(fact)
        elif kind is FactKind.COMMENT_DELETED:
            key = (goal_id, fact.object_id or "")
            current = self.comment_deletions.get(key)
            if current is None or fact.order_key < current.order_key:
                self.comment_deletions[key] = fact
        elif kind is FactKind.KUDOS_GIVEN:
            self.kudos.append(fact)
        elif kind is FactKind.REACTION_ADDED:
            self.reactions.append(fact)
        elif kind is FactKind.REACTION_REMOVED:
            self.reaction_removals[_reaction_key(fact)].append(fact)

    # Goals

    def goal_exists(self, goal_id: str | None, as_of: datetime) -> bool:
        created = self.created.get(goal_id or "")
        return created is not None and created.occurred_at <= as_of

    def owners_at(self, goal_id: str, moment: datetime) -> tuple[str, frozenset[str]]:
        """Return the owner and the set of owner and co-owners at ``moment``; before creation, the creator's."""
        fact = _latest_by_version(self.owner_facts[goal_id], moment) or self.created[goal_id]
        owner_id = fact.details["owner_id"]
        return owner_id, frozenset({owner_id, *fact.details.get("co_owner_ids", ())})

    def goal_as_of(self, goal_id: str, as_of: datetime) -> GoalView | None:
        created = self.created.get(goal_id)
        if created is None or created.occurred_at > as_of:
            return None
        owner_id, owner_ids = self.owners_at(goal_id, as_of)
        status_fact = _latest_by_version(self.status_facts[goal_id], as_of) or created
        closing = _closing(self.status_facts[goal_id], as_of)
        key_results = tuple(
            KeyResultView(fact.object_id or "", float(fact.details.get("weight", 1.0)), fact.occurred_at)
            for fact in self.key_result_facts.get(goal_id, [])
            if fact.occurred_at <= as_of
        )
        return GoalView(
            goal_id=goal_id,
            team=created.details["team"],
            teams=frozenset(created.details["teams"]),
            period=_period_of(created),
            created_at=created.occurred_at,
            owner_id=owner_id,
            owner_ids=owner_ids,
            status=status_fact.details["status"],
            status_fact=status_fact,
            closing=closing,
            key_results=tuple(sorted(key_results, key=lambda view: view.key_result_id)),
        )

    def goals_as_of(self, as_of: datetime) -> list[GoalView]:
        views = (self.goal_as_of(goal_id, as_of) for goal_id in sorted(self.created))
        return [view for view in views if view is not None]

    def periods(self) -> dict[str, Period]:
        """Return each period name with the earliest start and latest end that its goals state."""
        periods: dict[str, Period] = {}
        for created in self.created.values():
            period = _period_of(created)
            known = periods.get(period.name)
            if known is not None:
                period = Period(period.name, min(known.start, period.start), max(known.end, period.end))
            periods[period.name] = period
        return periods

    def people(self) -> frozenset[str]:
        """Return every person any fact names: actors, owners, co-owners, collaborators and kudos receivers."""
        people: set[str] = set()
        for fact in self.facts:
            people.add(fact.actor_id)
            if fact.person_id:
                people.add(fact.person_id)
            people.update(fact.details.get("co_owner_ids", ()))
        return frozenset(people)

    # Collaboration facts

    def is_deleted_comment(self, comment: Fact, as_of: datetime) -> bool:
        deletion = self.comment_deletions.get((comment.goal_id or "", comment.object_id or ""))
        return deletion is not None and deletion.occurred_at <= as_of

    def is_removed_reaction(self, reaction: Fact, as_of: datetime) -> bool:
        """Return whether the same person removed the same reaction from the same target after adding it, by ``as_of``."""
        return any(
            removal.order_key > reaction.order_key and removal.occurred_at <= as_of
            for removal in self.reaction_removals.get(_reaction_key(reaction), ())
        )

    def _accepted_tags(self) -> list[AcceptedTag]:
        """Walk each person's tag facts on each goal in social-graph version order and collect accepted spans."""
        spans: list[AcceptedTag] = []
        for (goal_id, person_id), facts in sorted(self.tag_facts.items()):
            tagger_id: str | None = None
            accepted: Fact | None = None
            for fact in facts:
                if fact.kind is FactKind.TAGGED:
                    tagger_id = tagger_id if accepted is not None else fact.actor_id
                elif fact.kind is FactKind.TAG_ACCEPTED and accepted is None:
                    accepted = fact
                elif fact.kind in TAG_ENDING_KINDS and accepted is not None:
                    spans.append(AcceptedTag(goal_id, person_id, tagger_id or "", accepted, fact.occurred_at))
                    accepted, tagger_id = None, None
                elif fact.kind in TAG_ENDING_KINDS:
                    tagger_id = None
            if accepted is not None:
                spans.append(AcceptedTag(goal_id, person_id, tagger_id or "", accepted, None))
        return spans

    # Audience (the current facts, whatever the as_of of a score)

    def audience(self, goal_id: str) -> GoalAudience | None:
        created = self.created.get(goal_id)
        if created is None:
            return None
        owner_fact = self.owner_facts[goal_id][-1]
        visibility_fact = self.visibility_facts[goal_id][-1]
        return GoalAudience(
            visibility=visibility_fact.details["visibility"],
            owner_id=owner_fact.details["owner_id"],
            co_owner_ids=frozenset(owner_fact.details.get("co_owner_ids", ())),
            teams=frozenset(created.details["teams"]),
            collaborator_ids=frozenset(self.tagged_insiders.get(goal_id, ())),
        )


def _reaction_key(fact: Fact) -> tuple[str, str, str, str, str]:
    """Identify a reaction: who reacted, how, and to which goal, check-in or comment."""
    details = fact.details
    return (fact.goal_id or "", fact.actor_id, details.get("target_kind", ""), fact.object_id or "", details.get("reaction", ""))


def _latest_by_version(facts: list[Fact], moment: datetime) -> Fact | None:
    """Return the highest-version fact at or before ``moment``; ``facts`` is sorted by version."""
    for fact in reversed(facts):
        if fact.occurred_at <= moment:
            return fact
    return None


def _closing(facts: list[Fact], moment: datetime) -> Fact | None:
    """Return the fact that last closed the goal at or before ``moment``, unless it was reopened since.

    Archiving a closed goal keeps its closing, so its outcome still counts.
    """
    closing = None
    for fact in facts:
        if fact.occurred_at > moment:
            continue
        status = fact.details["status"]
        if status == "closed":
            closing = fact
        elif status != "archived":
            closing = None
    return closing


def _period_of(created: Fact) -> Period:
    period = created.details["period"]
    return Period(period["name"], date.fromisoformat(period["start"]), date.fromisoformat(period["end"]))
