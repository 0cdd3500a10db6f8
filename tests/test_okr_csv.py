"""The goals CSV reader: the shipped dataset parses, and each kind of malformed file names its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from spm_local.okr_csv import OkrCsvError, read_okr_csv
from spm_local.paths import OKR_DATASET_DIR
from spm_local.people import read_people

DATASET = OKR_DATASET_DIR / "okrs.csv"


def test_shipped_dataset_parses_completely() -> None:
    handles = {person.handle for person in read_people(OKR_DATASET_DIR / "people.csv", "org")}
    rows = read_okr_csv(DATASET, handles)
    assert sum(row.kind == "objective" for row in rows) == 29
    assert sum(row.kind == "key_result" for row in rows) == 73
    assert sum(row.final_progress is not None for row in rows) == 46


def _write_with_replaced_line(tmp_path: Path, line_number: int, new_line: str) -> Path:
    lines = DATASET.read_text(encoding="utf-8").splitlines()
    lines[line_number - 1] = new_line
    path = tmp_path / "okrs.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _line(line_number: int) -> str:
    return DATASET.read_text(encoding="utf-8").splitlines()[line_number - 1]


@pytest.mark.parametrize(
    ("line_number", "change", "reason_part"),
    [
        (3, lambda line: line.replace(",percent,0,100,", ",percent,0,NaN,"), "not a finite number"),
        (3, lambda line: line.replace(",percent,0,100,", ",percent,5,5,"), "target_value equals start_value"),
        (3, lambda line: line.replace(",percent,0,100,", ",parsecs,0,100,"), "metric"),
        (3, lambda line: line.replace("CEO-1.KR1,CEO-1,", "CEO-1.KR1,NOPE-9,"), "parent_ref 'NOPE-9'"),
        (3, lambda line: line.replace("2020-04-30", "2020-13-01"), "period_end"),
        (3, lambda line: line.replace("2020-04-30", "2019-01-01"), "before period_start"),
        (3, lambda line: line.replace(",key_result,", ",keyresult,"), "kind"),
        (4, lambda line: line.replace("CEO-1.KR2,", "CEO-1.KR1,"), "repeats line 3"),
        (3, lambda line: line + ",extra", "fields"),
    ],
)
def test_malformed_row_names_line_and_reason(tmp_path: Path, line_number: int, change, reason_part: str) -> None:  # type: ignore[no-untyped-def]
    path = _write_with_replaced_line(tmp_path, line_number, change(_line(line_number)))
    with pytest.raises(OkrCsvError) as raised:
        read_okr_csv(path)
    assert raised.value.line == line_number
    assert reason_part in raised.value.reason


def test_unknown_owner_is_rejected_with_people_file(tmp_path: Path) -> None:
    path = _write_with_replaced_line(tmp_path, 2, _line(2).replace(",ceo,", ",nobody,"))
    with pytest.raises(OkrCsvError) as raised:
        read_okr_csv(path, {"ceo"})
    assert raised.value.line == 2
    assert "owner_handle 'nobody'" in raised.value.reason


def test_parent_cycle_is_rejected(tmp_path: Path) -> None:
    path = _write_with_replaced_line(tmp_path, 2, _line(2).replace("CEO-1,,objective", "CEO-1,SAL-1,objective"))
    with pytest.raises(OkrCsvError) as raised:
        read_okr_csv(path)
    assert "loops back" in raised.value.reason


def test_missing_column_is_rejected(tmp_path: Path) -> None:
    path = _write_with_replaced_line(tmp_path, 1, _line(1).replace(",metric,", ",unit,"))
    with pytest.raises(OkrCsvError) as raised:
        read_okr_csv(path)
    assert raised.value.line == 1
    assert "metric" in raised.value.reason


def test_non_utf8_file_names_line(tmp_path: Path) -> None:
    content = DATASET.read_bytes().replace(b"Grow ARR consistently", b"Grow ARR \xe9 consistently")
    path = tmp_path / "okrs.csv"
    path.write_bytes(content)
    with pytest.raises(OkrCsvError) as raised:
        read_okr_csv(path)
    assert raised.value.line == 2
    assert "not UTF-8" in raised.value.reason


@pytest.mark.parametrize(
    ("change", "reason_part"),
    [
        (lambda line: line.replace("2020-02-01,2020-04-30", "2999-02-01,2999-04-30"), "in the future"),
        (lambda line: line.replace(",percent,0,100,", ",percent,-1e308,1e308,"), "outside"),
        (lambda line: line.replace("CEO-1.KR1,", "CEO-1.KR1" + "x" * 200 + ","), "ref is longer"),
    ],
    ids=["future-period", "huge-values", "long-ref"],
)
def test_rows_the_api_would_reject_fail_validation(tmp_path: Path, change, reason_part: str) -> None:  # type: ignore[no-untyped-def]
    path = _write_with_replaced_line(tmp_path, 3, change(_line(3)))
    with pytest.raises(OkrCsvError) as raised:
        read_okr_csv(path)
    assert raised.value.line == 3
    assert reason_part in raised.value.reason
