"""Cell parsers of the goals CSV: each turns one cell into a value or raises OkrCsvError naming the line."""

from __future__ import annotations

import math
from datetime import date, datetime, timezone

# The goals API's own bound, checked here too so that a file the API would reject part-way
# through is rejected before the first request.
MAX_ABSOLUTE_VALUE = 1e15


class OkrCsvError(ValueError):
    """A malformed goals CSV; ``line`` is the 1-based line number in the file."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


def parse_number(raw: str, column: str, line: int, required: bool) -> float | None:
    if raw.strip() == "":
        if required:
            raise OkrCsvError(line, f"{column} is empty; a key result needs a number there")
        return None
    try:
        value = float(raw)
    except ValueError:
        raise OkrCsvError(line, f"{column} {raw!r} is not a number") from None
    if not math.isfinite(value):
        raise OkrCsvError(line, f"{column} {raw!r} is not a finite number")
    if abs(value) > MAX_ABSOLUTE_VALUE:
        raise OkrCsvError(line, f"{column} {raw!r} is outside -{MAX_ABSOLUTE_VALUE:g} to {MAX_ABSOLUTE_VALUE:g}")
    return value


def parse_date(raw: str, column: str, line: int) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise OkrCsvError(line, f"{column} {raw!r} is not a date in YYYY-MM-DD form") from None


def parse_event_time(raw: str, column: str, line: int) -> datetime:
    """Parse an ISO 8601 date and time with a UTC offset, rejecting times in the future."""
    try:
        moment = datetime.fromisoformat(raw.strip())
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise OkrCsvError(line, f"{column} {raw!r} is not an ISO 8601 date and time with an offset, "
                                "such as 2020-03-02T09:30:00+00:00")
    if moment > datetime.now(timezone.utc):
        raise OkrCsvError(line, f"{column} {raw!r} is in the future")
    return moment


def split_list(raw: str) -> tuple[str, ...]:
    """Split a ``;``-separated cell, dropping blanks around and between the items."""
    return tuple(item.strip() for item in raw.split(";") if item.strip())
