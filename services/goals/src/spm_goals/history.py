"""Time travel over a goal's events by event time: the goal as it was at a moment, and the changes in a range.

Event time is each event's ``occurred_at`` (when the fact happened), not when it was stored, so a
back-dated check-in stored today shows in the state as of the day it happened.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Iterable

from fastapi.encoders import jsonable_encoder

from spm_goals.objective import Objective

# Event attributes that identify or place the event rather than describe the change.
BOOKKEEPING_ATTRIBUTES = {"originator_id", "originator_version", "originator_topic", "timestamp", "occurred_at", "actor_id"}


def objective_as_of(events: Iterable[Any], as_of: datetime) -> Objective | None:
    """Rebuild a goal from its events with ``occurred_at`` at or before ``as_of``, or None if it did not exist yet.

    Events are applied in stored order. A check-in that happened before its key result was
    recorded (a back-dated check-in) is left out until the key result exists.
    """
    objective: Objective | None = None
    for domain_event in events:
        occurred_at = getattr(domain_event, "occurred_at", None)
        if occurred_at is None or occurred_at > as_of:
            continue
        if isinstance(domain_event, Objective.ObjectiveCreated):
            objective = domain_event.mutate(None)
        elif objective is not None:
            if isinstance(domain_event, Objective.CheckInRecorded) and domain_event.key_result_id not in objective.key_results:
                continue
            domain_event.apply(objective)
        if objective is not None:
            objective.version = domain_event.originator_version
    return objective


def changes_between(events: Iterable[Any], start: datetime | None, end: datetime | None) -> list[dict[str, Any]]:
    """Return the goal's events with ``start <= occurred_at <= end`` (either bound optional), oldest event time first."""
    selected = []
    for domain_event in events:
        occurred_at = getattr(domain_event, "occurred_at", None)
        if occurred_at is None:
            continue  # RequestApplied bookkeeping, not a change of the goal
        if (start is not None and occurred_at < start) or (end is not None and occurred_at > end):
            continue
        selected.append(domain_event)
    selected.sort(key=lambda domain_event: (domain_event.occurred_at, domain_event.originator_version))
    return [_change_view(domain_event) for domain_event in selected]


def _change_view(domain_event: Any) -> dict[str, Any]:
    data = {key: value for key, value in vars(domain_event).items() if key not in BOOKKEEPING_ATTRIBUTES}
    return {
        "version": domain_event.originator_version,
        "type": type(domain_event).__name__,
        "occurred_at": domain_event.occurred_at.isoformat(),
        "recorded_at": domain_event.timestamp.isoformat(),
        "actor_id": domain_event.actor_id,
        "data": jsonable_encoder(data),
    }
