"""The dispatcher: follows the inbox by its sequence, plans deliveries per preference, and sends them.

Planning and sending are separate steps over the ``deliveries`` table:

1. Plan: read inbox rows after the recorded cursor, and insert one delivery per (notification,
   channel, target) that the recipient's preferences call for, together with the new cursor in one
   transaction. The unique key makes planning the same rows again harmless.
2. Send: pick pending deliveries that are due, check once more that the recipient may see the goal,
   has not muted it and still wants the channel, hold them while the recipient's quiet hours last,
   send, and record the outcome.

A delivery is recorded as sent only after the receiver accepted it. After a crash between the two,
the restarted dispatcher sends it again with the same delivery id. That is the only way a receiver
gets a delivery twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import aiosmtplib
import httpx
from sqlalchemy import Engine, select, update
from sqlalchemy.engine import Row

from spm_events.auth import Principal

from spm_notifications.audience import visible_goal_condition
from spm_notifications.delivery.email import (
    DigestItem,
    DirectoryError,
    DirectoryPerson,
    PeopleDirectoryClient,
    build_message,
    send_message,
)
from spm_notifications.delivery.webhooks import (
    AttemptResult,
    TargetPolicy,
    WebhookTargetError,
    backoff_seconds,
    post_webhook,
    webhook_body,
)
from spm_notifications.delivery_tables import delivery_tables_of
from spm_notifications.preferences import EMAIL, WEBHOOK, Preferences, PreferenceStore, preference_condition
from spm_notifications.rules import GOAL_FOLLOWED, notification_message
from spm_notifications.tables import InboxTables, insert_ignoring_duplicates, upsert
from spm_notifications.webhook_store import WebhookStore, delivery_id_for

logger = logging.getLogger(__name__)

CURSOR_NAME = "dispatcher"
PENDING, SENT, DEAD, DROPPED = "pending", "sent", "dead", "dropped"
MAX_ITEMS_PER_MAIL = 100


@dataclass(frozen=True)
class DispatcherConfig:
    batch_size: int = 200
    poll_interval_seconds: float = 1.0
    max_attempts: int = 6
    backoff_base_seconds: float = 5.0
    backoff_max_seconds: float = 3600.0
    webhook_timeout_seconds: float = 10.0
    webhook_concurrency: int = 8
    target_policy: TargetPolicy = TargetPolicy()
    digest_local_hour: int = 8
    # None turns the e-mail channel off: no e-mail delivery is planned.
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str = "SPM notifications <notifications@localhost>"
    smtp_timeout_seconds: float = 30.0


class Dispatcher:
    def __init__(
        self,
        engine: Engine,
        tables: InboxTables,
        config: DispatcherConfig,
        directory: PeopleDirectoryClient | None,
        clock: Callable[[], datetime] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.engine = engine
        self.tables = tables
        self.delivery = delivery_tables_of(tables)
        self.config = config
        self.directory = directory
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.rng = rng or random.Random()
        self.preferences = PreferenceStore(tables)
        self.webhooks = WebhookStore(tables)

    async def run(self, stop: asyncio.Event) -> None:
        """Plan and send until ``stop`` is set. Deliveries in flight finish before it returns."""
        logger.info("dispatcher started cursor=%s", self.cursor())
        async with httpx.AsyncClient() as client:
            while not stop.is_set():
                try:
                    worked = await self.run_once(client)
                except Exception:  # noqa: BLE001 - a failed round is logged and retried after the poll interval
                    logger.exception("dispatcher round failed; retrying in %.1fs", self.config.poll_interval_seconds)
                    worked = 0
                if worked == 0:
                    try:
                        await asyncio.wait_for(stop.wait(), timeout=self.config.poll_interval_seconds)
                    except asyncio.TimeoutError:
                        pass
        logger.info("dispatcher stopped cursor=%s", self.cursor())

    async def run_once(self, client: httpx.AsyncClient) -> int:
        """Run one round: plan new inbox rows, then send due webhooks and e-mails. Return how much was done."""
        planned = self.plan()
        sent = await self.send_due_webhooks(client)
        mailed = await self.send_due_emails()
        return planned + sent + mailed

    # --- planning ---

    def cursor(self) -> int:
        cursors = self.delivery.dispatcher_cursors
        with self.engine.connect() as connection:
            value = connection.execute(select(cursors.c.sequence).where(cursors.c.name == CURSOR_NAME)).scalar()
        return value or 0

    def plan(self) -> int:
        """Plan deliveries for the next batch of inbox rows and advance the cursor. Return the rows read."""
        inbox, cursors = self.tables.inbox, self.delivery.dispatcher_cursors
        now = self.clock()
        with self.engine.begin() as connection:
            after = connection.execute(select(cursors.c.sequence).where(cursors.c.name == CURSOR_NAME)).scalar() or 0
            rows = connection.execute(
                select(inbox).where(inbox.c.sequence > after).order_by(inbox.c.sequence).limit(self.config.batch_size)
            ).all()
            if not rows:
                return 0
            planned: list[dict[str, Any]] = []
            for org_id, org_rows in _by_org(rows).items():
                recipients = {row.recipient_id for row in org_rows}
                preferences = self.preferences.load_many(connection, org_id, recipients)
                endpoints = self.webhooks.active_by_person(connection, org_id, recipients)
                for row in org_rows:
                    planned.extend(self._deliveries_for(row, preferences[row.recipient_id], endpoints, now))
            insert_ignoring_duplicates(connection, self.delivery.deliveries, planned)
            upsert(connection, cursors, {"name": CURSOR_NAME, "sequence": rows[-1].sequence})
        logger.info("planned deliveries rows=%s deliveries=%s cursor=%s", len(rows), len(planned), rows[-1].sequence)
        return len(rows)

    def _deliveries_for(
        self, row: Row, preferences: Preferences, endpoints: dict[str, list[Row]], now: datetime
    ) -> list[dict[str, Any]]:
        deliveries = []
        if preferences.enabled(row.kind, WEBHOOK):
            for endpoint in endpoints.get(row.recipient_id, []):
                kinds = None if endpoint.kinds is None else json.loads(endpoint.kinds)
                if kinds is None or row.kind in kinds:
                    deliveries.append(self._delivery(row, WEBHOOK, endpoint.webhook_id, now, now))
        if self.config.smtp_host is not None and preferences.enabled(row.kind, EMAIL):
            due_at = preferences.next_digest_at(now, self.config.digest_local_hour)
            deliveries.append(self._delivery(row, EMAIL, row.recipient_id, due_at, now))
        return deliveries

    @staticmethod
    def _delivery(row: Row, channel: str, target: str, due_at: datetime, now: datetime) -> dict[str, Any]:
        return {
            "delivery_id": delivery_id_for(row.notification_id, channel, target),
            "notification_id": row.notification_id,
            "sequence": row.sequence,
            "org_id": row.org_id,
            "recipient_id": row.recipient_id,
            "channel": channel,
            "target": target,
            "status": PENDING,
            "attempts": 0,
            "due_at": due_at,
            "created_at": now,
            "finished_at": None,
            "last_status_code": None,
            "last_error": None,
        }

    # --- checks shared by the channels ---

    def _due(self, channel: str, now: datetime) -> list[Row]:
        deliveries = self.delivery.deliveries
        with self.engine.connect() as connection:
            return connection.execute(
                select(deliveries)
                .where(deliveries.c.status == PENDING, deliveries.c.channel == channel, deliveries.c.due_at <= now)
                .order_by(deliveries.c.due_at, deliveries.c.sequence)
                .limit(self.config.batch_size)
            ).all()

    def _deliverable_notifications(
        self, org_id: str, recipient_id: str, channel: str, notification_ids: list[str], team: str | None
    ) -> dict[str, Row]:
        """Return the notifications among ``notification_ids`` that may still go out on ``channel``.

        A notification is left out when it was withdrawn, when its goal is hidden from the
        recipient now, or when the recipient muted it or switched its kind off for the channel.
        ``team`` is the recipient's team in the people directory: no token is at hand here, so it
        is used in place of the token's teams when a goal is visible to a team.
        """
        inbox = self.tables.inbox
        teams = frozenset() if team is None else frozenset({team})
        reader = Principal(org_id=org_id, person_id=recipient_id, teams=teams)
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(inbox).where(
                    inbox.c.org_id == org_id,
                    inbox.c.recipient_id == recipient_id,
                    inbox.c.notification_id.in_(notification_ids),
                    visible_goal_condition(self.tables, reader, inbox.c.org_id, inbox.c.goal_id),
                    preference_condition(self.tables, reader, channel),
                )
            ).all()
        return {row.notification_id: row for row in rows}

    def _finish(self, delivery_ids: list[str], status: str, reason: str, now: datetime) -> None:
        deliveries = self.delivery.deliveries
        with self.engine.begin() as connection:
            connection.execute(
                update(deliveries)
                .where(deliveries.c.delivery_id.in_(delivery_ids), deliveries.c.status == PENDING)
                .values(status=status, last_error=reason, finished_at=now)
            )
        logger.info("%s deliveries count=%s reason=%s", status, len(delivery_ids), reason)

    def _hold(self, delivery_ids: list[str], until: datetime) -> None:
        deliveries = self.delivery.deliveries
        with self.engine.begin() as connection:
            connection.execute(
                update(deliveries).where(deliveries.c.delivery_id.in_(delivery_ids)).values(due_at=until)
            )
        logger.info("held deliveries for quiet hours count=%s until=%s", len(delivery_ids), until.isoformat())

    def _retry_after_directory_error(self, org_id: str, deliveries: list[Row], error: DirectoryError) -> None:
        logger.warning("people directory unavailable org_id=%s deliveries=%s error=%s", org_id, len(deliveries), error)
        for delivery in deliveries:
            self._record_attempt(delivery, AttemptResult(False, True, None, str(error), 0), self.clock())

    def _record_attempt(self, delivery: Row, result: AttemptResult, now: datetime) -> None:
        """Record one attempt and move the delivery to sent, to a later retry, or to dead."""
        deliveries, attempts = self.delivery.deliveries, self.delivery.delivery_attempts
        attempt = delivery.attempts + 1
        values: dict[str, Any] = {
            "attempts": attempt, "last_status_code": result.status_code, "last_error": result.error,
        }
        if result.succeeded:
            values |= {"status": SENT, "finished_at": now}
        elif result.retryable and attempt < self.config.max_attempts:
            wait = backoff_seconds(attempt, self.config.backoff_base_seconds, self.config.backoff_max_seconds, self.rng)
            values["due_at"] = now + timedelta(seconds=wait)
        else:
            values |= {"status": DEAD, "finished_at": now}
        with self.engine.begin() as connection:
            insert_ignoring_duplicates(connection, attempts, [{
                "delivery_id": delivery.delivery_id, "attempt": attempt, "attempted_at": now,
                "status_code": result.status_code, "error": result.error, "duration_ms": result.duration_ms,
            }])
            connection.execute(update(deliveries).where(deliveries.c.delivery_id == delivery.delivery_id).values(values))
        if values.get("status") == DEAD:
            logger.warning("delivery dead-lettered delivery_id=%s channel=%s attempts=%s error=%s",
                           delivery.delivery_id, delivery.channel, attempt, result.error)
        elif not result.succeeded:
            logger.info("delivery failed, will retry delivery_id=%s channel=%s attempt=%s due_at=%s error=%s",
                        delivery.delivery_id, delivery.channel, attempt, values["due_at"].isoformat(), result.error)

    # --- webhooks ---

    async def send_due_webhooks(self, client: httpx.AsyncClient) -> int:
        now = self.clock()
        due = self._due(WEBHOOK, now)
        if not due:
            return 0
        sendable: list[tuple[Row, str | None]] = []
        for org_id, deliveries in _by_org(due).items():
            if self.directory is None:
                # Without a directory, team goals reach only their insiders.
                sendable.extend((delivery, None) for delivery in deliveries)
                continue
            # NOTE: this pages through the org's whole directory in every round that has webhooks due,
            # also when none of them is about a team goal.
            try:
                people = await self.directory.people(org_id, {delivery.recipient_id for delivery in deliveries})
            except DirectoryError as error:
                self._retry_after_directory_error(org_id, deliveries, error)
                continue
            sendable.extend((delivery, _team_of(people, delivery.recipient_id)) for delivery in deliveries)
        semaphore = asyncio.Semaphore(self.config.webhook_concurrency)

        async def send_one(delivery: Row, team: str | None) -> None:
            async with semaphore:
                await self._send_webhook(client, delivery, team)

        await asyncio.gather(*(send_one(delivery, team) for delivery, team in sendable))
        return len(due)

    async def _send_webhook(self, client: httpx.AsyncClient, delivery: Row, team: str | None) -> None:
        now = self.clock()
        with self.engine.connect() as connection:
            endpoint = self.webhooks.find(connection, delivery.org_id, delivery.target)
            preferences = self.preferences.load(connection, delivery.org_id, delivery.recipient_id)
        if endpoint is None or endpoint.deleted_at is not None:
            self._finish([delivery.delivery_id], DROPPED, "webhook deleted", now)
            return
        if preferences.is_quiet(now):
            self._hold([delivery.delivery_id], preferences.end_of_quiet(now))
            return
        notifications = self._deliverable_notifications(
            delivery.org_id, delivery.recipient_id, WEBHOOK, [delivery.notification_id], team
        )
        notification = notifications.get(delivery.notification_id)
        if notification is None:
            self._finish([delivery.delivery_id], DROPPED, "notification withdrawn, hidden, muted or switched off", now)
            return
        try:
            await self.config.target_policy.check_async(endpoint.url)
        except WebhookTargetError as error:
            self._record_attempt(delivery, AttemptResult(False, False, None, str(error), 0), now)
            return
        body = webhook_body(_notification_payload(notification), delivery.delivery_id, endpoint.format)
        result = await post_webhook(
            client, endpoint.url, endpoint.secret, delivery.delivery_id, body, int(time.time()),
            self.config.webhook_timeout_seconds,
        )
        self._record_attempt(delivery, result, self.clock())

    # --- e-mail ---

    async def send_due_emails(self) -> int:
        if self.config.smtp_host is None:
            # E-mails planned while a server was configured wait until one is configured again.
            return 0
        now = self.clock()
        due = self._due(EMAIL, now)
        if not due:
            return 0
        for org_id, org_deliveries in _by_org(due).items():
            await self._mail_org(org_id, org_deliveries, now)
        return len(due)

    async def _mail_org(self, org_id: str, org_deliveries: list[Row], now: datetime) -> None:
        by_recipient: dict[str, list[Row]] = defaultdict(list)
        for delivery in org_deliveries:
            by_recipient[delivery.recipient_id].append(delivery)
        try:
            if self.directory is None:
                raise DirectoryError("no people directory is configured; set SPM_SOCIAL_API_URL to the social API")
            people = await self.directory.people(org_id, by_recipient)
        except DirectoryError as error:
            self._retry_after_directory_error(org_id, org_deliveries, error)
            return
        for recipient_id, deliveries in by_recipient.items():
            with self.engine.connect() as connection:
                preferences = self.preferences.load(connection, org_id, recipient_id)
            if preferences.is_quiet(now):
                self._hold([delivery.delivery_id for delivery in deliveries], preferences.end_of_quiet(now))
                continue
            notifications = self._deliverable_notifications(
                org_id, recipient_id, EMAIL, [delivery.notification_id for delivery in deliveries],
                _team_of(people, recipient_id),
            )
            undeliverable_ids = [
                delivery.delivery_id for delivery in deliveries if delivery.notification_id not in notifications
            ]
            if undeliverable_ids:
                self._finish(undeliverable_ids, DROPPED, "notification withdrawn, hidden, muted or switched off", now)
            deliverable = [delivery for delivery in deliveries if delivery.notification_id in notifications]
            if not deliverable:
                continue
            person = people.get(recipient_id)
            if person is None or person.email is None:
                self._finish([delivery.delivery_id for delivery in deliverable], DEAD,
                             "no active person with an e-mail address in the people directory", self.clock())
                continue
            await self._mail_one(person.email, preferences, deliverable[:MAX_ITEMS_PER_MAIL], notifications)
        # The addresses go out of scope here. They are never written to this service's database.

    async def _mail_one(
        self, address: str, preferences: Preferences, deliveries: list[Row], notifications: dict[str, Row]
    ) -> None:
        items = _digest_items(deliveries, notifications)
        message = build_message(self.config.smtp_from, address, items, preferences.email_digest, self.clock())
        started = time.monotonic()
        try:
            await send_message(message, self.config.smtp_host, self.config.smtp_port, self.config.smtp_timeout_seconds)
            result = AttemptResult(True, False, None, None, int((time.monotonic() - started) * 1000))
        except (aiosmtplib.SMTPException, OSError) as error:
            retryable = not isinstance(error, aiosmtplib.SMTPRecipientsRefused)
            result = AttemptResult(False, retryable, None, f"SMTP send failed: {type(error).__name__}: {error}",
                                   int((time.monotonic() - started) * 1000))
        now = self.clock()
        for delivery in deliveries:
            self._record_attempt(delivery, result, now)
        if result.succeeded:
            logger.info("mailed notifications recipient_id=%s items=%s", deliveries[0].recipient_id, len(items))


def _team_of(people: dict[str, DirectoryPerson], person_id: str) -> str | None:
    person = people.get(person_id)
    return None if person is None else person.team


def _by_org(rows: list[Row]) -> dict[str, list[Row]]:
    grouped: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        grouped[row.org_id].append(row)
    return grouped


def _digest_items(deliveries: list[Row], notifications: dict[str, Row]) -> list[DigestItem]:
    """Turn deliveries into mail lines, one per inbox group, so a burst reads "3 people followed ..."."""
    groups: dict[str, list[tuple[Row, Row]]] = defaultdict(list)
    for delivery in deliveries:
        row = notifications[delivery.notification_id]
        groups[getattr(row, "group_key", None) or row.notification_id].append((delivery, row))
    items = []
    for members in groups.values():
        rows = [row for _, row in members]
        newest = max(rows, key=lambda row: (row.occurred_at, row.notification_id))
        # Like the inbox: followers count once each, other groups count their notifications.
        count = len({row.actor_id for row in rows}) if newest.kind == GOAL_FOLLOWED else len(rows)
        items.append(DigestItem(
            delivery_ids=tuple(delivery.delivery_id for delivery, _ in members),
            message=notification_message(newest.kind, newest.goal_title, count),
            kind=newest.kind,
            occurred_at=newest.occurred_at,
        ))
    return items


def _message(row: Row) -> str:
    return notification_message(row.kind, row.goal_title)


def _notification_payload(row: Row) -> dict[str, Any]:
    payload = {
        "notification_id": row.notification_id,
        "sequence": row.sequence,
        "org_id": row.org_id,
        "recipient_id": row.recipient_id,
        "kind": row.kind,
        "goal_id": row.goal_id,
        "goal_title": row.goal_title,
        "actor_id": row.actor_id,
        "message": _message(row),
        "occurred_at": row.occurred_at.isoformat(),
    }
    community_id = getattr(row, "community_id", None)
    if community_id is not None:
        payload["community_id"] = community_id
    return payload

