"""Queries the API runs against the social read model."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from spm_events.auth import Principal
from spm_events.visibility import GoalAudience
from spm_social.fanout import COMMUNITY_CHANNEL, COMMUNITY_MEMBER, SOURCE_RANK, Channel, as_utc
from spm_social.feed_queries import (
    PageRequest,
    channel_page_query,
    community_exists,
    is_member_now,
    read_time_subscriptions,
    written_items_query,
)
from spm_social.feed_text import summarize
from spm_social.feedsync import feed_item_id
from spm_social.readmodel import SocialReadModel
from spm_social.visibility import load_goal_audience


class InvalidCursorError(ValueError):
    """Raised for a feed cursor that no feed page returned."""


@dataclass(frozen=True)
class FeedCursor:
    """The sort key of the last item of a page; the next page starts strictly after it."""

    occurred_at: datetime
    event_id: str

    def encode(self) -> str:
        text = f"{self.occurred_at.isoformat()}|{self.event_id}"
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, cursor: str) -> FeedCursor:
        try:
            padded = cursor + "=" * (-len(cursor) % 4)
            occurred_at_text, event_id = base64.urlsafe_b64decode(padded).decode().split("|")
            occurred_at = datetime.fromisoformat(occurred_at_text)
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise InvalidCursorError("invalid cursor; pass next_cursor from a previous feed page") from None
        # Event ids are UUIDs, so a control character (which PostgreSQL rejects in text) marks a forged cursor.
        if occurred_at.tzinfo is None or not event_id or not event_id.isprintable():
            raise InvalidCursorError("invalid cursor; pass next_cursor from a previous feed page")
        return cls(occurred_at.astimezone(timezone.utc), event_id)


@dataclass(frozen=True)
class FeedPage:
    items: list[dict[str, Any]]
    next_cursor: str | None


@dataclass(frozen=True)
class _Candidate:
    sort_key: tuple[datetime, str]
    rank: tuple[int, str]
    item: dict[str, Any]


class SocialViews:
    def __init__(self, read_model: SocialReadModel) -> None:
        self.read_model = read_model
        self.tables = read_model.tables

    def audience_of(self, org_id: str, goal_id: str) -> GoalAudience | None:
        """Return who may see the goal now, or None if its GoalCreated has not been applied in the organisation."""
        with self.read_model.engine.connect() as connection:
            return load_goal_audience(connection, self.tables, org_id, goal_id)

    def feed_page(
        self, reader: Principal, limit: int, before: FeedCursor | None, kinds: Collection[str] | None = None
    ) -> FeedPage:
        """Return one page of the reader's feed, newest event time first, ties broken by event id.

        The page merges the items written for the reader with the activities of the read-time
        groups they belong to. Each part is filtered by what the reader may see now before its
        limit, so a page contains ``limit`` items whenever that many visible ones remain.
        """
        request = _page_request(limit, before, kinds)
        with self.read_model.engine.connect() as connection:
            statement, parameters = written_items_query(self.tables, reader, request)
            candidates = [
                self._candidate(row, reader, row["source"], row["source_id"], row["item_id"], row["item_indexed_at"])
                for row in connection.execute(statement, parameters).mappings()
            ]
            for subscription in read_time_subscriptions(connection, self.tables, reader):
                statement, parameters = channel_page_query(
                    self.tables, reader, request, subscription.channel, subscription.interval
                )
                source, source_id = subscription.source, subscription.channel.channel_id
                candidates.extend(
                    self._candidate(row, reader, source, source_id)
                    for row in connection.execute(statement, parameters).mappings()
                )
        return _page(candidates, limit)

    def community_feed_page(
        self,
        reader: Principal,
        community_id: str,
        limit: int,
        before: FeedCursor | None,
        kinds: Collection[str] | None = None,
    ) -> FeedPage | None:
        """Return one page of a community's feed for a current member, or None if the reader is not one."""
        request = _page_request(limit, before, kinds)
        with self.read_model.engine.connect() as connection:
            if not community_exists(connection, self.tables, reader.org_id, community_id):
                return None
            if not is_member_now(connection, self.tables, reader.org_id, community_id, reader.person_id):
                return None
            channel = Channel(COMMUNITY_CHANNEL, community_id)
            statement, parameters = channel_page_query(self.tables, reader, request, channel, None)
            candidates = [
                self._candidate(row, reader, COMMUNITY_MEMBER, community_id)
                for row in connection.execute(statement, parameters).mappings()
            ]
        return _page(candidates, limit)

    def consumer_positions(self) -> list[dict[str, Any]]:
        """Return the last applied offset per topic partition of the feed worker."""
        positioned = self.read_model.positioned
        offsets = positioned.recorded_offsets()
        return [
            {"topic": topic, "partition": partition, "offset": offset}
            for (topic, partition), offset in sorted(offsets.items())
        ]

    def _candidate(
        self,
        row: Any,
        reader: Principal,
        source: str,
        source_id: str | None,
        item_id: str | None = None,
        indexed_at: datetime | None = None,
    ) -> _Candidate:
        occurred_at = as_utc(row["occurred_at"])
        item = {
            "item_id": item_id or feed_item_id(reader.person_id, row["event_id"]),
            "event_id": row["event_id"],
            "kind": row["kind"],
            "source": source,
            "source_id": source_id,
            "goal_id": row["goal_id"],
            "goal_title": row["goal_title"],
            "community_id": row["community_id"],
            "key_result_id": row["key_result_id"],
            "target_id": row["target_id"],
            "actor_id": row["actor_id"],
            "subject_id": row["subject_id"],
            "summary": summarize(row, reader.person_id),
            "occurred_at": occurred_at,
            "indexed_at": as_utc(indexed_at or row["activity_indexed_at"]),
        }
        return _Candidate((occurred_at, row["event_id"]), (SOURCE_RANK[source], source_id or ""), item)


def _page_request(limit: int, before: FeedCursor | None, kinds: Collection[str] | None) -> PageRequest:
    if before is None:
        return PageRequest(limit, kinds=kinds)
    return PageRequest(limit, before.occurred_at, before.event_id, kinds)


def _page(candidates: list[_Candidate], limit: int) -> FeedPage:
    """Keep each event's best reason, order newest first, and cut the page with its cursor."""
    best: dict[str, _Candidate] = {}
    for candidate in candidates:
        event_id = candidate.sort_key[1]
        current = best.get(event_id)
        if current is None or candidate.rank < current.rank:
            best[event_id] = candidate
    ordered = sorted(best.values(), key=lambda candidate: candidate.sort_key, reverse=True)
    page = [candidate.item for candidate in ordered[:limit]]
    next_cursor = None
    if len(ordered) > limit:
        last = ordered[limit - 1].sort_key
        next_cursor = FeedCursor(last[0], last[1]).encode()
    return FeedPage(page, next_cursor)
