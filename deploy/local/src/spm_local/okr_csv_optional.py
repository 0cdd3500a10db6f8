"""The optional columns of the goals CSV, which carry a goal's state beyond its plan.

Objectives may set level, visibility, co-owners, the goals and key results they support, and their
lifecycle status with its outcome. Key results may set unit, weight and their current value with
the time it was measured. A file without these columns imports as before: team goals visible to
the organisation, active, with every key result at its start value.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timezone
from typing import TYPE_CHECKING, Any

from spm_local.okr_csv_values import OkrCsvError, parse_event_time, parse_number, split_list

if TYPE_CHECKING:
    from spm_local.okr_csv import OkrRow

OPTIONAL_COLUMNS = (
    "level", "visibility", "co_owner_handles", "supports", "unit", "weight",
    "current_value", "current_value_at", "status", "outcome",
)
OBJECTIVE_COLUMNS = ("level", "visibility", "co_owner_handles", "supports", "status", "outcome")
KEY_RESULT_COLUMNS = ("unit", "weight", "current_value", "current_value_at")
LEVELS = ("company", "team", "person")
VISIBILITIES = ("organisation", "team", "private")
STATUSES = ("draft", "active", "closed", "archived")
OUTCOMES = ("achieved", "partially", "missed")
# The goals API's own limits.
MAX_CO_OWNERS = 20
MAX_SUPPORTS = 20
MAX_UNIT_LENGTH = 50
MAX_WEIGHT = 1000.0


@dataclass(frozen=True)
class RowDetails:
    """The optional cells of one row, parsed; None or empty where the file leaves them out."""

    level: str | None = None
    visibility: str | None = None
    co_owner_handles: tuple[str, ...] = ()
    supports: tuple[str, ...] = ()
    unit: str | None = None
    weight: float | None = None
    current_value: float | None = None
    current_value_at: datetime | None = None
    status: str | None = None
    outcome: str | None = None


def _one_of(value: str, column: str, allowed: tuple[str, ...], line: int) -> str | None:
    if not value:
        return None
    if value not in allowed:
        raise OkrCsvError(line, f"{column} {value!r} is not one of {', '.join(allowed)}")
    return value


def _unique_list(raw: str, column: str, maximum: int, line: int) -> tuple[str, ...]:
    items = split_list(raw)
    if len(items) > maximum:
        raise OkrCsvError(line, f"{column} names more than {maximum} entries")
    repeated = sorted({item for item in items if items.count(item) > 1})
    if repeated:
        raise OkrCsvError(line, f"{column} repeats {repeated[0]!r}")
    return items


def parse_optional_columns(line: int, row: dict[str, str], kind: str, ref: str, owner_handle: str) -> RowDetails:
    """Parse the optional cells of one row, rejecting cells that do not apply to its kind."""

    def cell(column: str) -> str:
        return (row.get(column) or "").strip()

    not_applicable = KEY_RESULT_COLUMNS if kind == "objective" else OBJECTIVE_COLUMNS
    for column in not_applicable:
        if cell(column):
            other = "key results" if kind == "objective" else "objectives"
            raise OkrCsvError(line, f"{column} applies to {other} only; leave it empty on this {kind.replace('_', ' ')}")
    if kind == "objective":
        return _objective_values(line, cell, ref, owner_handle)
    return _key_result_values(line, cell)


def _objective_values(line: int, cell: Any, ref: str, owner_handle: str) -> RowDetails:
    co_owners = _unique_list(cell("co_owner_handles"), "co_owner_handles", MAX_CO_OWNERS, line)
    if owner_handle in co_owners:
        raise OkrCsvError(line, f"co_owner_handles names the owner {owner_handle!r}; an owner is not also a co-owner")
    supports = _unique_list(cell("supports"), "supports", MAX_SUPPORTS, line)
    if ref in supports:
        raise OkrCsvError(line, f"supports names the row's own ref {ref!r}; a goal cannot support itself")
    status = _one_of(cell("status"), "status", STATUSES, line)
    outcome = _one_of(cell("outcome"), "outcome", OUTCOMES, line)
    if status in ("closed", "archived") and outcome is None:
        raise OkrCsvError(line, f"outcome is empty; a {status} objective needs one of {', '.join(OUTCOMES)}")
    if status not in ("closed", "archived") and outcome is not None:
        raise OkrCsvError(line, f"outcome {outcome!r} is set, but only a closed or archived objective has an outcome")
    return RowDetails(
        level=_one_of(cell("level"), "level", LEVELS, line),
        visibility=_one_of(cell("visibility"), "visibility", VISIBILITIES, line),
        co_owner_handles=co_owners,
        supports=supports,
        status=status,
        outcome=outcome,
    )


def _key_result_values(line: int, cell: Any) -> RowDetails:
    unit = cell("unit") or None
    if unit is not None and len(unit) > MAX_UNIT_LENGTH:
        raise OkrCsvError(line, f"unit is longer than {MAX_UNIT_LENGTH} characters")
    weight = parse_number(cell("weight"), "weight", line, required=False)
    if weight is not None and not 0 < weight <= MAX_WEIGHT:
        raise OkrCsvError(line, f"weight {weight:g} is not above 0 and at most {MAX_WEIGHT:g}")
    current_value = parse_number(cell("current_value"), "current_value", line, required=False)
    current_value_at = None
    if cell("current_value_at"):
        current_value_at = parse_event_time(cell("current_value_at"), "current_value_at", line)
    if (current_value is None) != (current_value_at is None):
        raise OkrCsvError(line, "current_value and current_value_at go together; fill both or neither")
    return RowDetails(unit=unit, weight=weight, current_value=current_value, current_value_at=current_value_at)


def check_optional_references(rows: list[OkrRow], known_handles: set[str] | None) -> None:
    """Check the optional cells that refer to other rows or to the people: co-owners, supported refs, check-in times, cycles."""
    by_ref = {row.ref: row for row in rows}
    for row in rows:
        for handle in row.details.co_owner_handles:
            if known_handles is not None and handle not in known_handles:
                raise OkrCsvError(row.line, f"co_owner_handles names {handle!r}, who is not in the people file")
        for supported in row.details.supports:
            target = by_ref.get(supported)
            if target is None:
                raise OkrCsvError(row.line, f"supports names {supported!r}, which is not found among the refs of this file")
            if target.kind == "key_result" and target.parent_ref == row.ref:
                raise OkrCsvError(row.line, f"supports names {supported!r}, a key result of this objective itself")
        if row.kind == "key_result" and row.parent_ref is not None:
            _check_inside_period(row, by_ref[row.parent_ref])
    _check_no_cycle(rows, by_ref)


def _check_inside_period(row: OkrRow, objective: OkrRow) -> None:
    measured_at = row.details.current_value_at
    first_moment = datetime.combine(objective.period_start, time.min, tzinfo=timezone.utc)
    last_moment = datetime.combine(objective.period_end, time(23, 59, 59, 999000), tzinfo=timezone.utc)
    if measured_at is not None and not first_moment <= measured_at <= last_moment:
        raise OkrCsvError(
            row.line,
            f"current_value_at {measured_at.isoformat()} is outside the period of objective {objective.ref!r} "
            f"({objective.period_start} to {objective.period_end}, UTC)",
        )


def _objectives_above(row: OkrRow, by_ref: dict[str, OkrRow]) -> list[str]:
    """Return the refs of the objectives a row is aligned under or supports (a key result counts as its objective)."""
    above = [] if row.parent_ref is None else [row.parent_ref]
    for supported in row.details.supports:
        target = by_ref[supported]
        above.append(target.ref if target.kind == "objective" else target.parent_ref)  # type: ignore[arg-type]
    return above


def _check_no_cycle(rows: list[OkrRow], by_ref: dict[str, OkrRow]) -> None:
    """Reject a loop through parent_ref and supports together, which the goals API refuses."""
    visiting, done = set(), set()
    for start in (row for row in rows if row.kind == "objective"):
        if start.ref in done:
            continue
        visiting.add(start.ref)
        stack = [(start.ref, iter(_objectives_above(start, by_ref)))]
        while stack:
            ref, pending = stack[-1]
            above = next(pending, None)
            if above is None:
                visiting.discard(ref)
                done.add(ref)
                stack.pop()
            elif above in visiting:
                raise OkrCsvError(by_ref[above].line, f"parent_ref and supports of {above!r} lead back to it")
            elif above not in done:
                visiting.add(above)
                stack.append((above, iter(_objectives_above(by_ref[above], by_ref))))
