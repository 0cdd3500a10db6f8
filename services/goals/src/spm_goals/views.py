"""JSON representations of goals, key results and check-ins returned by the API."""

from __future__ import annotations

from typing import Any

from spm_goals.objective import CheckIn, KeyResult, Objective


def goal_view(objective: Objective) -> dict[str, Any]:
    return {
        "goal_id": str(objective.id),
        "org_id": objective.org_id,
        "title": objective.title,
        "owner_id": objective.owner_id,
        "team": objective.team,
        "contributing_teams": list(objective.contributing_teams),
        "period": {
            "name": objective.period.name,
            "start": objective.period.start.isoformat(),
            "end": objective.period.end.isoformat(),
        },
        "parent_goal_id": None if objective.parent_goal_id is None else str(objective.parent_goal_id),
        "external_ref": objective.external_ref,
        "progress": objective.progress,
        "version": objective.version,
        "key_results": [key_result_fields(key_result) for key_result in objective.key_results.values()],
    }


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
        "current_value": key_result.current_value,
        "progress": key_result.progress,
        "external_ref": key_result.external_ref,
        "check_in_count": len(key_result.check_ins),
        "last_check_in_at": None if latest is None else latest.occurred_at.isoformat(),
    }


def check_in_view(objective: Objective, key_result: KeyResult, check_in: CheckIn) -> dict[str, Any]:
    return {
        "check_in_id": str(check_in.check_in_id),
        "key_result_id": str(key_result.key_result_id),
        "goal_id": str(objective.id),
        "value": check_in.value,
        "progress": key_result.progress_of(check_in.value),
        "occurred_at": check_in.occurred_at.isoformat(),
    }
