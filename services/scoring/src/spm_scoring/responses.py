"""The API's response bodies; every score lists the components it is the sum of."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from spm_scoring.formula import Score


class EventReferenceResponse(BaseModel):
    event_id: str
    type: str = Field(description="The event's CloudEvents type, such as spm.goals.CheckInRecorded.v1")
    occurred_at: datetime = Field(description="Event time")
    goal_id: str | None
    impact: float = Field(description="How much of the component's raw measure this event added")


class ComponentResponse(BaseModel):
    name: str
    value: float = Field(description="0 to 1 in model v2; a count or a share in model v1")
    weight: float = Field(description="Points this component carries in the score, after sharing out the weights of inapplicable components")
    contribution: float = Field(description="value * weight; the score is the sum of its components' contributions")
    configured_weight: float = Field(description="The weight the model configures")
    applicable: bool = Field(description="false when the component has nothing to measure, such as goals_achieved with no closed goal")
    raw: float | None = Field(default=None, description="The count or measure behind the value, where there is one")
    events: list[EventReferenceResponse] = Field(
        default_factory=list,
        description="The events that added most to this component, largest first; events about goals you may not see are left out",
    )


class ScoreResponse(BaseModel):
    score: float | None = Field(description="null when there is nothing to score, such as performance for a person who owns no goal")
    components: list[ComponentResponse]
    withheld_reason: str | None = Field(default=None, description="Why the score is not shown, when it is withheld")

    @classmethod
    def from_score(cls, score: Score) -> ScoreResponse:
        """Build the response of a model v1 score, whose components list no events."""
        components = [
            ComponentResponse(
                name=component.name,
                value=component.value,
                weight=component.weight,
                contribution=component.contribution,
                configured_weight=component.weight,
                applicable=True,
            )
            for component in score.components
        ]
        return cls(score=score.score, components=components)


class WindowedResponse(BaseModel):
    org_id: str
    model_id: str = Field(description="The scoring model: v1, v2 or a stored revision such as v2.1")
    window: str = Field(description="'<days>d' or 'period:<name>'")
    window_days: int = Field(description="Length of the window in days, rounded up")
    as_of: datetime = Field(description="End of the window, in event time")


class PersonScoresResponse(WindowedResponse):
    person_id: str
    team: str | None = Field(default=None, description="The team the person is counted in, from the goals they own or check in on")
    performance: ScoreResponse
    collaboration: ScoreResponse


class TeamScoresResponse(WindowedResponse):
    team: str
    member_count: int
    performance: ScoreResponse
    collaboration: ScoreResponse = Field(description="The team's network figure; withheld for teams below the minimum group size")


class GoalScoresResponse(WindowedResponse):
    goal_id: str
    team: str
    performance: ScoreResponse
    collaboration: ScoreResponse


class RankedPersonResponse(BaseModel):
    person_id: str
    score: float
    components: list[ComponentResponse]


class TopCollaboratorsResponse(BaseModel):
    as_of: datetime | None = Field(description="End of the window, in event time; null when the org has no events yet")
    model_id: str | None = None
    window: str | None = None
    people: list[RankedPersonResponse]


class ConsumerPositionResponse(BaseModel):
    topic: str
    partition: int
    offset: int = Field(description="Last offset applied to the read model")


class PositionsResponse(BaseModel):
    consumer: str
    positions: list[ConsumerPositionResponse]
