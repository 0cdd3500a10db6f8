"""Replays of a scoring model over history, for organisation admins."""

# No "from __future__ import annotations": FastAPI must resolve the local dependency in Annotated at runtime.
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, status
from fastapi.exceptions import RequestValidationError
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from spm_events.auth import Principal
from spm_events.http import error_responses
from spm_scoring.api_context import (
    ADMIN_ONLY,
    MODEL_BODY_FIELD,
    READ_RESPONSES,
    UNKNOWN_MODEL,
    ApiContext,
    not_found,
    require_admin,
    resolve_model,
)
from spm_scoring.explanations import goal_filter_for
from spm_scoring.replays import ReplayNotSupportedError, ReplayRecord
from spm_scoring.responses import ScoreResponse
from spm_scoring.windows import InvalidWindowError


class ReplayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_id: str = Field(min_length=1, max_length=40, examples=["v2.1"])
    window: str | None = Field(
        default=None, min_length=2, max_length=120, description="'<days>d' or 'period:<name>'; default: the model's default window",
        examples=["period:FY21-Q1"],
    )
    as_of: AwareDatetime | None = Field(
        default=None, description="End of the window in event time; default: the org's latest event time, cut to the period's end"
    )
    start: AwareDatetime | None = Field(
        default=None,
        description="Start of a custom window in event time, included; the window then runs to as_of. Leave out window with it.",
    )


class ReplayResponse(BaseModel):
    replay_id: str
    org_id: str
    model_id: str
    window: str
    as_of: datetime
    org_revision: int = Field(description="Number of events the organisation's facts held when the replay ran")
    requested_by: str
    created_at: datetime

    @classmethod
    def from_record(cls, record: ReplayRecord) -> "ReplayResponse":
        return cls(**record.__dict__)


class ReplaySubjectResponse(BaseModel):
    subject_kind: str = Field(description="person, team or goal")
    subject_id: str
    team: str | None
    member_count: int | None
    performance: ScoreResponse
    collaboration: ScoreResponse


class ReplayResultsResponse(ReplayResponse):
    subjects: list[ReplaySubjectResponse]


class ReplayListResponse(BaseModel):
    replays: list[ReplayResponse]


def replay_router(context: ApiContext) -> APIRouter:
    # Every replay route is for admins only.
    router = APIRouter(prefix="/scoring/replays", responses={**READ_RESPONSES, **error_responses({403: ADMIN_ONLY})})
    current_principal = context.current_principal

    @router.post("", response_model=ReplayResponse, status_code=status.HTTP_201_CREATED, responses=error_responses({404: UNKNOWN_MODEL}))
    def run_replay(request: ReplayRequest, principal: Annotated[Principal, Depends(current_principal)]) -> ReplayResponse:
        require_admin(principal, "replay a scoring model")
        resolve_model(context, principal.org_id, request.model_id, MODEL_BODY_FIELD)
        try:
            record = context.replays.run(
                context.scoreboard, context.models, principal.org_id, request.model_id, request.window,
                request.as_of, principal.person_id, request.start,
            )
        except (InvalidWindowError, ReplayNotSupportedError) as error:
            field = "model_id" if isinstance(error, ReplayNotSupportedError) else error.field
            raise RequestValidationError(
                [{"loc": ("body", field), "msg": str(error), "type": "value_error", "input": getattr(request, field)}]
            ) from None
        return ReplayResponse.from_record(record)

    @router.get("", response_model=ReplayListResponse)
    def list_replays(principal: Annotated[Principal, Depends(current_principal)]) -> ReplayListResponse:
        require_admin(principal, "read replays")
        return ReplayListResponse(replays=[ReplayResponse.from_record(record) for record in context.replays.list_replays(principal.org_id)])

    @router.get(
        "/{replay_id}",
        response_model=ReplayResultsResponse,
        responses=error_responses({404: "No replay with this id in the token's organisation"}),
    )
    def read_replay(
        replay_id: Annotated[str, Path(min_length=1, max_length=64)],
        principal: Annotated[Principal, Depends(current_principal)],
    ) -> ReplayResultsResponse:
        require_admin(principal, "read replays")
        record = context.replays.find(principal.org_id, replay_id)
        if record is None:
            raise not_found(f"replay {replay_id!r} not found in your organisation; GET /scoring/replays lists them")
        can_see = goal_filter_for(context.scoreboard.snapshot(principal.org_id).history, principal)
        subjects = []
        for result in context.replays.results(replay_id):
            scores = {}
            for kind in ("performance", "collaboration"):
                score = ScoreResponse.model_validate(result.body[kind])
                for component in score.components:
                    component.events = [event for event in component.events if can_see(event.goal_id)]
                scores[kind] = score
            subjects.append(
                ReplaySubjectResponse(
                    subject_kind=result.subject_kind,
                    subject_id=result.subject_id,
                    team=result.body["team"],
                    member_count=result.body["member_count"],
                    **scores,
                )
            )
        return ReplayResultsResponse(**record.__dict__, subjects=subjects)

    return router
