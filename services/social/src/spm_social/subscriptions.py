"""Subscriptions: who receives a channel's activities during which spans of event time.

Each follow, tag or join and each of their ends is stored as a change. The person's intervals on
the channel are recomputed from all their changes, so the result is the same in any arrival order.
Subscriber groups that reach the read model's threshold switch to read-time fan-out for good.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Delete,
    Insert,
    Select,
    Table,
    and_,
    bindparam,
    delete,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from spm_events.envelope import Envelope
from spm_social.fanout import (
    ALWAYS,
    CHANNEL_OF_SOURCE,
    CO_OWNER,
    GOAL_OWNERS_CHANNEL,
    OWNER,
    READ_TIME_ELIGIBLE_SOURCES,
    SOURCES_OF_CHANNEL,
    Channel,
    Interval,
    MembershipChange,
    Subscription,
    as_utc,
    as_utc_or_none,
    first_difference,
    intervals_from,
)
from spm_social.feedtables import END, START
from spm_social.readmodel import SocialTables, insert_ignoring_duplicates

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Member:
    """One person in one subscriber group: a channel and the reason its activities reach them."""

    channel: Channel
    source: str
    person_id: str

    def __post_init__(self) -> None:
        if CHANNEL_OF_SOURCE[self.source] != self.channel.kind:
            raise ValueError(f"source {self.source} does not belong to a {self.channel.kind} channel")


@dataclass(frozen=True)
class MembershipUpdate:
    """The effect of one membership change on its subscriber group and on the person's intervals."""

    changed: bool
    # The earliest event time from which the person's items may differ; None means all of them.
    since: datetime | None
    group_read_time: bool
    group_turned_read_time: bool


def record_membership_change(
    connection: Connection,
    tables: SocialTables,
    envelope: Envelope,
    member: Member,
    starts: bool,
    read_time_threshold: int,
) -> MembershipUpdate:
    """Store one start or end of a membership and recompute the person's intervals on the channel."""
    org_id = envelope.orgid
    changes = tables.audience_changes
    rows = connection.execute(_statements(tables).changes, _member_parameters(org_id, member)).all()

    known = [
        MembershipChange(row.event_id, row.change == START, as_utc(row.occurred_at), row.aggregate_version)
        for row in rows
    ]
    this_change = MembershipChange(envelope.id, starts, envelope.time, envelope.aggregateversion)
    if any(change.event_id == envelope.id for change in known):
        group = _group_state(connection, tables, org_id, member)
        return MembershipUpdate(changed=False, since=None, group_read_time=group, group_turned_read_time=False)

    insert_ignoring_duplicates(
        connection,
        changes,
        {
            "org_id": org_id,
            "event_id": envelope.id,
            "channel_kind": member.channel.kind,
            "channel_id": member.channel.channel_id,
            "source": member.source,
            "person_id": member.person_id,
            "change": START if starts else END,
            "actor_id": envelope.actorid,
            "occurred_at": envelope.time,
            "aggregate_version": envelope.aggregateversion,
        },
    )

    turned_read_time = False
    if not known and member.source in READ_TIME_ELIGIBLE_SOURCES:
        group_read_time, turned_read_time = _count_new_person(connection, tables, org_id, member, read_time_threshold)
    else:
        group_read_time = _group_state(connection, tables, org_id, member)

    intervals = intervals_from([*known, this_change])
    old_intervals = load_intervals(connection, tables, org_id, member)
    changed = intervals != old_intervals
    if changed:
        replace_intervals(connection, tables, org_id, member, intervals)
    return MembershipUpdate(
        changed=changed,
        since=first_difference(old_intervals, intervals) if changed else None,
        group_read_time=group_read_time,
        group_turned_read_time=turned_read_time,
    )


def _count_new_person(
    connection: Connection, tables: SocialTables, org_id: str, member: Member, read_time_threshold: int
) -> tuple[bool, bool]:
    """Count one more person in the member's group; return whether it is read-time and whether this made it so."""
    parameters = _member_parameters(org_id, member) | {"read_time": read_time_threshold <= 1}
    people_count, read_time = connection.execute(_count_statement(tables, connection.dialect.name), parameters).one()
    if read_time:
        return True, people_count == 1
    if people_count < read_time_threshold:
        return False, False
    groups = tables.audience_groups
    connection.execute(update(groups).where(*_group_key(tables, org_id, member)).values(read_time=True))
    logger.info(
        "subscriber group turned read-time org_id=%s channel=%s/%s source=%s people=%s",
        org_id, member.channel.kind, member.channel.channel_id, member.source, people_count,
    )
    return True, True


@lru_cache(maxsize=64)
def _count_statement(tables: SocialTables, dialect_name: str) -> Insert:
    """Build the upsert that adds one person to a group's count and returns the count and the read-time flag."""
    groups = tables.audience_groups
    dialect_insert = postgresql.insert if dialect_name == "postgresql" else sqlite.insert
    counted = dialect_insert(groups).values(
        org_id=bindparam("org_id"),
        channel_kind=bindparam("channel_kind"),
        channel_id=bindparam("channel_id"),
        source=bindparam("source"),
        people_count=1,
        read_time=bindparam("read_time"),
    )
    return counted.on_conflict_do_update(
        index_elements=[groups.c.org_id, groups.c.channel_kind, groups.c.channel_id, groups.c.source],
        set_={"people_count": groups.c.people_count + 1},
    ).returning(groups.c.people_count, groups.c.read_time)


