"""The context the API's routers share (stores, token dependency) and their common HTTP errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from fastapi import HTTPException, status
from fastapi.exceptions import RequestValidationError

from spm_events.auth import Principal
from spm_events.http import UNAUTHORIZED, error_responses
from spm_scoring.model_store import ModelStore, ScoringModelRef, UnknownModelError
from spm_scoring.queries import ScoreQueries
from spm_scoring.replays import ReplayStore
from spm_scoring.scoreboard import Scoreboard
from spm_scoring.settings import ScoringSettings
from spm_scoring.store import ScoringStore


# Error responses of the routes, for the OpenAPI document; every error body but a 422 is {"detail": str}.
READ_RESPONSES = error_responses({401: UNAUTHORIZED})
ADMIN_ONLY = "Only an admin of the organisation may do this"
UNKNOWN_MODEL = "The model named in the request is not a model of the token's organisation"


@dataclass(frozen=True)
class ApiContext:
    settings: ScoringSettings
    store: ScoringStore
    queries: ScoreQueries
    scoreboard: Scoreboard
    models: ModelStore
    replays: ReplayStore
    current_principal: Callable[..., Any]


def invalid_query(field: str, message: str, value: object) -> RequestValidationError:
    """Build a 422 shaped like FastAPI's own, naming the query parameter."""
    return RequestValidationError([{"loc": ("query", field), "msg": message, "type": "value_error", "input": value}])


def not_found(detail: str) -> HTTPException:
    return HTTPException(status_code=status.HTTP_404_NOT_FOUND, detail=detail)


def require_admin(principal: Principal, action: str) -> None:
    if not principal.is_admin:
        raise HTTPException(
            status_code=status.HTTP_403_FORBIDDEN,
            detail=f"only an organisation admin may {action}; ask an admin of your organisation",
        )


MODEL_QUERY_FIELD = "query parameter model"
MODEL_BODY_FIELD = "body field model_id"


def resolve_model(context: ApiContext, org_id: str, model_id: str | None, field: str = MODEL_QUERY_FIELD) -> ScoringModelRef:
    """Return the org's model ``model_id`` names; a model of another org is not found, with a 404 naming ``field``."""
    try:
        return context.models.resolve(org_id, model_id)
    except UnknownModelError as error:
        raise not_found(f"{field}: {error}") from None
