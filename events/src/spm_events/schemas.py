"""Versioned payload schemas, one pydantic model per integration event type and version.

A published schema never changes shape. A new field that old consumers may ignore is added as
optional; anything else becomes a new version (``...V2``) published under a new type name.
People appear only as ids: names and e-mail addresses stay in the people directory.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic import AwareDatetime

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
    """A person was asked to collaborate on a goal. Until they decline, leave or are untagged they are an
    insider of the goal (they may see it, to decide); only an accepted tag counts as collaboration."""

    goal_id: str = Id
    collaborator_id: str = Id


class TagAcceptedV1(Payload):
    """The tagged person accepted the tag and now collaborates on the goal."""

    goal_id: str = Id
    collaborator_id: str = Id


class TagDeclinedV1(Payload):
    """The tagged person declined the tag; they are no longer an insider of the goal."""

    goal_id: str = Id
    collaborator_id: str = Id


class CollaboratorLeftV1(Payload):
    """The collaborator left the goal of their own accord; they are no longer an insider of it."""

    goal_id: str = Id
    collaborator_id: str = Id


class CollaboratorUntaggedV1(Payload):
    """An owner, co-owner or admin removed the tag; the person is no longer an insider of the goal."""

    goal_id: str = Id
    collaborator_id: str = Id


ReactionKind = Literal["like", "celebrate", "support", "insightful", "curious"]
ReactionTarget = Literal["goal", "check_in", "comment"]


class CommentPostedV1(Payload):
    """A comment on a goal, or on one check-in of it. ``mentioned_ids`` are the people its text mentions
    who could see the goal when it was posted. Consumers still check visibility before notifying."""

    goal_id: str = Id
    comment_id: str = Id
    check_in_id: str | None = Field(default=None, min_length=1, max_length=100)
    body: str = Field(min_length=1, max_length=10_000)
    mentioned_ids: tuple[str, ...] = Field(default=(), max_length=50)


class CommentEditedV1(Payload):
    """A new text of a comment; the earlier texts stay in the history of events."""

    goal_id: str = Id
    comment_id: str = Id
    body: str = Field(min_length=1, max_length=10_000)
    mentioned_ids: tuple[str, ...] = Field(default=(), max_length=50)


class CommentDeletedV1(Payload):
    goal_id: str = Id
    comment_id: str = Id


class ReactionAddedV1(Payload):
    """A reaction of the actor (the envelope's ``actorid``) to a goal, a check-in or a comment of the goal."""

    goal_id: str = Id
    target_kind: ReactionTarget
    target_id: str = Id
    reaction: ReactionKind


class ReactionRemovedV1(Payload):
    goal_id: str = Id
    target_kind: ReactionTarget
    target_id: str = Id
    reaction: ReactionKind


class KudosGivenV1(Payload):
    """Kudos from the actor to ``receiver_id`` for their work on a goal, with a message."""

    goal_id: str = Id
    kudos_id: str = Id
    receiver_id: str = Id
    message: str = Field(min_length=1, max_length=1000)


class PersonFollowedV1(Payload):
    """``follower_id`` follows the person ``person_id``: their activity reaches the follower's feed."""

    person_id: str = Id
    follower_id: str = Id


class PersonUnfollowedV1(Payload):
    person_id: str = Id
    follower_id: str = Id


class CommunityCreatedV1(Payload):
    """A community gathered around objectives; its creator (``owner_id``) is its first member, as owner."""

    community_id: str = Id
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)
    owner_id: str = Id


class CommunityDescribedV1(Payload):
    """The community's new name and description."""

    community_id: str = Id
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)


class CommunityMemberJoinedV1(Payload):
    community_id: str = Id
    member_id: str = Id
    role: Literal["owner", "member"] = "member"


class CommunityMemberLeftV1(Payload):
    """The member left, or was removed by an owner (then the envelope's actor differs from ``member_id``)."""

    community_id: str = Id
    member_id: str = Id


class CommunityMemberInvitedV1(Payload):
    community_id: str = Id
    invitee_id: str = Id


class CommunityFollowedV1(Payload):
    community_id: str = Id
    follower_id: str = Id


class CommunityUnfollowedV1(Payload):
    community_id: str = Id
    follower_id: str = Id


class CommunityGoalLinkedV1(Payload):
    """A goal was linked to the community. Members see it in the community feed only if they may see the goal."""

    community_id: str = Id
    goal_id: str = Id


class CommunityGoalUnlinkedV1(Payload):
    community_id: str = Id
    goal_id: str = Id


class ScoreComponentV1(Payload):
    """One term of a score: the component's value, its weight in points and ``value * weight``."""

    name: str = Field(min_length=1, max_length=100)
    value: float
    weight: float
    contribution: float


class ScoreValueV1(Payload):
    kind: Literal["performance", "collaboration"]
    score: float | None = Field(description="null when there is nothing to score or the figure is withheld")
    components: tuple[ScoreComponentV1, ...] = Field(default=(), max_length=50)


class ScoreChangedV1(Payload):
    """The scores of a person, team or goal under the organisation's active scoring model changed.

    ``as_of`` is the event time the scores are computed at, and the envelope's ``time`` equals it.
    Explanations are not published: they name goals that only some readers may see.
    """

    subject_kind: Literal["person", "team", "goal"]
    subject_id: str = Field(min_length=1, max_length=200)
    model_id: str = Field(min_length=1, max_length=100, examples=["v2"])
    window: str = Field(min_length=1, max_length=120, examples=["28d", "period:FY21-Q1"])
    as_of: AwareDatetime
    scores: tuple[ScoreValueV1, ...] = Field(max_length=10)
