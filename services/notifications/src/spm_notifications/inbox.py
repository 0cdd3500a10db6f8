"""Queries and read marks on one person's inbox.

Every statement filters by the caller's org and person id, and by the visibility of each goal now.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

from sqlalchemy import ColumnElement, Engine, and_, func, or_, select, update

from spm_events.auth import Principal

from spm_notifications.audience import visible_goal_condition
from spm_notifications.preferences import IN_APP, preference_condition
from spm_notifications.rules import GOAL_FOLLOWED, notification_message
from spm_notifications.tables import InboxTables


class InvalidCursorError(ValueError):
    """Raised for a ``before`` cursor that this service did not issue."""


@dataclass(frozen=True)
class Cursor:
    """The position after the last item of a page: newest first by event time, then by id."""

    occurred_at: datetime
    notification_id: str

    def encode(self) -> str:
        text = f"{self.occurred_at.isoformat()}|{self.notification_id}"
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        try:
            text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
            occurred_text, notification_id = text.split("|")
            occurred_at = datetime.fromisoformat(occurred_text)
            uuid.UUID(notification_id)
            if occurred_at.tzinfo is None:
                raise ValueError("cursor time has no timezone")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise InvalidCursorError(f"cursor {token[:80]!r} is invalid. Pass the next_cursor of a previous page") from None
        return cls(occurred_at.astimezone(timezone.utc), notification_id)


@dataclass(frozen=True)
class Notification:
    notification_id: str
    kind: str
    goal_id: str
    goal_title: str | None
    actor_id: str
    message: str
    occurred_at: datetime
    read: bool
    # A group (rules.group_key_for) is one item: the newest member's facts, how many members it has,
    # and the distinct actors, newest first. A single notification has count 1.
    count: int = 1
    actor_ids: tuple[str, ...] = ()
    community_id: str | None = None
    group_key: str | None = None


@dataclass(frozen=True)
class InboxPage:
    items: list[Notification]
    unread_count: int
    next_cursor: str | None


class Inbox:
    def __init__(self, engine: Engine, tables: InboxTables, clock: Callable[[], datetime] | None = None) -> None:
        self.engine = engine
        self.tables = tables
        self.table = tables.inbox
        self.clock = clock or (lambda: datetime.now(timezone.utc))

    def _readable(self, reader: Principal) -> ColumnElement[bool]:
        """Select the reader's own notifications about goals they may see now, unless muted or switched off in-app."""
        inbox = self.table
        return and_(
            inbox.c.org_id == reader.org_id,
            inbox.c.recipient_id == reader.person_id,
            visible_goal_condition(self.tables, reader, inbox.c.org_id, inbox.c.goal_id),
            preference_condition(self.tables, reader, IN_APP),
        )

    def list_notifications(
        self, reader: Principal, *, unread_only: bool, limit: int, before: Cursor | None
    ) -> InboxPage:
        """Return one page of a person's inbox items, newest first by event time.

        Notifications with the same group key form one item, listed at its newest member's time
        under the highest member id. Notifications about goals the reader cannot see are filtered
        out before grouping, so a group counts only visible members, a page holds up to ``limit``
        visible items, and the unread count (of items) leaves the hidden ones out.
        """
        inbox = self.table
        readable = self._readable(reader)
        members = select(inbox).where(readable)
        if unread_only:
            members = members.where(inbox.c.read_at.is_(None))
        members_query = members.subquery()
        item_key = func.coalesce(members_query.c.group_key, members_query.c.notification_id)
        latest = func.max(members_query.c.occurred_at)
        item_id = func.max(members_query.c.notification_id)
        query = select(item_key.label("item_key"), latest.label("latest"), item_id.label("item_id")).group_by(item_key)
        if before is not None:
            query = query.having(
                or_(latest < before.occurred_at, and_(latest == before.occurred_at, item_id < before.notification_id))
            )
        query = query.order_by(latest.desc(), item_id.desc()).limit(limit + 1)
        unread_key = func.coalesce(inbox.c.group_key, inbox.c.notification_id)
        with self.engine.connect() as connection:
            page_keys = connection.execute(query).all()[: limit + 1]
            keys = [row.item_key for row in page_keys[:limit]]
            rows = connection.execute(
                select(members_query).where(
                    func.coalesce(members_query.c.group_key, members_query.c.notification_id).in_(keys)
                )
            ).all() if keys else []
            unread_count = connection.execute(
                select(func.count(func.distinct(unread_key))).where(readable, inbox.c.read_at.is_(None))
            ).scalar_one()
        by_key: dict[str, list] = {}  # type: ignore[type-arg]
        for row in rows:
            by_key.setdefault(row.group_key or row.notification_id, []).append(row)
        items = [_item_from_rows(by_key[key]) for key in keys]
        next_cursor = None
        if len(page_keys) > limit:
            last = items[-1]
            next_cursor = Cursor(last.occurred_at, last.notification_id).encode()
        return InboxPage(items=items, unread_count=unread_count, next_cursor=next_cursor)

    def mark_read(self, reader: Principal, notification_id: str) -> Notification | None:
        """Mark one of the reader's notifications read and return it.

        Returns None when the reader has no such notification, or when it is about a goal they
        cannot see now.
        """
        inbox = self.table
        readable = self._readable(reader)
        owned = and_(readable, inbox.c.notification_id == notification_id)
        with self.engine.begin() as connection:
            row = connection.execute(select(inbox).where(owned)).first()
            if row is None:
                return None
            # Marking a group marks every member the reader can see.
            item = owned if row.group_key is None else and_(readable, inbox.c.group_key == row.group_key)
            connection.execute(update(inbox).where(item, inbox.c.read_at.is_(None)).values(read_at=self.clock()))
            rows = connection.execute(select(inbox).where(item)).all()
        return _item_from_rows(rows)

    def mark_all_read(self, reader: Principal) -> int:
        """Mark every unread notification the reader can see read and return how many changed."""
        inbox = self.table
        with self.engine.begin() as connection:
            result = connection.execute(
                update(inbox).where(self._readable(reader), inbox.c.read_at.is_(None)).values(read_at=self.clock())
            )
        return result.rowcount


def _item_from_rows(rows) -> Notification:  # type: ignore[no-untyped-def]
    """Build one inbox item from a group's member rows (one row for an ungrouped notification)."""
    newest_first = sorted(rows, key=lambda row: (row.occurred_at, row.notification_id), reverse=True)
    newest = newest_first[0]
    actor_ids = tuple(dict.fromkeys(row.actor_id for row in newest_first))
    # "5 people followed": a person who followed, unfollowed and followed again counts once.
    count = len(actor_ids) if newest.kind == GOAL_FOLLOWED else len(rows)
    return Notification(
        notification_id=max(row.notification_id for row in rows),
        kind=newest.kind,
        goal_id=newest.goal_id,
        goal_title=newest.goal_title,
        actor_id=newest.actor_id,
        message=notification_message(newest.kind, newest.goal_title, count),
        occurred_at=newest.occurred_at,
        read=all(row.read_at is not None for row in rows),
        count=len(rows),
        actor_ids=actor_ids,
        community_id=newest.community_id,
        group_key=newest.group_key,
    )
