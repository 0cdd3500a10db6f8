"""Activities and the channels they are published on, stored once per event whatever the audience size."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, select

from spm_social.community_links import link_intervals, linked_community_ids
from spm_social.fanout import (
    COMMUNITY_AUDIENCE_KINDS,
    COMMUNITY_CHANNEL,
    Activity,
    Channel,
    as_utc,
    channels_of,
)
from spm_social.readmodel import SocialTables, insert_ignoring_duplicates, insert_many_ignoring_duplicates

ACTIVITY_DEFAULTS: dict[str, object] = {
    "goal_id": None,
    "community_id": None,
    "subject_id": None,
    "direct_recipient_id": None,
    "target_kind": None,
    "target_id": None,
    "key_result_id": None,
    "progress": None,
    "message": None,
    "reaction_count": None,
    "hidden": False,
}


def record_activity(
    connection: Connection, tables: SocialTables, values: dict[str, object], now: datetime
) -> tuple[Activity, list[Channel]] | None:
    """Store an activity and its channel rows.

    Return the activity and its channels when it is new, so its items can be written without
    reading anything back. Return None for an activity stored before, after making its channel
    rows match again.
    """
    row = ACTIVITY_DEFAULTS | values | {"indexed_at": now}
    org_id = str(row["org_id"])
    if not insert_ignoring_duplicates(connection, tables.activities, row):
        publish_activity(connection, tables, org_id, str(row["event_id"]))
        return None
    activity = _activity_from(row)
    channels = channels_of(activity, _linked_communities(connection, tables, org_id, activity))
    insert_many_ignoring_duplicates(
        connection, tables.channel_activities, [_channel_row(org_id, activity, channel) for channel in channels]
    )
    return activity, channels


def publish_activity(connection: Connection, tables: SocialTables, org_id: str, event_id: str) -> None:
    """Make the activity's channel rows match its channels, or remove them if the activity is gone."""
    channel_activities = tables.channel_activities
    event_filter = (channel_activities.c.org_id == org_id, channel_activities.c.event_id == event_id)
    activity = load_activities(connection, tables, org_id, [event_id]).get(event_id)
    stored = {
        (Channel(row.channel_kind, row.channel_id), as_utc(row.occurred_at))
        for row in connection.execute(
            select(
                channel_activities.c.channel_kind, channel_activities.c.channel_id, channel_activities.c.occurred_at
            ).where(*event_filter)
        )
    }
    channels = []
    if activity is not None:
        channels = channels_of(activity, _linked_communities(connection, tables, org_id, activity))
    expected = {(channel, activity.occurred_at) for channel in channels} if activity is not None else set()
    if stored == expected:
        return
    connection.execute(delete(channel_activities).where(*event_filter))
    if activity is not None:
        insert_many_ignoring_duplicates(
            connection, channel_activities, [_channel_row(org_id, activity, channel) for channel in channels]
        )


def _linked_communities(connection: Connection, tables: SocialTables, org_id: str, activity: Activity) -> list[str]:
    if activity.goal_id is None or activity.kind not in COMMUNITY_AUDIENCE_KINDS:
        return []
    return linked_community_ids(connection, tables, org_id, activity.goal_id, activity.occurred_at)


def _channel_row(org_id: str, activity: Activity, channel: Channel) -> dict[str, object]:
    return {
        "org_id": org_id,
        "channel_kind": channel.kind,
        "channel_id": channel.channel_id,
        "event_id": activity.event_id,
        "kind": activity.kind,
        "occurred_at": activity.occurred_at,
    }


def republish_for_link(
    connection: Connection, tables: SocialTables, org_id: str, community_id: str, goal_id: str
) -> list[str]:
    """Add or remove the goal's activities on the community's channel after a link change; return those touched."""
    activities = tables.activities
    channel_activities = tables.channel_activities
    intervals = link_intervals(connection, tables, org_id, community_id, goal_id)
    goal_activities = connection.execute(
        select(activities.c.event_id, activities.c.kind, activities.c.occurred_at).where(
            activities.c.org_id == org_id,
            activities.c.goal_id == goal_id,
            activities.c.kind.in_(sorted(COMMUNITY_AUDIENCE_KINDS)),
        )
    ).all()

    expected = {
        row.event_id: (row.kind, as_utc(row.occurred_at))
        for row in goal_activities
        if any(interval.covers(as_utc(row.occurred_at)) for interval in intervals)
    }
    stored = set(
        connection.execute(
            select(channel_activities.c.event_id)
            .join(
                activities,
                and_(
                    activities.c.org_id == channel_activities.c.org_id,
                    activities.c.event_id == channel_activities.c.event_id,
                ),
            )
            .where(
                channel_activities.c.org_id == org_id,
                channel_activities.c.channel_kind == COMMUNITY_CHANNEL,
                channel_activities.c.channel_id == community_id,
                activities.c.goal_id == goal_id,
                activities.c.kind.in_(sorted(COMMUNITY_AUDIENCE_KINDS)),
            )
        ).scalars()
    )

    removed = sorted(stored - expected.keys())
    added = sorted(expected.keys() - stored)
    for chunk in chunked(removed):
        connection.execute(
            delete(channel_activities).where(
                channel_activities.c.org_id == org_id,
                channel_activities.c.channel_kind == COMMUNITY_CHANNEL,
                channel_activities.c.channel_id == community_id,
                channel_activities.c.event_id.in_(chunk),
            )
        )
    insert_many_ignoring_duplicates(
        connection,
        channel_activities,
        [
            {
                "org_id": org_id,
                "channel_kind": COMMUNITY_CHANNEL,
                "channel_id": community_id,
                "event_id": event_id,
                "kind": expected[event_id][0],
                "occurred_at": expected[event_id][1],
            }
            for event_id in added
        ],
    )
    return removed + added


def channel_event_ids(
    connection: Connection, tables: SocialTables, org_id: str, channel: Channel, since: datetime | None
) -> list[str]:
    """Return the ids of the channel's activities at or after ``since`` (all of them when None)."""
    channel_activities = tables.channel_activities
    query = select(channel_activities.c.event_id).where(
        channel_activities.c.org_id == org_id,
        channel_activities.c.channel_kind == channel.kind,
        channel_activities.c.channel_id == channel.channel_id,
    )
    if since is not None:
        query = query.where(channel_activities.c.occurred_at >= since)
    return list(connection.execute(query).scalars())


def load_activities(
    connection: Connection, tables: SocialTables, org_id: str, event_ids: Iterable[str]
) -> dict[str, Activity]:
    activities = tables.activities
    loaded: dict[str, Activity] = {}
    for chunk in chunked(sorted(set(event_ids))):
        rows = connection.execute(
            select(activities).where(activities.c.org_id == org_id, activities.c.event_id.in_(chunk))
        ).mappings()
        for row in rows:
            activity = _activity_from(row)
            loaded[activity.event_id] = activity
    return loaded


def _activity_from(row: Mapping[str, Any]) -> Activity:
    return Activity(
        event_id=row["event_id"],
        kind=row["kind"],
        occurred_at=as_utc(row["occurred_at"]),
        actor_id=row["actor_id"],
        goal_id=row["goal_id"],
        community_id=row["community_id"],
        subject_id=row["subject_id"],
        direct_recipient_id=row["direct_recipient_id"],
        target_kind=row["target_kind"],
    )


def chunked(values: list[str], size: int = 500) -> list[list[str]]:
    """Split a list of query parameters into chunks that stay below every database's parameter limit."""
    return [values[start : start + size] for start in range(0, len(values), size)]
