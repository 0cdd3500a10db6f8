"""Responses stored per Idempotency-Key, so a client's retry of a POST gets the first response again.

A key is scoped to one organisation, one person and one path: its digest covers all four, so the
same key sent by another person or to another path is a different request.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Column, DateTime, Engine, Integer, MetaData, String, Table, Text, select
from sqlalchemy.dialects import postgresql, sqlite

from spm_events.database import create_tables


@dataclass(frozen=True)
class StoredResponse:
    body_digest: str
    status_code: int
    body: Any
    version: int


def key_digest_for(org_id: str, person_id: str, path: str, idempotency_key: str) -> str:
    scoped = json.dumps([org_id, person_id, path, idempotency_key])
    return hashlib.sha256(scoped.encode("utf-8")).hexdigest()


def body_digest_for(body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class IdempotencyStore:
    """The ``idempotency_records`` table in the read database: one stored response per key digest."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        metadata = MetaData()
        self.table = Table(
            "idempotency_records",
            metadata,
            Column("key_digest", String(64), primary_key=True),
            Column("org_id", String(100), nullable=False, index=True),
            Column("body_digest", String(64), nullable=False),
            Column("status_code", Integer, nullable=False),
            Column("body", Text, nullable=False),
            Column("version", Integer, nullable=False),
            Column("stored_at", DateTime(timezone=True), nullable=False),
        )
        create_tables(metadata, engine)

    def find(self, key_digest: str) -> StoredResponse | None:
        with self.engine.connect() as connection:
            row = connection.execute(select(self.table).where(self.table.c.key_digest == key_digest)).first()
        if row is None:
            return None
        return StoredResponse(row.body_digest, row.status_code, json.loads(row.body), row.version)

    def store(self, key_digest: str, org_id: str, response: StoredResponse) -> None:
        """Store the response unless one is stored for the key already (a concurrent retry wrote it first)."""
        dialect_insert = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        statement = (
            dialect_insert(self.table)
            .values(
                key_digest=key_digest,
                org_id=org_id,
                body_digest=response.body_digest,
                status_code=response.status_code,
                body=json.dumps(response.body),
                version=response.version,
                stored_at=datetime.now(timezone.utc),
            )
            .on_conflict_do_nothing(index_elements=["key_digest"])
        )
        with self.engine.begin() as connection:
            connection.execute(statement)
