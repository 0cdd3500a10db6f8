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
from spm_notifications.rules import notification_message
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
        """Select the reader's own notifications about goals they may see now."""
        inbox = self.table
        return and_(
            inbox.c.org_id == reader.org_id,
            inbox.c.recipient_id == reader.person_id,
            visible_goal_condition(self.tables, reader, inbox.c.org_id, inbox.c.goal_id),
        )

    def list_notifications(
        self, reader: Principal, *, unread_only: bool, limit: int, before: Cursor | None
    ) -> InboxPage:
        """Return one page of a person's notifications, newest first by event time.

        Notifications about goals the reader cannot see are filtered out in the query, so a page
        holds up to ``limit`` visible items and the unread count leaves the hidden ones out.
        """
        inbox = self.table
        readable = self._readable(reader)
        query = select(inbox).where(readable)
        if unread_only:
            query = query.where(inbox.c.read_at.is_(None))
        if before is not None:
            query = query.where(
                or_(
                    inbox.c.occurred_at < before.occurred_at,
                    and_(inbox.c.occurred_at == before.occurred_at, inbox.c.notification_id < before.notification_id),
                )
            )
        query = query.order_by(inbox.c.occurred_at.desc(), inbox.c.notification_id.desc()).limit(limit + 1)
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
            unread_count = connection.execute(
                select(func.count()).select_from(inbox).where(readable, inbox.c.read_at.is_(None))
            ).scalar_one()
        items = [_notification_from_row(row) for row in rows[:limit]]
        next_cursor = None
        if len(rows) > limit:
            last = items[-1]
            next_cursor = Cursor(last.occurred_at, last.notification_id).encode()
        return InboxPage(items=items, unread_count=unread_count, next_cursor=next_cursor)

    def mark_read(self, reader: Principal, notification_id: str) -> Notification | None:
        """Mark one of the reader's notifications read and return it.

        Returns None when the reader has no such notification, or when it is about a goal they
        cannot see now.
        """
        inbox = self.table
        owned = and_(self._readable(reader), inbox.c.notification_id == notification_id)
        with self.engine.begin() as connection:
            connection.execute(update(inbox).where(owned, inbox.c.read_at.is_(None)).values(read_at=self.clock()))
            row = connection.execute(select(inbox).where(owned)).first()
        return None if row is None else _notification_from_row(row)

    def mark_all_read(self, reader: Principal) -> int:
        """Mark every unread notification the reader can see read and return how many changed."""
        inbox = self.table
        with self.engine.begin() as connection:
            result = connection.execute(
                update(inbox).where(self._readable(reader), inbox.c.read_at.is_(None)).values(read_at=self.clock())
            )
        return result.rowcount


def _notification_from_row(row) -> Notification:  # type: ignore[no-untyped-def]
    return Notification(
        notification_id=row.notification_id,
        kind=row.kind,
        goal_id=row.goal_id,
        goal_title=row.goal_title,
        actor_id=row.actor_id,
        message=notification_message(row.kind, row.goal_title),
        occurred_at=row.occurred_at,
        read=row.read_at is not None,
    )
