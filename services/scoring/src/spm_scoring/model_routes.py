"""Scoring model revisions: list them, store a new one, choose the one the organisation uses."""

# No "from __future__ import annotations": FastAPI must resolve the local dependency in Annotated at runtime.
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, status
from pydantic import BaseModel, ConfigDict, Field

from spm_events.auth import Principal
from spm_events.http import error_responses
from spm_scoring.api_context import (
    ADMIN_ONLY,
    MODEL_BODY_FIELD,
    READ_RESPONSES,
    UNKNOWN_MODEL,
    ApiContext,
    require_admin,
    resolve_model,
)
from spm_scoring.model import ScoringModelV2
from spm_scoring.model_store import ScoringModelRef


class ScoringModelResponse(BaseModel):
    model_id: str
    formula: str = Field(description="v1 or v2")
    definition: ScoringModelV2 | None = Field(description="The settings of a v2 model; null for v1, whose formula is fixed")
    created_at: datetime | None = Field(description="null for the built-in models")
    created_by: str | None

    @classmethod
    def from_ref(cls, model: ScoringModelRef) -> "ScoringModelResponse":
        return cls(
            model_id=model.model_id,
            formula=model.formula,
            definition=model.definition,
            created_at=model.created_at,
            created_by=model.created_by,
        )


class ScoringModelsResponse(BaseModel):
    active_model_id: str
    models: list[ScoringModelResponse]


class ActivateModelRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_id: str = Field(min_length=1, max_length=40)


def model_router(context: ApiContext) -> APIRouter:
    router = APIRouter(prefix="/scoring/models", responses=READ_RESPONSES)
    current_principal = context.current_principal

    @router.get("", response_model=ScoringModelsResponse)
    def list_models(principal: Annotated[Principal, Depends(current_principal)]) -> ScoringModelsResponse:
        org_id = principal.org_id
        return ScoringModelsResponse(
            active_model_id=context.models.active_model_id(org_id),
            models=[ScoringModelResponse.from_ref(model) for model in context.models.list_models(org_id)],
        )

    @router.post(
        "", response_model=ScoringModelResponse, status_code=status.HTTP_201_CREATED, responses=error_responses({403: ADMIN_ONLY})
    )
    def create_model(
        definition: ScoringModelV2, principal: Annotated[Principal, Depends(current_principal)]
    ) -> ScoringModelResponse:
        require_admin(principal, "store a scoring model")
        stored = context.models.create(principal.org_id, definition, principal.person_id)
        return ScoringModelResponse.from_ref(stored)

    @router.put("/active", response_model=ScoringModelsResponse, responses=error_responses({403: ADMIN_ONLY, 404: UNKNOWN_MODEL}))
    def activate_model(
        request: ActivateModelRequest, principal: Annotated[Principal, Depends(current_principal)]
    ) -> ScoringModelsResponse:
        require_admin(principal, "choose the active scoring model")
        resolve_model(context, principal.org_id, request.model_id, MODEL_BODY_FIELD)
        context.models.activate(principal.org_id, request.model_id, principal.person_id)
        return list_models(principal)

    return router
