"""Export an organisation's goals and people as the goals CSV and the people CSV (docs/okr-csv.md).

``spm-import`` reads both files back into another organisation, and the goals come out with the same
trees, owners, supports, progress and lifecycle. People are written by handle, so the export needs
the people directory: a goal owned by someone the directory lacks cannot be written.

The output is deterministic: objectives in tree order (each level sorted by ref) with their key
results after them, people by handle. Exporting an import of an export gives the same bytes.
"""

from __future__ import annotations

import argparse
import csv
import io
import logging
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from spm_local.directory import DirectoryError, read_directory
from spm_local.okr_csv import COLUMNS
from spm_local.people import Person, write_people

logger = logging.getLogger(__name__)

# Integral values below this bound are written without a fraction ("10", not "10.0"). Every other
# value is written as Python's shortest repr, which reads back to the same float.
MAX_PLAIN_INTEGER = 1e15


class ExportError(RuntimeError):
    """The organisation's goals cannot be written as a CSV that imports back to the same state."""


def format_number(value: float | None) -> str:
    if value is None:
        return ""
    if value.is_integer() and abs(value) < MAX_PLAIN_INTEGER:
        return str(int(value))
    return repr(value)


def goal_ref(goal: dict[str, Any]) -> str:
    """Return the ref a goal is exported under: its external_ref, or its id when it has none."""
    return goal["external_ref"] or goal["goal_id"]


def key_result_ref(key_result: dict[str, Any]) -> str:
    return key_result["external_ref"] or key_result["key_result_id"]


class GoalsExport:
    """Turns the goals of ``GET /goals`` and the directory's people into goals CSV rows."""

    def __init__(self, goals: list[dict[str, Any]], people: list[Person]) -> None:
        self.goals_by_id = {goal["goal_id"]: goal for goal in goals}
        self.handle_of = {person.person_id: person.handle for person in people}
        self._check_unique_refs(goals)

    def _check_unique_refs(self, goals: list[dict[str, Any]]) -> None:
        owner_of_ref: dict[str, str] = {}
        for goal in goals:
            refs = [goal_ref(goal), *(key_result_ref(key_result) for key_result in goal["key_results"])]
            for ref in refs:
                if ref in owner_of_ref:
                    raise ExportError(
                        f"ref {ref!r} is used in goal {owner_of_ref[ref]} and goal {goal['goal_id']}, but refs must be "
                        "unique in a goals CSV; give one of them another external_ref through the goals API"
                    )
                owner_of_ref[ref] = goal["goal_id"]

    def rows(self) -> list[dict[str, str]]:
        rows: list[dict[str, str]] = []
        for goal in self._tree_order():
            rows.append(self._objective_row(goal))
            rows.extend(self._key_result_row(goal, key_result) for key_result in goal["key_results"])
        return rows

    def _tree_order(self) -> list[dict[str, Any]]:
        children: dict[str | None, list[dict[str, Any]]] = {}
        for goal in self.goals_by_id.values():
            parent_id = goal["parent_goal_id"]
            if parent_id is not None and parent_id not in self.goals_by_id:
                raise ExportError(f"goal {goal_ref(goal)!r} has parent goal {parent_id}, which GET /goals did not return; "
                                  "export with an admin token, which sees every goal")
            children.setdefault(parent_id, []).append(goal)
        ordered: list[dict[str, Any]] = []
        pending = sorted(children.get(None, []), key=goal_ref, reverse=True)
        while pending:
            goal = pending.pop()
            ordered.append(goal)
            pending.extend(sorted(children.get(goal["goal_id"], []), key=goal_ref, reverse=True))
        if len(ordered) != len(self.goals_by_id):
            # Only goals whose parent links loop are never reached from a root.
            unreached = sorted(goal_ref(goal) for goal in self.goals_by_id.values() if goal not in ordered)
            raise ExportError(f"goals {', '.join(unreached)} are aligned under each other in a loop; "
                              "detach one with POST /goals/{goal_id}/align")
        return ordered

    def _handle(self, person_id: str, goal: dict[str, Any], role: str) -> str:
        handle = self.handle_of.get(person_id)
        if handle is None:
            raise ExportError(
                f"goal {goal_ref(goal)!r} ({goal['goal_id']}) has {role} {person_id}, who is not in the people "
                "directory; import the people first (spm-import --people PEOPLE_CSV --social-url URL)"
            )
        return handle

    def _supported_ref(self, goal: dict[str, Any], link: dict[str, Any]) -> str:
        target = self.goals_by_id.get(link["goal_id"])
        ref = None
        if target is not None and link["key_result_id"] is None:
            ref = goal_ref(target)
        elif target is not None:
            matches = [kr for kr in target["key_results"] if kr["key_result_id"] == link["key_result_id"]]
            ref = key_result_ref(matches[0]) if matches else None
        if ref is None:
            raise ExportError(f"goal {goal_ref(goal)!r} supports goal {link['goal_id']}, which GET /goals did not "
                              "return with that key result; export with an admin token, which sees every goal")
        if ";" in ref:
            raise ExportError(f"goal {goal_ref(goal)!r} supports {ref!r}, whose ';' would split the supports column; "
                              "give it an external_ref without ';'")
        return ref

    def _shared_cells(self, goal: dict[str, Any]) -> dict[str, str]:
        period = goal["period"]
        return {
            "team": goal["team"],
            "owner_handle": self._handle(goal["owner_id"], goal, "owner"),
            "period": period["name"],
            "period_start": period["start"],
            "period_end": period["end"],
        }

    def _objective_row(self, goal: dict[str, Any]) -> dict[str, str]:
        parent = self.goals_by_id.get(goal["parent_goal_id"]) if goal["parent_goal_id"] else None
        return {
            "ref": goal_ref(goal),
            "parent_ref": "" if parent is None else goal_ref(parent),
            "kind": "objective",
            "title": goal["title"],
            "contributing_teams": ";".join(goal["contributing_teams"]),
            **self._shared_cells(goal),
            "level": goal["level"],
            "visibility": goal["visibility"],
            "co_owner_handles": ";".join(self._handle(person_id, goal, "co-owner") for person_id in goal["co_owner_ids"]),
            "supports": ";".join(self._supported_ref(goal, link) for link in goal["supports"]),
            "status": goal["status"],
            "outcome": goal["outcome"] or "",
        }

    def _key_result_row(self, goal: dict[str, Any], key_result: dict[str, Any]) -> dict[str, str]:
        measured_at = key_result["last_check_in_at"]
        return {
            "ref": key_result_ref(key_result),
            "parent_ref": goal_ref(goal),
            "kind": "key_result",
            "title": key_result["title"],
            **self._shared_cells(goal),
            "metric": key_result["metric"],
            "start_value": format_number(key_result["start_value"]),
            "target_value": format_number(key_result["target_value"]),
            "unit": key_result["unit"] or "",
            "weight": format_number(key_result["weight"]),
            "current_value": "" if measured_at is None else format_number(key_result["current_value"]),
            "current_value_at": "" if measured_at is None else datetime.fromisoformat(measured_at).isoformat(),
        }


