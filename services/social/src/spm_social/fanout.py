"""Feed fan-out rules: which channels an activity is published on, who subscribes to a channel when, and why.

An activity is one feed-worthy fact (a check-in, a comment, a kudos, a new member, ...). It is
published on channels: its goal's channel (followers and tagged collaborators), its goal's owners
channel, the channels of communities the goal was linked to at the activity's time, and the
channel of the person who acted. A person subscribes to a channel for intervals of event time
(from a follow to the next unfollow), so an activity at time T reaches the people whose interval
covers T. Everything here is a pure function of the stored events, so the feeds do not depend on
the order in which spm.goals.v1 and spm.social.v1 arrive.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone

# Feed item kinds, the values of the feed's `kind` filter.
GOAL_CREATED = "goal_created"
KEY_RESULT_ADDED = "key_result_added"
CHECK_IN_RECORDED = "check_in_recorded"
GOAL_FOLLOWED = "goal_followed"
COLLABORATOR_TAGGED = "collaborator_tagged"
TAG_ACCEPTED = "tag_accepted"
COMMENT_POSTED = "comment_posted"
REACTIONS = "reactions"
KUDOS_GIVEN = "kudos_given"
COMMUNITY_GOAL_LINKED = "community_goal_linked"
MEMBER_JOINED = "member_joined"
FEED_KINDS = (
    GOAL_CREATED,
    KEY_RESULT_ADDED,
    CHECK_IN_RECORDED,
    GOAL_FOLLOWED,
    COLLABORATOR_TAGGED,
    TAG_ACCEPTED,
    COMMENT_POSTED,
    REACTIONS,
    KUDOS_GIVEN,
    COMMUNITY_GOAL_LINKED,
    MEMBER_JOINED,
)

# Channel kinds. A channel is a (kind, id) pair: the id is a goal, community or person id.
GOAL_CHANNEL = "goal"
GOAL_OWNERS_CHANNEL = "goal_owners"
COMMUNITY_CHANNEL = "community"
PERSON_CHANNEL = "person"
CHANNEL_KINDS = (GOAL_CHANNEL, GOAL_OWNERS_CHANNEL, COMMUNITY_CHANNEL, PERSON_CHANNEL)

# Reasons for a feed item, best first. A reader reached through several channels gets the item
# once, with the first of their reasons.
ABOUT_YOU = "about_you"
OWNER = "owner"
CO_OWNER = "co_owner"
COLLABORATOR = "collaborator"
FOLLOWED_GOAL = "followed_goal"
COMMUNITY_MEMBER = "community_member"
FOLLOWED_COMMUNITY = "followed_community"
FOLLOWED_PERSON = "followed_person"
SOURCES = (
    ABOUT_YOU,
    OWNER,
    CO_OWNER,
    COLLABORATOR,
    FOLLOWED_GOAL,
    COMMUNITY_MEMBER,
    FOLLOWED_COMMUNITY,
    FOLLOWED_PERSON,
)
SOURCE_RANK = {source: rank for rank, source in enumerate(SOURCES)}

# The channel each subscription source belongs to. Owners are never read at read time: a goal has
# at most 21 of them, so writing their items stays cheap.
CHANNEL_OF_SOURCE = {
    OWNER: GOAL_OWNERS_CHANNEL,
    CO_OWNER: GOAL_OWNERS_CHANNEL,
    COLLABORATOR: GOAL_CHANNEL,
    FOLLOWED_GOAL: GOAL_CHANNEL,
    COMMUNITY_MEMBER: COMMUNITY_CHANNEL,
    FOLLOWED_COMMUNITY: COMMUNITY_CHANNEL,
    FOLLOWED_PERSON: PERSON_CHANNEL,
}
SOURCES_OF_CHANNEL = {
    kind: tuple(source for source, channel_kind in CHANNEL_OF_SOURCE.items() if channel_kind == kind)
    for kind in CHANNEL_KINDS
}
READ_TIME_ELIGIBLE_SOURCES = (COLLABORATOR, FOLLOWED_GOAL, COMMUNITY_MEMBER, FOLLOWED_COMMUNITY, FOLLOWED_PERSON)

# A subscriber group (one channel and one source) switches from write fan-out to read fan-out
# once this many distinct people have ever been in it. See the README's "Fan-out" section for the
# measurements behind the value. A read model keeps the threshold it was created with.
DEFAULT_READ_TIME_THRESHOLD = 500

# Activity kinds per channel, besides the goal's owners channel (which gets every activity of the
# goal) and the direct recipient (the person the activity is addressed to, for DIRECT_KINDS).
GOAL_AUDIENCE_KINDS = frozenset(
    {GOAL_CREATED, KEY_RESULT_ADDED, CHECK_IN_RECORDED, TAG_ACCEPTED, COMMENT_POSTED, KUDOS_GIVEN}
)
PERSON_AUDIENCE_KINDS = frozenset({GOAL_CREATED, CHECK_IN_RECORDED, COMMENT_POSTED, KUDOS_GIVEN})
COMMUNITY_AUDIENCE_KINDS = GOAL_AUDIENCE_KINDS
DIRECT_KINDS = frozenset({COLLABORATOR_TAGGED, KUDOS_GIVEN, REACTIONS})
REACTION_GOAL_TARGET = "goal"
# Kinds whose subject and actor get no item, because nobody needs news of their own follow or join.
SUBJECT_SKIPPED_KINDS = frozenset({GOAL_FOLLOWED, MEMBER_JOINED})


def as_utc(value: datetime) -> datetime:
    """Attach UTC to a datetime read back from SQLite, which stores UTC times without an offset."""
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def as_utc_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


@dataclass(frozen=True, order=True)
class Channel:
    kind: str
    channel_id: str


@dataclass(frozen=True)
class Activity:
    """The facts of one activity that decide who receives it."""

    event_id: str
    kind: str
    occurred_at: datetime
    actor_id: str
    goal_id: str | None
    community_id: str | None
    subject_id: str | None
    # The person the activity is addressed to (for DIRECT_KINDS): the tagged person, the kudos
    # receiver, or the author of the check-in or comment that got reactions.
    direct_recipient_id: str | None
    target_kind: str | None = None


def channels_of(activity: Activity, linked_community_ids: Iterable[str]) -> list[Channel]:
    """Return the channels an activity is published on; ``linked_community_ids`` are the goal's links at its time."""
    channels = []
    if activity.kind == REACTIONS:
        # Reactions to the goal go to its owners; reactions to a check-in or comment, to its author alone.
        is_about_goal = activity.target_kind == REACTION_GOAL_TARGET and activity.goal_id is not None
        return [Channel(GOAL_OWNERS_CHANNEL, activity.goal_id)] if is_about_goal else []  # type: ignore[arg-type]
    if activity.goal_id is not None:
        channels.append(Channel(GOAL_OWNERS_CHANNEL, activity.goal_id))
    if activity.goal_id is not None and activity.kind in GOAL_AUDIENCE_KINDS:
        channels.append(Channel(GOAL_CHANNEL, activity.goal_id))
    if activity.kind in PERSON_AUDIENCE_KINDS:
        channels.append(Channel(PERSON_CHANNEL, activity.actor_id))
    if activity.kind in COMMUNITY_AUDIENCE_KINDS:
        channels.extend(Channel(COMMUNITY_CHANNEL, community_id) for community_id in sorted(set(linked_community_ids)))
    if activity.kind in (MEMBER_JOINED, COMMUNITY_GOAL_LINKED) and activity.community_id is not None:
        channels.append(Channel(COMMUNITY_CHANNEL, activity.community_id))
    return channels


