"""The API's response bodies; every score lists the components it is the sum of."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from spm_scoring.formula import Score


class ComponentResponse(BaseModel):
    name: str
    value: float
    weight: float
    contribution: float = Field(description="value * weight; the score is the sum of its components' contributions")


class ScoreResponse(BaseModel):
    score: float | None = Field(description="null when there is nothing to score, such as performance for a person who owns no goal")
    components: list[ComponentResponse]

    @classmethod
    def from_score(cls, score: Score) -> ScoreResponse:
        components = [
            ComponentResponse(
                name=component.name,
                value=component.value,
                weight=component.weight,
                contribution=component.contribution,
            )
            for component in score.components
        ]
        return cls(score=score.score, components=components)


class PersonScoresResponse(BaseModel):
    person_id: str
    org_id: str
    as_of: datetime = Field(description="End of the window, in event time")
    window_days: int
    performance: ScoreResponse
    collaboration: ScoreResponse


class RankedPersonResponse(BaseModel):
    person_id: str
    score: float
    components: list[ComponentResponse]


class TopCollaboratorsResponse(BaseModel):
    as_of: datetime | None = Field(description="End of the window, in event time; null when the org has no events yet")
    people: list[RankedPersonResponse]


class ConsumerPositionResponse(BaseModel):
    topic: str
    partition: int
    offset: int = Field(description="Last offset applied to the read model")


class PositionsResponse(BaseModel):
    consumer: str
    positions: list[ConsumerPositionResponse]
