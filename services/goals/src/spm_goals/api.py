"""The goals HTTP API: routes parse the request, call the application, and map its errors to HTTP."""

import logging
import math
import uuid
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Annotated, Any, AsyncIterator

from fastapi import Depends, FastAPI, HTTPException, Request, Response, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from spm_events.auth import Principal, principal_dependency
from spm_events.database import create_database_engine
from spm_events.http import BodyLimitMiddleware
from spm_events.relay import RelayPositions
from spm_goals.api_models import AddKeyResultBody, CreateGoalBody, RecordCheckInBody
from spm_goals.application import (
    GoalsApplication,
    NewKeyResult,
    NewObjective,
    ObjectiveConflictError,
    ObjectiveNotFoundError,
)
from spm_goals.objective import KeyResultNotFoundError, ObjectiveError
from spm_goals.relay import RELAY_NAME
from spm_goals.settings import EVENT_STORE_FILE, READ_DATABASE_FILE, GoalsSettings
from spm_goals.views import check_in_view, goal_view, key_result_view


logger = logging.getLogger(__name__)

MAX_ID_LENGTH = 100


def create_app(settings: GoalsSettings) -> FastAPI:
    """Build the API with its event store, read database and relay position table from ``settings``."""
    engine = create_database_engine(settings.sqlalchemy_url(READ_DATABASE_FILE))
    goals = GoalsApplication(env=settings.event_store_env(EVENT_STORE_FILE), index_engine=engine)
    relay_positions = RelayPositions(engine)
    current_principal = principal_dependency(settings.jwt_secret.get_secret_value())

    def bounded_principal(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        # Published envelopes allow at most 100 characters per org and actor id, so events of a
        # longer id could never be published.
        if len(principal.org_id) > MAX_ID_LENGTH or len(principal.person_id) > MAX_ID_LENGTH:
            raise HTTPException(
                status_code=status.HTTP_401_UNAUTHORIZED,
                detail=f"bearer token's 'org' or 'sub' claim is longer than {MAX_ID_LENGTH} characters",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return principal

    PrincipalDependency = Annotated[Principal, Depends(bounded_principal)]

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        goals.close()
        engine.dispose()

    app = FastAPI(title="SPM goals", version="1", lifespan=lifespan)
    app.state.goals = goals
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes, max_depth=settings.max_json_depth)
    add_error_handlers(app)

    @app.get("/healthz")
    def read_health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/internal/relay")
    def read_relay_status() -> dict[str, Any]:
        return {
            "relay": RELAY_NAME,
            "published_position": relay_positions.read(RELAY_NAME),
            "max_notification_id": goals.max_notification_id(),
        }

    @app.post("/goals", status_code=status.HTTP_201_CREATED)
    def create_goal(body: CreateGoalBody, principal: PrincipalDependency, response: Response) -> dict[str, Any]:
        new = NewObjective(
            title=body.title,
            team=body.team,
            period=body.period.to_period(),
            owner_id=body.owner_id or principal.person_id,
            parent_goal_id=body.parent_goal_id,
            contributing_teams=tuple(body.contributing_teams),
            external_ref=body.external_ref,
            occurred_at=body.occurred_at or datetime.now(timezone.utc),
        )
        objective, created = goals.create_objective(principal.org_id, principal.person_id, new)
        if not created:
            response.status_code = status.HTTP_200_OK
        return goal_view(objective)

    @app.post("/goals/{goal_id}/key-results", status_code=status.HTTP_201_CREATED)
    def add_key_result(
        goal_id: uuid.UUID, body: AddKeyResultBody, principal: PrincipalDependency, response: Response
    ) -> dict[str, Any]:
        new = NewKeyResult(
            title=body.title,
            metric=body.metric,
            start_value=body.start_value,
            target_value=body.target_value,
            external_ref=body.external_ref,
            occurred_at=body.occurred_at or datetime.now(timezone.utc),
        )
        objective, key_result, created = goals.add_key_result(principal.org_id, goal_id, principal.person_id, new)
        if not created:
            response.status_code = status.HTTP_200_OK
        return key_result_view(objective, key_result)

    @app.post("/goals/{goal_id}/key-results/{key_result_id}/check-ins", status_code=status.HTTP_201_CREATED)
    def record_check_in(
        goal_id: uuid.UUID, key_result_id: uuid.UUID, body: RecordCheckInBody, principal: PrincipalDependency
    ) -> dict[str, Any]:
        objective, key_result, check_in = goals.record_check_in(
            principal.org_id,
            goal_id,
            key_result_id,
            principal.person_id,
            value=body.value,
            comment=body.comment,
            occurred_at=body.occurred_at or datetime.now(timezone.utc),
        )
        return check_in_view(objective, key_result, check_in)

    @app.get("/goals")
    def list_goals(principal: PrincipalDependency) -> list[dict[str, Any]]:
        return [goal_view(objective) for objective in goals.list_objectives(principal.org_id)]

    @app.get("/goals/{goal_id}")
    def read_goal(goal_id: uuid.UUID, principal: PrincipalDependency) -> dict[str, Any]:
        return goal_view(goals.get_objective(principal.org_id, goal_id))

    return app


def add_error_handlers(app: FastAPI) -> None:
    """Map domain and application errors to 404, 409 and 422 responses."""

    @app.exception_handler(ObjectiveNotFoundError)
    @app.exception_handler(KeyResultNotFoundError)
    async def not_found_response(request: Request, error: LookupError) -> JSONResponse:
        logger.info("rejected %s %s with 404: %s", request.method, request.url.path, error)
        return JSONResponse(
            status_code=status.HTTP_404_NOT_FOUND,
            content={"detail": f"{error}. List this organisation's goals with GET /goals"},
        )

    @app.exception_handler(ObjectiveConflictError)
    async def conflict_response(request: Request, error: ObjectiveConflictError) -> JSONResponse:
        logger.warning("rejected %s %s with 409: %s", request.method, request.url.path, error)
        return JSONResponse(status_code=status.HTTP_409_CONFLICT, content={"detail": str(error)})

    @app.exception_handler(ObjectiveError)
    async def rule_violation_response(request: Request, error: ObjectiveError) -> JSONResponse:
        logger.info("rejected %s %s with 422: field=%s", request.method, request.url.path, error.field_name)
        detail = [{"type": "value_error", "loc": ["body", error.field_name], "msg": str(error)}]
        return JSONResponse(status_code=status.HTTP_422_UNPROCESSABLE_CONTENT, content={"detail": detail})

    @app.exception_handler(RequestValidationError)
    async def validation_error_response(_: Request, error: RequestValidationError) -> JSONResponse:
        # FastAPI's own handler echoes each invalid input, and a NaN or Infinity input cannot be
        # written as JSON, so it would turn a 422 into a 500.
        detail = [_without_non_finite_numbers(jsonable_encoder(item)) for item in error.errors()]
        return JSONResponse(status_code=status.HTTP_422_UNPROCESSABLE_CONTENT, content={"detail": detail})


def _without_non_finite_numbers(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, dict):
        return {key: _without_non_finite_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_non_finite_numbers(item) for item in value]
    return value
