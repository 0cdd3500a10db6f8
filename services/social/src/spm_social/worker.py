"""Composition root of the feed worker: a faust app that applies goal and social events to the read model."""

from __future__ import annotations

import faust

from spm_events.database import create_database_engine
from spm_events.processor import attach_read_model, create_processor_app
from spm_events.registry import GOALS_TOPIC, SOCIAL_TOPIC
from spm_social.projection import FeedProjection
from spm_social.readmodel import FEED_CONSUMER, open_read_model
from spm_social.settings import READ_MODEL_FILE, SocialSettings

FAUST_DATA_DIR = "faust"


def create_feed_worker(settings: SocialSettings) -> faust.App:
    """Create the faust app that builds the feed read model from spm.goals.v1 and spm.social.v1."""
    app = create_processor_app(settings.processor_id, settings)
    # faust stores its state under "<app id>-data" in the working directory unless datadir is set.
    # The worker has no faust tables, so only empty directories are created there.
    app.conf.datadir = settings.data_dir.resolve() / FAUST_DATA_DIR
    read_model = open_read_model(create_database_engine(settings.sqlalchemy_url(READ_MODEL_FILE)), FEED_CONSUMER)
    projection = FeedProjection(read_model.tables)
    attach_read_model(app, read_model.positioned, (GOALS_TOPIC.name, SOCIAL_TOPIC.name), projection)
    return app
