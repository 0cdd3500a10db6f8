"""Scoring model revisions per organisation, and which one each organisation uses.

Every organisation has the built-in models ``v1`` (the fixed first formula) and ``v2`` (model v2
with its default settings). An organisation may store its own revisions of model v2, named
``v2.1``, ``v2.2`` and so on; a stored revision never changes. Without a choice of its own an
organisation uses ``v2``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import Engine, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from spm_scoring.activities import as_utc
from spm_scoring.model import BUILT_IN_V1, BUILT_IN_V2, DEFAULT_MODEL_ID, DEFAULT_V2_MODEL, STORED_CONTEXT, ScoringModelV2
from spm_scoring.v2_tables import V2Tables

logger = logging.getLogger(__name__)


class UnknownModelError(LookupError):
    """Raised for a model id that is neither built in nor stored for the organisation."""


@dataclass(frozen=True)
class ScoringModelRef:
    """A model an organisation can score with; ``definition`` is None for the built-in v1."""

    model_id: str
    definition: ScoringModelV2 | None
    created_at: datetime | None = None
    created_by: str | None = None

    @property
    def formula(self) -> str:
        return BUILT_IN_V1 if self.definition is None else BUILT_IN_V2


BUILT_IN_MODELS = (
    ScoringModelRef(BUILT_IN_V1, None),
    ScoringModelRef(BUILT_IN_V2, DEFAULT_V2_MODEL),
)


class ModelStore:
    def __init__(self, engine: Engine, tables: V2Tables) -> None:
        self.engine = engine
        self.tables = tables

    def list_models(self, org_id: str) -> list[ScoringModelRef]:
        table = self.tables.scoring_models
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(table).where(table.c.org_id == org_id).order_by(table.c.revision)
            ).all()
        return [*BUILT_IN_MODELS, *(_stored_model(row) for row in rows)]

    def resolve(self, org_id: str, model_id: str | None) -> ScoringModelRef:
        """Return the model ``model_id`` names, or the organisation's active model when it is None."""
        wanted = model_id or self.active_model_id(org_id)
        for built_in in BUILT_IN_MODELS:
            if built_in.model_id == wanted:
                return built_in
        table = self.tables.scoring_models
        with self.engine.connect() as connection:
            row = connection.execute(
                select(table).where(table.c.org_id == org_id, table.c.model_id == wanted)
            ).first()
        if row is None:
            raise UnknownModelError(
                f"scoring model {wanted!r} not found in your organisation; GET /scoring/models lists the ones it can use"
            )
        return _stored_model(row)

    def active_model_id(self, org_id: str) -> str:
        table = self.tables.active_models
        with self.engine.connect() as connection:
            model_id = connection.execute(select(table.c.model_id).where(table.c.org_id == org_id)).scalar()
        return model_id or DEFAULT_MODEL_ID

    def create(self, org_id: str, definition: ScoringModelV2, created_by: str) -> ScoringModelRef:
        """Store a new revision of model v2 for the organisation and return it; it is not activated."""
        table = self.tables.scoring_models
        now = datetime.now(timezone.utc)
        for _attempt in range(5):
            with self.engine.begin() as connection:
                latest = connection.execute(
                    select(func.max(table.c.revision)).where(table.c.org_id == org_id)
                ).scalar()
                revision = (latest or 0) + 1
                model_id = f"{BUILT_IN_V2}.{revision}"
                try:
                    connection.execute(
                        insert(table).values(
                            org_id=org_id,
                            model_id=model_id,
                            revision=revision,
                            definition=definition.model_dump_json(),
                            created_at=now,
                            created_by=created_by,
                        )
                    )
                except IntegrityError:
                    # Another request took this revision number at the same moment; take the next one.
                    continue
            logger.info("stored scoring model org_id=%s model_id=%s by=%s", org_id, model_id, created_by)
            return ScoringModelRef(model_id, definition, now, created_by)
        raise RuntimeError(f"failed to store a scoring model for org_id={org_id} after 5 concurrent attempts")

    def activate(self, org_id: str, model_id: str, activated_by: str) -> ScoringModelRef:
        model = self.resolve(org_id, model_id)
        table = self.tables.active_models
        now = datetime.now(timezone.utc)
        values = {"model_id": model.model_id, "activated_at": now, "activated_by": activated_by}
        with self.engine.begin() as connection:
            dialect_insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
            statement = dialect_insert(table).values(org_id=org_id, **values)
            connection.execute(statement.on_conflict_do_update(index_elements=[table.c.org_id], set_=values))
        logger.info("activated scoring model org_id=%s model_id=%s by=%s", org_id, model.model_id, activated_by)
        return model


def _stored_model(row) -> ScoringModelRef:  # type: ignore[no-untyped-def]
    return ScoringModelRef(
        model_id=row.model_id,
        definition=ScoringModelV2.model_validate_json(row.definition, context={STORED_CONTEXT: True}),
        created_at=as_utc(row.created_at),
        created_by=row.created_by,
    )
