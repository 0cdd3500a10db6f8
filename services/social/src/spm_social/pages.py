"""Cursor pages over the in-memory lists of a goal's social graph, ordered by event time and then by id."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Generic, TypeVar

Item = TypeVar("Item")


class InvalidPageCursorError(ValueError):
    """Raised for a cursor that no page returned."""


@dataclass(frozen=True, order=True)
class PageCursor:
    """The sort key of the last item of a page; the next page starts strictly after it."""

    occurred_at: datetime
    item_id: str

    def encode(self) -> str:
        text = f"{self.occurred_at.isoformat()}|{self.item_id}"
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, cursor: str) -> PageCursor:
        invalid = InvalidPageCursorError("invalid cursor; pass next_cursor from a previous page")
        try:
            text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
            occurred_at_text, item_id = text.split("|")
            occurred_at = datetime.fromisoformat(occurred_at_text)
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise invalid from None
        if occurred_at.tzinfo is None or not item_id:
            raise invalid
        return cls(occurred_at.astimezone(timezone.utc), item_id)


@dataclass(frozen=True)
class Page(Generic[Item]):
    items: list[Item]
    next_cursor: str | None


def page_of(
    items: Sequence[Item],
    sort_key: Callable[[Item], PageCursor],
    limit: int,
    after: PageCursor | None,
    newest_first: bool,
) -> Page[Item]:
    """Sort ``items`` by ``sort_key`` and return up to ``limit`` of them that come after the cursor."""
    ordered = sorted(items, key=sort_key, reverse=newest_first)
    if after is not None:
        if newest_first:
            ordered = [item for item in ordered if sort_key(item) < after]
        else:
            ordered = [item for item in ordered if sort_key(item) > after]
    page = ordered[:limit]
    next_cursor = sort_key(page[-1]).encode() if len(ordered) > limit else None
    return Page(page, next_cursor)
