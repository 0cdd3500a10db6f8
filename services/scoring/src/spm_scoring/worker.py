"""Composition root of the scoring processor: a faust app that feeds goal and social events to the projection."""

from __future__ import annotations

import faust

from spm_events.processor import attach_read_model, create_processor_app
from spm_events.registry import GOALS_TOPIC, SOCIAL_TOPIC
from spm_scoring.projection import ScoringProjection
from spm_scoring.settings import ScoringSettings
from spm_scoring.store import open_store

CONSUMED_TOPICS = (GOALS_TOPIC.name, SOCIAL_TOPIC.name)


def create_worker_app(settings: ScoringSettings) -> faust.App:
    store = open_store(settings)
    app = create_processor_app(settings.processor_id, settings)
    attach_read_model(app, store.read_model, CONSUMED_TOPICS, ScoringProjection(store.tables))
    return app
