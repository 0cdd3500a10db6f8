"""SQL of the feed pages: written items, a channel's activities within an interval, and community membership.

Every query filters by what the reader may see now (the goal's current audience, or current
membership for an item about a community alone) before its LIMIT, so filtering never shortens a
page. Statements are built from bound parameters once per shape (admin or not, with or without
teams, kinds, cursor and interval bounds) and reused, because building them costs more than
running them.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Connection, FromClause, Select, and_, bindparam, exists, not_, or_, select

from spm_events.auth import Principal
from spm_social.fanout import (
    COMMUNITY_CHANNEL,
    COMMUNITY_MEMBER,
    SUBJECT_SKIPPED_KINDS,
    Channel,
    Interval,
    Subscription,
    as_utc_or_none,
)
from spm_social.interaction_facts import COMMENT_TARGET
from spm_social.readmodel import SocialTables
from spm_social.visibility import visible_goal_for


@dataclass(frozen=True)
class PageRequest:
    """The page size, cursor and kinds of one page request; the reader is passed separately."""

    limit: int
    before_time: datetime | None = None
    before_event_id: str | None = None
    kinds: Collection[str] | None = None


@dataclass(frozen=True)
class _Shape:
    is_admin: bool
    has_teams: bool
    has_kinds: bool
    has_cursor: bool
    has_start: bool = False
    has_end: bool = False


def written_items_query(
    tables: SocialTables, reader: Principal, request: PageRequest
) -> tuple[Select[Any], dict[str, object]]:
    """Return the statement and parameters selecting the next ``limit + 1`` items written for the reader."""
    shape = _shape_of(reader, request)
    return _written_items_statement(tables, shape), _parameters(reader, request)


def channel_page_query(
    tables: SocialTables,
    reader: Principal,
    request: PageRequest,
    channel: Channel,
    interval: Interval | None,
) -> tuple[Select[Any], dict[str, object]]:
    """Return the statement and parameters selecting a channel's next ``limit + 1`` activities, newest first.

    With an interval (a read-time subscription) the page keeps to it and leaves out items about the
    reader's own follow or join, as written items do. Without one it is the channel's whole feed.
    """
    has_interval = interval is not None
    shape = _shape_of(
        reader,
        request,
        has_start=has_interval and interval.starts_at is not None,  # type: ignore[union-attr]
        has_end=has_interval and interval.ends_at is not None,  # type: ignore[union-attr]
    )
    parameters = _parameters(reader, request) | {"channel_kind": channel.kind, "channel_id": channel.channel_id}
    if interval is not None:
        parameters |= {"starts_at": interval.starts_at, "ends_at": interval.ends_at}
    return _channel_page_statement(tables, shape, has_interval), parameters


def _shape_of(reader: Principal, request: PageRequest, has_start: bool = False, has_end: bool = False) -> _Shape:
    return _Shape(
        is_admin=reader.is_admin,
        has_teams=bool(reader.teams),
        has_kinds=bool(request.kinds),
        has_cursor=request.before_time is not None,
        has_start=has_start,
        has_end=has_end,
    )


def _parameters(reader: Principal, request: PageRequest) -> dict[str, object]:
    parameters: dict[str, object] = {
        "org_id": reader.org_id,
        "person_id": reader.person_id,
        "row_limit": request.limit + 1,
    }
    if reader.teams:
        parameters["teams"] = sorted(reader.teams)
    if request.kinds:
        parameters["kinds"] = sorted(request.kinds)
    if request.before_time is not None:
        parameters |= {"before_time": request.before_time, "before_event_id": request.before_event_id}
    return parameters


@lru_cache(maxsize=128)
def _written_items_statement(tables: SocialTables, shape: _Shape) -> Select[Any]:
    items = tables.feed_items
    activities = tables.activities
    joined = items.join(
        activities, and_(activities.c.org_id == items.c.org_id, activities.c.event_id == items.c.event_id)
    )
    query = (
        select(
            items.c.item_id,
            items.c.source,
            items.c.source_id,
            items.c.indexed_at.label("item_indexed_at"),
            *_activity_columns(tables),
        )
        .select_from(_with_context(tables, joined))
        .where(
            items.c.org_id == bindparam("org_id"),
            items.c.person_id == bindparam("person_id"),
            _may_see(tables, shape),
        )
    )
    if shape.has_kinds:
        query = query.where(items.c.kind.in_(bindparam("kinds", expanding=True)))
    if shape.has_cursor:
        query = query.where(_before(items.c.occurred_at, items.c.event_id))
    return query.order_by(items.c.occurred_at.desc(), items.c.event_id.desc()).limit(bindparam("row_limit"))


@lru_cache(maxsize=128)
def _channel_page_statement(tables: SocialTables, shape: _Shape, skip_own_follows: bool) -> Select[Any]:
    channel_activities = tables.channel_activities
    activities = tables.activities
    joined = channel_activities.join(
        activities,
        and_(
            activities.c.org_id == channel_activities.c.org_id,
            activities.c.event_id == channel_activities.c.event_id,
        ),
    )
    query = (
        select(*_activity_columns(tables))
        .select_from(_with_context(tables, joined))
        .where(
            channel_activities.c.org_id == bindparam("org_id"),
            channel_activities.c.channel_kind == bindparam("channel_kind"),
            channel_activities.c.channel_id == bindparam("channel_id"),
            _may_see(tables, shape),
        )
    )
    if shape.has_start:
        query = query.where(channel_activities.c.occurred_at >= bindparam("starts_at"))
    if shape.has_end:
        query = query.where(channel_activities.c.occurred_at < bindparam("ends_at"))
    if skip_own_follows:
        reader = bindparam("person_id")
        query = query.where(
            not_(
                and_(
                    channel_activities.c.kind.in_(sorted(SUBJECT_SKIPPED_KINDS)),
                    or_(activities.c.subject_id == reader, activities.c.actor_id == reader),
                )
            )
        )
    if shape.has_kinds:
        query = query.where(channel_activities.c.kind.in_(bindparam("kinds", expanding=True)))
    if shape.has_cursor:
        query = query.where(_before(channel_activities.c.occurred_at, channel_activities.c.event_id))
    return query.order_by(channel_activities.c.occurred_at.desc(), channel_activities.c.event_id.desc()).limit(
        bindparam("row_limit")
    )


def _activity_columns(tables: SocialTables) -> list[ColumnElement[Any]]:
    activities = tables.activities
    return [
        activities.c.event_id,
        activities.c.kind,
        activities.c.goal_id,
        activities.c.community_id,
        activities.c.actor_id,
        activities.c.subject_id,
        activities.c.target_kind,
        activities.c.target_id,
        activities.c.key_result_id,
        activities.c.progress,
        activities.c.message,
        activities.c.reaction_count,
        activities.c.occurred_at,
        activities.c.indexed_at.label("activity_indexed_at"),
        tables.known_goals.c.title.label("goal_title"),
        tables.key_results.c.title.label("key_result_title"),
        tables.comments.c.body.label("comment_body"),
        tables.comments.c.check_in_id.label("comment_check_in_id"),
        tables.communities.c.name.label("community_name"),
    ]


def _with_context(tables: SocialTables, joined: FromClause) -> FromClause:
    """Outer-join the titles, names and comment texts an item's summary needs."""
    activities = tables.activities
    goals, key_results = tables.known_goals, tables.key_results
    comments, communities = tables.comments, tables.communities
    return (
        joined.outerjoin(goals, and_(goals.c.org_id == activities.c.org_id, goals.c.goal_id == activities.c.goal_id))
        .outerjoin(
            key_results,
            and_(
                key_results.c.org_id == activities.c.org_id,
                key_results.c.key_result_id == activities.c.key_result_id,
            ),
        )
        .outerjoin(
            comments,
            and_(
                comments.c.org_id == activities.c.org_id,
                comments.c.comment_id == activities.c.target_id,
                activities.c.target_kind == COMMENT_TARGET,
            ),
        )
        .outerjoin(
            communities,
            and_(
                communities.c.org_id == activities.c.org_id,
                communities.c.community_id == activities.c.community_id,
            ),
        )
    )


