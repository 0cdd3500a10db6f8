"""Goals linked to communities over event time: a goal's activity at T reaches the communities it was linked to at T."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Select, bindparam, delete, or_, select

from spm_events.envelope import Envelope
from spm_social.fanout import Interval, MembershipChange, as_utc, as_utc_or_none, intervals_from
from spm_social.feedtables import END, START
from spm_social.readmodel import SocialTables, insert_ignoring_duplicates


def record_link_change(
    connection: Connection, tables: SocialTables, envelope: Envelope, community_id: str, goal_id: str, starts: bool
) -> bool:
    """Store one link or unlink and recompute the link's intervals; return whether they changed."""
    org_id = envelope.orgid
    changes = tables.link_changes
    insert_ignoring_duplicates(
        connection,
        changes,
        {
            "org_id": org_id,
            "event_id": envelope.id,
            "community_id": community_id,
            "goal_id": goal_id,
            "change": START if starts else END,
            "occurred_at": envelope.time,
            "aggregate_version": envelope.aggregateversion,
        },
    )
    rows = connection.execute(
        select(changes.c.event_id, changes.c.change, changes.c.occurred_at, changes.c.aggregate_version).where(
            changes.c.org_id == org_id, changes.c.community_id == community_id, changes.c.goal_id == goal_id
        )
    )
    intervals = intervals_from(
        MembershipChange(row.event_id, row.change == START, as_utc(row.occurred_at), row.aggregate_version)
        for row in rows
    )

    links = tables.goal_links
    link_filter = (links.c.org_id == org_id, links.c.community_id == community_id, links.c.goal_id == goal_id)
    stored = [
        Interval(as_utc_or_none(row.starts_at), as_utc_or_none(row.ends_at))
        for row in connection.execute(
            select(links.c.starts_at, links.c.ends_at).where(*link_filter).order_by(links.c.interval_number)
        )
    ]
    if stored == intervals:
        return False
    connection.execute(delete(links).where(*link_filter))
    if intervals:
        connection.execute(
            links.insert(),
            [
                {
                    "org_id": org_id,
                    "community_id": community_id,
                    "goal_id": goal_id,
                    "interval_number": number,
                    "starts_at": interval.starts_at,
                    "ends_at": interval.ends_at,
                }
                for number, interval in enumerate(intervals)
            ],
        )
    return True


def linked_community_ids(
    connection: Connection, tables: SocialTables, org_id: str, goal_id: str, at: datetime
) -> list[str]:
    """Return the communities the goal was linked to at event time ``at``."""
    rows = connection.execute(_linked_communities_statement(tables), {"org_id": org_id, "goal_id": goal_id, "at": at})
    return sorted(rows.scalars())


# Built once per read model: every goal activity runs it, and building it costs more than running it.
@lru_cache(maxsize=64)
def _linked_communities_statement(tables: SocialTables) -> Select[Any]:
    links = tables.goal_links
    at = bindparam("at")
    return (
        select(links.c.community_id)
        .where(
            links.c.org_id == bindparam("org_id"),
            links.c.goal_id == bindparam("goal_id"),
            or_(links.c.starts_at.is_(None), links.c.starts_at <= at),
            or_(links.c.ends_at.is_(None), links.c.ends_at > at),
        )
        .distinct()
    )


def link_intervals(
    connection: Connection, tables: SocialTables, org_id: str, community_id: str, goal_id: str
) -> list[Interval]:
    links = tables.goal_links
    rows = connection.execute(
        select(links.c.starts_at, links.c.ends_at).where(
            links.c.org_id == org_id, links.c.community_id == community_id, links.c.goal_id == goal_id
        )
    )
    return [Interval(as_utc_or_none(row.starts_at), as_utc_or_none(row.ends_at)) for row in rows]

