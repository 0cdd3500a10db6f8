"""Error responses of the goals API: domain and application errors mapped to HTTP status codes."""

import logging
import math
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from spm_goals.access import PermissionDeniedError
from spm_goals.application import (
    IdempotencyKeyReusedError,
    ObjectiveConflictError,
    ObjectiveNotFoundError,
    StaleVersionError,
)
from spm_goals.objective import KeyResultNotFoundError, ObjectiveError, ObjectiveStateError
from spm_goals.writes import etag_for

logger = logging.getLogger(__name__)


def add_error_handlers(app: FastAPI) -> None:
    """Map domain and application errors to 403, 404, 409, 412 and 422 responses."""

    @app.exception_handler(ObjectiveNotFoundError)
    @app.exception_handler(KeyResultNotFoundError)
    async def not_found_response(request: Request, error: LookupError) -> JSONResponse:
        logger.info("rejected %s %s with 404: %s", request.method, request.url.path, error)
        return JSONResponse(
            status_code=status.HTTP_404_NOT_FOUND,
            content={"detail": f"{error}. List this organisation's goals with GET /goals"},
        )

    @app.exception_handler(PermissionDeniedError)
    async def forbidden_response(request: Request, error: PermissionDeniedError) -> JSONResponse:
        logger.info("rejected %s %s with 403", request.method, request.url.path)
        return JSONResponse(status_code=status.HTTP_403_FORBIDDEN, content={"detail": str(error)})

    @app.exception_handler(ObjectiveConflictError)
    async def conflict_response(request: Request, error: ObjectiveConflictError) -> JSONResponse:
        logger.warning("rejected %s %s with 409: %s", request.method, request.url.path, error)
        return JSONResponse(status_code=status.HTTP_409_CONFLICT, content={"detail": str(error)})

    @app.exception_handler(ObjectiveStateError)
    async def state_conflict_response(request: Request, error: ObjectiveStateError) -> JSONResponse:
        logger.info("rejected %s %s with 409: goal_id=%s status=%s", request.method, request.url.path, error.goal_id, error.status)
        return JSONResponse(status_code=status.HTTP_409_CONFLICT, content={"detail": str(error), "status": error.status})

    @app.exception_handler(StaleVersionError)
    async def precondition_failed_response(request: Request, error: StaleVersionError) -> JSONResponse:
        logger.info("rejected %s %s with 412: %s", request.method, request.url.path, error)
        return JSONResponse(
            status_code=status.HTTP_412_PRECONDITION_FAILED,
            content={"detail": str(error)},
            headers={"ETag": etag_for(error.current_version)},
        )

    @app.exception_handler(IdempotencyKeyReusedError)
    async def key_reused_response(request: Request, error: IdempotencyKeyReusedError) -> JSONResponse:
        logger.info("rejected %s %s with 422: Idempotency-Key reused with another body", request.method, request.url.path)
        detail = [{"type": "value_error", "loc": ["header", "Idempotency-Key"], "msg": str(error)}]
        return JSONResponse(status_code=status.HTTP_422_UNPROCESSABLE_CONTENT, content={"detail": detail})

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
