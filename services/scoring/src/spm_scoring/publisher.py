"""Publishes score changes on spm.scores.v1 as ScoreChangedV1 events.

After events change an organisation's facts, the publisher scores every person, team and goal
of the org under its active model and default window, at the org's latest event time. It
publishes one event per subject whose scores differ from the last ones it published, and records
what it published only after the broker acknowledged it.

The event id is derived from the org, the subject, the model, the window, ``as_of`` and the
digests of the previous and the new scores. So publishing a state again (after a crash between
sending and recording, or from a second worker on the same database) repeats the same id, and
consumers drop it as a repeat. ``aggregateversion`` counts this read model's publications for
the subject.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

from aiokafka import AIOKafkaProducer
from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql, sqlite

from spm_events.envelope import Envelope, encode_envelope
from spm_events.registry import SCORES_TOPIC, new_envelope
from spm_events.schemas import ScoreChangedV1, ScoreComponentV1, ScoreValueV1
from spm_scoring.components import ScoreResult
from spm_scoring.engine import SubjectScores
from spm_scoring.model_store import ModelStore
from spm_scoring.scoreboard import OrgSnapshot, Scoreboard
from spm_scoring.tables import ScoringTables

logger = logging.getLogger(__name__)

# Score events are facts the service derives, not acts of a person, so they carry this actor id.
SCORING_ACTOR_ID = "spm-scoring"
SCORE_EVENT_NAMESPACE = uuid.UUID("0b7d8c4e-2f61-4a8e-b3c5-9e2a1d7f6c30")


@dataclass(frozen=True)
class ScoreChange:
    org_id: str
    subject_kind: str
    subject_id: str
    digest: str
    sequence: int
    envelope: Envelope


@dataclass(frozen=True)
class PublishBatch:
    revisions: dict[str, int]
    changes: list[ScoreChange]


def score_value(kind: str, result: ScoreResult) -> ScoreValueV1:
    components = () if result.withheld_reason else tuple(
        ScoreComponentV1(name=item.name, value=item.value, weight=item.weight, contribution=item.contribution)
        for item in result.components
    )
    return ScoreValueV1(kind=kind, score=result.score, components=components)  # type: ignore[arg-type]


def score_digest(payload: ScoreChangedV1) -> str:
    """Hash every field of the event except ``as_of``, so a moving clock alone publishes nothing."""
    content = payload.model_dump(mode="json", exclude={"as_of"})
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class ScorePublisher:
    def __init__(self, engine: Engine, tables: ScoringTables, scoreboard: Scoreboard, models: ModelStore) -> None:
        self.engine = engine
        self.tables = tables
        self.scoreboard = scoreboard
        self.models = models

    def collect(self) -> PublishBatch:
        """Find the orgs whose facts moved since the last publication and the subjects whose scores changed."""
        revisions: dict[str, int] = {}
        changes: list[ScoreChange] = []
        for org_id in self._orgs_with_new_events():
            snapshot = self.scoreboard.snapshot(org_id)
            revisions[org_id] = snapshot.revision
            try:
                changes += self._org_changes(org_id, snapshot)
            except Exception:  # noqa: BLE001 - one org's failure must not stop the others' score events
                # Its revision is still marked, so the org is scored again when its next event arrives.
                logger.exception("failed to score org_id=%s revision=%s for publishing", org_id, snapshot.revision)
        return PublishBatch(revisions, changes)

    def _org_changes(self, org_id: str, snapshot: OrgSnapshot) -> list[ScoreChange]:
        model = self.models.resolve(org_id, None)
        if model.definition is None or snapshot.latest_event_time is None:
            # NOTE: an org whose active model is v1 gets no score events; v1 scores are computed per request.
            return []
        window = self.scoreboard.resolve_window(snapshot, model.definition, None, None)
        scores = self.scoreboard.org_scores(snapshot, model.model_id, model.definition, window)
        published = self._published(org_id)
        changes = []
        for subject in scores.subjects():
            change = self._change(org_id, subject, model.model_id, scores.window.label, scores.window.end, published)
            if change is not None:
                changes.append(change)
        return changes

    def _change(
        self,
        org_id: str,
        subject: SubjectScores,
        model_id: str,
        window_label: str,
        as_of: datetime,
        published: dict[tuple[str, str], tuple[str, int]],
    ) -> ScoreChange | None:
        payload = ScoreChangedV1(
            subject_kind=subject.subject_kind,  # type: ignore[arg-type]
            subject_id=subject.subject_id,
            model_id=model_id,
            window=window_label,
            as_of=as_of,
            scores=(score_value("performance", subject.performance), score_value("collaboration", subject.collaboration)),
        )
        digest = score_digest(payload)
        previous_digest, previous_sequence = published.get((subject.subject_kind, subject.subject_id), ("", 0))
        if digest == previous_digest:
            return None
        subject_key = f"{subject.subject_kind}:{subject.subject_id}"
        envelope = new_envelope(
            payload, subject=subject_key, org_id=org_id, actor_id=SCORING_ACTOR_ID,
            aggregate_version=previous_sequence + 1, time=as_of,
        )
        seed = f"{org_id}|{subject_key}|{model_id}|{window_label}|{as_of.isoformat()}|{previous_digest}|{digest}"
        envelope = envelope.model_copy(update={"id": str(uuid.uuid5(SCORE_EVENT_NAMESPACE, seed))})
        return ScoreChange(org_id, subject.subject_kind, subject.subject_id, digest, previous_sequence + 1, envelope)

    def record(self, batch: PublishBatch) -> None:
        """Remember the published states and how far each org's revision was published, in one transaction."""
        with self.engine.begin() as connection:
            dialect_insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
            table = self.tables.v2.published_scores
            for change in batch.changes:
                values = {
                    "digest": change.digest,
                    "sequence": change.sequence,
                    "event_id": change.envelope.id,
                    "as_of": change.envelope.time,
                }
                statement = dialect_insert(table).values(
                    org_id=change.org_id, subject_kind=change.subject_kind, subject_id=change.subject_id, **values
                )
                connection.execute(
                    statement.on_conflict_do_update(
                        index_elements=[table.c.org_id, table.c.subject_kind, table.c.subject_id], set_=values
                    )
                )
            marks = self.tables.v2.publisher_marks
            for org_id, revision in batch.revisions.items():
                statement = dialect_insert(marks).values(org_id=org_id, revision=revision)
                connection.execute(
                    statement.on_conflict_do_update(index_elements=[marks.c.org_id], set_={"revision": revision})
                )

    async def publish_once(self, producer: AIOKafkaProducer) -> int:
        """Publish the score changes of every org with new events and return how many events were sent."""
        batch = await asyncio.to_thread(self.collect)
        if not batch.revisions:
            return 0
        acknowledgements = [
            await producer.send(
                SCORES_TOPIC.name, key=change.envelope.subject.encode(), value=encode_envelope(change.envelope)
            )
            for change in batch.changes
        ]
        await asyncio.gather(*acknowledgements)
        await asyncio.to_thread(self.record, batch)
        if batch.changes:
            logger.info("published score changes=%s orgs=%s", len(batch.changes), ",".join(sorted(batch.revisions)))
        return len(batch.changes)

    def _orgs_with_new_events(self) -> list[str]:
        revisions, marks = self.tables.v2.org_revisions, self.tables.v2.publisher_marks
        query = (
            select(revisions.c.org_id)
            .select_from(revisions.outerjoin(marks, marks.c.org_id == revisions.c.org_id))
            .where((marks.c.revision.is_(None)) | (marks.c.revision < revisions.c.revision))
            .order_by(revisions.c.org_id)
        )
        with self.engine.connect() as connection:
            return list(connection.execute(query).scalars())

    def _published(self, org_id: str) -> dict[tuple[str, str], tuple[str, int]]:
        table = self.tables.v2.published_scores
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(table.c.subject_kind, table.c.subject_id, table.c.digest, table.c.sequence).where(
                    table.c.org_id == org_id
                )
            ).all()
        return {(row.subject_kind, row.subject_id): (row.digest, row.sequence) for row in rows}
