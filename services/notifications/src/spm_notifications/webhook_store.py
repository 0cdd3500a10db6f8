"""Webhook endpoints and the delivery log, as stored in the read-model database."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable

from sqlalchemy import Connection, select, update
from sqlalchemy.engine import Row

from spm_notifications.delivery.signing import new_secret
from spm_notifications.delivery_tables import delivery_tables_of
from spm_notifications.tables import InboxTables

DELIVERY_ID_NAMESPACE = uuid.UUID("9a1e6f1c-2b7d-4f39-8c55-5d0a8e3b7f42")
MAX_WEBHOOKS_PER_PERSON = 10


def delivery_id_for(notification_id: str, channel: str, target: str) -> str:
    """Return the stable id of one notification's delivery on one channel to one target."""
    return str(uuid.uuid5(DELIVERY_ID_NAMESPACE, f"{notification_id}\n{channel}\n{target}"))


@dataclass(frozen=True)
class DeliveryLogEntry:
    delivery: Row
    attempts: list[Row]


class WebhookStore:
    def __init__(self, tables: InboxTables) -> None:
        self.tables = delivery_tables_of(tables)

    def create(
        self,
        connection: Connection,
        org_id: str,
        person_id: str,
        url: str,
        body_format: str,
        kinds: list[str] | None,
        created_at: datetime,
    ) -> Row:
        webhooks = self.tables.webhooks
        row = {
            "webhook_id": str(uuid.uuid4()),
            "org_id": org_id,
            "person_id": person_id,
            "url": url,
            "format": body_format,
            "kinds": None if kinds is None else json.dumps(sorted(set(kinds))),
            "secret": new_secret(),
            "created_at": created_at,
            "deleted_at": None,
        }
        connection.execute(webhooks.insert().values(row))
        return connection.execute(select(webhooks).where(webhooks.c.webhook_id == row["webhook_id"])).one()

    def list_active(self, connection: Connection, org_id: str, person_id: str) -> list[Row]:
        webhooks = self.tables.webhooks
        return connection.execute(
            select(webhooks)
            .where(webhooks.c.org_id == org_id, webhooks.c.person_id == person_id, webhooks.c.deleted_at.is_(None))
            .order_by(webhooks.c.created_at, webhooks.c.webhook_id)
        ).all()

    def active_by_person(self, connection: Connection, org_id: str, person_ids: Iterable[str]) -> dict[str, list[Row]]:
        webhooks = self.tables.webhooks
        found: dict[str, list[Row]] = {}
        for row in connection.execute(
            select(webhooks).where(
                webhooks.c.org_id == org_id, webhooks.c.person_id.in_(sorted(set(person_ids))), webhooks.c.deleted_at.is_(None)
            ).order_by(webhooks.c.webhook_id)
        ):
            found.setdefault(row.person_id, []).append(row)
        return found

    def owned(self, connection: Connection, org_id: str, person_id: str, webhook_id: str) -> Row | None:
        """Return the caller's webhook, deleted or not, or None for anyone else's or an unknown id."""
        webhooks = self.tables.webhooks
        return connection.execute(
            select(webhooks).where(
                webhooks.c.webhook_id == webhook_id, webhooks.c.org_id == org_id, webhooks.c.person_id == person_id
            )
        ).first()

    def delete(self, connection: Connection, org_id: str, person_id: str, webhook_id: str, at: datetime) -> bool:
        webhooks = self.tables.webhooks
        result = connection.execute(
            update(webhooks)
            .where(
                webhooks.c.webhook_id == webhook_id,
                webhooks.c.org_id == org_id,
                webhooks.c.person_id == person_id,
                webhooks.c.deleted_at.is_(None),
            )
            .values(deleted_at=at)
        )
        return result.rowcount == 1

    def find(self, connection: Connection, org_id: str, webhook_id: str) -> Row | None:
        webhooks = self.tables.webhooks
        return connection.execute(
            select(webhooks).where(webhooks.c.webhook_id == webhook_id, webhooks.c.org_id == org_id)
        ).first()

    def deliveries(self, connection: Connection, webhook_id: str, limit: int, before_sequence: int | None) -> list[DeliveryLogEntry]:
        """Return the webhook's deliveries, newest first by inbox sequence, each with its attempts."""
        deliveries, attempts = self.tables.deliveries, self.tables.delivery_attempts
        query = select(deliveries).where(deliveries.c.channel == "webhook", deliveries.c.target == webhook_id)
        if before_sequence is not None:
            query = query.where(deliveries.c.sequence < before_sequence)
        rows = connection.execute(query.order_by(deliveries.c.sequence.desc()).limit(limit)).all()
        by_delivery: dict[str, list[Row]] = {row.delivery_id: [] for row in rows}
        if by_delivery:
            for attempt in connection.execute(
                select(attempts)
                .where(attempts.c.delivery_id.in_(list(by_delivery)))
                .order_by(attempts.c.delivery_id, attempts.c.attempt)
            ):
                by_delivery[attempt.delivery_id].append(attempt)
        return [DeliveryLogEntry(row, by_delivery[row.delivery_id]) for row in rows]