def write_goals(rows: list[dict[str, str]]) -> str:
    """Return the goals CSV text of ``rows``, with every column of the format and empty cells where a row has none."""
    output = io.StringIO()
    writer = csv.DictWriter(output, fieldnames=COLUMNS, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return output.getvalue()


def export_csvs(goals_client: httpx.Client, social_client: httpx.Client) -> tuple[str, str]:
    """Return the goals CSV and the people CSV of the tokens' organisation."""
    people = read_directory(social_client)
    response = goals_client.get("/goals")
    if response.status_code != 200:
        raise ExportError(f"reading the goals failed: GET /goals: {response.status_code} {response.text}")
    goals = response.json()
    goals_csv = write_goals(GoalsExport(goals, people).rows())
    logger.info("export finished goals=%s people=%s", len(goals), len(people))
    return goals_csv, write_people(people)


def _write_file(path: Path, text: str) -> None:
    # Written beside the target and renamed, so a failed export never leaves half a file.
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)


def main() -> None:
    """Export an organisation's goals and people (``spm-export``)."""
    parser = argparse.ArgumentParser(description="Write an organisation's goals CSV and people CSV from the goals and social APIs.")
    parser.add_argument("goals_csv", type=Path, help="goals CSV to write, as documented in docs/okr-csv.md")
    parser.add_argument("--people", type=Path, required=True, help="people CSV to write")
    parser.add_argument("--goals-url", required=True, help="base URL of the goals API, e.g. http://127.0.0.1:8101")
    parser.add_argument("--social-url", required=True, help="base URL of the social API, e.g. http://127.0.0.1:8102")
    parser.add_argument("--token", required=True, help="bearer token of an org admin (see spm-token --admin)")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    headers = {"Authorization": f"Bearer {arguments.token}"}
    try:
        with (
            httpx.Client(base_url=arguments.goals_url, headers=headers, timeout=120) as goals_client,
            httpx.Client(base_url=arguments.social_url, headers=headers, timeout=60) as social_client,
        ):
            goals_csv, people_csv = export_csvs(goals_client, social_client)
    except (ExportError, DirectoryError, httpx.HTTPError) as error:
        print(f"export failed: {error}; no file was written", file=sys.stderr)
        raise SystemExit(1) from None
    _write_file(arguments.goals_csv, goals_csv)
    _write_file(arguments.people, people_csv)
    print(f"wrote {arguments.goals_csv} and {arguments.people}")
