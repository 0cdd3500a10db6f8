"""The scoring query API: scores of people, teams and goals, scoring models and replays, within the caller's org."""

# No "from __future__ import annotations": FastAPI must resolve the local dependency in Annotated at runtime.
import logging

from fastapi import FastAPI
from sqlalchemy import select

from spm_events.auth import principal_dependency
from spm_events.http import BodyLimitMiddleware, add_common_error_handlers, add_storage_error_handler
from spm_scoring.api_context import ApiContext
from spm_scoring.model_routes import model_router
from spm_scoring.model_store import ModelStore
from spm_scoring.queries import ScoreQueries
from spm_scoring.replay_routes import replay_router
from spm_scoring.replays import ReplayStore
from spm_scoring.responses import ConsumerPositionResponse, PositionsResponse
from spm_scoring.score_routes import score_router
from spm_scoring.scoreboard import Scoreboard
from spm_scoring.settings import ScoringSettings
from spm_scoring.store import ScoringStore, open_store

logger = logging.getLogger(__name__)


def create_app(settings: ScoringSettings, store: ScoringStore | None = None) -> FastAPI:
    """Build the API; ``store`` defaults to the read model the settings name."""
    store = store or open_store(settings)
    context = ApiContext(
        settings=settings,
        store=store,
        queries=ScoreQueries(store.engine, store.tables),
        scoreboard=Scoreboard(store.engine, store.tables),
        models=ModelStore(store.engine, store.tables.v2),
        replays=ReplayStore(store.engine, store.tables.v2),
        current_principal=principal_dependency(settings.jwt_secret.get_secret_value()),
    )
    app = FastAPI(title="SPM scoring", version="0.2.0", description="Performance and collaboration scores with their explanations")
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes, max_depth=settings.max_json_depth)
    add_common_error_handlers(app)
    add_storage_error_handler(app, "scoring", settings.sqlite_data_dir)

    @app.get("/healthz")
    def read_health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/internal/positions", response_model=PositionsResponse)
    def read_positions() -> PositionsResponse:
        positions = store.read_model.positions
        with store.engine.connect() as connection:
            rows = connection.execute(
                select(positions.c.topic, positions.c.partition, positions.c.offset)
                .where(positions.c.consumer == store.read_model.consumer)
                .order_by(positions.c.topic, positions.c.partition)
            ).all()
        return PositionsResponse(
            consumer=store.read_model.consumer,
            positions=[ConsumerPositionResponse(topic=row.topic, partition=row.partition, offset=row.offset) for row in rows],
        )

    app.include_router(score_router(context))
    app.include_router(model_router(context))
    app.include_router(replay_router(context))
    return app