def _group_state(connection: Connection, tables: SocialTables, org_id: str, member: Member) -> bool:
    return bool(connection.execute(_statements(tables).group_state, _member_parameters(org_id, member)).scalar())


def _group_key(tables: SocialTables, org_id: str, member: Member):  # type: ignore[no-untyped-def]
    groups = tables.audience_groups
    return (
        groups.c.org_id == org_id,
        groups.c.channel_kind == member.channel.kind,
        groups.c.channel_id == member.channel.channel_id,
        groups.c.source == member.source,
    )


def load_intervals(connection: Connection, tables: SocialTables, org_id: str, member: Member) -> list[Interval]:
    rows = connection.execute(_statements(tables).intervals, _member_parameters(org_id, member))
    return [Interval(as_utc_or_none(row.starts_at), as_utc_or_none(row.ends_at)) for row in rows]


def replace_intervals(
    connection: Connection, tables: SocialTables, org_id: str, member: Member, intervals: list[Interval]
) -> None:
    subscriptions = tables.subscriptions
    connection.execute(_statements(tables).delete_intervals, _member_parameters(org_id, member))
    if intervals:
        connection.execute(
            subscriptions.insert(),
            [
                {
                    "org_id": org_id,
                    "channel_kind": member.channel.kind,
                    "channel_id": member.channel.channel_id,
                    "source": member.source,
                    "person_id": member.person_id,
                    "interval_number": number,
                    "starts_at": interval.starts_at,
                    "ends_at": interval.ends_at,
                }
                for number, interval in enumerate(intervals)
            ],
        )


def _member_parameters(org_id: str, member: Member) -> dict[str, object]:
    return {
        "org_id": org_id,
        "channel_kind": member.channel.kind,
        "channel_id": member.channel.channel_id,
        "source": member.source,
        "person_id": member.person_id,
    }


@dataclass(frozen=True)
class _MemberStatements:
    changes: Select[Any]
    intervals: Select[Any]
    delete_intervals: Delete
    group_state: Select[Any]


# Statements are built once per read model and shape, because building one costs more than running it.
@lru_cache(maxsize=64)
def _statements(tables: SocialTables) -> _MemberStatements:
    changes = tables.audience_changes
    subscriptions = tables.subscriptions
    groups = tables.audience_groups

    def member_of(table: Table, with_person: bool = True) -> list[ColumnElement[bool]]:
        conditions = [
            table.c.org_id == bindparam("org_id"),
            table.c.channel_kind == bindparam("channel_kind"),
            table.c.channel_id == bindparam("channel_id"),
            table.c.source == bindparam("source"),
        ]
        if with_person:
            conditions.append(table.c.person_id == bindparam("person_id"))
        return conditions

    return _MemberStatements(
        changes=select(
            changes.c.event_id, changes.c.change, changes.c.occurred_at, changes.c.aggregate_version
        ).where(*member_of(changes)),
        intervals=select(subscriptions.c.starts_at, subscriptions.c.ends_at)
        .where(*member_of(subscriptions))
        .order_by(subscriptions.c.interval_number),
        delete_intervals=delete(subscriptions).where(*member_of(subscriptions)),
        group_state=select(groups.c.read_time).where(*member_of(groups, with_person=False)),
    )


def sync_owner_subscriptions(connection: Connection, tables: SocialTables, org_id: str, goal_id: str) -> set[str]:
    """Make the goal's owners channel match its current owner and co-owners; return the people whose reason changed."""
    people = tables.goal_people
    expected = {
        (row.person_id, row.role)
        for row in connection.execute(
            select(people.c.person_id, people.c.role).where(
                people.c.org_id == org_id, people.c.goal_id == goal_id, people.c.role.in_((OWNER, CO_OWNER))
            )
        )
    }
    # The owner is also listed as a co-owner when the event names them twice; owner wins.
    owners = {person for person, role in expected if role == OWNER}
    expected = {(person, role) for person, role in expected if role == OWNER or person not in owners}

    subscriptions = tables.subscriptions
    channel_filter = (
        subscriptions.c.org_id == org_id,
        subscriptions.c.channel_kind == GOAL_OWNERS_CHANNEL,
        subscriptions.c.channel_id == goal_id,
    )
    stored = {
        (row.person_id, row.source)
        for row in connection.execute(select(subscriptions.c.person_id, subscriptions.c.source).where(*channel_filter))
    }
    if stored == expected:
        return set()
    connection.execute(delete(subscriptions).where(*channel_filter))
    connection.execute(
        subscriptions.insert(),
        [
            {
                "org_id": org_id,
                "channel_kind": GOAL_OWNERS_CHANNEL,
                "channel_id": goal_id,
                "source": role,
                "person_id": person,
                "interval_number": 0,
                "starts_at": ALWAYS.starts_at,
                "ends_at": ALWAYS.ends_at,
            }
            for person, role in sorted(expected)
        ],
    )
    return {person for person, _ in stored ^ expected}


