"""Reconciliation of the stored feed items of one goal with the goal's recorded events.

Each applied event recomputes the items it can affect (see ``spm_social.fanout``) and inserts the
missing ones, removes the ones no longer due and rewrites changed summaries. The result is the
same whatever the order of arrival, because the planned items depend only on the recorded events.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID, uuid5

from sqlalchemy import Connection, ColumnElement, Table, delete, select, update

from spm_social.fanout import (
    AudienceChange,
    GoalAudience,
    GoalEvent,
    GoalFacts,
    PlannedItem,
    as_utc,
    plan_audience_change_items,
    plan_goal_event_items,
)
from spm_social.readmodel import SocialTables, insert_many_ignoring_duplicates

logger = logging.getLogger(__name__)

# Feed item ids are derived from the recipient and the event, so rebuilding the read model from
# the topics gives every item the id it had before and cursors stay valid.
FEED_ITEM_NAMESPACE = UUID("8b5d6c2e-1f3a-5b7c-8d9e-0a1b2c3d4e5f")


def feed_item_id(person_id: str, event_id: str) -> str:
    return str(uuid5(FEED_ITEM_NAMESPACE, f"{person_id}/{event_id}"))


@dataclass(frozen=True)
class ItemScope:
    """The feed items of one goal to recompute, narrowed to one person, some events or one key result when set."""

    person_id: str | None = None
    event_ids: frozenset[str] | None = None
    key_result_id: str | None = None

    def filters(self, table: Table) -> list[ColumnElement[bool]]:
        conditions = []
        if self.person_id is not None:
            conditions.append(table.c.person_id == self.person_id)
        if self.event_ids is not None:
            conditions.append(table.c.event_id.in_(self.event_ids))
        if self.key_result_id is not None:
            conditions.append(table.c.key_result_id == self.key_result_id)
        return conditions


def reconcile_feed_items(
    connection: Connection, tables: SocialTables, org_id: str, goal_id: str, scope: ItemScope, now: datetime
) -> None:
    """Insert, update and delete the goal's feed items within ``scope`` until they match the planned items."""
    goal = _goal(connection, tables, org_id, goal_id)
    planned = {
        feed_item_id(item.person_id, item.event_id): item for item in _plan(connection, tables, org_id, goal, scope)
    }
    goal_title = goal.title
    items = tables.feed_items
    stored = {
        row.item_id: row
        for row in connection.execute(
            select(items.c.item_id, items.c.summary, items.c.goal_title).where(
                items.c.org_id == org_id, items.c.goal_id == goal_id, *scope.filters(items)
            )
        )
    }

    removed = [item_id for item_id in stored if item_id not in planned]
    if removed:
        connection.execute(delete(items).where(items.c.item_id.in_(removed)))
    new_rows = [
        _item_values(item_id, item, org_id, goal_id, goal_title, now)
        for item_id, item in planned.items()
        if item_id not in stored
    ]
    insert_many_ignoring_duplicates(connection, items, new_rows)
    for item_id, item in planned.items():
        row = stored.get(item_id)
        if row is not None and (row.summary, row.goal_title) != (item.summary, goal_title):
            # Only the titles in the text can change. indexed_at keeps the time the item first appeared.
            connection.execute(
                update(items).where(items.c.item_id == item_id).values(summary=item.summary, goal_title=goal_title)
            )
    added = len(planned.keys() - stored.keys())
    if added or removed:
        logger.debug("feed items of goal_id=%s org_id=%s: added=%s removed=%s", goal_id, org_id, added, len(removed))


def _plan(
    connection: Connection, tables: SocialTables, org_id: str, goal: GoalFacts, scope: ItemScope
) -> list[PlannedItem]:
    changes = _audience_changes(connection, tables, org_id, goal.goal_id)
    audience = GoalAudience(goal.owner_id, changes)
    goal_events = _goal_events(connection, tables, org_id, goal.goal_id, scope)
    key_result_ids = {event.key_result_id for event in goal_events}
    key_result_titles = _key_result_titles(connection, tables, org_id, key_result_ids)

    planned = [
        item for event in goal_events for item in plan_goal_event_items(goal, event, audience, key_result_titles)
    ]
    if scope.key_result_id is None:
        # Audience changes notify the owner and the tagged person; none of those items has a key result.
        in_scope = [change for change in changes if scope.event_ids is None or change.event_id in scope.event_ids]
        planned.extend(item for change in in_scope for item in plan_audience_change_items(goal, change))
    if scope.person_id is not None:
        planned = [item for item in planned if item.person_id == scope.person_id]
    return planned


def _goal(connection: Connection, tables: SocialTables, org_id: str, goal_id: str) -> GoalFacts:
    goals = tables.known_goals
    row = connection.execute(
        select(goals.c.title, goals.c.owner_id).where(goals.c.org_id == org_id, goals.c.goal_id == goal_id)
    ).first()
    if row is None:
        return GoalFacts(goal_id, None, None)
    return GoalFacts(goal_id, row.title, row.owner_id)


def _audience_changes(
    connection: Connection, tables: SocialTables, org_id: str, goal_id: str
) -> list[AudienceChange]:
    changes = tables.audience_changes
    query = select(changes).where(changes.c.org_id == org_id, changes.c.goal_id == goal_id)
    rows = connection.execute(query).mappings()
    return [
        AudienceChange(
            event_id=row["event_id"],
            person_id=row["person_id"],
            change=row["change"],
            actor_id=row["actor_id"],
            occurred_at=as_utc(row["occurred_at"]),
            aggregate_version=row["aggregate_version"],
        )
        for row in rows
    ]


def _goal_events(
    connection: Connection, tables: SocialTables, org_id: str, goal_id: str, scope: ItemScope
) -> list[GoalEvent]:
    events = tables.fan_out_events
    query = select(events).where(events.c.org_id == org_id, events.c.goal_id == goal_id)
    if scope.event_ids is not None:
        query = query.where(events.c.event_id.in_(scope.event_ids))
    if scope.key_result_id is not None:
        query = query.where(events.c.key_result_id == scope.key_result_id)
    return [
        GoalEvent(
            event_id=row["event_id"],
            kind=row["kind"],
            actor_id=row["actor_id"],
            key_result_id=row["key_result_id"],
            progress=row["progress"],
            occurred_at=as_utc(row["occurred_at"]),
        )
        for row in connection.execute(query).mappings()
    ]


def _key_result_titles(
    connection: Connection, tables: SocialTables, org_id: str, key_result_ids: set[str | None]
) -> dict[str, str]:
    requested = [key_result_id for key_result_id in key_result_ids if key_result_id is not None]
    if not requested:
        return {}
    key_results = tables.key_results
    rows = connection.execute(
        select(key_results.c.key_result_id, key_results.c.title).where(
            key_results.c.org_id == org_id, key_results.c.key_result_id.in_(requested)
        )
    )
    return {row.key_result_id: row.title for row in rows}


def _item_values(
    item_id: str, item: PlannedItem, org_id: str, goal_id: str, goal_title: str | None, now: datetime
) -> dict[str, object]:
    return {
        "item_id": item_id,
        "org_id": org_id,
        "person_id": item.person_id,
        "event_id": item.event_id,
        "kind": item.kind,
        "goal_id": goal_id,
        "goal_title": goal_title,
        "key_result_id": item.key_result_id,
        "actor_id": item.actor_id,
        "summary": item.summary,
        "occurred_at": item.occurred_at,
        "indexed_at": now,
    }
