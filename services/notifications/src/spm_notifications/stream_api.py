"""``GET /inbox/stream``: live push of new notifications as Server-Sent Events.

Each event's id is the notification's inbox ``sequence``. Rows get their sequence in commit order
(see tables.py), so a client that reconnects with ``Last-Event-ID: n`` receives every notification
after ``n`` that it may see, with no gap and no repeat.
"""

# No "from __future__ import annotations": FastAPI resolves the route annotations at definition time.

import asyncio
import json
import logging
from typing import Annotated, AsyncIterator, Callable

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from sqlalchemy import Engine, and_, func, select
from sse_starlette import EventSourceResponse, ServerSentEvent

from spm_events.auth import Principal
from spm_events.http import UNAUTHORIZED, ErrorOut

from spm_notifications.audience import visible_goal_condition
from spm_notifications.preferences import PUSH, preference_condition
from spm_notifications.rules import notification_message
from spm_notifications.tables import InboxTables

logger = logging.getLogger(__name__)

STREAM_BATCH_SIZE = 100
# Schema of one event. Before OpenAPI 3.2, which adds itemSchema, the schema of a text/event-stream
# describes each event, and the keep-alive comments between events are not events.
EVENT_SCHEMA = {
    "type": "object",
    "properties": {
        "event": {"type": "string", "enum": ["notification"]},
        "id": {"type": "string", "pattern": "^[0-9]+$", "description": "The notification's inbox sequence; send it as Last-Event-ID to resume"},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "description": "The notification as JSON: sequence, notification_id, kind, goal_id, goal_title, actor_id, "
            "message, occurred_at and read",
        },
    },
    "required": ["event", "id", "data"],
}


class EventStreamDocumentation(Response):
    """Response class that documents the stream's 200 as ``text/event-stream``. The route itself returns an EventSourceResponse."""

    media_type = "text/event-stream"


def stream_routes(
    engine: Engine,
    tables: InboxTables,
    current_principal: Callable[..., Principal],
    poll_interval_seconds: float,
    ping_seconds: float,
) -> APIRouter:
    router = APIRouter(tags=["inbox"])
    inbox = tables.inbox
    CurrentPrincipal = Annotated[Principal, Depends(current_principal)]

    def latest_sequence() -> int:
        with engine.connect() as connection:
            return connection.execute(select(func.max(inbox.c.sequence))).scalar() or 0

    def read_after(reader: Principal, after: int) -> list[dict[str, object]]:
        """Return the reader's next notifications after ``after``: visible now, not muted, push switched on."""
        query = (
            select(inbox)
            .where(
                inbox.c.sequence > after,
                inbox.c.org_id == reader.org_id,
                inbox.c.recipient_id == reader.person_id,
                and_(
                    visible_goal_condition(tables, reader, inbox.c.org_id, inbox.c.goal_id),
                    preference_condition(tables, reader, PUSH),
                ),
            )
            .order_by(inbox.c.sequence)
            .limit(STREAM_BATCH_SIZE)
        )
        with engine.connect() as connection:
            rows = connection.execute(query).all()
        return [
            {
                "sequence": row.sequence,
                "notification_id": row.notification_id,
                "kind": row.kind,
                "goal_id": row.goal_id,
                "goal_title": row.goal_title,
                "actor_id": row.actor_id,
                "message": notification_message(row.kind, row.goal_title),
                "occurred_at": row.occurred_at.isoformat(),
                "read": row.read_at is not None,
            }
            for row in rows
        ]

    @router.get(
        "/inbox/stream",
        response_class=EventStreamDocumentation,
        responses={
            200: {
                "description": "Server-Sent Events: one `notification` event per notification, its id the inbox sequence, "
                "and keep-alive comments in between; the stream ends only when the client disconnects",
                "content": {"text/event-stream": {"schema": EVENT_SCHEMA}},
            },
            # Written out, because FastAPI would document a "model" under the route's text/event-stream.
            401: {"description": UNAUTHORIZED, "content": {"application/json": {"schema": ErrorOut.model_json_schema()}}},
        },
    )
    async def stream_inbox(
        request: Request,
        principal: CurrentPrincipal,
        last_event_id: Annotated[
            str | None, Header(alias="Last-Event-ID", description="The id of the last event received, to resume after it")
        ] = None,
        after: Annotated[
            int | None, Query(ge=0, description="Start after this sequence; without it and without Last-Event-ID, start now")
        ] = None,
    ) -> EventSourceResponse:
        start = _start_sequence(last_event_id, after)
        if start is None:
            start = await asyncio.to_thread(latest_sequence)
        logger.info("stream opened org_id=%s person_id=%s after=%s", principal.org_id, principal.person_id, start)

        async def events() -> AsyncIterator[ServerSentEvent]:
            cursor = start
            while not await request.is_disconnected():
                items = await asyncio.to_thread(read_after, principal, cursor)
                for item in items:
                    cursor = int(item["sequence"])  # type: ignore[call-overload]
                    yield ServerSentEvent(data=json.dumps(item), event="notification", id=str(cursor))
                if len(items) < STREAM_BATCH_SIZE:
                    await asyncio.sleep(poll_interval_seconds)
            logger.info("stream closed org_id=%s person_id=%s last_sequence=%s", principal.org_id, principal.person_id, cursor)

        return EventSourceResponse(events(), ping=ping_seconds)

    return router


def _start_sequence(last_event_id: str | None, after: int | None) -> int | None:
    """Return where the stream starts: after Last-Event-ID, else after ``after``, else None (the current end)."""
    if last_event_id is None or last_event_id.strip() == "":
        return after
    text = last_event_id.strip()
    if not text.isdigit() or len(text) > 18:
        raise RequestValidationError([{
            "type": "value_error",
            "loc": ("header", "Last-Event-ID"),
            "msg": f"Last-Event-ID {text[:40]!r} is not an event id of this stream; send the id of the last event received",
        }])
    return int(text)
