"""Request bodies of the goals API: unknown fields, non-finite numbers and unbounded strings are rejected."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timezone
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from spm_goals.objective import Period


def _date_to_utc_midnight(value: Any) -> Any:
    """Read a bare date ("2020-03-02") as midnight UTC of that day; leave datetimes to pydantic."""
    if isinstance(value, str) and len(value) == 10:
        try:
            return datetime.combine(date.fromisoformat(value), time.min, tzinfo=timezone.utc)
        except ValueError:
            return value
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime.combine(value, time.min, tzinfo=timezone.utc)
    return value


EventTime = Annotated[
    AwareDatetime,
    BeforeValidator(_date_to_utc_midnight),
    Field(
        description="When the fact happened: an ISO 8601 datetime with a timezone offset, or a date "
        "(read as 00:00 UTC). Defaults to the current time; future times are rejected.",
        examples=["2020-03-02T09:30:00Z", "2020-03-02"],
    ),
]
Identifier = Annotated[str, Field(min_length=1, max_length=100)]
Title = Annotated[str, Field(min_length=1, max_length=500)]
TeamName = Annotated[str, Field(min_length=1, max_length=200)]
ExternalRef = Annotated[str, Field(min_length=1, max_length=200, description="The caller's own id. Sending it again returns the stored record")]


class RequestBody(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, str_strip_whitespace=True)


class PeriodBody(RequestBody):
    name: str = Field(min_length=1, max_length=100, examples=["FY21-Q1"])
    start: date
    end: date

    @model_validator(mode="after")
    def check_end_not_before_start(self) -> PeriodBody:
        if self.end < self.start:
            raise ValueError(f"period end {self.end} is before its start {self.start}")
        return self

    def to_period(self) -> Period:
        return Period(self.name, self.start, self.end)


class CreateGoalBody(RequestBody):
    title: Title
    team: TeamName
    period: PeriodBody
    owner_id: Identifier | None = Field(default=None, description="Defaults to the person in the bearer token")
    parent_goal_id: uuid.UUID | None = None
    contributing_teams: list[TeamName] = Field(default_factory=list, max_length=50)
    external_ref: ExternalRef | None = None
    occurred_at: EventTime | None = None


class AddKeyResultBody(RequestBody):
    title: Title
    metric: Literal["number", "percent", "currency", "milestone"]
    start_value: float
    target_value: float
    external_ref: ExternalRef | None = None
    occurred_at: EventTime | None = None


class RecordCheckInBody(RequestBody):
    # NOTE: no external_ref here, so an importer that runs twice records its check-ins twice.
    value: float
    comment: str = Field(default="", max_length=5000)
    occurred_at: EventTime | None = None
