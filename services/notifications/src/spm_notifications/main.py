"""Console entry points: ``spm-notifications-api``, ``spm-notifications-worker`` and ``spm-notifications-dispatcher``."""

from __future__ import annotations

import asyncio
import logging


from spm_events.processor import run_worker as run_worker_until_signalled
from spm_events.relay import RelayLockHeldError
from spm_events.serving import serve_until_signalled
from spm_events.settings import configure_logging
from spm_events.topics import ensure_topics

from spm_notifications.api import create_app
from spm_notifications.dispatcher_process import run_dispatcher_until_signalled
from spm_notifications.settings import NotificationsSettings
from spm_notifications.worker import create_worker_app

logger = logging.getLogger(__name__)


def run_api() -> None:
    """Serve the inbox API until SIGTERM or SIGINT, finish open requests, then exit with status 0."""
    settings = NotificationsSettings()
    configure_logging(settings.log_level)
    serve_until_signalled(create_app(settings), "notifications API", settings.http_host, settings.http_port)


def run_worker() -> None:
    """Run the inbox worker until SIGTERM or SIGINT, which faust's worker handles by stopping cleanly."""
    settings = NotificationsSettings()
    configure_logging(settings.log_level)
    asyncio.run(ensure_topics(settings.kafka_bootstrap))
    app = create_worker_app(settings)
    logger.info("starting notifications worker processor_id=%s", settings.processor_id)
    run_worker_until_signalled(app, settings.log_level)


def run_dispatcher() -> None:
    """Run the delivery dispatcher until SIGTERM or SIGINT, let deliveries in flight finish, then exit with status 0."""
    settings = NotificationsSettings()
    configure_logging(settings.log_level)
    try:
        asyncio.run(run_dispatcher_until_signalled(settings))
    except RelayLockHeldError as error:
        logger.error("dispatcher not started: %s. Stop the other dispatcher first", error)
        raise SystemExit(1) from None
