"""Composition root of the worker: a faust app that feeds goal and social events into the inbox."""

from __future__ import annotations

import faust

from spm_events.database import create_database_engine
from spm_events.processor import attach_read_model, create_processor_app
from spm_events.registry import GOALS_TOPIC, SOCIAL_TOPIC

from spm_notifications.projection import InboxProjection
from spm_notifications.settings import READ_MODEL_FILE, NotificationsSettings
from spm_notifications.tables import open_read_model

CONSUMED_TOPICS = (GOALS_TOPIC.name, SOCIAL_TOPIC.name)


def create_worker_app(settings: NotificationsSettings) -> faust.App:
    """Create the faust app whose single agent applies both topics to the inbox read model."""
    engine = create_database_engine(settings.sqlalchemy_url(READ_MODEL_FILE))
    read_model, tables = open_read_model(engine, settings.processor_id)
    app = create_processor_app(settings.processor_id, settings)
    # faust otherwise keeps its state directory in the working directory, and creates only its last part.
    datadir = settings.data_dir.resolve() / "faust" / settings.processor_id
    datadir.mkdir(parents=True, exist_ok=True)
    app.conf.datadir = datadir
    attach_read_model(app, read_model, CONSUMED_TOPICS, InboxProjection(tables))
    return app
