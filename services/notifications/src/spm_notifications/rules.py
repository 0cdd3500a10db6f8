"""Notification rules: the recipients of each event and the text of each notification, without any I/O."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Iterable, Sequence, TypeVar

from spm_events.visibility import GoalAudience

TAGGED = "tagged"
FOLLOWED_GOAL_CHECK_IN = "followed_goal_check_in"
OWNED_GOAL_CHECK_IN = "owned_goal_check_in"
GOAL_FOLLOWED = "goal_followed"
GOAL_COMMENTED = "goal_commented"
GOAL_KUDOS = "goal_kudos"
GOAL_REACTION = "goal_reaction"
MENTIONED = "mentioned"
FOLLOWED_GOAL_STATUS_CHANGED = "followed_goal_status_changed"
FOLLOWED_GOAL_CLOSED = "followed_goal_closed"
COMMUNITY_GOAL_LINKED = "community_goal_linked"
NUDGE_CHECK_IN_DUE = "nudge_check_in_due"
NUDGE_CONFIDENCE_FALLING = "nudge_confidence_falling"
NUDGE_TAG_PENDING = "nudge_tag_pending"

# Every kind of notification, with a line a person reads when choosing what to hear about.
NOTIFICATION_KINDS: dict[str, str] = {
    TAGGED: "Someone tagged you as a collaborator on a goal",
    OWNED_GOAL_CHECK_IN: "Someone else recorded a check-in on a goal you own",
    FOLLOWED_GOAL_CHECK_IN: "A check-in was recorded on a goal you follow",
    GOAL_FOLLOWED: "Someone started following a goal you own",
    GOAL_COMMENTED: "Someone commented on a goal you own",
    GOAL_KUDOS: "Someone gave kudos on a goal you own, or to you",
    GOAL_REACTION: "Someone reacted to a goal you own, or to its check-ins or comments",
    MENTIONED: "Someone mentioned you in a comment",
    FOLLOWED_GOAL_STATUS_CHANGED: "A goal you follow changed status",
    FOLLOWED_GOAL_CLOSED: "A goal you follow was closed, with its outcome",
    COMMUNITY_GOAL_LINKED: "A goal was linked to a community you belong to",
    NUDGE_CHECK_IN_DUE: "A key result of a goal you own has had no check-in for 14 days",
    NUDGE_CONFIDENCE_FALLING: "Confidence in a key result of a goal you follow dropped twice in a row",
    NUDGE_TAG_PENDING: "A tag on a goal has waited 3 days for your answer",
}
KINDS = tuple(NOTIFICATION_KINDS)
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
    occurred_at: datetime | None = None

    @property
    def owner_ids(self) -> frozenset[str]:
        return self.co_owner_ids | {self.owner_id}


@dataclass(frozen=True)
class VisibilityChange:
    """The goal's visibility from one goal event: GoalCreated or GoalVisibilityChanged."""

    aggregate_version: int
    visibility: str
    occurred_at: datetime | None = None


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
    activity = Activity(
        event_id=check_in.event_id,
        source=CHECK_IN_ACTIVITY,
        goal_id="",
        actor_id=check_in.actor_id,
        occurred_at=check_in.occurred_at,
        goal_version=check_in.aggregate_version,
    )
    facts = GoalFacts(
        follow_changes=list(follow_changes),
        owners_changes=list(owners_changes),
        visibility_changes=list(visibility_changes),
        collaborator_ids=collaborator_ids,
    )
    return activity_recipients(activity, facts)


def tagged_recipients(collaborator_id: str, actor_id: str) -> set[str]:
    """Return who hears of a tag: the tagged person, unless they tagged themselves."""
    return set() if collaborator_id == actor_id else {collaborator_id}


