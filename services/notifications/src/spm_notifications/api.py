"""The inbox HTTP API: list notifications, mark them read, and report the worker's positions."""

# No "from __future__ import annotations": FastAPI must resolve the route annotations that use the
# principal dependency built inside create_app, and it cannot resolve a string naming a local.

import logging
from dataclasses import asdict
from datetime import datetime
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Path, Query, status
from pydantic import BaseModel, Field

from spm_events.auth import Principal, principal_dependency
from spm_events.database import create_database_engine
from spm_events.http import (
    UNAUTHORIZED,
    BodyLimitMiddleware,
    add_common_error_handlers,
    add_storage_error_handler,
    error_responses,
)
from spm_events.readmodel import PositionedReadModel

from spm_notifications.delivery_api import add_delivery_routes
from spm_notifications.inbox import Cursor, Inbox, InvalidCursorError, Notification
from spm_notifications.settings import READ_MODEL_FILE, NotificationsSettings
from spm_notifications.tables import open_read_model

logger = logging.getLogger(__name__)

MAX_PAGE_SIZE = 100


class NotificationOut(BaseModel):
    notification_id: str
    kind: str
    goal_id: str
    goal_title: str | None
    actor_id: str
    message: str
    occurred_at: datetime
    read: bool
    count: int = Field(description="How many notifications this item groups; 1 for a single one")
    actor_ids: list[str] = Field(description="The distinct actors of the item's notifications, newest first")
    community_id: str | None = None
    group_key: str | None = Field(default=None, description="Set on a grouped item; marking the item read marks all of it")


class InboxPageOut(BaseModel):
    items: list[NotificationOut]
    unread_count: int
    next_cursor: str | None


class MarkedOut(BaseModel):
    marked: int


class PositionOut(BaseModel):
    topic: str
    partition: int
    offset: int


class PositionsOut(BaseModel):
    consumer: str
    positions: list[PositionOut]


def _notification_out(notification: Notification) -> NotificationOut:
    return NotificationOut(**asdict(notification))


def create_app(settings: NotificationsSettings) -> FastAPI:
    """Wire the read-model database, authentication and routes into one FastAPI app."""
    engine = create_database_engine(settings.sqlalchemy_url(READ_MODEL_FILE))
    read_model, tables = open_read_model(engine, settings.processor_id)
    inbox = Inbox(engine, tables)
    current_principal = principal_dependency(settings.jwt_secret.get_secret_value())
    CurrentPrincipal = Annotated[Principal, Depends(current_principal)]

    app = FastAPI(title="SPM notifications", version="1")
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes, max_depth=settings.max_json_depth)
    add_common_error_handlers(app)
    add_storage_error_handler(app, "notifications", settings.sqlite_data_dir)
    add_delivery_routes(app, settings, engine, tables, current_principal)

    @app.get("/healthz")
    def read_health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/internal/positions", response_model=PositionsOut)
    def read_positions() -> PositionsOut:
        return _positions_out(read_model)

    @app.get("/inbox", response_model=InboxPageOut, responses=error_responses({401: UNAUTHORIZED}))
    def read_inbox(
        principal: CurrentPrincipal,
        unread_only: bool = False,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 20,
        before: Annotated[str | None, Query(max_length=400, description="next_cursor of the previous page")] = None,
    ) -> InboxPageOut:
        try:
            cursor = None if before is None else Cursor.decode(before)
        except InvalidCursorError as error:
            raise HTTPException(
                status_code=422,
                detail=[{"loc": ["query", "before"], "msg": str(error), "type": "value_error"}],
            ) from None
        page = inbox.list_notifications(principal, unread_only=unread_only, limit=limit, before=cursor)
        return InboxPageOut(
            items=[_notification_out(item) for item in page.items],
            unread_count=page.unread_count,
            next_cursor=page.next_cursor,
        )

    @app.post("/inbox/read-all", response_model=MarkedOut, responses=error_responses({401: UNAUTHORIZED}))
    def mark_all_read(principal: CurrentPrincipal) -> MarkedOut:
        marked = inbox.mark_all_read(principal)
        logger.info("marked all notifications read org_id=%s person_id=%s count=%s",
                    principal.org_id, principal.person_id, marked)
        return MarkedOut(marked=marked)

    @app.post(
        "/inbox/{notification_id}/read",
        response_model=NotificationOut,
        responses=error_responses({401: UNAUTHORIZED, 404: "No notification with this id in the caller's inbox"}),
    )
    def mark_read(
        principal: CurrentPrincipal,
        notification_id: Annotated[str, Path(min_length=1, max_length=64)],
    ) -> NotificationOut:
        notification = inbox.mark_read(principal, notification_id)
        if notification is None:
            raise HTTPException(
                status_code=status.HTTP_404_NOT_FOUND,
                detail=f"notification {notification_id} not found in your inbox. List your notifications with GET /inbox",
            )
        logger.info("marked notification read org_id=%s notification_id=%s", principal.org_id, notification_id)
        return _notification_out(notification)

    return app


def _positions_out(read_model: PositionedReadModel) -> PositionsOut:
    recorded = read_model.recorded_offsets()
    return PositionsOut(
        consumer=read_model.consumer,
        positions=[
            PositionOut(topic=topic, partition=partition, offset=offset)
            for (topic, partition), offset in sorted(recorded.items())
        ],
    )
