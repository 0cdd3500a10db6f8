"""Parse and validate the goals CSV (docs/okr-csv.md) completely before anything is written."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from spm_local.okr_csv_optional import OPTIONAL_COLUMNS, RowDetails, check_optional_references, parse_optional_columns
from spm_local.okr_csv_values import OkrCsvError, parse_date, parse_number

__all__ = ["COLUMNS", "OkrCsvError", "OkrRow", "RowDetails", "read_okr_csv"]

REQUIRED_COLUMNS = (
    "ref", "parent_ref", "kind", "title", "team", "contributing_teams", "owner_handle",
    "period", "period_start", "period_end", "metric", "start_value", "target_value",
    "final_value", "final_progress", "published_outcome",
)
METRICS = ("number", "percent", "currency", "milestone")
# The goals API's own limits, checked here too so that a file the API would reject part-way
# through is rejected before the first request.
MAX_TITLE_LENGTH = 500
MAX_REF_LENGTH = 200
MAX_TEAM_LENGTH = 200
MAX_PERIOD_NAME_LENGTH = 100
MAX_CONTRIBUTING_TEAMS = 50
# Every column an export writes, in order.
COLUMNS = (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)


@dataclass(frozen=True)
class OkrRow:
    line: int
    ref: str
    parent_ref: str | None
    kind: str
    title: str
    team: str
    contributing_teams: tuple[str, ...]
    owner_handle: str
    period: str
    period_start: date
    period_end: date
    metric: str | None
    start_value: float | None
    target_value: float | None
    final_value: float | None
    final_progress: float | None
    published_outcome: str
    details: RowDetails = RowDetails()


def _parse_row(line: int, row: dict[str, str]) -> OkrRow:
    kind = row["kind"]
    if kind not in ("objective", "key_result"):
        raise OkrCsvError(line, f"kind {kind!r} is neither 'objective' nor 'key_result'")
    for column in ("ref", "title", "team", "owner_handle", "period"):
        if not row[column].strip():
            raise OkrCsvError(line, f"{column} is empty")
    for column, maximum in (("title", MAX_TITLE_LENGTH), ("ref", MAX_REF_LENGTH), ("team", MAX_TEAM_LENGTH),
                            ("period", MAX_PERIOD_NAME_LENGTH)):
        if len(row[column].strip()) > maximum:
            raise OkrCsvError(line, f"{column} is longer than {maximum} characters")
    contributing_teams = tuple(team.strip() for team in row["contributing_teams"].split(";") if team.strip())
    if len(contributing_teams) > MAX_CONTRIBUTING_TEAMS:
        raise OkrCsvError(line, f"contributing_teams names more than {MAX_CONTRIBUTING_TEAMS} teams")
    if any(len(team) > MAX_TEAM_LENGTH for team in contributing_teams):
        raise OkrCsvError(line, f"a team in contributing_teams is longer than {MAX_TEAM_LENGTH} characters")
    period_start = parse_date(row["period_start"], "period_start", line)
    period_end = parse_date(row["period_end"], "period_end", line)
    if period_end < period_start:
        raise OkrCsvError(line, f"period_end {period_end} is before period_start {period_start}")
    if period_start > date.today():
        # Objectives are recorded as happening on their period's first day, and no fact may be dated in the future.
        raise OkrCsvError(line, f"period_start {period_start} is in the future; import a period once it has started")
    is_key_result = kind == "key_result"
    metric = row["metric"] or None
    if is_key_result and metric not in METRICS:
        raise OkrCsvError(line, f"metric {row['metric']!r} is not one of {', '.join(METRICS)}")
    start_value = parse_number(row["start_value"], "start_value", line, is_key_result)
    target_value = parse_number(row["target_value"], "target_value", line, is_key_result)
    if is_key_result and start_value == target_value:
        raise OkrCsvError(line, "target_value equals start_value, so progress cannot be measured")
    if is_key_result and not row["parent_ref"].strip():
        raise OkrCsvError(line, "a key result needs parent_ref naming its objective")
    return OkrRow(
        line=line,
        ref=row["ref"].strip(),
        parent_ref=row["parent_ref"].strip() or None,
        kind=kind,
        title=row["title"].strip(),
        team=row["team"].strip(),
        contributing_teams=contributing_teams,
        owner_handle=row["owner_handle"].strip(),
        period=row["period"].strip(),
        period_start=period_start,
        period_end=period_end,
        metric=metric,
        start_value=start_value,
        target_value=target_value,
        final_value=parse_number(row["final_value"], "final_value", line, False),
        final_progress=parse_number(row["final_progress"], "final_progress", line, False),
        published_outcome=row["published_outcome"],
        details=parse_optional_columns(line, row, kind, row["ref"].strip(), row["owner_handle"].strip()),
    )


def _check_references(rows: list[OkrRow], known_handles: set[str] | None) -> None:
    by_ref: dict[str, OkrRow] = {}
    for row in rows:
        if row.ref in by_ref:
            raise OkrCsvError(row.line, f"ref {row.ref!r} repeats line {by_ref[row.ref].line}")
        by_ref[row.ref] = row
    for row in rows:
        if known_handles is not None and row.owner_handle not in known_handles:
            raise OkrCsvError(row.line, f"owner_handle {row.owner_handle!r} is not in the people file")
        if row.parent_ref is None:
            continue
        parent = by_ref.get(row.parent_ref)
        if parent is None:
            raise OkrCsvError(row.line, f"parent_ref {row.parent_ref!r} names no row of this file")
        if parent.kind != "objective":
            raise OkrCsvError(row.line, f"parent_ref {row.parent_ref!r} is a key result; a parent must be an objective")
    for row in rows:
        seen = {row.ref}
        parent_ref = row.parent_ref
        while parent_ref is not None:
            if parent_ref in seen:
                raise OkrCsvError(row.line, f"parent_ref chain of {row.ref!r} loops back to {parent_ref!r}")
            seen.add(parent_ref)
            parent_ref = by_ref[parent_ref].parent_ref


def read_okr_csv(path: Path, known_handles: set[str] | None = None) -> list[OkrRow]:
    """Return every row of the file, or raise OkrCsvError for the first problem found."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        line = path.read_bytes()[: error.start].count(b"\n") + 1
        raise OkrCsvError(line, f"byte {error.object[error.start]:#04x} is not UTF-8; save the file as UTF-8") from None
    with io.StringIO(text, newline="") as file:
        reader = csv.DictReader(file)
        missing = [column for column in REQUIRED_COLUMNS if column not in (reader.fieldnames or [])]
        if missing:
            raise OkrCsvError(1, f"header lacks the columns {', '.join(missing)}")
        header_length = len(reader.fieldnames or [])
        rows = []
        for row in reader:
            line = reader.line_num
            if None in row or any(value is None for value in row.values()):
                raise OkrCsvError(line, f"row has a different number of fields than the header's {header_length}")
            rows.append(_parse_row(line, row))
    if not rows:
        raise OkrCsvError(2, "the file has a header but no rows")
    _check_references(rows, known_handles)
    check_optional_references(rows, known_handles)
    return rows
