"""JSON representations of goals, key results and check-ins returned by the API."""

from __future__ import annotations

import uuid
from typing import Any, Callable

from spm_goals.objective import CheckIn, KeyResult, Objective

# Tells whether the reader may see the goal with this id; links to other goals are shown only then.
LinkFilter = Callable[[uuid.UUID], bool]


def show_every_link(_: uuid.UUID) -> bool:
    return True


def goal_view(objective: Objective, shows: LinkFilter = show_every_link) -> dict[str, Any]:
    """Return the goal, leaving out its parent and supports where ``shows`` hides them from the reader."""
    parent_goal_id = objective.parent_goal_id
    return {
        "goal_id": str(objective.id),
        "org_id": objective.org_id,
        "title": objective.title,
        "level": objective.level,
        "owner_id": objective.owner_id,
        "co_owner_ids": list(objective.co_owner_ids),
        "team": objective.team,
        "contributing_teams": list(objective.contributing_teams),
        "visibility": objective.visibility,
        "period": {
            "name": objective.period.name,
            "start": objective.period.start.isoformat(),
            "end": objective.period.end.isoformat(),
        },
        "parent_goal_id": None if parent_goal_id is None or not shows(parent_goal_id) else str(parent_goal_id),
        "supports": supports_view(objective, shows),
        "external_ref": objective.external_ref,
        "status": objective.status,
        "outcome": objective.outcome,
        "progress": objective.progress,
        "version": objective.version,
        "key_results": [key_result_fields(key_result) for key_result in objective.key_results.values()],
    }


def supports_view(objective: Objective, shows: LinkFilter = show_every_link) -> list[dict[str, Any]]:
    return [
        {"goal_id": str(link.goal_id), "key_result_id": None if link.key_result_id is None else str(link.key_result_id)}
        for link in objective.supports
        if shows(link.goal_id)
    ]


def key_result_view(objective: Objective, key_result: KeyResult) -> dict[str, Any]:
    """Return one key result with the id and version of its goal."""
    return {"goal_id": str(objective.id), "version": objective.version, **key_result_fields(key_result)}


def key_result_fields(key_result: KeyResult) -> dict[str, Any]:
    latest = key_result.latest_check_in
    return {
        "key_result_id": str(key_result.key_result_id),
        "title": key_result.title,
        "metric": key_result.metric,
        "start_value": key_result.start_value,
        "target_value": key_result.target_value,
        "unit": key_result.unit,
        "weight": key_result.weight,
        "direction": key_result.direction,
        "current_value": key_result.current_value,
        "progress": key_result.progress,
        "external_ref": key_result.external_ref,
        "check_in_count": len(key_result.check_ins),
        "status": None if latest is None else latest.status,
        "confidence": None if latest is None else latest.confidence,
        "last_check_in_at": None if latest is None else latest.occurred_at.isoformat(),
    }


def check_in_view(objective: Objective, key_result: KeyResult, check_in: CheckIn) -> dict[str, Any]:
    return {
        "check_in_id": str(check_in.check_in_id),
        "key_result_id": str(key_result.key_result_id),
        "goal_id": str(objective.id),
        "value": check_in.value,
        "progress": key_result.progress_of(check_in.value),
        "confidence": check_in.confidence,
        "status": check_in.status,
        "status_source": "manual" if check_in.status_overridden else "pace",
        "comment": check_in.comment,
        "actor_id": check_in.actor_id,
        "occurred_at": check_in.occurred_at.isoformat(),
    }


def check_in_history_view(objective: Objective, key_result: KeyResult) -> list[dict[str, Any]]:
    """Return every check-in of the key result, oldest event time first (equal times in recording order)."""
    ordered = sorted(key_result.check_ins, key=lambda check_in: check_in.occurred_at)
    return [check_in_view(objective, key_result, check_in) for check_in in ordered]
