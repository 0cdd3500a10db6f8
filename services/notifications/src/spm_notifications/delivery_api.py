"""Mounts the delivery routes (preferences, webhooks, live stream) on the notifications API."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable

from fastapi import FastAPI
from sqlalchemy import Engine

from spm_events.auth import Principal

from spm_notifications.delivery.webhooks import TargetPolicy, parse_networks
from spm_notifications.preferences_api import preference_routes
from spm_notifications.settings import NotificationsSettings
from spm_notifications.stream_api import stream_routes
from spm_notifications.tables import InboxTables
from spm_notifications.webhooks_api import webhook_routes


def add_delivery_routes(
    app: FastAPI,
    settings: NotificationsSettings,
    engine: Engine,
    tables: InboxTables,
    current_principal: Callable[..., Principal],
) -> None:
    def clock() -> datetime:
        return datetime.now(timezone.utc)

    policy = TargetPolicy(parse_networks(settings.webhook_allowed_networks))
    app.include_router(preference_routes(engine, tables, current_principal, clock))
    app.include_router(webhook_routes(engine, tables, current_principal, policy, clock))
    app.include_router(
        stream_routes(engine, tables, current_principal, settings.stream_poll_interval_seconds, settings.stream_ping_seconds)
    )
