"""Writes score facts with each applied event and reads an organisation's facts back."""

from __future__ import annotations

import json
from sqlalchemy import Connection, insert, select
from sqlalchemy.dialects import postgresql, sqlite

from spm_scoring.activities import as_utc
from spm_scoring.facts import Fact, FactKind
from spm_scoring.v2_tables import V2Tables


def record_fact(connection: Connection, tables: V2Tables, fact: Fact) -> None:
    connection.execute(
        insert(tables.score_facts).values(
            org_id=fact.org_id,
            event_id=fact.event_id,
            event_type=fact.event_type,
            kind=fact.kind.value,
            subject=fact.subject,
            aggregate_version=fact.aggregate_version,
            occurred_at=fact.occurred_at,
            actor_id=fact.actor_id,
            goal_id=fact.goal_id,
            person_id=fact.person_id,
            object_id=fact.object_id,
            details=json.dumps(fact.details, sort_keys=True, separators=(",", ":")),
        )
    )


def bump_org_revision(connection: Connection, tables: V2Tables, org_id: str) -> None:
    """Count one more applied event for the org, in the transaction that applies it."""
    table = tables.org_revisions
    dialect_insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    statement = dialect_insert(table).values(org_id=org_id, revision=1)
    connection.execute(
        statement.on_conflict_do_update(index_elements=[table.c.org_id], set_={"revision": table.c.revision + 1})
    )


def read_org_revision(connection: Connection, tables: V2Tables, org_id: str) -> int:
    table = tables.org_revisions
    revision = connection.execute(select(table.c.revision).where(table.c.org_id == org_id)).scalar()
    return revision or 0


def load_facts(connection: Connection, tables: V2Tables, org_id: str) -> list[Fact]:
    """Return every fact of the org in ``Fact.order_key`` order."""
    table = tables.score_facts
    rows = connection.execute(select(table).where(table.c.org_id == org_id)).all()
    facts = [
        Fact(
            org_id=row.org_id,
            event_id=row.event_id,
            event_type=row.event_type,
            kind=FactKind(row.kind),
            subject=row.subject,
            aggregate_version=row.aggregate_version,
            occurred_at=as_utc(row.occurred_at),
            actor_id=row.actor_id,
            goal_id=row.goal_id,
            person_id=row.person_id,
            object_id=row.object_id,
            details=json.loads(row.details),
        )
        for row in rows
    ]
    facts.sort(key=lambda fact: fact.order_key)
    return facts
