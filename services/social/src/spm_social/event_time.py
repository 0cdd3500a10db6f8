"""The ``occurred_at`` input every command accepts: an aware ISO 8601 datetime or a date, never future."""

from __future__ import annotations

from datetime import date, datetime, time, timezone
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator


def _date_to_utc_midnight(value: Any) -> Any:
    if isinstance(value, (int, float)):
        # pydantic would read a number as Unix seconds; the contract accepts ISO 8601 text only.
        raise ValueError("must be an ISO 8601 datetime with a timezone offset, or a date")
    if isinstance(value, str) and len(value) == 10:
        try:
            value = date.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime.combine(value, time.min, tzinfo=timezone.utc)
    return value


def _check_aware_and_past(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("must include a timezone offset, for example 2021-03-02T10:00:00Z, or be a date")
    in_utc = value.astimezone(timezone.utc)
    if in_utc > datetime.now(timezone.utc):
        raise ValueError("is in the future; send a time at or before now")
    return in_utc


EventTime = Annotated[datetime, BeforeValidator(_date_to_utc_midnight), AfterValidator(_check_aware_and_past)]
"""When the fact happened; a bare date means midnight UTC of that day."""


def event_time_or_now(occurred_at: datetime | None) -> datetime:
    return occurred_at or datetime.now(timezone.utc)
