"""Notification rules: the recipients of each event and the text of each notification, without any I/O."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable

TAGGED = "tagged"
FOLLOWED_GOAL_CHECK_IN = "followed_goal_check_in"
KINDS = (TAGGED, FOLLOWED_GOAL_CHECK_IN)

# Notification ids derive from the event and the recipient, so applying an event again yields the same ids.
NOTIFICATION_ID_NAMESPACE = uuid.UUID("0b6d4c52-93a4-4b0e-8d8e-3f5b3c7f2a61")
UNKNOWN_GOAL_TITLE = "a goal"


def notification_id_for(event_id: str, recipient_id: str) -> str:
    """Return the stable id of the notification that one event creates for one recipient."""
    return str(uuid.uuid5(NOTIFICATION_ID_NAMESPACE, f"{event_id}\n{recipient_id}"))


@dataclass(frozen=True)
class FollowChange:
    """One GoalFollowed (following=True) or GoalUnfollowed (following=False) of one person."""

    event_id: str
    person_id: str
    following: bool
    occurred_at: datetime
    aggregate_version: int

    @property
    def order_key(self) -> tuple[datetime, int, str]:
        # Event time comes first, and the social aggregate's version orders changes recorded at the same instant.
        return (self.occurred_at, self.aggregate_version, self.event_id)


def followers_at(changes: Iterable[FollowChange], moment: datetime) -> set[str]:
    """Return the people whose latest follow change at or before ``moment`` is a follow."""
    latest_by_person: dict[str, FollowChange] = {}
    for change in changes:
        if change.occurred_at > moment:
            continue
        latest = latest_by_person.get(change.person_id)
        if latest is None or change.order_key > latest.order_key:
            latest_by_person[change.person_id] = change
    return {person_id for person_id, change in latest_by_person.items() if change.following}


def check_in_recipients(changes: Iterable[FollowChange], checked_in_at: datetime, actor_id: str) -> set[str]:
    """Return who hears of a check-in: everyone following the goal at its event time except the actor."""
    return followers_at(changes, checked_in_at) - {actor_id}


def tagged_recipients(collaborator_id: str, actor_id: str) -> set[str]:
    """Return who hears of a tag: the tagged person, unless they tagged themselves."""
    return set() if collaborator_id == actor_id else {collaborator_id}


def notification_message(kind: str, goal_title: str | None) -> str:
    """Build the text shown for a notification. It names the goal and never a person."""
    title = f'"{goal_title}"' if goal_title else UNKNOWN_GOAL_TITLE
    if kind == TAGGED:
        return f"You were tagged on {title}"
    if kind == FOLLOWED_GOAL_CHECK_IN:
        return f"A check-in was recorded on {title}, a goal you follow"
    raise ValueError(f"unknown notification kind {kind!r}, expected one of {', '.join(KINDS)}")
