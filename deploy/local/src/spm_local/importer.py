"""Import a goals CSV through the goals HTTP API, like any other client, after its people CSV.

The whole file is validated first, so a malformed file writes nothing. Every row is sent with its
``ref`` as ``external_ref``. The goals service returns 200 with the existing goal or key result for
a ref it already has, so importing the same file again creates nothing twice. A check-in or a
lifecycle change that the stored goal already shows is skipped too.

The steps run in the order that reproduces the exported state: goals (parents first), key
results, one check-in per key result with a current value, support links, then closing and
archiving, which must come last because a closed goal takes no more check-ins.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass, field
from datetime import datetime, time, timezone
from pathlib import Path

import httpx

from spm_local.directory import DirectoryError, upload_people
from spm_local.okr_csv import OkrCsvError, OkrRow, read_okr_csv
from spm_local.people import PeopleCsvError, Person, person_id_for, read_people

logger = logging.getLogger(__name__)

# The calls that move a goal from its status after creation to the status in the file.
LIFECYCLE_STEPS = {
    ("draft", "active"): ("activate",),
    ("draft", "closed"): ("activate", "close"),
    ("draft", "archived"): ("activate", "close", "archive"),
    ("active", "closed"): ("close",),
    ("active", "archived"): ("close", "archive"),
    ("closed", "archived"): ("archive",),
}


@dataclass
class ImportResult:
    goal_ids: dict[str, str] = field(default_factory=dict)
    key_result_ids: dict[str, tuple[str, str]] = field(default_factory=dict)
    created: int = 0
    already_present: int = 0
    check_ins: int = 0
    supports: int = 0
    status_changes: int = 0
    goal_status: dict[str, str] = field(default_factory=dict)
    key_result_state: dict[str, dict] = field(default_factory=dict)


class ImportFailedError(RuntimeError):
    """The goals API rejected a row of a file that passed validation."""


def _start_of(day) -> str:  # type: ignore[no-untyped-def]
    return datetime.combine(day, time(9, 0), tzinfo=timezone.utc).isoformat()


def _objective_body(row: OkrRow, org_id: str, goal_ids: dict[str, str]) -> dict:
    body = {
        "title": row.title,
        "team": row.team,
        "owner_id": person_id_for(org_id, row.owner_handle),
        "contributing_teams": list(row.contributing_teams),
        "period": {"name": row.period, "start": row.period_start.isoformat(), "end": row.period_end.isoformat()},
        "parent_goal_id": goal_ids[row.parent_ref] if row.parent_ref else None,
        "external_ref": row.ref,
        "occurred_at": _start_of(row.period_start),
    }
    # Optional fields are sent only when the file sets them, so the API's defaults apply otherwise.
    details = row.details
    if details.level is not None:
        body["level"] = details.level
    if details.visibility is not None:
        body["visibility"] = details.visibility
    if details.co_owner_handles:
        body["co_owner_ids"] = [person_id_for(org_id, handle) for handle in details.co_owner_handles]
    if details.status == "draft":
        body["status"] = "draft"
    return body


def _key_result_body(row: OkrRow) -> dict:
    body = {
        "title": row.title,
        "metric": row.metric,
        "start_value": row.start_value,
        "target_value": row.target_value,
        "external_ref": row.ref,
        "occurred_at": _start_of(row.period_start),
    }
    if row.details.unit is not None:
        body["unit"] = row.details.unit
    if row.details.weight is not None:
        body["weight"] = row.details.weight
    return body


def _post(client: httpx.Client, path: str, body: dict | None, row: OkrRow, result: ImportResult | None = None) -> dict:
    response = client.post(path, json=body)
    if response.status_code not in (200, 201):
        raise ImportFailedError(f"line {row.line} ({row.ref}): POST {path}: {response.status_code} {response.text}")
    if result is not None and response.status_code == 201:
        result.created += 1
    elif result is not None:
        result.already_present += 1
    return response.json()


def _objectives_parents_first(rows: list[OkrRow]) -> list[OkrRow]:
    by_ref = {row.ref: row for row in rows}

    def depth(row: OkrRow) -> int:
        return 0 if row.parent_ref is None else 1 + depth(by_ref[row.parent_ref])

    objectives = [row for row in rows if row.kind == "objective"]
    return sorted(objectives, key=lambda row: (depth(row), row.line))


def _create_goals(client: httpx.Client, rows: list[OkrRow], org_id: str, result: ImportResult) -> None:
    for row in _objectives_parents_first(rows):
        goal = _post(client, "/goals", _objective_body(row, org_id, result.goal_ids), row, result)
        result.goal_ids[row.ref] = goal["goal_id"]
        result.goal_status[row.ref] = goal["status"]
    for row in rows:
        if row.kind != "key_result":
            continue
        goal_id = result.goal_ids[row.parent_ref]  # type: ignore[index]
        key_result = _post(client, f"/goals/{goal_id}/key-results", _key_result_body(row), row, result)
        result.key_result_ids[row.ref] = (goal_id, key_result["key_result_id"])
        result.key_result_state[row.ref] = key_result


def _already_measured(key_result: dict, value: float, measured_at: datetime) -> bool:
    last = key_result.get("last_check_in_at")
    return last is not None and key_result["current_value"] == value and datetime.fromisoformat(last) == measured_at


def _record_current_values(client: httpx.Client, rows: list[OkrRow], result: ImportResult) -> None:
    for row in rows:
        value, measured_at = row.details.current_value, row.details.current_value_at
        if value is None or measured_at is None:
            continue
        if _already_measured(result.key_result_state[row.ref], value, measured_at):
            continue
        goal_id, key_result_id = result.key_result_ids[row.ref]
        body = {"value": value, "occurred_at": measured_at.isoformat()}
        _post(client, f"/goals/{goal_id}/key-results/{key_result_id}/check-ins", body, row)
        result.check_ins += 1


def _add_supports(client: httpx.Client, rows: list[OkrRow], result: ImportResult) -> None:
    for row in rows:
        for supported in row.details.supports:
            if supported in result.key_result_ids:
                goal_id, key_result_id = result.key_result_ids[supported]
                body = {"goal_id": goal_id, "key_result_id": key_result_id}
            else:
                body = {"goal_id": result.goal_ids[supported]}
            _post(client, f"/goals/{result.goal_ids[row.ref]}/supports", body, row)
            result.supports += 1


def _apply_lifecycle(client: httpx.Client, rows: list[OkrRow], result: ImportResult) -> None:
    for row in rows:
        target = row.details.status
        if row.kind != "objective" or target is None:
            continue
        current = result.goal_status[row.ref]
        steps = LIFECYCLE_STEPS.get((current, target), ())
        if current != target and not steps:
            raise ImportFailedError(f"line {row.line} ({row.ref}): the goal is {current} and cannot become {target} "
                                    "by an import; change its status through the goals API")
        goal_id = result.goal_ids[row.ref]
        for step in steps:
            body = {"outcome": row.details.outcome} if step == "close" else None
            _post(client, f"/goals/{goal_id}/{step}", body, row)
            result.status_changes += 1
        result.goal_status[row.ref] = target


def import_rows(client: httpx.Client, rows: list[OkrRow], org_id: str) -> ImportResult:
    """Create the goals and key results, then record current values, support links and lifecycle changes."""
    result = ImportResult()
    _create_goals(client, rows, org_id, result)
    _record_current_values(client, rows, result)
    _add_supports(client, rows, result)
    _apply_lifecycle(client, rows, result)
    logger.info(
        "import finished org=%s created=%s already_present=%s check_ins=%s supports=%s status_changes=%s",
        org_id, result.created, result.already_present, result.check_ins, result.supports, result.status_changes,
    )
    return result


def _read_inputs(arguments: argparse.Namespace) -> tuple[list[Person] | None, list[OkrRow]]:
    """Validate both files completely, or exit with status 2 before anything is sent."""
    people = None
    if arguments.people:
        try:
            people = read_people(arguments.people, arguments.org)
        except PeopleCsvError as error:
            print(f"{arguments.people}: {error}; nothing was imported", file=sys.stderr)
            raise SystemExit(2) from None
    handles = None if people is None else {person.handle for person in people}
    try:
        rows = read_okr_csv(arguments.goals_csv, handles)
    except OkrCsvError as error:
        print(f"{arguments.goals_csv}: {error}; nothing was imported", file=sys.stderr)
        raise SystemExit(2) from None
    return people, rows


def main() -> None:
    """Import a people CSV and a goals CSV (``spm-import``)."""
    parser = argparse.ArgumentParser(description="Import a goals CSV through the goals API, after its people CSV.")
    parser.add_argument("goals_csv", type=Path, help="goals CSV, as documented in docs/okr-csv.md")
    parser.add_argument("--people", type=Path, help="people CSV whose handles owner_handle and co_owner_handles must name")
    parser.add_argument("--goals-url", required=True, help="base URL of the goals API, e.g. http://127.0.0.1:8101")
    parser.add_argument("--social-url", help="base URL of the social API, e.g. http://127.0.0.1:8102; "
                                             "with --people, the people are stored in its directory before the goals")
    parser.add_argument("--token", required=True, help="bearer token of the importing person, an org admin (see spm-token --admin)")
    parser.add_argument("--org", required=True, help="organisation id the token names")
    arguments = parser.parse_args()
    if arguments.social_url and not arguments.people:
        parser.error("--social-url needs --people, the people CSV to store in the directory")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    people, rows = _read_inputs(arguments)
    headers = {"Authorization": f"Bearer {arguments.token}"}
    try:
        if arguments.social_url and people is not None:
            with httpx.Client(base_url=arguments.social_url, headers=headers, timeout=60) as social:
                stored = upload_people(social, people)
            print(f"people: created {stored.created}, updated {stored.updated}, unchanged {stored.unchanged}, "
                  f"deactivated {stored.deactivated}")
        with httpx.Client(base_url=arguments.goals_url, headers=headers, timeout=30) as client:
            result = import_rows(client, rows, arguments.org)
    except (ImportFailedError, DirectoryError, httpx.HTTPError) as error:
        print(f"{arguments.goals_csv}: import stopped: {error}; rows before it were imported, and running "
              "the import again after fixing the cause skips them", file=sys.stderr)
        raise SystemExit(1) from None
    print(f"created {result.created}, already present {result.already_present}, check-ins {result.check_ins}, "
          f"support links {result.supports}, status changes {result.status_changes}")
