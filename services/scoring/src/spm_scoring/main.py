"""Console entry points: ``spm-scoring-api`` and ``spm-scoring-worker``."""

from __future__ import annotations

import asyncio
import logging

from aiokafka.errors import KafkaError

from spm_events.processor import run_worker as run_worker_until_signalled
from spm_events.serving import serve_until_signalled
from spm_events.settings import configure_logging
from spm_events.topics import ensure_topics
from spm_scoring.api import create_app
from spm_scoring.settings import ScoringSettings
from spm_scoring.worker import create_worker_app

logger = logging.getLogger(__name__)


def run_api() -> None:
    """Serve the query API until SIGTERM or SIGINT, then shut down gracefully and exit with status 0."""
    settings = ScoringSettings()
    configure_logging(settings.log_level)
    serve_until_signalled(create_app(settings), "scoring API", settings.http_host, settings.http_port)


def run_worker() -> None:
    """Run the faust worker that builds the read model; faust stops cleanly on SIGINT and SIGTERM."""
    settings = ScoringSettings()
    configure_logging(settings.log_level)
    try:
        asyncio.run(ensure_topics(settings.kafka_bootstrap))
    except KafkaError as error:
        # Another process may have created a topic at the same moment, so start anyway. An
        # unreachable broker makes the faust worker exit with the same error right after.
        logger.warning("failed to create topics on bootstrap=%s: %r", settings.kafka_bootstrap, error)
    app = create_worker_app(settings)
    logger.info("starting scoring worker processor_id=%s", settings.processor_id)
    run_worker_until_signalled(app, settings.log_level)
