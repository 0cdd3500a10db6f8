"""The goal collaborator read model: tagged people per goal, learned from spm.social.v1.

Tagged collaborators may see a private goal, but tags are social's facts. The goals worker keeps
this read model of them in the goals read database, where the API looks them up. It is rebuilt
from the topic like any read model, so a new tag reaches the goals API a moment after social
published it.
"""

from __future__ import annotations

import logging
from datetime import timezone

from sqlalchemy import Boolean, Column, Connection, DateTime, Engine, Integer, MetaData, String, Table, select

from spm_events.envelope import Envelope
from spm_events.readmodel import PositionedReadModel
from spm_events.registry import EVENT_TYPES, parse_payload
from spm_events.schemas import CollaboratorLeftV1, CollaboratorTaggedV1, CollaboratorUntaggedV1, TagDeclinedV1

logger = logging.getLogger(__name__)

# Tag events that make a person an insider of a goal (True) or end it (False).
INSIDER_AFTER = {
    event_type.type: event_type.model is CollaboratorTaggedV1
    for event_type in EVENT_TYPES.values()
    if event_type.model in (CollaboratorTaggedV1, TagDeclinedV1, CollaboratorLeftV1, CollaboratorUntaggedV1)
}


class CollaboratorTable:
    """The ``goal_collaborators`` table and its queries.

    A row keeps the latest tag fact per goal and person, by the social graph's aggregate version, so
    a redelivered older event never undoes a newer one.
    """

    def __init__(self, metadata: MetaData | None = None) -> None:
        self.metadata = metadata or MetaData()
        self.table = Table(
            "goal_collaborators",
            self.metadata,
            Column("org_id", String(100), primary_key=True),
            Column("goal_id", String(100), primary_key=True),
            Column("person_id", String(100), primary_key=True),
            Column("is_insider", Boolean, nullable=False),
            Column("aggregate_version", Integer, nullable=False),
            Column("changed_at", DateTime(timezone=True), nullable=False),
        )

    def collaborators_of(self, engine: Engine, org_id: str, goal_id: str) -> frozenset[str]:
        """Return the people tagged on the goal who have not declined, left or been untagged."""
        with engine.connect() as connection:
            rows = connection.execute(
                select(self.table.c.person_id).where(
                    self.table.c.org_id == org_id, self.table.c.goal_id == goal_id, self.table.c.is_insider.is_(True)
                )
            )
            return frozenset(row.person_id for row in rows)

    def apply(self, connection: Connection, envelope: Envelope) -> None:
        """Record a tag, a declined tag, a departure or an untag; every other event on the topic changes nothing here."""
        is_insider = INSIDER_AFTER.get(envelope.type)
        if is_insider is None:
            return
        payload = parse_payload(envelope)
        assert isinstance(payload, (CollaboratorTaggedV1, TagDeclinedV1, CollaboratorLeftV1, CollaboratorUntaggedV1))
        key = {"org_id": envelope.orgid, "goal_id": payload.goal_id, "person_id": payload.collaborator_id}
        fact = {
            "is_insider": is_insider,
            "aggregate_version": envelope.aggregateversion,
            "changed_at": envelope.time.astimezone(timezone.utc),
        }
        matches = [self.table.c[name] == value for name, value in key.items()]
        stored = connection.execute(select(self.table.c.aggregate_version).where(*matches)).first()
        if stored is None:
            connection.execute(self.table.insert().values(**key, **fact))
        elif stored.aggregate_version < envelope.aggregateversion:
            connection.execute(self.table.update().where(*matches).values(**fact))
        else:
            return
        logger.info(
            "collaborator recorded goal_id=%s event_id=%s is_insider=%s", payload.goal_id, envelope.id, is_insider
        )


def open_collaborators(engine: Engine, consumer: str) -> tuple[CollaboratorTable, PositionedReadModel]:
    """Return the collaborator table and its positioned read model, creating missing tables."""
    table = CollaboratorTable()
    read_model = PositionedReadModel(engine, table.metadata, consumer)
    read_model.create_tables()
    return table, read_model