@dataclass(frozen=True)
class Interval:
    """A half-open span of event time [starts_at, ends_at); None is unbounded on that side."""

    starts_at: datetime | None
    ends_at: datetime | None

    def covers(self, moment: datetime) -> bool:
        after_start = self.starts_at is None or self.starts_at <= moment
        before_end = self.ends_at is None or moment < self.ends_at
        return after_start and before_end


ALWAYS = Interval(None, None)


@dataclass(frozen=True)
class MembershipChange:
    """A start (follow, tag, join, link) or an end (unfollow, decline, leave, untag, unlink) of one membership."""

    event_id: str
    starts: bool
    occurred_at: datetime
    aggregate_version: int

    @property
    def order_key(self) -> tuple[int, datetime, str]:
        # Every change of one membership comes from one aggregate (a goal's social graph, a
        # community, a person's follow graph), so its version is the order in which it was recorded.
        return (self.aggregate_version, self.occurred_at, self.event_id)


def intervals_from(changes: Iterable[MembershipChange]) -> list[Interval]:
    """Return the spans of event time during which the membership held, in the order recorded.

    A change whose event time lies before the previous change's counts from that previous time, so
    a backdated unfollow ends the follow at the follow's own time instead of leaving it open.
    """
    intervals = []
    opened_at: datetime | None = None
    is_open = False
    latest: datetime | None = None
    for change in sorted(changes, key=lambda change: change.order_key):
        moment = change.occurred_at if latest is None else max(latest, change.occurred_at)
        latest = moment
        if change.starts and not is_open:
            is_open, opened_at = True, moment
        elif not change.starts and is_open:
            is_open = False
            if opened_at is not None and opened_at < moment:
                intervals.append(Interval(opened_at, moment))
    if is_open:
        intervals.append(Interval(opened_at, None))
    return intervals


