"""Turns model v2 scores into responses whose explanations leave out goals the reader may not see.

Whether a reader may see a goal is decided from the goal's current audience (its latest
visibility, owners and tags), whatever the ``as_of`` of the score. The score values still count
every goal: only the listed events are filtered.
"""

from __future__ import annotations

from typing import Callable

from spm_events.auth import Principal
from spm_scoring.components import ScoreResult
from spm_scoring.history import OrgHistory
from spm_scoring.responses import ComponentResponse, EventReferenceResponse, ScoreResponse

GoalFilter = Callable[[str | None], bool]


def goal_filter_for(history: OrgHistory, reader: Principal) -> GoalFilter:
    """Return a predicate telling whether the reader may see a goal; an unknown goal counts as unseen."""
    decided: dict[str, bool] = {}

    def can_see(goal_id: str | None) -> bool:
        if goal_id is None:
            return True
        if goal_id not in decided:
            audience = history.audience(goal_id)
            decided[goal_id] = audience is not None and audience.can_see(reader)
        return decided[goal_id]

    return can_see


def explained(score: ScoreResult, can_see: GoalFilter, events_per_component: int) -> ScoreResponse:
    components = []
    for component in score.components:
        visible = [item for item in component.evidence if can_see(item.fact.goal_id)][:events_per_component]
        components.append(
            ComponentResponse(
                name=component.name,
                value=component.value,
                weight=component.weight,
                contribution=component.contribution,
                configured_weight=component.configured_weight,
                applicable=component.applicable,
                raw=component.raw,
                events=[
                    EventReferenceResponse(
                        event_id=item.fact.event_id,
                        type=item.fact.event_type,
                        occurred_at=item.fact.occurred_at,
                        goal_id=item.fact.goal_id,
                        impact=round(item.impact, 4),
                    )
                    for item in visible
                ],
            )
        )
    return ScoreResponse(score=score.score, components=components, withheld_reason=score.withheld_reason)
