"""Score windows on event time: the last N days before ``as_of``, or one goal period up to ``as_of``."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from spm_scoring.history import Period

WEEK = timedelta(days=7)
LAST_MICROSECOND = timedelta(microseconds=1)
DAYS_LABEL = re.compile(r"^([1-9][0-9]{0,2})d$")
PERIOD_PREFIX = "period:"
RANGE_PREFIX = "range:"


class InvalidWindowError(ValueError):
    """Raised for a window that cannot be built; ``field`` names the request field to correct."""

    def __init__(self, message: str, field: str = "window") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class WindowSpec:
    """A window as requested: a number of days or a period name, before ``as_of`` is known."""

    days: int | None = None
    period_name: str | None = None

    @property
    def label(self) -> str:
        return f"{self.days}d" if self.days is not None else f"{PERIOD_PREFIX}{self.period_name}"


def parse_window(label: str) -> WindowSpec:
    matched = DAYS_LABEL.match(label)
    if matched:
        return WindowSpec(days=int(matched.group(1)))
    if label.startswith(PERIOD_PREFIX) and len(label) > len(PERIOD_PREFIX):
        return WindowSpec(period_name=label[len(PERIOD_PREFIX):])
    raise InvalidWindowError(f"window {label!r} is invalid; use a number of days such as '28d' or 'period:<period name>'")


@dataclass(frozen=True)
class Window:
    """The span of event time a score counts.

    A day window contains t when ``start < t <= end``; a period window also contains ``t == start``
    (midnight UTC of the period's first day). ``end`` is the score's ``as_of``, cut to the
    period's last microsecond for a period window.
    """

    label: str
    start: datetime
    end: datetime
    includes_start: bool = False

    def contains(self, moment: datetime) -> bool:
        if moment > self.end:
            return False
        return moment >= self.start if self.includes_start else moment > self.start

    @property
    def days(self) -> int:
        return max(0, math.ceil((self.end - self.start) / timedelta(days=1)))

    def weeks(self) -> list[Window]:
        """Cut the window into 7-day buckets counted back from ``end``; the earliest may be shorter."""
        buckets = []
        count = math.ceil((self.end - self.start) / WEEK) if self.end > self.start else 0
        for index in range(count):
            upper = self.end - index * WEEK
            lower = max(self.start, upper - WEEK)
            starts_window = lower == self.start
            buckets.append(Window(f"{self.label}#week{index}", lower, upper, self.includes_start and starts_window))
        return buckets


def day_window(days: int, as_of: datetime) -> Window:
    return Window(f"{days}d", as_of - timedelta(days=days), as_of)


def period_window(period: Period, as_of: datetime) -> Window:
    """Build the period's window up to ``as_of``; raises InvalidWindowError when ``as_of`` is before the period starts."""
    if as_of < period.starts_at:
        raise InvalidWindowError(
            f"as_of {as_of.isoformat()} is before period {period.name!r} starts on {period.start.isoformat()}; "
            "choose a later as_of or another window",
            field="as_of",
        )
    end = min(as_of, period.ends_before - LAST_MICROSECOND)
    return Window(f"{PERIOD_PREFIX}{period.name}", period.starts_at, end, includes_start=True)


def range_window(start: datetime, end: datetime) -> Window:
    """Build a window from ``start`` (included) to ``end``; raises InvalidWindowError unless ``start < end``."""
    if start >= end:
        raise InvalidWindowError(
            f"start {start.isoformat()} is not before the window's end {end.isoformat()}; "
            "give a start earlier than as_of (or than the org's latest event time when as_of is left out)",
            field="start",
        )
    label = f"{RANGE_PREFIX}{start.isoformat()}/{end.isoformat()}"
    return Window(label, start, end, includes_start=True)