def _may_see(tables: SocialTables, shape: _Shape) -> ColumnElement[bool]:
    """True for an activity the reader may see now: its goal is visible, or it concerns only a community they are in."""
    activities = tables.activities
    subscriptions = tables.subscriptions
    is_member_now = exists().where(
        subscriptions.c.org_id == activities.c.org_id,
        subscriptions.c.channel_kind == COMMUNITY_CHANNEL,
        subscriptions.c.channel_id == activities.c.community_id,
        subscriptions.c.source == COMMUNITY_MEMBER,
        subscriptions.c.person_id == bindparam("person_id"),
        subscriptions.c.ends_at.is_(None),
    )
    goal_is_visible = visible_goal_for(
        tables,
        activities.c.org_id,
        activities.c.goal_id,
        is_admin=shape.is_admin,
        person_id=bindparam("person_id"),
        team_names=bindparam("teams", expanding=True) if shape.has_teams else None,
    )
    return and_(
        activities.c.hidden.is_(False),
        or_(and_(activities.c.goal_id.is_(None), is_member_now), goal_is_visible),
    )


def _before(occurred_at: ColumnElement[Any], event_id: ColumnElement[Any]) -> ColumnElement[bool]:
    before_time = bindparam("before_time")
    return or_(occurred_at < before_time, and_(occurred_at == before_time, event_id < bindparam("before_event_id")))


