"""Replays: a model scored over the stored history into a result set of its own.

A replay computes every person, team and goal of an organisation for one model, window and
``as_of`` (such as "period FY21-Q1 under v2.1") and stores the results under a replay id. It
reads the facts and writes only the replay tables, so live scores, the active model and the
published score states stay as they are.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import Engine, insert, select

from spm_scoring.activities import as_utc
from spm_scoring.engine import SubjectScores, score_org
from spm_scoring.explanations import explained
from spm_scoring.model_store import ModelStore
from spm_scoring.scoreboard import Scoreboard
from spm_scoring.v2_tables import V2Tables

logger = logging.getLogger(__name__)


class ReplayNotSupportedError(ValueError):
    """Raised for a replay under model v1, which scores only the live 28-day window of people."""


@dataclass(frozen=True)
class ReplayRecord:
    replay_id: str
    org_id: str
    model_id: str
    window: str
    as_of: datetime
    org_revision: int
    requested_by: str
    created_at: datetime


@dataclass(frozen=True)
class ReplayResult:
    subject_kind: str
    subject_id: str
    body: dict


class ReplayStore:
    def __init__(self, engine: Engine, tables: V2Tables) -> None:
        self.engine = engine
        self.tables = tables

    def run(
        self,
        scoreboard: Scoreboard,
        models: ModelStore,
        org_id: str,
        model_id: str,
        window_label: str | None,
        as_of: datetime | None,
        requested_by: str,
        start: datetime | None = None,
    ) -> ReplayRecord:
        """Score the org's history under ``model_id`` and store the results; raises InvalidWindowError, UnknownModelError.

        A ``start`` replaces the window label with the custom window from ``start`` to ``as_of``.
        """
        model = models.resolve(org_id, model_id)
        if model.definition is None:
            raise ReplayNotSupportedError("model v1 cannot be replayed; choose v2 or a stored revision such as v2.1")

        snapshot = scoreboard.snapshot(org_id)
        window = scoreboard.resolve_window(snapshot, model.definition, window_label, as_of, start)
        scores = score_org(snapshot.history, model.definition, model.model_id, window)
        record = ReplayRecord(
            replay_id=str(uuid.uuid4()),
            org_id=org_id,
            model_id=model.model_id,
            window=window.label,
            as_of=window.end,
            org_revision=snapshot.revision,
            requested_by=requested_by,
            created_at=datetime.now(timezone.utc),
        )

        limit = model.definition.explanation_events
        rows = [
            {
                "replay_id": record.replay_id,
                "subject_kind": subject.subject_kind,
                "subject_id": subject.subject_id,
                "body": json.dumps(_subject_body(subject, limit), sort_keys=True),
            }
            for subject in scores.subjects()
        ]

        with self.engine.begin() as connection:
            connection.execute(insert(self.tables.score_replays).values(**record.__dict__))
            if rows:
                connection.execute(insert(self.tables.replay_results), rows)
        logger.info(
            "replayed org_id=%s model_id=%s window=%s as_of=%s replay_id=%s subjects=%s",
            org_id, model.model_id, window.label, window.end.isoformat(), record.replay_id, len(rows),
        )
        return record

    def find(self, org_id: str, replay_id: str) -> ReplayRecord | None:
        table = self.tables.score_replays
        with self.engine.connect() as connection:
            row = connection.execute(
                select(table).where(table.c.org_id == org_id, table.c.replay_id == replay_id)
            ).first()
        return None if row is None else _record(row)

    def list_replays(self, org_id: str) -> list[ReplayRecord]:
        table = self.tables.score_replays
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(table).where(table.c.org_id == org_id).order_by(table.c.created_at, table.c.replay_id)
            ).all()
        return [_record(row) for row in rows]

    def results(self, replay_id: str) -> list[ReplayResult]:
        table = self.tables.replay_results
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(table).where(table.c.replay_id == replay_id).order_by(table.c.subject_kind, table.c.subject_id)
            ).all()
        return [ReplayResult(row.subject_kind, row.subject_id, json.loads(row.body)) for row in rows]


def _subject_body(subject: SubjectScores, events_per_component: int) -> dict:
    """Store each score with its top events unfiltered; the reader's goal filter applies when it is read."""

    def every_goal(_goal_id: str | None) -> bool:
        return True

    return {
        "team": subject.team,
        "member_count": subject.member_count,
        "performance": explained(subject.performance, every_goal, events_per_component).model_dump(mode="json"),
        "collaboration": explained(subject.collaboration, every_goal, events_per_component).model_dump(mode="json"),
    }


def _record(row) -> ReplayRecord:  # type: ignore[no-untyped-def]
    return ReplayRecord(
        replay_id=row.replay_id,
        org_id=row.org_id,
        model_id=row.model_id,
        window=row.window,
        as_of=as_utc(row.as_of),
        org_revision=row.org_revision,
        requested_by=row.requested_by,
        created_at=as_utc(row.created_at),
    )
