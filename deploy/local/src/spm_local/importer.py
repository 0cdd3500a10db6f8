"""Import a goals CSV through the goals HTTP API, like any other client.

The whole file is validated first, so a malformed file writes nothing. Every row is sent with its
``ref`` as ``external_ref``. The goals service returns 200 with the existing goal or key result for
a ref it already has, so importing the same file again creates nothing twice.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass, field
from datetime import datetime, time, timezone
from pathlib import Path

import httpx

from spm_local.okr_csv import OkrCsvError, OkrRow, read_okr_csv
from spm_local.people import person_id_for, read_people

logger = logging.getLogger(__name__)


@dataclass
class ImportResult:
    goal_ids: dict[str, str] = field(default_factory=dict)
    key_result_ids: dict[str, tuple[str, str]] = field(default_factory=dict)
    created: int = 0
    already_present: int = 0


class ImportFailedError(RuntimeError):
    """The goals API rejected a row of a file that passed validation."""


def _start_of(day) -> str:  # type: ignore[no-untyped-def]
    return datetime.combine(day, time(9, 0), tzinfo=timezone.utc).isoformat()


def _objective_body(row: OkrRow, org_id: str, goal_ids: dict[str, str]) -> dict:
    return {
        "title": row.title,
        "team": row.team,
        "owner_id": person_id_for(org_id, row.owner_handle),
        "contributing_teams": list(row.contributing_teams),
        "period": {"name": row.period, "start": row.period_start.isoformat(), "end": row.period_end.isoformat()},
        "parent_goal_id": goal_ids[row.parent_ref] if row.parent_ref else None,
        "external_ref": row.ref,
        "occurred_at": _start_of(row.period_start),
    }


def _key_result_body(row: OkrRow) -> dict:
    return {
        "title": row.title,
        "metric": row.metric,
        "start_value": row.start_value,
        "target_value": row.target_value,
        "external_ref": row.ref,
        "occurred_at": _start_of(row.period_start),
    }


def _post(client: httpx.Client, path: str, body: dict, row: OkrRow, result: ImportResult) -> dict:
    response = client.post(path, json=body)
    if response.status_code not in (200, 201):
        raise ImportFailedError(f"line {row.line} ({row.ref}): {response.status_code} {response.text}")
    if response.status_code == 201:
        result.created += 1
    else:
        result.already_present += 1
    return response.json()


def _objectives_parents_first(rows: list[OkrRow]) -> list[OkrRow]:
    by_ref = {row.ref: row for row in rows}

    def depth(row: OkrRow) -> int:
        return 0 if row.parent_ref is None else 1 + depth(by_ref[row.parent_ref])

    objectives = [row for row in rows if row.kind == "objective"]
    return sorted(objectives, key=lambda row: (depth(row), row.line))


def import_rows(client: httpx.Client, rows: list[OkrRow], org_id: str) -> ImportResult:
    """Create the objectives (parents first), then their key results."""
    result = ImportResult()
    for row in _objectives_parents_first(rows):
        goal = _post(client, "/goals", _objective_body(row, org_id, result.goal_ids), row, result)
        result.goal_ids[row.ref] = goal["goal_id"]
    for row in rows:
        if row.kind != "key_result":
            continue
        goal_id = result.goal_ids[row.parent_ref]  # type: ignore[index]
        key_result = _post(client, f"/goals/{goal_id}/key-results", _key_result_body(row), row, result)
        result.key_result_ids[row.ref] = (goal_id, key_result["key_result_id"])
    logger.info("import finished org=%s created=%s already_present=%s", org_id, result.created, result.already_present)
    return result


def main() -> None:
    """Import a goals CSV (``spm-import``)."""
    parser = argparse.ArgumentParser(description="Import a goals CSV through the goals API.")
    parser.add_argument("goals_csv", type=Path, help="goals CSV, as documented in docs/okr-csv.md")
    parser.add_argument("--people", type=Path, help="people CSV whose handles owner_handle must name")
    parser.add_argument("--goals-url", required=True, help="base URL of the goals API, e.g. http://127.0.0.1:8101")
    parser.add_argument("--token", required=True, help="bearer token of the importing person (see spm-token)")
    parser.add_argument("--org", required=True, help="organisation id the token names")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    handles = {person.handle for person in read_people(arguments.people, arguments.org)} if arguments.people else None
    try:
        rows = read_okr_csv(arguments.goals_csv, handles)
    except OkrCsvError as error:
        print(f"{arguments.goals_csv}: {error}; nothing was imported", file=sys.stderr)
        raise SystemExit(2) from None
    headers = {"Authorization": f"Bearer {arguments.token}"}
    with httpx.Client(base_url=arguments.goals_url, headers=headers, timeout=30) as client:
        try:
            result = import_rows(client, rows, arguments.org)
        except (ImportFailedError, httpx.HTTPError) as error:
            print(f"{arguments.goals_csv}: import stopped: {error}; rows before it were imported, and running "
                  "the import again after fixing the cause skips them", file=sys.stderr)
            raise SystemExit(1) from None
    print(f"created {result.created}, already present {result.already_present}")
