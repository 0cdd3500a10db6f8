"""Lookups in the people directory that commands need: whether a person exists and is active, and handle to id."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import Engine, Table, select


@dataclass(frozen=True)
class DirectoryEntry:
    person_id: str
    handle: str
    active: bool


class PeopleLookup:
    """Reads the ``people`` table that ``spm_social.people.PeopleDirectory`` writes."""

    def __init__(self, engine: Engine, people_table: Table) -> None:
        self.engine = engine
        self.table = people_table

    def entry_of(self, org_id: str, person_id: str) -> DirectoryEntry | None:
        """Return the directory entry of one person of the org, or None if the directory lacks them."""
        people = self.table
        query = select(people.c.person_id, people.c.handle, people.c.active).where(
            people.c.org_id == org_id, people.c.person_id == person_id
        )
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        return None if row is None else DirectoryEntry(row.person_id, row.handle, bool(row.active))

    def entries_by_handle(self, org_id: str, handles: Collection[str]) -> dict[str, DirectoryEntry]:
        """Return the entries of the org's people among ``handles``, keyed by handle; unknown handles are left out."""
        if not handles:
            return {}
        people = self.table
        query = select(people.c.person_id, people.c.handle, people.c.active).where(
            people.c.org_id == org_id, people.c.handle.in_(sorted(set(handles)))
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        return {row.handle: DirectoryEntry(row.person_id, row.handle, bool(row.active)) for row in rows}
