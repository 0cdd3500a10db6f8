"""Feed item recipients, computed from a goal's events alone and decided by event time.

A person gets an item for a goal's key result or check-in at event time T when they own the goal,
were tagged as a collaborator at or before T, or were following it at T. Following at T means that
the person's last follow or unfollow at or before T is a follow. A follow counts from its own time
onwards, so a follower gets no items for events before they followed, and none after they left.
Nothing here depends on the order in which the worker receives the events.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone

FOLLOWED = "followed"
UNFOLLOWED = "unfollowed"
TAGGED = "tagged"
AUDIENCE_CHANGES = (FOLLOWED, UNFOLLOWED, TAGGED)

GOAL_CREATED = "goal_created"
KEY_RESULT_ADDED = "key_result_added"
CHECK_IN_RECORDED = "check_in_recorded"
GOAL_FOLLOWED = "goal_followed"
COLLABORATOR_TAGGED = "collaborator_tagged"
FAN_OUT_KINDS = (GOAL_CREATED, KEY_RESULT_ADDED, CHECK_IN_RECORDED)

MAX_SUMMARY_LENGTH = 1200


def as_utc(value: datetime) -> datetime:
    """Attach UTC to a datetime read back from SQLite, which stores UTC times without an offset."""
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


@dataclass(frozen=True)
class GoalFacts:
    """The goal details from its GoalCreated. Title and owner are None until that event is applied."""

    goal_id: str
    title: str | None
    owner_id: str | None

    @property
    def display_title(self) -> str:
        return self.title or self.goal_id


@dataclass(frozen=True)
class AudienceChange:
    """A follow, unfollow or collaborator tag of one person on one goal."""

    event_id: str
    person_id: str
    change: str
    actor_id: str
    occurred_at: datetime
    aggregate_version: int

    @property
    def order_key(self) -> tuple[datetime, int, str]:
        # All changes of a goal come from its one social graph aggregate, so the aggregate version
        # orders two changes with the same event time as the graph recorded them.
        return (self.occurred_at, self.aggregate_version, self.event_id)


@dataclass(frozen=True)
class GoalEvent:
    """A goal event that fans out to the goal's audience: its creation, a key result or a check-in."""

    event_id: str
    kind: str
    actor_id: str
    key_result_id: str | None
    progress: float | None
    occurred_at: datetime


@dataclass(frozen=True)
class PlannedItem:
    """A feed item that the stored events call for, without the wall-clock indexed_at added on insert."""

    person_id: str
    event_id: str
    kind: str
    key_result_id: str | None
    actor_id: str
    summary: str
    occurred_at: datetime


class GoalAudience:
    """The audience history of one goal: who was following or tagged at any event time."""

    def __init__(self, owner_id: str | None, changes: Iterable[AudienceChange]) -> None:
        self.owner_id = owner_id
        self.changes = sorted(changes, key=lambda change: change.order_key)

    def people(self) -> set[str]:
        """Return everyone who could be in the audience at some time: the owner and every changed person."""
        everyone = {change.person_id for change in self.changes}
        if self.owner_id is not None:
            everyone.add(self.owner_id)
        return everyone

    def contains(self, person_id: str, at: datetime) -> bool:
        """Return whether the person owns the goal, was tagged at or before ``at``, or was following at ``at``."""
        if person_id == self.owner_id:
            return True
        following = False
        for change in self.changes:
            if change.occurred_at > at:
                break
            if change.person_id != person_id:
                continue
            if change.change == TAGGED:
                return True
            following = change.change == FOLLOWED
        return following


def plan_goal_event_items(
    goal: GoalFacts, event: GoalEvent, audience: GoalAudience, key_result_titles: Mapping[str, str]
) -> list[PlannedItem]:
    """Return the items of one goal event: the owner's for its creation, the audience's at its time otherwise."""
    if event.kind == GOAL_CREATED:
        recipients = [goal.owner_id] if goal.owner_id is not None else []
        summary = f"Goal created: {goal.display_title}"
    else:
        recipients = sorted(person for person in audience.people() if audience.contains(person, event.occurred_at))
        summary = _goal_event_summary(goal, event, key_result_titles)
    return [
        _planned(person, event.event_id, event.kind, event.actor_id, summary, event.occurred_at, event.key_result_id)
        for person in recipients
    ]


def plan_audience_change_items(goal: GoalFacts, change: AudienceChange) -> list[PlannedItem]:
    """Return the notification items of one audience change. An unfollow has none."""
    owner_id = goal.owner_id
    if change.change == FOLLOWED:
        # The owner hears of each new follower, except of their own follow.
        if owner_id is None or owner_id in (change.person_id, change.actor_id):
            return []
        summary = f"Your goal '{goal.display_title}' has a new follower"
        return [_planned(owner_id, change.event_id, GOAL_FOLLOWED, change.actor_id, summary, change.occurred_at)]
    if change.change != TAGGED:
        return []
    summaries = {change.person_id: f"You were tagged as a collaborator on '{goal.display_title}'"}
    if owner_id is not None and owner_id != change.person_id:
        summaries[owner_id] = f"A collaborator was tagged on your goal '{goal.display_title}'"
    return [
        _planned(person, change.event_id, COLLABORATOR_TAGGED, change.actor_id, summary, change.occurred_at)
        for person, summary in summaries.items()
    ]


def _goal_event_summary(goal: GoalFacts, event: GoalEvent, key_result_titles: Mapping[str, str]) -> str:
    key_result_title = key_result_titles.get(event.key_result_id or "") or event.key_result_id
    if event.kind == KEY_RESULT_ADDED:
        return f"Key result added to '{goal.display_title}': {key_result_title}"
    return f"Check-in on '{key_result_title}': progress {event.progress or 0.0:.0%}"


def _planned(
    person_id: str,
    event_id: str,
    kind: str,
    actor_id: str,
    summary: str,
    occurred_at: datetime,
    key_result_id: str | None = None,
) -> PlannedItem:
    return PlannedItem(person_id, event_id, kind, key_result_id, actor_id, summary[:MAX_SUMMARY_LENGTH], occurred_at)