_MESSAGES = {
    TAGGED: ("You were tagged on {title}", "You were tagged on {title} {count} times"),
    OWNED_GOAL_CHECK_IN: (
        "A check-in was recorded on {title}, a goal you own",
        "{count} check-ins were recorded on {title}, a goal you own",
    ),
    FOLLOWED_GOAL_CHECK_IN: (
        "A check-in was recorded on {title}, a goal you follow",
        "{count} check-ins were recorded on {title}, a goal you follow",
    ),
    GOAL_FOLLOWED: ("Someone followed {title}, a goal you own", "{count} people followed {title}, a goal you own"),
    GOAL_COMMENTED: ("A comment was posted on {title}, a goal you own",
                     "{count} comments were posted on {title}, a goal you own"),
    GOAL_KUDOS: ("Kudos were given on {title}", "{count} kudos were given on {title}"),
    GOAL_REACTION: ("Someone reacted on {title}, a goal you own", "{count} reactions on {title}, a goal you own"),
    MENTIONED: ("You were mentioned in a comment on {title}", "You were mentioned in {count} comments on {title}"),
    FOLLOWED_GOAL_STATUS_CHANGED: (
        "The status of {title}, a goal you follow, changed",
        "The status of {title}, a goal you follow, changed {count} times",
    ),
    FOLLOWED_GOAL_CLOSED: ("A goal you follow was closed: {title}", "A goal you follow was closed: {title}"),
    COMMUNITY_GOAL_LINKED: (
        "{title} was linked to a community you belong to",
        "{title} was linked to {count} communities you belong to",
    ),
    NUDGE_CHECK_IN_DUE: (
        "A key result of {title} has had no check-in for 14 days",
        "{count} key results of {title} have had no check-in for 14 days",
    ),
    NUDGE_CONFIDENCE_FALLING: (
        "Confidence in a key result of {title}, a goal you follow, dropped twice in a row",
        "Confidence in {count} key results of {title}, a goal you follow, dropped twice in a row",
    ),
    NUDGE_TAG_PENDING: (
        "Your tag on {title} has waited 3 days for your answer",
        "{count} tags on {title} have waited 3 days for your answer",
    ),
}


def notification_message(kind: str, goal_title: str | None, count: int = 1) -> str:
    """Build the text shown for a notification or a group of ``count`` of them. It names the goal and never a person."""
    if kind not in _MESSAGES:
        raise ValueError(f"unknown notification kind {kind!r}, expected one of {', '.join(KINDS)}")
    title = f'"{goal_title}"' if goal_title else UNKNOWN_GOAL_TITLE
    single, grouped = _MESSAGES[kind]
    text = (single if count == 1 else grouped).format(title=title, count=count)
    return text[0].upper() + text[1:]


# --- Activities: every event that notifies someone, judged against the facts about its goal ---

CHECK_IN_ACTIVITY = "check_in"
STATUS_ACTIVITY = "status_changed"
FOLLOW_ACTIVITY = "followed"
COMMENT_ACTIVITY = "comment"
MENTION_ACTIVITY = "mention"
KUDOS_ACTIVITY = "kudos"
REACTION_ACTIVITY = "reaction"
COMMUNITY_LINK_ACTIVITY = "community_link"
CONFIDENCE_ACTIVITY = "confidence_falling"
CLOSED = "closed"

# Kinds a person gets as an owner or co-owner of the goal, and as a follower of it.
_OWNER_KINDS = {
    CHECK_IN_ACTIVITY: OWNED_GOAL_CHECK_IN,
    FOLLOW_ACTIVITY: GOAL_FOLLOWED,
    COMMENT_ACTIVITY: GOAL_COMMENTED,
    KUDOS_ACTIVITY: GOAL_KUDOS,
    REACTION_ACTIVITY: GOAL_REACTION,
}
_FOLLOWER_KINDS = {
    CHECK_IN_ACTIVITY: FOLLOWED_GOAL_CHECK_IN,
    CONFIDENCE_ACTIVITY: NUDGE_CONFIDENCE_FALLING,
}
# Kinds an activity can give, so that reconciling an activity touches only its own inbox rows.
ACTIVITY_KINDS = tuple(
    sorted({*_OWNER_KINDS.values(), *_FOLLOWER_KINDS.values(), FOLLOWED_GOAL_STATUS_CHANGED, FOLLOWED_GOAL_CLOSED,
            MENTIONED, COMMUNITY_GOAL_LINKED})
)


@dataclass(frozen=True)
class Activity:
    """One event that notifies people about a goal.

    ``goal_version`` is the goal's aggregate version for events of the goals topic. Social events
    carry their own aggregate's version, so they are judged by the goal's facts at their event time.
    ``people`` contains the people the event names: those mentioned in a comment, or the receiver of kudos.
    """

    event_id: str
    source: str
    goal_id: str
    actor_id: str
    occurred_at: datetime
    goal_version: int | None = None
    people: frozenset[str] = frozenset()
    community_id: str | None = None
    detail: str | None = None


