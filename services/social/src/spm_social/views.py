"""Queries the API runs against the social read model."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import and_, or_, select

from spm_events.auth import Principal
from spm_events.visibility import GoalAudience
from spm_social.fanout import as_utc
from spm_social.readmodel import SocialReadModel
from spm_social.visibility import load_goal_audience, visible_goal


class InvalidCursorError(ValueError):
    """Raised for a feed cursor that no feed page returned."""


@dataclass(frozen=True)
class FeedCursor:
    """The sort key of the last item of a page; the next page starts strictly after it."""

    occurred_at: datetime
    item_id: str

    def encode(self) -> str:
        text = f"{self.occurred_at.isoformat()}|{self.item_id}"
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, cursor: str) -> FeedCursor:
        try:
            padded = cursor + "=" * (-len(cursor) % 4)
            occurred_at_text, item_id = base64.urlsafe_b64decode(padded).decode().split("|")
            occurred_at = datetime.fromisoformat(occurred_at_text)
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise InvalidCursorError("invalid cursor; pass next_cursor from a previous feed page") from None
        if occurred_at.tzinfo is None or not item_id:
            raise InvalidCursorError("invalid cursor; pass next_cursor from a previous feed page")
        return cls(occurred_at.astimezone(timezone.utc), item_id)


@dataclass(frozen=True)
class FeedPage:
    items: list[dict[str, Any]]
    next_cursor: str | None


class SocialViews:
    def __init__(self, read_model: SocialReadModel) -> None:
        self.read_model = read_model
        self.tables = read_model.tables

    def audience_of(self, org_id: str, goal_id: str) -> GoalAudience | None:
        """Return who may see the goal now, or None if its GoalCreated has not been applied in the organisation."""
        with self.read_model.engine.connect() as connection:
            return load_goal_audience(connection, self.tables, org_id, goal_id)

    def feed_page(self, reader: Principal, limit: int, before: FeedCursor | None) -> FeedPage:
        """Return one page of the reader's feed, newest event time first, ties broken by item id.

        Items about goals the reader may not see now are filtered out in the query itself, so a
        page contains ``limit`` items whenever that many visible ones remain.
        """
        items = self.tables.feed_items
        query = select(items).where(
            items.c.org_id == reader.org_id,
            items.c.person_id == reader.person_id,
            visible_goal(self.tables, items.c.org_id, items.c.goal_id, reader),
        )
        if before is not None:
            query = query.where(
                or_(
                    items.c.occurred_at < before.occurred_at,
                    and_(items.c.occurred_at == before.occurred_at, items.c.item_id < before.item_id),
                )
            )
        query = query.order_by(items.c.occurred_at.desc(), items.c.item_id.desc()).limit(limit + 1)
        with self.read_model.engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        page = [_feed_item(row) for row in rows[:limit]]
        next_cursor = None
        if len(rows) > limit:
            last = page[-1]
            next_cursor = FeedCursor(last["occurred_at"], last["item_id"]).encode()
        return FeedPage(page, next_cursor)

    def consumer_positions(self) -> list[dict[str, Any]]:
        """Return the last applied offset per topic partition of the feed worker."""
        positioned = self.read_model.positioned
        offsets = positioned.recorded_offsets()
        return [
            {"topic": topic, "partition": partition, "offset": offset}
            for (topic, partition), offset in sorted(offsets.items())
        ]


def _feed_item(row: Any) -> dict[str, Any]:
    return {
        "item_id": row["item_id"],
        "event_id": row["event_id"],
        "kind": row["kind"],
        "goal_id": row["goal_id"],
        "goal_title": row["goal_title"],
        "key_result_id": row["key_result_id"],
        "actor_id": row["actor_id"],
        "summary": row["summary"],
        "occurred_at": as_utc(row["occurred_at"]),
        "indexed_at": as_utc(row["indexed_at"]),
    }
