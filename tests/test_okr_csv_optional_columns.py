"""The goals CSV's optional columns: they parse, and each kind of invalid cell names its line and reason."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from spm_local.okr_csv import COLUMNS, OkrCsvError, read_okr_csv
from spm_local.paths import OKR_DATASET_DIR

DATASET = OKR_DATASET_DIR / "okrs.csv"
# Lines of the shipped dataset used below.
CEO_1, CEO_1_KR1, CEO_2, SAL_1 = 2, 3, 6, 10


def dataset_with(tmp_path: Path, changes: dict[int, dict[str, str]]) -> Path:
    """Write the dataset with every column of the format, changing the given cells of the given lines."""
    with DATASET.open(newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    for line, cells in changes.items():
        rows[line - 2].update(cells)
    output = io.StringIO()
    writer = csv.DictWriter(output, fieldnames=COLUMNS, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path = tmp_path / "okrs.csv"
    path.write_text(output.getvalue(), encoding="utf-8")
    return path


def test_optional_columns_parse(tmp_path: Path) -> None:
    path = dataset_with(tmp_path, {
        CEO_1: {"level": "company", "visibility": "private", "co_owner_handles": "executive-1; vp-eng",
                "supports": "ENG-1.KR1", "status": "closed", "outcome": "partially"},
        CEO_1_KR1: {"unit": "USD", "weight": "2.5", "current_value": "40", "current_value_at": "2020-03-01T10:00:00+02:00"},
    })

    rows = {row.ref: row for row in read_okr_csv(path, {"ceo", "executive-1", "vp-eng", "head-of-sales", "vp-marketing",
                                                        "head-of-ce", "vp-product", "lead-distribution", "lead-code-intel",
                                                        "lead-web", "lead-core-services", "head-of-ops", "head-of-people"})}

    objective, key_result = rows["CEO-1"].details, rows["CEO-1.KR1"].details
    assert (objective.level, objective.visibility) == ("company", "private")
    assert objective.co_owner_handles == ("executive-1", "vp-eng")
    assert objective.supports == ("ENG-1.KR1",)
    assert (objective.status, objective.outcome) == ("closed", "partially")
    assert (key_result.unit, key_result.weight, key_result.current_value) == ("USD", 2.5, 40)
    assert key_result.current_value_at.isoformat() == "2020-03-01T10:00:00+02:00"  # type: ignore[union-attr]
    assert rows["SAL-1"].details.level is None


def test_dataset_without_optional_columns_has_empty_details() -> None:
    rows = read_okr_csv(DATASET)

    assert all(row.details.status is None and row.details.current_value is None for row in rows)


@pytest.mark.parametrize(
    ("line", "cells", "reason_part"),
    [
        (CEO_1, {"level": "region"}, "level 'region' is not one of company, team, person"),
        (CEO_1, {"visibility": "secret"}, "visibility 'secret' is not one of"),
        (CEO_1_KR1, {"visibility": "private"}, "visibility applies to objectives only"),
        (CEO_1, {"weight": "2"}, "weight applies to key results only"),
        (CEO_1, {"co_owner_handles": "vp-eng;ceo"}, "co_owner_handles names the owner 'ceo'"),
        (CEO_1, {"co_owner_handles": "vp-eng;vp-eng"}, "co_owner_handles repeats 'vp-eng'"),
        (CEO_1, {"co_owner_handles": ";".join(f"p{index}" for index in range(21))}, "more than 20"),
        (CEO_1, {"supports": "NOPE-1"}, "supports names 'NOPE-1', which is not found among the refs"),
        (CEO_1, {"supports": "CEO-1"}, "cannot support itself"),
        (CEO_1, {"supports": "CEO-1.KR2"}, "a key result of this objective itself"),
        (CEO_1, {"supports": "SAL-1"}, "lead back to it"),
        (CEO_1, {"status": "done"}, "status 'done' is not one of draft, active, closed, archived"),
        (CEO_1, {"status": "archived"}, "outcome is empty; a archived objective needs one"),
        (CEO_1, {"status": "active", "outcome": "achieved"}, "only a closed or archived objective has an outcome"),
        (CEO_1, {"status": "closed", "outcome": "great"}, "outcome 'great' is not one of"),
        (CEO_1_KR1, {"weight": "0"}, "weight 0 is not above 0"),
        (CEO_1_KR1, {"weight": "1001"}, "at most 1000"),
        (CEO_1_KR1, {"weight": "heavy"}, "weight 'heavy' is not a number"),
        (CEO_1_KR1, {"unit": "u" * 51}, "unit is longer than 50"),
        (CEO_1_KR1, {"current_value": "5"}, "fill both or neither"),
        (CEO_1_KR1, {"current_value_at": "2020-03-01T10:00:00Z"}, "fill both or neither"),
        (CEO_1_KR1, {"current_value": "NaN", "current_value_at": "2020-03-01T10:00:00Z"}, "not a finite number"),
        (CEO_1_KR1, {"current_value": "5", "current_value_at": "2020-03-01T10:00:00"}, "with an offset"),
        (CEO_1_KR1, {"current_value": "5", "current_value_at": "yesterday"}, "with an offset"),
        (CEO_1_KR1, {"current_value": "5", "current_value_at": "2999-03-01T10:00:00Z"}, "in the future"),
        (CEO_1_KR1, {"current_value": "5", "current_value_at": "2020-01-31T23:59:59Z"}, "outside the period of objective 'CEO-1'"),
        (CEO_1_KR1, {"current_value": "5", "current_value_at": "2020-04-30T23:30:00-01:00"}, "outside the period"),
        (CEO_1_KR1, {"status": "active"}, "status applies to objectives only"),
    ],
)
def test_invalid_optional_cell_names_line_and_reason(
    tmp_path: Path, line: int, cells: dict[str, str], reason_part: str
) -> None:
    path = dataset_with(tmp_path, {line: cells})

    with pytest.raises(OkrCsvError) as raised:
        read_okr_csv(path)

    assert raised.value.line == line
    assert reason_part in raised.value.reason


def test_unknown_co_owner_is_rejected_with_people_file(tmp_path: Path) -> None:
    path = dataset_with(tmp_path, {SAL_1: {"co_owner_handles": "nobody"}})
    handles = {row.owner_handle for row in read_okr_csv(DATASET)}

    with pytest.raises(OkrCsvError) as raised:
        read_okr_csv(path, handles)

    assert raised.value.line == SAL_1
    assert "co_owner_handles names 'nobody', who is not in the people file" in raised.value.reason


def test_support_loop_through_key_result_is_rejected(tmp_path: Path) -> None:
    path = dataset_with(tmp_path, {CEO_1: {"supports": "ENG-1.KR1"}, SAL_1: {"supports": "CEO-2.KR1"}, CEO_2: {"supports": "SAL-1"}})

    with pytest.raises(OkrCsvError) as raised:
        read_okr_csv(path)

    assert raised.value.line in (CEO_1, SAL_1, CEO_2)
    assert "lead back to it" in raised.value.reason