@dataclass(frozen=True)
class GoalFacts:
    """What decides an activity's recipients: follows, owner sets, visibility, collaborators, community members."""

    follow_changes: Sequence[FollowChange] = ()
    owners_changes: Sequence[OwnersChange] = ()
    visibility_changes: Sequence[VisibilityChange] = ()
    collaborator_ids: frozenset[str] = frozenset()
    # Community id -> the joins (following=True) and leaves of its members, as follow changes.
    member_changes: dict[str, Sequence[FollowChange]] = field(default_factory=dict)


def latest_at(changes: Iterable[AudienceChange], moment: datetime) -> AudienceChange | None:
    """Return the change in force at event time ``moment``: the latest one at or before it.

    A goal fact dated after the moment (a social event dated before the goal was created) falls
    back to the goal's first known fact.
    """
    dated = [change for change in changes if change.occurred_at is not None]
    before = [change for change in dated if change.occurred_at <= moment]
    if before:
        return max(before, key=lambda change: (change.occurred_at, change.aggregate_version))
    return min(dated, key=lambda change: change.aggregate_version, default=None)


def activity_recipients(activity: Activity, facts: GoalFacts) -> dict[str, str]:
    """Return the recipients of an activity, each with the one kind of notification they get.

    The actor is never notified. When the goal was private (or, for a social event, its visibility
    is not known yet), only its insiders are notified: the owner, the co-owners and the tagged
    collaborators. A person named in the event, an owner and a follower get one notification: a
    mention or kudos to the person first, then the owner's kind, then the follower's.
    """
    if activity.goal_version is not None:
        owners = latest_before(facts.owners_changes, activity.goal_version)
        visibility = latest_before(facts.visibility_changes, activity.goal_version)
        # Goal events follow GoalCreated on their partition, so an unknown visibility here comes only
        # from events fed out of order. The check-in rule treats that case as open.
        private = visibility is not None and visibility.visibility == PRIVATE
    else:
        owners = latest_at(facts.owners_changes, activity.occurred_at)
        visibility = latest_at(facts.visibility_changes, activity.occurred_at)
        private = visibility is None or visibility.visibility == PRIVATE
    owner_ids = owners.owner_ids if owners is not None else frozenset()

    recipients: dict[str, str] = {}
    source = activity.source
    if source == STATUS_ACTIVITY:
        kind = FOLLOWED_GOAL_CLOSED if activity.detail == CLOSED else FOLLOWED_GOAL_STATUS_CHANGED
        recipients |= {person: kind for person in followers_at(facts.follow_changes, activity.occurred_at)}
    elif source in _FOLLOWER_KINDS:
        kind = _FOLLOWER_KINDS[source]
        recipients |= {person: kind for person in followers_at(facts.follow_changes, activity.occurred_at)}
    if source == COMMUNITY_LINK_ACTIVITY and activity.community_id is not None:
        members = followers_at(facts.member_changes.get(activity.community_id, ()), activity.occurred_at)
        recipients |= {person: COMMUNITY_GOAL_LINKED for person in members}
    if source in _OWNER_KINDS:
        recipients |= {person: _OWNER_KINDS[source] for person in owner_ids}
    if source in (COMMENT_ACTIVITY, MENTION_ACTIVITY):
        recipients |= {person: MENTIONED for person in activity.people}
    if source == KUDOS_ACTIVITY:
        recipients |= {person: GOAL_KUDOS for person in activity.people}
    recipients.pop(activity.actor_id, None)
    if not private:
        return recipients
    audience = GoalAudience(
        visibility=PRIVATE,
        owner_id=owners.owner_id if owners is not None else "",
        co_owner_ids=owners.co_owner_ids if owners is not None else frozenset(),
        collaborator_ids=facts.collaborator_ids,
    )
    return {person: kind for person, kind in recipients.items() if audience.is_insider(person)}


# --- Grouping ---

# Kinds that arrive in bursts. Their notifications of one goal, for one recipient, on one UTC day form one inbox item.
GROUPED_KINDS = frozenset({GOAL_FOLLOWED, GOAL_REACTION, GOAL_KUDOS})


def group_key_for(kind: str, goal_id: str, occurred_at: datetime) -> str | None:
    """Return the group a notification belongs to, or None when its kind is shown one by one.

    The key depends only on the kind, the goal and the event's UTC date, so replaying the topics
    rebuilds the same groups.
    """
    if kind not in GROUPED_KINDS:
        return None
    return f"{kind}|{goal_id}|{occurred_at.date().isoformat()}"


# --- Nudges ---

CHECK_IN_DUE_AFTER = timedelta(days=14)
TAG_PENDING_AFTER = timedelta(days=3)
NUDGE_ACTOR = "spm-notifications"


