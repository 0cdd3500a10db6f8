"""Versioned payload schemas, one pydantic model per integration event type and version.

A published schema never changes shape. A new field that old consumers may ignore is added as
optional; anything else becomes a new version (``...V2``) published under a new type name.
People appear only as ids: names and e-mail addresses stay in the people directory.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Id = Field(min_length=1, max_length=100)
MetricKind = Literal["number", "percent", "currency", "milestone"]
CheckInStatus = Literal["on_track", "at_risk", "off_track"]
GoalStatus = Literal["draft", "active", "closed", "archived"]
GoalLevel = Literal["company", "team", "person"]
Visibility = Literal["organisation", "team", "private"]


class Payload(BaseModel):
    # Consumers ignore unknown fields, so a producer may add optional fields within a version.
    model_config = ConfigDict(frozen=True, extra="ignore", allow_inf_nan=False)


class PeriodV1(Payload):
    name: str = Field(min_length=1, max_length=100, examples=["FY21-Q1"])
    start: date
    end: date

    @model_validator(mode="after")
    def check_start_before_end(self) -> PeriodV1:
        if self.end < self.start:
            raise ValueError("period end is before its start")
        return self


class GoalCreatedV1(Payload):
    goal_id: str = Id
    title: str = Field(min_length=1, max_length=500)
    owner_id: str = Id
    team: str = Field(min_length=1, max_length=200)
    contributing_teams: tuple[str, ...] = ()
    period: PeriodV1
    parent_goal_id: str | None = None
    external_ref: str | None = None
    status: Literal["draft", "active"] | None = Field(
        default=None, description="Lifecycle status at creation; absent means active"
    )
    level: GoalLevel | None = Field(default=None, description="company, team or person; absent means team")
    co_owner_ids: tuple[str, ...] = Field(default=(), max_length=20, description="People who manage the goal with its owner")
    visibility: Visibility | None = Field(
        default=None,
        description="Who may see the goal: organisation (everyone in it), team (the goal's teams, owners and "
        "collaborators) or private (owners and collaborators). Absent means organisation",
    )


class KeyResultAddedV1(Payload):
    goal_id: str = Id
    key_result_id: str = Id
    title: str = Field(min_length=1, max_length=500)
    metric: MetricKind
    start_value: float
    target_value: float
    external_ref: str | None = None
    unit: str | None = Field(default=None, max_length=50, description="Unit of the values, such as USD; absent when none was given")
    weight: float = Field(default=1.0, gt=0, description="Share of the goal's progress relative to the other key results' weights")


class CheckInRecordedV1(Payload):
    goal_id: str = Id
    key_result_id: str = Id
    check_in_id: str = Id
    value: float
    progress: float = Field(description="Progress of the key result after this check-in; 1.0 is the target, above 1 is over-achievement")
    comment: str = Field(default="", max_length=5000)
    confidence: float | None = Field(default=None, ge=0, le=1, description="The owner's confidence of reaching the target, from 0 to 1")
    status: CheckInStatus | None = Field(
        default=None, description="on_track, at_risk or off_track: derived from pace unless the person set it"
    )


class GoalStatusChangedV1(Payload):
    """A goal moved along its lifecycle: draft -> active -> closed -> archived, or closed -> active when reopened."""

    goal_id: str = Id
    status: GoalStatus
    previous_status: GoalStatus
    outcome: Literal["achieved", "partially", "missed"] | None = Field(
        default=None, description="How the goal ended; set when status is closed"
    )


class GoalAlignedV1(Payload):
    """A goal was aligned under another parent goal, or detached from its parent (``parent_goal_id`` null)."""

    goal_id: str = Id
    parent_goal_id: str | None = Field(default=None, min_length=1, max_length=100)


class GoalOwnersChangedV1(Payload):
    """The goal's owner or co-owners changed; the payload carries the whole new set."""

    goal_id: str = Id
    owner_id: str = Id
    co_owner_ids: tuple[str, ...] = Field(default=(), max_length=20)


class GoalVisibilityChangedV1(Payload):
    """A change of the goal's visibility. Consumers hide what they store about it from people who may no longer see it."""

    goal_id: str = Id
    visibility: Visibility
    previous_visibility: Visibility


class GoalSupportAddedV1(Payload):
    """The goal now also supports another goal, or one key result of it (an extra parent beside ``parent_goal_id``)."""

    goal_id: str = Id
    supported_goal_id: str = Id
    supported_key_result_id: str | None = Field(default=None, min_length=1, max_length=100)


class GoalSupportRemovedV1(Payload):
    """The goal no longer supports that goal or key result."""

    goal_id: str = Id
    supported_goal_id: str = Id
    supported_key_result_id: str | None = Field(default=None, min_length=1, max_length=100)


class GoalFollowedV1(Payload):
    goal_id: str = Id
    follower_id: str = Id


class GoalUnfollowedV1(Payload):
    goal_id: str = Id
    follower_id: str = Id


class CollaboratorTaggedV1(Payload):
    goal_id: str = Id
    collaborator_id: str = Id
