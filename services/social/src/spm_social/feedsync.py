"""Write fan-out: keeps the stored feed items of some activities equal to what their subscriptions call for.

Each applied event names the activities whose recipients it can change, optionally narrowed to
some people. The planned items depend only on the stored facts, so the result is the same
whatever the order in which events arrived.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from uuid import UUID, uuid5

from sqlalchemy import Connection, delete, select, update

from spm_social.activities import chunked, load_activities
from spm_social.fanout import Activity, Channel, Delivery, as_utc, plan_deliveries
from spm_social.readmodel import SocialTables, insert_many_ignoring_duplicates
from spm_social.subscriptions import written_subscriptions

logger = logging.getLogger(__name__)

# Feed item ids are derived from the reader and the event, so a rebuild from the topics gives
# every item the id it had before.
FEED_ITEM_NAMESPACE = UUID("8b5d6c2e-1f3a-5b7c-8d9e-0a1b2c3d4e5f")


def feed_item_id(person_id: str, event_id: str) -> str:
    return str(uuid5(FEED_ITEM_NAMESPACE, f"{person_id}/{event_id}"))


def reconcile_feed_items(
    connection: Connection,
    tables: SocialTables,
    org_id: str,
    event_ids: Iterable[str],
    now: datetime,
    people: frozenset[str] | None = None,
) -> None:
    """Insert, update and delete the items of these activities until they match the plan.

    With ``people`` given, only those readers' items are touched.
    """
    for chunk in chunked(sorted(set(event_ids))):
        _reconcile_chunk(connection, tables, org_id, chunk, now, people)


def write_new_activity_items(
    connection: Connection,
    tables: SocialTables,
    org_id: str,
    activity: Activity,
    channels: list[Channel],
    now: datetime,
) -> None:
    """Write the items of an activity stored moments ago, which has none yet: the fast path of every new event."""
    subscriptions = written_subscriptions(connection, tables, org_id, set(channels), None, activity.occurred_at)
    deliveries = plan_deliveries(activity, channels, subscriptions)
    rows = [
        _item_row(org_id, person_id, activity, delivery, now)
        for person_id, delivery in sorted(deliveries.items())
    ]
    insert_many_ignoring_duplicates(connection, tables.feed_items, rows)


def _item_row(org_id: str, person_id: str, activity: Activity, delivery: Delivery, now: datetime) -> dict[str, object]:
    return {
        "item_id": feed_item_id(person_id, activity.event_id),
        "org_id": org_id,
        "person_id": person_id,
        "event_id": activity.event_id,
        "kind": activity.kind,
        "goal_id": activity.goal_id,
        "community_id": activity.community_id,
        "source": delivery.source,
        "source_id": delivery.source_id,
        "occurred_at": activity.occurred_at,
        "indexed_at": now,
    }


def _reconcile_chunk(
    connection: Connection,
    tables: SocialTables,
    org_id: str,
    event_ids: list[str],
    now: datetime,
    people: frozenset[str] | None,
) -> None:
    activities = load_activities(connection, tables, org_id, event_ids)
    channels_by_event = _channels_by_event(connection, tables, org_id, event_ids)
    all_channels = {channel for channels in channels_by_event.values() for channel in channels}
    subscriptions = written_subscriptions(connection, tables, org_id, all_channels, people)
    planned: dict[str, tuple[str, str, Delivery]] = {}
    for event_id, activity in activities.items():
        deliveries = plan_deliveries(activity, channels_by_event.get(event_id, []), subscriptions, people)
        for person_id, delivery in deliveries.items():
            planned[feed_item_id(person_id, event_id)] = (person_id, event_id, delivery)

    items = tables.feed_items
    query = select(items.c.item_id, items.c.person_id, items.c.source, items.c.source_id, items.c.occurred_at).where(
        items.c.org_id == org_id, items.c.event_id.in_(event_ids)
    )
    if people is not None and len(people) <= 200:
        query = query.where(items.c.person_id.in_(sorted(people)))
    stored = {
        row.item_id: row
        for row in connection.execute(query)
        if people is None or row.person_id in people
    }

    removed = sorted(stored.keys() - planned.keys())
    for ids in chunked(removed):
        connection.execute(delete(items).where(items.c.item_id.in_(ids)))
    new_rows = []
    for item_id, (person_id, event_id, delivery) in planned.items():
        activity = activities[event_id]
        row = stored.get(item_id)
        if row is None:
            new_rows.append(_item_row(org_id, person_id, activity, delivery, now))
        elif (row.source, row.source_id, as_utc(row.occurred_at)) != (
            delivery.source,
            delivery.source_id,
            activity.occurred_at,
        ):
            # indexed_at keeps the time the item first reached the reader's feed.
            connection.execute(
                update(items)
                .where(items.c.item_id == item_id)
                .values(source=delivery.source, source_id=delivery.source_id, occurred_at=activity.occurred_at)
            )
    insert_many_ignoring_duplicates(connection, items, new_rows)
    if new_rows or removed:
        logger.debug(
            "feed items of org_id=%s activities=%s: added=%s removed=%s",
            org_id, len(event_ids), len(new_rows), len(removed),
        )


def _channels_by_event(
    connection: Connection, tables: SocialTables, org_id: str, event_ids: list[str]
) -> dict[str, list[Channel]]:
    channel_activities = tables.channel_activities
    rows = connection.execute(
        select(channel_activities.c.event_id, channel_activities.c.channel_kind, channel_activities.c.channel_id).where(
            channel_activities.c.org_id == org_id, channel_activities.c.event_id.in_(event_ids)
        )
    )
    channels: dict[str, list[Channel]] = {}
    for row in rows:
        channels.setdefault(row.event_id, []).append(Channel(row.channel_kind, row.channel_id))
    return channels