def nudge_cause_id(kind: str, cause_event_id: str) -> str:
    """Return the event id a nudge is stored under, derived from the event that started its wait."""
    return str(uuid.uuid5(NOTIFICATION_ID_NAMESPACE, f"nudge\n{kind}\n{cause_event_id}"))


@dataclass(frozen=True)
class KeyResultCheckIn:
    event_id: str
    actor_id: str
    occurred_at: datetime
    aggregate_version: int
    confidence: float | None

    @property
    def order_key(self) -> tuple[datetime, int, str]:
        return (self.occurred_at, self.aggregate_version, self.event_id)


@dataclass(frozen=True)
class Deadline:
    """A nudge that is due at ``due_at`` unless something happens first. ``cause_event_id`` started the wait."""

    cause_event_id: str
    due_at: datetime


def check_in_deadlines(added: KeyResultCheckIn, check_ins: Iterable[KeyResultCheckIn]) -> list[Deadline]:
    """Return every 14-day silence of a key result, from when it was added.

    Each check-in (and the key result's creation) starts a wait, and the next check-in within 14
    days ends it without a nudge. The last wait is still open and is due 14 days after its start.
    """
    anchors = sorted([added, *[c for c in check_ins if c.occurred_at >= added.occurred_at]], key=lambda c: c.order_key)
    deadlines = []
    for index, anchor in enumerate(anchors):
        due_at = anchor.occurred_at + CHECK_IN_DUE_AFTER
        following = anchors[index + 1] if index + 1 < len(anchors) else None
        if following is None or following.occurred_at >= due_at:
            deadlines.append(Deadline(anchor.event_id, due_at))
    return deadlines


def falling_confidence_streaks(check_ins: Iterable[KeyResultCheckIn]) -> list[KeyResultCheckIn]:
    """Return the check-ins at which a key result's confidence dropped for the second time in a row.

    Check-ins without a confidence are left out. A streak of drops gives one nudge, at its second
    drop. A rise or an equal value ends the streak.
    """
    rated = sorted((c for c in check_ins if c.confidence is not None), key=lambda c: c.order_key)
    found = []
    drops = 0
    for previous, current in zip(rated, rated[1:]):
        drops = drops + 1 if current.confidence < previous.confidence else 0  # type: ignore[operator]
        if drops == 2:
            found.append(current)
    return found


TAGGED_CHANGE = "tagged"
ACCEPTED_CHANGE = "accepted"
ENDING_CHANGES = ("declined", "left", "untagged")


@dataclass(frozen=True)
class CollaboratorChange:
    """A change of one person's tag on one goal: tagged, accepted, declined, left or untagged."""

    event_id: str
    person_id: str
    change: str
    occurred_at: datetime
    aggregate_version: int
    actor_id: str = ""

    @property
    def order_key(self) -> tuple[datetime, int, str]:
        return (self.occurred_at, self.aggregate_version, self.event_id)


def current_collaborators(changes: Iterable[CollaboratorChange]) -> frozenset[str]:
    """Return the people whose latest tag change is a tag or its acceptance."""
    latest: dict[str, CollaboratorChange] = {}
    for change in changes:
        if change.person_id not in latest or change.order_key > latest[change.person_id].order_key:
            latest[change.person_id] = change
    return frozenset(person for person, change in latest.items() if change.change in (TAGGED_CHANGE, ACCEPTED_CHANGE))


def tag_deadlines(changes: Iterable[CollaboratorChange]) -> dict[str, tuple[str, Deadline]]:
    """Return the tags still pending after 3 days: cause event id -> (tagged person, deadline).

    A tag stops pending at the person's next change (accept, decline, leave, untag) when that
    comes before the deadline. A self-tag is never pending.
    """
    by_person: dict[str, list[CollaboratorChange]] = {}
    for change in changes:
        by_person.setdefault(change.person_id, []).append(change)
    deadlines: dict[str, tuple[str, Deadline]] = {}
    for person, person_changes in by_person.items():
        ordered = sorted(person_changes, key=lambda change: change.order_key)
        for index, change in enumerate(ordered):
            if change.change != TAGGED_CHANGE or change.actor_id == person:
                continue
            due_at = change.occurred_at + TAG_PENDING_AFTER
            answer = ordered[index + 1] if index + 1 < len(ordered) else None
            if answer is None or answer.occurred_at >= due_at:
                deadlines[change.event_id] = (person, Deadline(change.event_id, due_at))
    return deadlines
