"""Composition root of the goals worker: a faust app that learns collaborator tags from spm.social.v1."""

from __future__ import annotations

import faust

from spm_events.database import create_database_engine
from spm_events.processor import attach_read_model, create_processor_app
from spm_events.registry import SOCIAL_TOPIC
from spm_goals.collaborators import open_collaborators
from spm_goals.settings import READ_DATABASE_FILE, GoalsSettings

FAUST_DATA_DIR = "faust"


def create_collaborator_worker(settings: GoalsSettings) -> faust.App:
    """Create the faust app that keeps the goal_collaborators table of the goals read database."""
    app = create_processor_app(settings.processor_id, settings)
    # The worker has no faust tables; faust only creates empty directories here.
    app.conf.datadir = settings.data_dir.resolve() / FAUST_DATA_DIR
    engine = create_database_engine(settings.sqlalchemy_url(READ_DATABASE_FILE))
    collaborators, read_model = open_collaborators(engine, settings.processor_id)
    attach_read_model(app, read_model, (SOCIAL_TOPIC.name,), collaborators.apply)
    return app
