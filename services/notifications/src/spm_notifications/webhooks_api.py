"""Routes under /webhooks: a person registers endpoints for their own notifications and reads the delivery log."""

# No "from __future__ import annotations": FastAPI resolves the route annotations at definition time.

import json
import logging
from datetime import datetime
from typing import Annotated, Callable, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import Engine
from sqlalchemy.engine import Row

from spm_events.auth import Principal
from spm_events.http import UNAUTHORIZED, error_responses

from spm_notifications.delivery.webhooks import TargetPolicy, WebhookTargetError
from spm_notifications.rules import NOTIFICATION_KINDS
from spm_notifications.tables import InboxTables
from spm_notifications.webhook_store import MAX_WEBHOOKS_PER_PERSON, WebhookStore

logger = logging.getLogger(__name__)

MAX_LOG_PAGE_SIZE = 100
WebhookId = Annotated[str, Path(min_length=36, max_length=36, description="The id POST /webhooks returned")]


class WebhookBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2000, examples=["https://hooks.example.com/spm"])
    format: Literal["json", "slack"] = Field(default="json", description="json: the notification; slack: {text, blocks}")
    kinds: list[str] | None = Field(default=None, max_length=50, description="Only these kinds; omit for every kind")

    @field_validator("kinds")
    @classmethod
    def _known_kinds(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        unknown = [kind for kind in value if kind not in NOTIFICATION_KINDS]
        if unknown:
            raise ValueError(f"unknown notification kind {unknown[0]!r}; expected one of {', '.join(NOTIFICATION_KINDS)}")
        if not value:
            raise ValueError("kinds is empty; omit it to receive every kind")
        return value


class WebhookOut(BaseModel):
    webhook_id: str
    url: str
    format: str
    kinds: list[str] | None
    created_at: datetime


class CreatedWebhookOut(WebhookOut):
    secret: str = Field(description="Shown only in this response. Verify X-SPM-Signature with it")


class WebhookListOut(BaseModel):
    webhooks: list[WebhookOut]


class AttemptOut(BaseModel):
    attempt: int
    attempted_at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


class DeliveryOut(BaseModel):
    delivery_id: str
    notification_id: str
    sequence: int
    status: str = Field(description="pending, sent, dead (no more attempts) or dropped (no longer due)")
    attempts: list[AttemptOut]
    due_at: datetime
    created_at: datetime
    finished_at: datetime | None
    last_status_code: int | None
    last_error: str | None


class DeliveryLogOut(BaseModel):
    items: list[DeliveryOut]
    next_cursor: int | None = Field(description="Pass as `before` for older deliveries; null on the last page")


def _webhook_fields(row: Row) -> dict[str, object]:
    return {
        "webhook_id": row.webhook_id,
        "url": row.url,
        "format": row.format,
        "kinds": None if row.kinds is None else json.loads(row.kinds),
        "created_at": row.created_at,
    }


def webhook_routes(
    engine: Engine,
    tables: InboxTables,
    current_principal: Callable[..., Principal],
    policy: TargetPolicy,
    clock: Callable[[], datetime],
) -> APIRouter:
    router = APIRouter(tags=["webhooks"], responses=error_responses({401: UNAUTHORIZED}))

    store = WebhookStore(tables)
    CurrentPrincipal = Annotated[Principal, Depends(current_principal)]

    def not_found(webhook_id: str) -> HTTPException:
        return HTTPException(
            status_code=status.HTTP_404_NOT_FOUND,
            detail=f"webhook {webhook_id} not found among yours; list them with GET /webhooks",
        )

    @router.post(
        "/webhooks",
        response_model=CreatedWebhookOut,
        status_code=status.HTTP_201_CREATED,
        responses=error_responses({409: f"The caller has {MAX_WEBHOOKS_PER_PERSON} webhooks already; delete one first"}),
    )
    def register_webhook(body: WebhookBody, principal: CurrentPrincipal) -> CreatedWebhookOut:
        try:
            policy.check(body.url)
        except WebhookTargetError as error:
            raise RequestValidationError([{"type": "value_error", "loc": ("body", "url"), "msg": str(error)}]) from None
        with engine.begin() as connection:
            if len(store.list_active(connection, principal.org_id, principal.person_id)) >= MAX_WEBHOOKS_PER_PERSON:
                raise HTTPException(
                    status_code=status.HTTP_409_CONFLICT,
                    detail=f"you already have {MAX_WEBHOOKS_PER_PERSON} webhooks; delete one with DELETE /webhooks/{{id}}",
                )
            row = store.create(
                connection, principal.org_id, principal.person_id, body.url, body.format, body.kinds, clock()
            )
        logger.info("registered webhook org_id=%s person_id=%s webhook_id=%s format=%s",
                    principal.org_id, principal.person_id, row.webhook_id, row.format)
        return CreatedWebhookOut(**_webhook_fields(row), secret=row.secret)

    @router.get("/webhooks", response_model=WebhookListOut)
    def list_webhooks(principal: CurrentPrincipal) -> WebhookListOut:
        with engine.connect() as connection:
            rows = store.list_active(connection, principal.org_id, principal.person_id)
        return WebhookListOut(webhooks=[WebhookOut(**_webhook_fields(row)) for row in rows])

    @router.delete(
        "/webhooks/{webhook_id}",
        status_code=status.HTTP_204_NO_CONTENT,
        responses=error_responses({404: "The caller has no webhook with this id that is not deleted yet"}),
    )
    def delete_webhook(webhook_id: WebhookId, principal: CurrentPrincipal) -> None:
        with engine.begin() as connection:
            deleted = store.delete(connection, principal.org_id, principal.person_id, webhook_id, clock())
        if not deleted:
            raise not_found(webhook_id)
        logger.info("deleted webhook org_id=%s webhook_id=%s", principal.org_id, webhook_id)

    @router.get(
        "/webhooks/{webhook_id}/deliveries",
        response_model=DeliveryLogOut,
        responses=error_responses({404: "The caller never registered a webhook with this id"}),
    )
    def read_delivery_log(
        webhook_id: WebhookId,
        principal: CurrentPrincipal,
        limit: Annotated[int, Query(ge=1, le=MAX_LOG_PAGE_SIZE)] = 20,
        before: Annotated[int | None, Query(ge=1, description="next_cursor of the previous page")] = None,
    ) -> DeliveryLogOut:
        with engine.connect() as connection:
            if store.owned(connection, principal.org_id, principal.person_id, webhook_id) is None:
                raise not_found(webhook_id)
            entries = store.deliveries(connection, webhook_id, limit + 1, before)
        items = [
            DeliveryOut(
                delivery_id=entry.delivery.delivery_id,
                notification_id=entry.delivery.notification_id,
                sequence=entry.delivery.sequence,
                status=entry.delivery.status,
                attempts=[
                    AttemptOut(attempt=attempt.attempt, attempted_at=attempt.attempted_at, status_code=attempt.status_code,
                               error=attempt.error, duration_ms=attempt.duration_ms)
                    for attempt in entry.attempts
                ],
                due_at=entry.delivery.due_at,
                created_at=entry.delivery.created_at,
                finished_at=entry.delivery.finished_at,
                last_status_code=entry.delivery.last_status_code,
                last_error=entry.delivery.last_error,
            )
            for entry in entries[:limit]
        ]
        next_cursor = items[-1].sequence if len(entries) > limit else None
        return DeliveryLogOut(items=items, next_cursor=next_cursor)

    return router
