"""Console entry points: the API server, the relay and the feed worker, each its own process."""

from __future__ import annotations

import asyncio
import logging
import signal


from spm_events.database import create_database_engine
from spm_events.relay import Relay, RelayPositions, create_idempotent_producer, single_active_relay
from spm_events.processor import run_worker as run_worker_until_signalled
from spm_events.serving import serve_until_signalled
from spm_events.settings import configure_logging
from spm_events.topics import ensure_topics
from spm_social.api import create_app
from spm_social.application import SocialApplication
from spm_social.readmodel import open_read_model
from spm_social.relay import RELAY_NAME, notification_reader
from spm_social.settings import EVENT_STORE_FILE, READ_MODEL_FILE, SocialSettings
from spm_social.views import SocialViews
from spm_social.worker import create_feed_worker

logger = logging.getLogger(__name__)


def run_api() -> None:
    """Serve the HTTP API until SIGTERM or SIGINT, then shut down gracefully and exit with status 0."""
    settings = SocialSettings()
    configure_logging(settings.log_level)
    serve_until_signalled(create_app(settings), "social API", settings.http_host, settings.http_port)


def run_relay() -> None:
    """Publish the event store's notifications to Kafka until SIGTERM or SIGINT."""
    settings = SocialSettings()
    configure_logging(settings.log_level)
    asyncio.run(_relay_until_stopped(settings))


async def _relay_until_stopped(settings: SocialSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signal_number, stop.set)

    await ensure_topics(settings.kafka_bootstrap)
    read_engine = create_database_engine(settings.sqlalchemy_url(READ_MODEL_FILE))
    social = SocialApplication(
        goal_audiences=SocialViews(open_read_model(read_engine)), env=settings.event_store_env(EVENT_STORE_FILE)
    )
    positions = RelayPositions(read_engine)
    producer = create_idempotent_producer(settings.kafka_bootstrap)
    with single_active_relay(read_engine, RELAY_NAME, settings.data_dir) as lease:
        await producer.start()
        try:
            await Relay(RELAY_NAME, notification_reader(social), positions, producer, lease=lease).run(stop)
        finally:
            await producer.stop()
            social.close()
            read_engine.dispose()
    logger.info("relay=%s stopped", RELAY_NAME)


def run_worker() -> None:
    """Run the feed worker; faust's worker stops cleanly on SIGTERM or SIGINT."""
    settings = SocialSettings()
    configure_logging(settings.log_level)
    # faust runs on the thread's current event loop, and asyncio.run() would leave none behind.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(ensure_topics(settings.kafka_bootstrap))
    app = create_feed_worker(settings)
    run_worker_until_signalled(app, settings.log_level)
