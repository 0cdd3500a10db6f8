"""The dispatcher as a process: settings, the single-instance lock, and signal handling."""

from __future__ import annotations

import asyncio
import logging
import signal

from spm_events.database import create_database_engine
from spm_events.relay import single_active_relay

from spm_notifications.delivery.email import PeopleDirectoryClient
from spm_notifications.delivery.webhooks import TargetPolicy, parse_networks
from spm_notifications.dispatcher import Dispatcher, DispatcherConfig
from spm_notifications.settings import READ_MODEL_FILE, NotificationsSettings
from spm_notifications.tables import open_read_model

logger = logging.getLogger(__name__)

LOCK_NAME = "spm-notifications-dispatcher"


def dispatcher_config(settings: NotificationsSettings) -> DispatcherConfig:
    return DispatcherConfig(
        batch_size=settings.dispatcher_batch_size,
        poll_interval_seconds=settings.dispatcher_poll_interval_seconds,
        max_attempts=settings.delivery_max_attempts,
        backoff_base_seconds=settings.delivery_backoff_base_seconds,
        backoff_max_seconds=settings.delivery_backoff_max_seconds,
        webhook_timeout_seconds=settings.webhook_timeout_seconds,
        webhook_concurrency=settings.webhook_concurrency,
        target_policy=TargetPolicy(parse_networks(settings.webhook_allowed_networks)),
        digest_local_hour=settings.digest_local_hour,
        smtp_host=settings.smtp_host,
        smtp_port=settings.smtp_port,
        smtp_from=settings.smtp_from,
        smtp_timeout_seconds=settings.smtp_timeout_seconds,
    )


async def run_dispatcher_until_signalled(settings: NotificationsSettings) -> None:
    """Run one dispatcher per database until SIGTERM or SIGINT."""
    # httpx logs every request at INFO; the dispatcher logs each failed attempt itself.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    engine = create_database_engine(settings.sqlalchemy_url(READ_MODEL_FILE))
    _, tables = open_read_model(engine, settings.processor_id)
    directory = None
    if settings.social_api_url:
        directory = PeopleDirectoryClient(
            settings.social_api_url, settings.jwt_secret.get_secret_value(), settings.smtp_timeout_seconds
        )
    elif settings.smtp_host is not None:
        logger.warning("SPM_SOCIAL_API_URL is not set, so e-mail deliveries cannot be sent")
    if settings.smtp_host is None:
        logger.info("SPM_SMTP_HOST is not set, so the e-mail channel is off")
    dispatcher = Dispatcher(engine, tables, dispatcher_config(settings), directory)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signal_number, stop.set)
    # The same lock the relays use: a PostgreSQL advisory lock, or a file lock under SPM_DATA_DIR.
    with single_active_relay(engine, LOCK_NAME, settings.data_dir):
        await dispatcher.run(stop)
    engine.dispose()
