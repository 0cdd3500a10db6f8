"""Notification rules: the recipients of each event and the text of each notification, without any I/O."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, TypeVar

from spm_events.visibility import GoalAudience

TAGGED = "tagged"
FOLLOWED_GOAL_CHECK_IN = "followed_goal_check_in"
OWNED_GOAL_CHECK_IN = "owned_goal_check_in"
KINDS = (TAGGED, FOLLOWED_GOAL_CHECK_IN, OWNED_GOAL_CHECK_IN)
CHECK_IN_KINDS = (FOLLOWED_GOAL_CHECK_IN, OWNED_GOAL_CHECK_IN)
PRIVATE = "private"

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


@dataclass(frozen=True)
class OwnersChange:
    """The goal's whole owner set from one goal event: GoalCreated or GoalOwnersChanged."""

    aggregate_version: int
    owner_id: str
    co_owner_ids: frozenset[str]

    @property
    def owner_ids(self) -> frozenset[str]:
        return self.co_owner_ids | {self.owner_id}


@dataclass(frozen=True)
class VisibilityChange:
    """The goal's visibility from one goal event: GoalCreated or GoalVisibilityChanged."""

    aggregate_version: int
    visibility: str


@dataclass(frozen=True)
class CheckIn:
    event_id: str
    actor_id: str
    occurred_at: datetime
    aggregate_version: int


AudienceChange = TypeVar("AudienceChange", OwnersChange, VisibilityChange)


def latest_before(changes: Iterable[AudienceChange], version: int) -> AudienceChange | None:
    """Return the change with the highest aggregate version below ``version``: the one in force at that version."""
    earlier = [change for change in changes if change.aggregate_version < version]
    return max(earlier, key=lambda change: change.aggregate_version, default=None)


def check_in_notifications(
    check_in: CheckIn,
    follow_changes: Iterable[FollowChange],
    owners_changes: Iterable[OwnersChange],
    visibility_changes: Iterable[VisibilityChange],
    collaborator_ids: frozenset[str],
) -> dict[str, str]:
    """Return the recipients of a check-in, each with the kind of notification they get.

    The owner and co-owners in force at the check-in's aggregate version get ``owned_goal_check_in``;
    everyone following the goal at its event time gets ``followed_goal_check_in``. The actor gets
    nothing. When the goal was private at that version, only its insiders (owners and tagged
    collaborators) are notified. Until the goal's owners or visibility are known, the check-in
    notifies no owner and is not treated as private.
    """
    owners = latest_before(owners_changes, check_in.aggregate_version)
    visibility = latest_before(visibility_changes, check_in.aggregate_version)
    recipients = {person_id: FOLLOWED_GOAL_CHECK_IN for person_id in followers_at(follow_changes, check_in.occurred_at)}
    if owners is not None:
        recipients |= {person_id: OWNED_GOAL_CHECK_IN for person_id in owners.owner_ids}
    recipients.pop(check_in.actor_id, None)
    if visibility is None or visibility.visibility != PRIVATE:
        return recipients
    audience = GoalAudience(
        visibility=PRIVATE,
        # A person id is never empty, so an unknown owner matches no person.
        owner_id=owners.owner_id if owners is not None else "",
        co_owner_ids=owners.co_owner_ids if owners is not None else frozenset(),
        collaborator_ids=collaborator_ids,
    )
    return {person_id: kind for person_id, kind in recipients.items() if audience.is_insider(person_id)}


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
    if kind == OWNED_GOAL_CHECK_IN:
        return f"A check-in was recorded on {title}, a goal you own"
    raise ValueError(f"unknown notification kind {kind!r}, expected one of {', '.join(KINDS)}")
