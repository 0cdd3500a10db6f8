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
PersonId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,99}$", description="A person id, as in tokens")]
Title = Annotated[str, Field(min_length=1, max_length=500)]
TeamName = Annotated[str, Field(min_length=1, max_length=200)]
ExternalRef = Annotated[str, Field(min_length=1, max_length=200, description="The caller's own id. Sending it again returns the stored record")]


class RequestBody(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, str_strip_whitespace=True)


class EventBody(RequestBody):
    """A command body that may date its event."""

    occurred_at: EventTime | None = None

    def event_time(self) -> datetime:
        return self.occurred_at or datetime.now(timezone.utc)


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


class CreateGoalBody(EventBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "title": "Grow ARR consistently", "team": "Executive", "period": {"name": "FY21-Q1", "start": "2020-02-01", "end": "2020-04-30"},
        "contributing_teams": ["Sales"], "external_ref": "CEO-1", "occurred_at": "2020-01-20T09:00:00Z",
    }]})

    title: Title
    team: TeamName
    period: PeriodBody
    owner_id: PersonId | None = Field(default=None, description="Defaults to the person in the bearer token")
    co_owner_ids: list[PersonId] = Field(
        default_factory=list, max_length=20, description="People who manage the goal with its owner"
    )
    level: Literal["company", "team", "person"] = Field(default="team", description="Whose goal this is: the company's, a team's or one person's")
    visibility: Literal["organisation", "team", "private"] = Field(
        default="organisation",
        description="organisation: everyone in it; team: members of the goal's team and contributing teams; "
        "private: only owners, co-owners and tagged collaborators. Org admins see every goal",
    )
    parent_goal_id: uuid.UUID | None = None
    contributing_teams: list[TeamName] = Field(default_factory=list, max_length=50)
    external_ref: ExternalRef | None = None
    status: Literal["draft", "active"] = Field(default="active", description="A draft goal becomes active with POST /goals/{goal_id}/activate")


class AddKeyResultBody(EventBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "title": "Cut p95 latency", "metric": "number", "start_value": 800, "target_value": 300, "unit": "ms", "weight": 2,
        "occurred_at": "2020-01-21",
    }]})

    title: Title
    metric: Literal["number", "percent", "currency", "milestone"]
    start_value: float
    target_value: float = Field(description="Must differ from start_value; below it the key result measures a decrease")
    unit: str | None = Field(default=None, min_length=1, max_length=50, examples=["USD", "customers"])
    weight: float = Field(
        default=1.0, gt=0, le=1000, description="Share of the goal's progress, relative to the other key results' weights"
    )
    external_ref: ExternalRef | None = None


class RecordCheckInBody(EventBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "value": 550, "comment": "cache in front of search", "confidence": 0.7, "occurred_at": "2020-03-02T09:30:00Z",
    }]})

    # NOTE: no external_ref here, so an importer that runs twice records its check-ins twice.
    value: float
    comment: str = Field(default="", max_length=5000)
    confidence: float | None = Field(default=None, ge=0, le=1, description="How likely the owner thinks the target is reached, from 0 to 1")
    status: Literal["on_track", "at_risk", "off_track"] | None = Field(
        default=None, description="Overrides the status derived from pace (progress against the period elapsed)"
    )


class StatusChangeBody(EventBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"occurred_at": "2020-02-01"}]})



class CloseGoalBody(EventBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"outcome": "partially", "occurred_at": "2020-05-01"}]})

    outcome: Literal["achieved", "partially", "missed"]


class AlignGoalBody(EventBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"parent_goal_id": "3f0b8a44-7d7e-5a55-9a51-2f7f1b0e8c11"}]})

    parent_goal_id: uuid.UUID | None = Field(description="The goal this one contributes to; null detaches it")


class ChangeOwnersBody(EventBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"owner_id": "person-1", "co_owner_ids": ["person-2"]}]})

    owner_id: PersonId
    co_owner_ids: list[PersonId] = Field(default_factory=list, max_length=20, description="The whole new set of co-owners")


class ChangeVisibilityBody(EventBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"visibility": "private"}]})

    visibility: Literal["organisation", "team", "private"]


class SupportBody(EventBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "goal_id": "3f0b8a44-7d7e-5a55-9a51-2f7f1b0e8c11", "key_result_id": "9d1c0f7e-2b8a-5c3d-8e4f-1a2b3c4d5e6f",
    }]})

    goal_id: uuid.UUID = Field(description="The goal this one also contributes to, usually another team's")
    key_result_id: uuid.UUID | None = Field(default=None, description="One key result of that goal; null supports the whole goal")
