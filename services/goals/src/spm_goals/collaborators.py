"""The goal collaborator read model: tagged people per goal, learned from spm.social.v1.

Tagged collaborators may see a private goal, but tags are social's facts. The goals worker keeps
this read model of them in the goals read database, where the API looks them up. It is rebuilt
from the topic like any read model, so a new tag reaches the goals API a moment after social
published it.
"""

from __future__ import annotations

import logging
from datetime import timezone

from sqlalchemy import Column, Connection, DateTime, Engine, MetaData, String, Table, select

from spm_events.envelope import Envelope
from spm_events.readmodel import PositionedReadModel
from spm_events.registry import EVENT_TYPES, parse_payload
from spm_events.schemas import CollaboratorTaggedV1

logger = logging.getLogger(__name__)

COLLABORATOR_TAGGED = next(
    event_type.type for event_type in EVENT_TYPES.values() if event_type.model is CollaboratorTaggedV1
)


class CollaboratorTable:
    """The ``goal_collaborators`` table and its queries."""

    def __init__(self, metadata: MetaData | None = None) -> None:
        self.metadata = metadata or MetaData()
        self.table = Table(
            "goal_collaborators",
            self.metadata,
            Column("org_id", String(100), primary_key=True),
            Column("goal_id", String(100), primary_key=True),
            Column("person_id", String(100), primary_key=True),
            Column("tagged_at", DateTime(timezone=True), nullable=False),
        )

    def collaborators_of(self, engine: Engine, org_id: str, goal_id: str) -> frozenset[str]:
        with engine.connect() as connection:
            rows = connection.execute(
                select(self.table.c.person_id).where(self.table.c.org_id == org_id, self.table.c.goal_id == goal_id)
            )
            return frozenset(row.person_id for row in rows)

    def apply(self, connection: Connection, envelope: Envelope) -> None:
        """Record a CollaboratorTagged event; every other event on the topic changes nothing here."""
        if envelope.type != COLLABORATOR_TAGGED:
            return
        payload = parse_payload(envelope)
        assert isinstance(payload, CollaboratorTaggedV1)
        key = {"org_id": envelope.orgid, "goal_id": payload.goal_id, "person_id": payload.collaborator_id}
        already = connection.execute(
            select(self.table.c.person_id).where(*(self.table.c[name] == value for name, value in key.items()))
        ).first()
        if already is not None:
            return
        connection.execute(self.table.insert().values(**key, tagged_at=envelope.time.astimezone(timezone.utc)))
        logger.info("collaborator recorded goal_id=%s event_id=%s", payload.goal_id, envelope.id)


def open_collaborators(engine: Engine, consumer: str) -> tuple[CollaboratorTable, PositionedReadModel]:
    """Return the collaborator table and its positioned read model, creating missing tables."""
    table = CollaboratorTable()
    read_model = PositionedReadModel(engine, table.metadata, consumer)
    read_model.create_tables()
    return table, read_model
