"""The feed builder: applies spm.goals.v1 and spm.social.v1 events to the social read model.

Each event is stored as facts first (goals, audiences, memberships, activities). Then the feed
items it can affect are recomputed from the stored facts by event time, so the feeds do not
depend on how the worker interleaves the two topics, and a rebuild gives the live state.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any, Callable

from sqlalchemy import Connection

from spm_events.envelope import Envelope
from spm_events.registry import EVENT_TYPES
from spm_events.schemas import Payload
from spm_social.feedwriter import FeedWriter
from spm_social.goal_event_appliers import GOAL_APPLIERS
from spm_social.readmodel import SocialTables, stored_read_time_threshold
from spm_social.social_event_appliers import SOCIAL_APPLIERS

logger = logging.getLogger(__name__)


# Each applier takes the writer of the event and the payload model it is registered for.
Apply = Callable[[FeedWriter, Any], None]


class FeedProjection:
    """The read-model handler for spm.goals.v1 and spm.social.v1 messages."""

    def __init__(self, tables: SocialTables, clock: Callable[[], datetime] | None = None) -> None:
        self.tables = tables
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self._appliers: dict[type[Payload], Apply] = GOAL_APPLIERS | SOCIAL_APPLIERS
        self._read_time_threshold: int | None = None

    def __call__(self, connection: Connection, envelope: Envelope) -> None:
        event_type = EVENT_TYPES.get(envelope.type)
        apply = self._appliers.get(event_type.model) if event_type else None
        if apply is None:
            # Other event types and newer versions on these topics are not part of the feed.
            logger.debug("ignoring event_id=%s type=%s", envelope.id, envelope.type)
            return
        # A payload that does not match its schema raises ValidationError, a ValueError, so the
        # read model dead-letters the message instead of retrying it forever.
        payload = event_type.model.model_validate(envelope.data)
        if self._read_time_threshold is None:
            # Fixed when the read model was created, so reading it once is enough.
            self._read_time_threshold = stored_read_time_threshold(connection, self.tables)
        apply(FeedWriter(connection, self.tables, envelope, self.clock(), self._read_time_threshold), payload)