def has_open_interval(connection: Connection, tables: SocialTables, org_id: str, member: Member) -> bool:
    """Return whether the membership is in effect now, that is whether the person's last change was a start."""
    return any(interval.ends_at is None for interval in load_intervals(connection, tables, org_id, member))


def written_subscriptions(
    connection: Connection,
    tables: SocialTables,
    org_id: str,
    channels: set[Channel],
    people: frozenset[str] | None,
    at: datetime | None = None,
) -> dict[Channel, list[Subscription]]:
    """Return the subscriptions of the channels whose items are written, leaving out read-time groups.

    ``at`` keeps only the intervals that cover that event time. The read-time groups are looked up
    first, so a channel with 20,000 read-time followers costs one row here, not 20,000.
    """
    if not channels:
        return {}
    kinds = tuple(sorted({channel.kind for channel in channels}))
    read_time = read_time_groups(connection, tables, org_id, channels)
    # Each (kind, source) pair gets the ids of its channels that are still written; an empty list
    # matches nothing.
    parameters: dict[str, object] = {"org_id": org_id}
    for kind in kinds:
        for source in SOURCES_OF_CHANNEL[kind]:
            parameters[_ids_parameter(kind, source)] = sorted(
                channel.channel_id
                for channel in channels
                if channel.kind == kind and (channel, source) not in read_time
            )
    # A long list of people is cheaper to filter here than to send as query parameters.
    filter_people = people is not None and len(people) <= 200
    if filter_people:
        parameters["people"] = sorted(people)  # type: ignore[arg-type]
    if at is not None:
        parameters["at"] = at
    statement = _written_subscriptions_statement(tables, kinds, filter_people, at is not None)
    result: dict[Channel, list[Subscription]] = {}
    for row in connection.execute(statement, parameters):
        if people is not None and row.person_id not in people:
            continue
        channel = Channel(row.channel_kind, row.channel_id)
        interval = Interval(as_utc_or_none(row.starts_at), as_utc_or_none(row.ends_at))
        result.setdefault(channel, []).append(Subscription(row.person_id, channel, row.source, interval))
    return result


def read_time_groups(
    connection: Connection, tables: SocialTables, org_id: str, channels: set[Channel]
) -> set[tuple[Channel, str]]:
    """Return the (channel, source) groups among these channels whose items are read at read time."""
    kinds = tuple(sorted({channel.kind for channel in channels}))
    parameters: dict[str, object] = {"org_id": org_id}
    for kind in kinds:
        parameters[f"ids_{kind}"] = sorted(channel.channel_id for channel in channels if channel.kind == kind)
    rows = connection.execute(_read_time_groups_statement(tables, kinds), parameters)
    return {(Channel(row.channel_kind, row.channel_id), row.source) for row in rows}


def _ids_parameter(kind: str, source: str) -> str:
    return f"ids_{kind}_{source}"


# Statements are built once per read model and shape, because building one costs more than running it.
@lru_cache(maxsize=256)
def _written_subscriptions_statement(
    tables: SocialTables, kinds: tuple[str, ...], filter_people: bool, at_moment: bool
) -> Select[Any]:
    subscriptions = tables.subscriptions
    groups = [
        and_(
            subscriptions.c.channel_kind == kind,
            subscriptions.c.source == source,
            subscriptions.c.channel_id.in_(bindparam(_ids_parameter(kind, source), expanding=True)),
        )
        for kind in kinds
        for source in SOURCES_OF_CHANNEL[kind]
    ]
    query = select(
        subscriptions.c.channel_kind,
        subscriptions.c.channel_id,
        subscriptions.c.source,
        subscriptions.c.person_id,
        subscriptions.c.starts_at,
        subscriptions.c.ends_at,
    ).where(subscriptions.c.org_id == bindparam("org_id"), or_(*groups))
    if at_moment:
        at = bindparam("at")
        query = query.where(
            or_(subscriptions.c.starts_at.is_(None), subscriptions.c.starts_at <= at),
            or_(subscriptions.c.ends_at.is_(None), subscriptions.c.ends_at > at),
        )
    if filter_people:
        query = query.where(subscriptions.c.person_id.in_(bindparam("people", expanding=True)))
    return query


@lru_cache(maxsize=256)
def _read_time_groups_statement(tables: SocialTables, kinds: tuple[str, ...]) -> Select[Any]:
    groups = tables.audience_groups
    return select(groups.c.channel_kind, groups.c.channel_id, groups.c.source).where(
        groups.c.org_id == bindparam("org_id"),
        groups.c.read_time.is_(True),
        or_(
            *(
                and_(groups.c.channel_kind == kind, groups.c.channel_id.in_(bindparam(f"ids_{kind}", expanding=True)))
                for kind in kinds
            )
        ),
    )