def read_time_subscriptions(connection: Connection, tables: SocialTables, reader: Principal) -> list[Subscription]:
    """Return the reader's subscriptions in groups read at read time (none for most readers)."""
    subscriptions = tables.subscriptions
    groups = tables.audience_groups
    rows = connection.execute(
        select(
            subscriptions.c.channel_kind,
            subscriptions.c.channel_id,
            subscriptions.c.source,
            subscriptions.c.starts_at,
            subscriptions.c.ends_at,
        )
        .join(
            groups,
            and_(
                groups.c.org_id == subscriptions.c.org_id,
                groups.c.channel_kind == subscriptions.c.channel_kind,
                groups.c.channel_id == subscriptions.c.channel_id,
                groups.c.source == subscriptions.c.source,
            ),
        )
        .where(
            subscriptions.c.org_id == reader.org_id,
            subscriptions.c.person_id == reader.person_id,
            groups.c.read_time.is_(True),
        )
    )
    return [
        Subscription(
            reader.person_id,
            Channel(row.channel_kind, row.channel_id),
            row.source,
            Interval(as_utc_or_none(row.starts_at), as_utc_or_none(row.ends_at)),
        )
        for row in rows
    ]


def community_exists(connection: Connection, tables: SocialTables, org_id: str, community_id: str) -> bool:
    communities = tables.communities
    return bool(
        connection.execute(
            select(communities.c.created).where(
                communities.c.org_id == org_id, communities.c.community_id == community_id
            )
        ).scalar()
    )


def is_member_now(connection: Connection, tables: SocialTables, org_id: str, community_id: str, person_id: str) -> bool:
    subscriptions = tables.subscriptions
    return bool(
        connection.execute(
            select(
                exists().where(
                    subscriptions.c.org_id == org_id,
                    subscriptions.c.channel_kind == COMMUNITY_CHANNEL,
                    subscriptions.c.channel_id == community_id,
                    subscriptions.c.source == COMMUNITY_MEMBER,
                    subscriptions.c.person_id == person_id,
                    subscriptions.c.ends_at.is_(None),
                )
            )
        ).scalar()
    )