def first_difference(old: list[Interval], new: list[Interval]) -> datetime | None:
    """Return the earliest event time from which two different interval lists may disagree; None means always.

    Intervals are disjoint and sorted, so membership at T counts the starts and the ends at or
    before T. Two lists with the same bounds before T therefore agree before T.
    """
    changed_starts = {interval.starts_at for interval in old} ^ {interval.starts_at for interval in new}
    if None in changed_starts:
        return None
    changed_ends = {interval.ends_at for interval in old} ^ {interval.ends_at for interval in new}
    # An open end lies after every event time, so it moves nothing earlier.
    candidates = changed_starts | (changed_ends - {None})
    return min(candidates) if candidates else None  # type: ignore[type-var]


@dataclass(frozen=True)
class Subscription:
    """One interval during which a person received a channel's activities, and the reason they did."""

    person_id: str
    channel: Channel
    source: str
    interval: Interval


@dataclass(frozen=True)
class Delivery:
    """The reason one reader gets one activity: the source and the goal, community or person behind it."""

    source: str
    source_id: str | None

    @property
    def rank(self) -> tuple[int, str]:
        return (SOURCE_RANK[self.source], self.source_id or "")


def plan_deliveries(
    activity: Activity,
    channels: Iterable[Channel],
    subscriptions: Mapping[Channel, Iterable[Subscription]],
    people: frozenset[str] | None = None,
) -> dict[str, Delivery]:
    """Return who receives the activity and why, keeping each person's best reason.

    ``subscriptions`` contains the written (not read-time) subscriptions of the channels. ``people``
    narrows the result to those persons when given.
    """
    best: dict[str, Delivery] = {}

    def offer(person_id: str, delivery: Delivery) -> None:
        if people is not None and person_id not in people:
            return
        if activity.kind in SUBJECT_SKIPPED_KINDS and person_id in (activity.subject_id, activity.actor_id):
            return
        current = best.get(person_id)
        if current is None or delivery.rank < current.rank:
            best[person_id] = delivery

    for channel in channels:
        for subscription in subscriptions.get(channel, ()):
            if subscription.interval.covers(activity.occurred_at):
                offer(subscription.person_id, Delivery(subscription.source, channel.channel_id))
    if activity.kind in DIRECT_KINDS and activity.direct_recipient_id is not None:
        offer(activity.direct_recipient_id, Delivery(ABOUT_YOU, None))
    return best
