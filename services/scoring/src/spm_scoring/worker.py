"""Composition root of the scoring processor: a faust app that feeds goal and social events to the
projection and publishes score changes on spm.scores.v1."""

from __future__ import annotations

import logging

import faust
from aiokafka.errors import KafkaError
from sqlalchemy.exc import DBAPIError

from spm_events.processor import attach_read_model, create_processor_app
from spm_events.registry import GOALS_TOPIC, SOCIAL_TOPIC
from spm_events.relay import IdempotentProducer, create_idempotent_producer
from spm_scoring.model_store import ModelStore
from spm_scoring.projection import ScoringProjection
from spm_scoring.publisher import ScorePublisher
from spm_scoring.scoreboard import Scoreboard
from spm_scoring.settings import ScoringSettings
from spm_scoring.store import open_store

logger = logging.getLogger(__name__)

CONSUMED_TOPICS = (GOALS_TOPIC.name, SOCIAL_TOPIC.name)


def create_worker_app(settings: ScoringSettings) -> faust.App:
    store = open_store(settings)
    app = create_processor_app(settings.processor_id, settings)
    attach_read_model(app, store.read_model, CONSUMED_TOPICS, ScoringProjection(store.tables))
    if settings.publish_scores:
        publisher = ScorePublisher(
            store.engine, store.tables, Scoreboard(store.engine, store.tables), ModelStore(store.engine, store.tables.v2)
        )
        attach_score_publisher(app, publisher, settings)
    return app


def attach_score_publisher(app: faust.App, publisher: ScorePublisher, settings: ScoringSettings) -> None:
    """Run the publisher on a faust timer, with one idempotent producer for the worker's lifetime."""
    producers: list[IdempotentProducer] = []
    shutting_down: list[bool] = []

    @app.timer(interval=settings.score_publish_interval_seconds, name="publish-score-changes")
    async def publish_score_changes() -> None:
        if shutting_down:
            return
        if not producers:
            producer = create_idempotent_producer(settings.kafka_bootstrap)
            try:
                await producer.start()
            except KafkaError as error:
                logger.warning("failed to start the score producer, retrying on the next tick: %r", error)
                await producer.stop()
                return
            producers.append(producer)
        try:
            await publisher.publish_once(producers[0])
        except KafkaError as error:
            # Nothing was recorded, so the same changes, with the same event ids, go out on a later tick.
            logger.warning("failed to publish score changes, retrying on the next tick: %r", error)
            # On shutdown the producer may already be gone: stop_score_producer took it.
            if producers:
                await producers.pop().stop()
        except DBAPIError as error:
            logger.warning("database error while publishing score changes, retrying on the next tick: %s", error)

    @app.on_before_shutdown.connect
    async def stop_score_producer(sender: faust.App, **_: object) -> None:
        shutting_down.append(True)
        while producers:
            await producers.pop().stop()
