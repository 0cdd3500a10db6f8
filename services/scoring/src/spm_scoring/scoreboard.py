"""Model v2 scores on request: loads an organisation's facts, resolves the window and caches the result.

A cached result is keyed by the organisation's revision (the number of events applied to it), so
an event applied by the worker makes the next request compute afresh.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select

from spm_scoring.activities import as_utc
from spm_scoring.engine import OrgScores, score_org
from spm_scoring.fact_store import load_facts, read_org_revision
from spm_scoring.history import OrgHistory
from spm_scoring.model import ScoringModelV2
from spm_scoring.tables import ScoringTables
from spm_scoring.windows import (
    InvalidWindowError,
    Window,
    WindowSpec,
    day_window,
    parse_window,
    period_window,
    range_window,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class OrgSnapshot:
    """An organisation's facts at one revision, and the latest event time over every event type."""

    revision: int
    history: OrgHistory
    latest_event_time: datetime | None


class Scoreboard:
    def __init__(self, engine: Engine, tables: ScoringTables, cache_size: int = 32) -> None:
        self.engine = engine
        self.tables = tables
        self.cache_size = cache_size
        self._lock = threading.Lock()
        self._snapshots: OrderedDict[str, OrgSnapshot] = OrderedDict()
        self._scores: OrderedDict[tuple[str, int, str, str, datetime], OrgScores] = OrderedDict()

    def snapshot(self, org_id: str) -> OrgSnapshot:
        """Return the org's facts, reloading them only when the org's revision has moved."""
        with self.engine.connect() as connection:
            # The revision is read first, so the facts loaded after it are at least that recent.
            revision = read_org_revision(connection, self.tables.v2, org_id)
            with self._lock:
                cached = self._snapshots.get(org_id)
            if cached is not None and cached.revision == revision:
                return cached
            clock = self.tables.org_clock
            latest = connection.execute(select(clock.c.latest_event_time).where(clock.c.org_id == org_id)).scalar()
            history = OrgHistory(org_id, load_facts(connection, self.tables.v2, org_id))
        snapshot = OrgSnapshot(revision, history, None if latest is None else as_utc(latest))
        with self._lock:
            self._snapshots[org_id] = snapshot
            self._snapshots.move_to_end(org_id)
            while len(self._snapshots) > self.cache_size:
                self._snapshots.popitem(last=False)
        logger.debug("loaded facts org_id=%s revision=%s facts=%s", org_id, revision, len(history.facts))
        return snapshot

    def resolve_window(
        self,
        snapshot: OrgSnapshot,
        model: ScoringModelV2,
        label: str | None,
        as_of: datetime | None,
        start: datetime | None = None,
    ) -> Window:
        """Turn a window label, or a ``start``, and an optional ``as_of`` into a window; raises InvalidWindowError."""
        end = as_utc(as_of) if as_of is not None else snapshot.latest_event_time
        if end is None:
            raise InvalidWindowError("the organisation has no events yet, so there is no default as_of; give as_of", field="as_of")
        if start is not None:
            if label:
                raise InvalidWindowError("window and start were both given; give one of them", field="start")
            return range_window(as_utc(start), end)
        spec = parse_window(label) if label else WindowSpec(days=model.default_window_days)
        if spec.days is not None:
            if spec.days not in model.windows_days:
                allowed = ", ".join(f"{days}d" for days in model.windows_days)
                raise InvalidWindowError(f"window {spec.label!r} is not in this model; use one of {allowed} or period:<name>")
            return day_window(spec.days, end)
        periods = snapshot.history.periods()
        period = periods.get(spec.period_name or "")
        if period is None:
            known = ", ".join(sorted(periods)) or "none yet"
            raise InvalidWindowError(f"period {spec.period_name!r} not found among the organisation's goals; known periods: {known}")
        return period_window(period, end)

    def org_scores(self, snapshot: OrgSnapshot, model_id: str, model: ScoringModelV2, window: Window) -> OrgScores:
        key = (snapshot.history.org_id, snapshot.revision, model_id, window.label, window.end)
        with self._lock:
            cached = self._scores.get(key)
            if cached is not None:
                self._scores.move_to_end(key)
                return cached
        scores = score_org(snapshot.history, model, model_id, window)
        with self._lock:
            self._scores[key] = scores
            while len(self._scores) > self.cache_size:
                self._scores.popitem(last=False)
        return scores
