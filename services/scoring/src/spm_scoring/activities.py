"""Goal activities (check-ins, collaborator tags, follows) and the interactions they credit.

An activity needs its goal's owner and team before it can credit anyone, and the goal may arrive
on a different topic later than the activity. So the projection keeps an activity as pending until
its goal is known, then derives the interactions with ``interactions_for``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum


class ActivityKind(str, Enum):
    CHECK_IN = "check_in"
    TAG = "tag"
    FOLLOW = "follow"


class InteractionKind(str, Enum):
    """Reason a person is credited, stored as its value in the ``interactions.kind`` column."""

    TAG_RECEIVED = "tag_received"
    TAG_GIVEN = "tag_given"
    HELP_GIVEN = "help_given"
    HELP_RECEIVED = "help_received"
    FOLLOW_RECEIVED = "follow_received"


# Kinds whose other person counts as a collaborator. A follower is not one: following is passive.
COLLABORATOR_LINK_KINDS = frozenset(
    {
        InteractionKind.TAG_RECEIVED,
        InteractionKind.TAG_GIVEN,
        InteractionKind.HELP_GIVEN,
        InteractionKind.HELP_RECEIVED,
    }
)

# Kinds that only link a collaborator and add nothing to a per-event count (weight 0).
LINK_ONLY_KINDS = frozenset({InteractionKind.TAG_GIVEN, InteractionKind.HELP_RECEIVED})


@dataclass(frozen=True)
class Goal:
    org_id: str
    goal_id: str
    owner_id: str
    team: str


@dataclass(frozen=True)
class GoalActivity:
    """One event that may credit people once its goal is known.

    ``actor_id`` is the person who acted (the check-in's author, the tagger, the follower) and
    ``target_id`` is the tagged person for a tag and None otherwise.
    """

    org_id: str
    event_id: str
    goal_id: str
    kind: ActivityKind
    actor_id: str
    target_id: str | None
    occurred_at: datetime


@dataclass(frozen=True)
class Interaction:
    """One credited person for one event.

    ``weight`` is 1 when the row adds to its kind's count and 0 when it only links a collaborator.
    """

    org_id: str
    event_id: str
    person_id: str
    kind: InteractionKind
    other_person_id: str
    goal_id: str
    goal_team: str
    weight: int
    occurred_at: datetime


def as_utc(moment: datetime) -> datetime:
    """Return ``moment`` in UTC; a naive value is taken as UTC, which is how SQLite returns stored times."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def interactions_for(activity: GoalActivity, goal: Goal) -> list[Interaction]:
    """Derive the interactions an activity credits; a person acting on themselves is never credited."""
    if activity.kind is ActivityKind.TAG:
        tagged_id = activity.target_id
        if tagged_id is None or tagged_id == activity.actor_id:
            return []
        return [
            _interaction(activity, goal, tagged_id, InteractionKind.TAG_RECEIVED, activity.actor_id),
            _interaction(activity, goal, activity.actor_id, InteractionKind.TAG_GIVEN, tagged_id),
        ]
    if activity.actor_id == goal.owner_id:
        return []
    if activity.kind is ActivityKind.CHECK_IN:
        return [
            _interaction(activity, goal, activity.actor_id, InteractionKind.HELP_GIVEN, goal.owner_id),
            _interaction(activity, goal, goal.owner_id, InteractionKind.HELP_RECEIVED, activity.actor_id),
        ]
    return [_interaction(activity, goal, goal.owner_id, InteractionKind.FOLLOW_RECEIVED, activity.actor_id)]


def _interaction(
    activity: GoalActivity, goal: Goal, person_id: str, kind: InteractionKind, other_person_id: str
) -> Interaction:
    return Interaction(
        org_id=activity.org_id,
        event_id=activity.event_id,
        person_id=person_id,
        kind=kind,
        other_person_id=other_person_id,
        goal_id=goal.goal_id,
        goal_team=goal.team,
        weight=0 if kind in LINK_ONLY_KINDS else 1,
        occurred_at=activity.occurred_at,
    )
