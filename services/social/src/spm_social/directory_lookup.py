"""Lookups in the people directory that commands need: whether a person exists and is active, and handle to id."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Engine, Table, select


@dataclass(frozen=True)
class DirectoryEntry:
    person_id: str
    handle: str
    active: bool
    team: str


class DirectoryLookups(Protocol):
    """The reads of the people directory that goal, community and person-follow commands make."""

    def entry_of(self, org_id: str, person_id: str) -> DirectoryEntry | None: ...

    def entries_by_handle(self, org_id: str, handles: Collection[str]) -> Mapping[str, DirectoryEntry]: ...


class PersonNotFoundError(LookupError):
    """Raised for a person id that the organisation's people directory does not contain."""

    def __init__(self, person_id: str) -> None:
        super().__init__(f"person {person_id!r} not found")
        self.person_id = person_id


class PersonDeactivatedError(ValueError):
    """Raised when a command names a person whom the people directory marks inactive."""

    def __init__(self, person_id: str) -> None:
        super().__init__(f"person {person_id!r} is deactivated")
        self.person_id = person_id


def require_directory(people: DirectoryLookups | None) -> DirectoryLookups:
    """Return ``people``, raising RuntimeError for an application built without a people directory."""
    if people is None:
        raise RuntimeError("this SocialApplication has no people directory; pass people= when creating it")
    return people


def find_person(
    people: DirectoryLookups | None, org_id: str, person_id: str, must_be_active: bool = False
) -> DirectoryEntry:
    """Return the person's directory entry.

    Raises PersonNotFoundError for a person the directory lacks, and PersonDeactivatedError for an
    inactive one when ``must_be_active`` is set.
    """
    person = require_directory(people).entry_of(org_id, person_id)
    if person is None:
        raise PersonNotFoundError(person_id)
    if must_be_active and not person.active:
        raise PersonDeactivatedError(person_id)
    return person


class PeopleLookup:
    """Reads the ``people`` table that ``spm_social.people.PeopleDirectory`` writes."""

    def __init__(self, engine: Engine, people_table: Table) -> None:
        self.engine = engine
        self.table = people_table

    def entry_of(self, org_id: str, person_id: str) -> DirectoryEntry | None:
        """Return the directory entry of one person of the org, or None if the directory lacks them."""
        people = self.table
        query = select(people.c.person_id, people.c.handle, people.c.active, people.c.team).where(
            people.c.org_id == org_id, people.c.person_id == person_id
        )
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        return None if row is None else DirectoryEntry(row.person_id, row.handle, bool(row.active), row.team)

    def entries_by_handle(self, org_id: str, handles: Collection[str]) -> dict[str, DirectoryEntry]:
        """Return the entries of the org's people among ``handles``, keyed by handle; unknown handles are left out."""
        if not handles:
            return {}
        people = self.table
        query = select(people.c.person_id, people.c.handle, people.c.active, people.c.team).where(
            people.c.org_id == org_id, people.c.handle.in_(sorted(set(handles)))
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        return {row.handle: DirectoryEntry(row.person_id, row.handle, bool(row.active), row.team) for row in rows}
