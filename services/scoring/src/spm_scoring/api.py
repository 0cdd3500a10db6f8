"""The scoring query API: scores per person and the collaboration ranking, within the caller's org."""

# No "from __future__ import annotations": FastAPI must resolve the local dependency in Annotated at runtime.
import logging
from datetime import datetime
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Path, Query, status
from pydantic import AwareDatetime
from sqlalchemy import select

from spm_events.auth import Principal, principal_dependency
from spm_events.http import BodyLimitMiddleware, add_common_error_handlers
from spm_scoring.activities import as_utc
from spm_scoring.formula import WINDOW
from spm_scoring.queries import ScoreQueries
from spm_scoring.responses import (
    ConsumerPositionResponse,
    PersonScoresResponse,
    PositionsResponse,
    RankedPersonResponse,
    ScoreResponse,
    TopCollaboratorsResponse,
)
from spm_scoring.settings import ScoringSettings
from spm_scoring.store import ScoringStore, open_store

logger = logging.getLogger(__name__)

AsOfQuery = Annotated[
    AwareDatetime | None,
    Query(description="End of the 28-day window, an ISO 8601 datetime with a time zone; default: the org's latest event time"),
]


def create_app(settings: ScoringSettings, store: ScoringStore | None = None) -> FastAPI:
    """Build the API; ``store`` defaults to the read model the settings name."""
    store = store or open_store(settings)
    queries = ScoreQueries(store.engine, store.tables)
    current_principal = principal_dependency(settings.jwt_secret.get_secret_value())
    app = FastAPI(title="SPM scoring", version="0.1.0", description="Performance and collaboration scores with their explanations")
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes, max_depth=settings.max_json_depth)
    add_common_error_handlers(app)

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

    @app.get("/people/{person_id}/scores", response_model=PersonScoresResponse)
    def read_person_scores(
        person_id: Annotated[str, Path(min_length=1, max_length=100)],
        principal: Annotated[Principal, Depends(current_principal)],
        as_of: AsOfQuery = None,
    ) -> PersonScoresResponse:
        org_id = principal.org_id
        latest = queries.latest_event_time(org_id)
        if latest is None or not queries.is_known_person(org_id, person_id):
            raise HTTPException(
                status_code=status.HTTP_404_NOT_FOUND,
                detail=f"person {person_id!r} has no goals or goal activity in your organisation; check the person id",
            )
        scores = queries.person_scores(org_id, person_id, as_of or latest)
        logger.debug("scored person_id=%s org_id=%s as_of=%s", person_id, org_id, scores.as_of.isoformat())
        return PersonScoresResponse(
            person_id=person_id,
            org_id=org_id,
            as_of=scores.as_of,
            window_days=WINDOW.days,
            performance=ScoreResponse.from_score(scores.performance),
            collaboration=ScoreResponse.from_score(scores.collaboration),
        )

    @app.get("/scores/collaboration/top", response_model=TopCollaboratorsResponse)
    def read_top_collaborators(
        principal: Annotated[Principal, Depends(current_principal)],
        limit: Annotated[int, Query(ge=1, le=100, description="Number of people to return")] = 5,
        as_of: AsOfQuery = None,
    ) -> TopCollaboratorsResponse:
        window_end: datetime | None = as_of or queries.latest_event_time(principal.org_id)
        if window_end is None:
            return TopCollaboratorsResponse(as_of=None, people=[])
        window_end = as_utc(window_end)
        ranked = queries.top_collaborators(principal.org_id, window_end, limit)
        people = [
            RankedPersonResponse(
                person_id=entry.person_id,
                score=entry.collaboration.score or 0.0,
                components=ScoreResponse.from_score(entry.collaboration).components,
            )
            for entry in ranked
        ]
        return TopCollaboratorsResponse(as_of=window_end, people=people)

    return app
