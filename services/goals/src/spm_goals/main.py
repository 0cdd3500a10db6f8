"""Entry points of the goals service: ``spm-goals-api``, ``spm-goals-relay`` and ``spm-goals-worker``."""

from __future__ import annotations

import asyncio
import logging
import signal


from spm_events.processor import run_worker as run_worker_until_signalled
from spm_events.serving import serve_until_signalled
from spm_events.settings import configure_logging
from spm_events.topics import ensure_topics
from spm_goals.api import create_app
from spm_goals.relay import run_goals_relay
from spm_goals.settings import GoalsSettings
from spm_goals.worker import create_collaborator_worker

logger = logging.getLogger(__name__)


def run_api() -> None:
    """Serve the HTTP API until SIGTERM or SIGINT, then shut down gracefully and exit with status 0."""
    settings = GoalsSettings()
    configure_logging(settings.log_level)
    serve_until_signalled(create_app(settings), "goals API", settings.http_host, settings.http_port)


def run_relay() -> None:
    """Publish goals events to Kafka until SIGTERM or SIGINT."""
    settings = GoalsSettings()
    configure_logging(settings.log_level)
    asyncio.run(_relay_until_signalled(settings))


async def _relay_until_signalled(settings: GoalsSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signal_number, stop.set)
    logger.info("goals relay starting, bootstrap=%s", settings.kafka_bootstrap)
    await run_goals_relay(settings, stop)


def run_worker() -> None:
    """Keep the collaborator read model up to date; faust's worker stops cleanly on SIGTERM or SIGINT."""
    settings = GoalsSettings()
    configure_logging(settings.log_level)
    # faust runs on the thread's current event loop, and asyncio.run() would leave none behind.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(ensure_topics(settings.kafka_bootstrap))
    run_worker_until_signalled(create_collaborator_worker(settings), settings.log_level)
