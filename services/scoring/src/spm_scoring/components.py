"""Components of a model v2 score, the events behind them, and how weights combine them.

Each component has a value from 0 to 1, or None when it does not apply (a person with no closed
goal has no goals_achieved). The score is the weighted sum of the applicable values, with the
weights of inapplicable components shared out in proportion among the others:

    score = sum(value_i * w_i * W / W_applicable) over applicable i

where W is the sum of the group's configured weights and W_applicable the sum over applicable
components. So a score's maximum is W (100 with the default weights) whichever components apply.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable, Mapping

from spm_scoring.facts import Fact

VALUE_DIGITS = 4
SCORE_DIGITS = 2
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Evidence:
    """One event behind a component and its impact: how much of the component's raw measure it added."""

    fact: Fact
    impact: float


@dataclass(frozen=True)
class ComponentResult:
    name: str
    value: float | None
    raw: float | None = None
    evidence: tuple[Evidence, ...] = ()


@dataclass(frozen=True)
class WeightedComponent:
    name: str
    value: float
    raw: float | None
    configured_weight: float
    weight: float
    contribution: float
    applicable: bool
    evidence: tuple[Evidence, ...]


@dataclass(frozen=True)
class ScoreResult:
    """A score (None when no component applies or the figure is withheld) and its weighted components."""

    score: float | None
    components: tuple[WeightedComponent, ...]
    withheld_reason: str | None = None


def saturate(count: float, half: float) -> float:
    """Map a count to 0..1 with diminishing returns: ``count / (count + half)``, 0.5 at ``half``."""
    return count / (count + half) if count > 0 else 0.0


def ranked_evidence(evidence: Iterable[Evidence]) -> tuple[Evidence, ...]:
    """Order evidence by impact, largest first, then by the latest event time, then by event id."""
    return tuple(
        sorted(
            (item for item in evidence if item.impact > 0),
            key=lambda item: (-item.impact, -(item.fact.occurred_at - EPOCH).total_seconds(), item.fact.event_id),
        )
    )


def weigh(results: Iterable[ComponentResult], weights: Mapping[str, float]) -> ScoreResult:
    """Combine component results into a score with the configured weights (in points)."""
    results = list(results)
    total = sum(weights[result.name] for result in results)
    applicable_total = sum(weights[result.name] for result in results if result.value is not None)
    scale = total / applicable_total if applicable_total > 0 else 0.0
    exact = 0.0
    components = []
    for result in results:
        configured = weights[result.name]
        applicable = result.value is not None and applicable_total > 0
        effective = configured * scale if applicable else 0.0
        value = result.value if result.value is not None else 0.0
        exact += value * effective
        components.append(
            WeightedComponent(
                name=result.name,
                value=round(value, VALUE_DIGITS),
                raw=None if result.raw is None else round(result.raw, VALUE_DIGITS),
                configured_weight=configured,
                weight=round(effective, VALUE_DIGITS),
                contribution=round(value * effective, SCORE_DIGITS),
                applicable=result.value is not None,
                evidence=ranked_evidence(result.evidence),
            )
        )
    score = round(exact, SCORE_DIGITS) if applicable_total > 0 else None
    return ScoreResult(score=score, components=tuple(components))


def withheld(weights: Mapping[str, float], reason: str) -> ScoreResult:
    """Build a score without values, for a group too small to report on."""
    components = tuple(WeightedComponent(name, 0.0, None, weight, 0.0, 0.0, False, ()) for name, weight in weights.items())
    return ScoreResult(score=None, components=components, withheld_reason=reason)
