"""Response models of the goals API, used for its OpenAPI document (routes build the JSON in views.py)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class PeriodOut(BaseModel):
    name: str = Field(examples=["FY21-Q1"])
    start: str = Field(examples=["2020-02-01"])
    end: str = Field(examples=["2020-04-30"])


class KeyResultOut(BaseModel):
    key_result_id: str
    title: str = Field(examples=["Sign 10 new customers"])
    metric: Literal["number", "percent", "currency", "milestone"]
    start_value: float = Field(examples=[0])
    target_value: float = Field(examples=[10])
    unit: str | None = Field(examples=["customers"])
    weight: float = Field(examples=[1.0])
    direction: Literal["increase", "decrease"]
    current_value: float = Field(examples=[4])
    progress: float = Field(description="From start (0.0) to target (1.0); above 1.0 is over-achievement", examples=[0.4])
    external_ref: str | None
    check_in_count: int
    last_check_in_at: str | None
    status: Literal["on_track", "at_risk", "off_track"] | None = Field(description="Status of the latest check-in")
    confidence: float | None = Field(description="Confidence of the latest check-in")


class SupportOut(BaseModel):
    goal_id: str = Field(description="A goal this one also contributes to")
    key_result_id: str | None = Field(description="The key result of that goal it supports; null for the whole goal")


class GoalOut(BaseModel):
    goal_id: str = Field(examples=["3f0b8a44-7d7e-5a55-9a51-2f7f1b0e8c11"])
    org_id: str = Field(examples=["acme"])
    title: str = Field(examples=["Grow ARR consistently"])
    level: Literal["company", "team", "person"]
    owner_id: str
    co_owner_ids: list[str]
    team: str = Field(examples=["Executive"])
    contributing_teams: list[str]
    visibility: Literal["organisation", "team", "private"]
    period: PeriodOut
    parent_goal_id: str | None
    supports: list[SupportOut] = Field(description="Further parents: goals or key results, often of other teams, this goal supports")
    external_ref: str | None = Field(examples=["CEO-1"])
    status: Literal["draft", "active", "closed", "archived"]
    outcome: Literal["achieved", "partially", "missed"] | None
    progress: float = Field(description="Mean of the key results' progress weighted by their weights", examples=[0.4])
    version: int = Field(description="The goal's version, also sent as the ETag header", examples=[3])
    key_results: list[KeyResultOut]


class KeyResultWithGoalOut(KeyResultOut):
    goal_id: str
    version: int = Field(description="The goal's version after the change")


class CheckInOut(BaseModel):
    check_in_id: str
    key_result_id: str
    goal_id: str
    value: float = Field(examples=[4])
    progress: float = Field(description="Progress of this value", examples=[0.4])
    confidence: float | None = Field(examples=[0.7])
    status: Literal["on_track", "at_risk", "off_track"]
    status_source: Literal["pace", "manual"]
    comment: str
    actor_id: str
    occurred_at: str = Field(examples=["2020-03-02T09:30:00+00:00"])


class TreeNodeOut(BaseModel):
    goal_id: str
    title: str
    team: str
    external_ref: str | None
    status: Literal["draft", "active", "closed", "archived"]
    level: Literal["company", "team", "person"]
    visibility: Literal["organisation", "team", "private"]
    progress: float = Field(description="The goal's own progress")
    rollup_progress: float = Field(
        description="(own progress + sum of the children's rollup_progress) / (1 + number of children), over the "
        "children the reader may see"
    )
    supports: list[SupportOut] = Field(description="Goals or key results this goal also supports; it is nested only under its parent goal")
    children: list[TreeNodeOut]


class ChangeOut(BaseModel):
    version: int
    type: str = Field(examples=["CheckInRecorded"])
    occurred_at: str = Field(description="Event time")
    recorded_at: str = Field(description="When the event was stored")
    actor_id: str
    data: dict[str, Any]


class HealthOut(BaseModel):
    status: Literal["ok"]


class RelayStatusOut(BaseModel):
    relay: str = Field(examples=["goals"])
    published_position: int
    max_notification_id: int


class ConsumerPositionOut(BaseModel):
    topic: str
    partition: int
    offset: int = Field(description="Last offset the collaborator worker applied")


class ConsumerPositionsOut(BaseModel):
    consumer: str = Field(examples=["spm-goals-collaborators"])
    positions: list[ConsumerPositionOut]


class ErrorOut(BaseModel):
    detail: str = Field(examples=["goal 3f0b8a44-7d7e-5a55-9a51-2f7f1b0e8c11 not found. List this organisation's goals with GET /goals"])


class StateConflictOut(ErrorOut):
    status: Literal["draft", "active", "closed", "archived"] = Field(description="The goal's current lifecycle status")


class FieldError(BaseModel):
    type: str
    loc: list[str | int] = Field(examples=[["body", "target_value"]])
    msg: str


class ValidationErrorOut(BaseModel):
    detail: list[FieldError] = Field(
        description="One entry per invalid field; loc is [\"body\"] for a body that is not UTF-8 JSON or is nested deeper than the limit"
    )


def error_responses(*status_codes: int) -> dict[int | str, dict[str, Any]]:
    """Return the OpenAPI ``responses`` entries for the given error status codes."""
    described: dict[int, dict[str, Any]] = {
        401: {"model": ErrorOut, "description": "Missing, invalid or expired bearer token"},
        403: {"model": ErrorOut, "description": "The reader may see the goal, but only its owner, co-owners or an org admin may make this change"},
        404: {"model": ErrorOut, "description": "Goal or key result not found in the token's organisation, or not visible to the reader"},
        409: {"model": StateConflictOut, "description": "The goal's lifecycle status does not allow this change, or concurrent writes kept conflicting"},
        412: {"model": ErrorOut, "description": "If-Match names another version than the goal's current one"},
        413: {"model": ErrorOut, "description": "Request body larger than SPM_MAX_BODY_BYTES"},
        422: {"model": ValidationErrorOut, "description": "Invalid input; detail[].loc names the field, header or query parameter"},
        503: {
            "model": ErrorOut,
            "description": "The database cannot be written or reached (full disk, read-only file, server down); nothing was written",
            "headers": {"Retry-After": {"description": "Seconds to wait before retrying", "schema": {"type": "integer"}}},
        },
    }
    return {code: described[code] for code in status_codes}
