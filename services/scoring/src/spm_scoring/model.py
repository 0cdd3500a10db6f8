"""The scoring model, version 2: components, weights, windows and anti-gaming settings.

An organisation may store its own revisions of this model (see ``model_store``). A stored revision
never changes, so a model id always names the same formula. Weights are points, and the weights
of each group (performance, collaboration, goal collaboration, team network) must add up to
``WEIGHT_TOTAL``, so every score runs from 0 to 100 whichever model computed it. A score is the
weighted mean of its applicable components' values (each 0..1), scaled to that total.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

BUILT_IN_V1 = "v1"
BUILT_IN_V2 = "v2"
DEFAULT_MODEL_ID = BUILT_IN_V2
WEIGHT_TOTAL = 100.0
# Weights are compared with their total after float addition, so allow for rounding.
WEIGHT_TOLERANCE = 1e-6
# Validation context key set when a stored revision is loaded rather than a new one submitted.
STORED_CONTEXT = "stored"


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    def weights(self) -> dict[str, float]:
        return dict(self.model_dump())


# A component's weight, and the count at which a counted component's value reaches 0.5.
Weight = Annotated[float, Field(ge=0, le=1000)]
HalfSaturation = Annotated[float, Field(gt=0, le=10_000)]


class PerformanceWeights(_Settings):
    pace: Weight = 40.0
    cadence: Weight = 20.0
    confidence_calibration: Weight = 20.0
    goals_achieved: Weight = 20.0


class CollaborationWeights(_Settings):
    distinct_collaborators: Weight = 15.0
    accepted_tags: Weight = 10.0
    help_on_others_goals: Weight = 15.0
    kudos_received: Weight = 10.0
    kudos_given: Weight = 5.0
    cross_team_share: Weight = 10.0
    reciprocity: Weight = 10.0
    degree: Weight = 15.0
    brokerage: Weight = 10.0


class GoalCollaborationWeights(_Settings):
    contributors: Weight = 30.0
    accepted_tags: Weight = 20.0
    comments: Weight = 15.0
    kudos: Weight = 15.0
    cross_team_contributors: Weight = 20.0


class TeamNetworkWeights(_Settings):
    mean_degree: Weight = 30.0
    mean_brokerage: Weight = 20.0
    cross_team_share: Weight = 30.0
    internal_density: Weight = 20.0


class HalfSaturationCounts(_Settings):
    """The count at which a counted component's value reaches 0.5: value = count / (count + half)."""

    distinct_collaborators: HalfSaturation = 4.0
    accepted_tags: HalfSaturation = 2.0
    help_on_others_goals: HalfSaturation = 4.0
    kudos_received: HalfSaturation = 3.0
    kudos_given: HalfSaturation = 3.0
    contributors: HalfSaturation = 3.0
    comments: HalfSaturation = 4.0
    kudos: HalfSaturation = 3.0


class ScoringModelV2(BaseModel):
    """One revision of the version 2 formula, as an organisation configures it."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    formula: str = Field(default="v2", pattern="^v2$")
    windows_days: tuple[int, ...] = Field(default=(7, 28, 90), min_length=1, max_length=5)
    default_window_days: int = Field(default=28, ge=1, le=366, validate_default=True)
    performance: PerformanceWeights = PerformanceWeights()
    collaboration: CollaborationWeights = CollaborationWeights()
    goal_collaboration: GoalCollaborationWeights = GoalCollaborationWeights()
    team_network: TeamNetworkWeights = TeamNetworkWeights()
    half_saturation: HalfSaturationCounts = HalfSaturationCounts()
    repeat_decay: float = Field(
        default=0.5, gt=0, le=1,
        description="The k-th kudos or comment between the same pair in a window counts repeat_decay ** (k - 1)",
    )
    min_group_size: int = Field(default=5, ge=2, le=1000, description="Teams with fewer members show no network figure")
    brokerage_pivots: int = Field(
        default=64, ge=2, le=10_000, description="Graphs with more people than this get sampled betweenness"
    )
    explanation_events: int = Field(default=5, ge=1, le=50, description="Events listed per component")

    @field_validator("windows_days")
    @classmethod
    def check_windows(cls, windows_days: tuple[int, ...]) -> tuple[int, ...]:
        if any(days < 1 or days > 366 for days in windows_days):
            raise ValueError("every entry of windows_days must be between 1 and 366")
        if len(set(windows_days)) != len(windows_days):
            raise ValueError("windows_days must not repeat a window")
        return windows_days

    @field_validator("default_window_days")
    @classmethod
    def check_default_window(cls, default_window_days: int, info: ValidationInfo) -> int:
        windows_days = info.data.get("windows_days")
        # When windows_days itself is invalid, its own error reports it.
        if windows_days is not None and default_window_days not in windows_days:
            raise ValueError(f"default_window_days must be one of windows_days {list(windows_days)}")
        return default_window_days

    @field_validator("performance", "collaboration", "goal_collaboration", "team_network")
    @classmethod
    def check_weight_total(cls, group: _Settings, info: ValidationInfo) -> _Settings:
        if info.context and info.context.get(STORED_CONTEXT):
            # NOTE: revisions stored before the total was enforced load unchanged, so their scores run to their own total.
            return group
        total = sum(group.weights().values())
        if abs(total - WEIGHT_TOTAL) > WEIGHT_TOLERANCE:
            weights = ", ".join(f"{name}={weight:g}" for name, weight in group.weights().items())
            raise ValueError(
                f"the weights of {info.field_name} must add up to {WEIGHT_TOTAL:g}, not {total:g} ({weights}); "
                "give every weight of the group so that they do"
            )
        return group


DEFAULT_V2_MODEL = ScoringModelV2()
