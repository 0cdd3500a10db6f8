"""The people CSV (docs/okr-csv.md): reading with validation, stable person ids, and writing.

Events and tokens name people by id only. The demo and the importer derive each id from the
organisation and the handle, so every run gives the same person the same id without a lookup.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from spm_events.people import person_id_for

__all__ = ["PEOPLE_COLUMNS", "PeopleCsvError", "Person", "person_id_for", "read_people", "write_people"]

REQUIRED_PEOPLE_COLUMNS = ("handle", "display_name", "email", "team", "manager_handle")
# The columns an export writes. On import `active` is optional and means "true" when absent or empty.
PEOPLE_COLUMNS = (*REQUIRED_PEOPLE_COLUMNS, "active")
# The people directory's own limits, checked here too so that no batch is rejected part-way through an import.
HANDLE_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
EMAIL_PATTERN = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
MAX_DISPLAY_NAME_LENGTH = 200
MAX_EMAIL_LENGTH = 254
MAX_TEAM_LENGTH = 200
ACTIVE_VALUES = {"": True, "true": True, "false": False}


class PeopleCsvError(ValueError):
    """A malformed people CSV; ``line`` is the 1-based line number in the file."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


@dataclass(frozen=True)
class Person:
    handle: str
    display_name: str
    team: str
    manager_handle: str | None
    person_id: str
    email: str = ""
    active: bool = True
    line: int = 0


def _parse_person(line: int, row: dict[str, str], org_id: str) -> Person:
    handle = row["handle"].strip()
    if not HANDLE_PATTERN.fullmatch(handle):
        raise PeopleCsvError(line, f"handle {handle!r} is not 1-64 lowercase letters, digits, '.', '_' or '-' "
                                   "starting with a letter or digit")
    manager_handle = row["manager_handle"].strip() or None
    if manager_handle is not None and not HANDLE_PATTERN.fullmatch(manager_handle):
        raise PeopleCsvError(line, f"manager_handle {manager_handle!r} is not a valid handle")
    for column, maximum in (("display_name", MAX_DISPLAY_NAME_LENGTH), ("team", MAX_TEAM_LENGTH)):
        value = row[column].strip()
        if not value:
            raise PeopleCsvError(line, f"{column} is empty")
        if len(value) > maximum:
            raise PeopleCsvError(line, f"{column} is longer than {maximum} characters")
    email = row["email"].strip()
    if len(email) > MAX_EMAIL_LENGTH or not EMAIL_PATTERN.fullmatch(email):
        raise PeopleCsvError(line, "email is not an address of the form name@domain.tld")
    active = ACTIVE_VALUES.get((row.get("active") or "").strip().lower())
    if active is None:
        raise PeopleCsvError(line, f"active {row['active']!r} is neither 'true' nor 'false'")
    return Person(
        handle=handle,
        display_name=row["display_name"].strip(),
        team=row["team"].strip(),
        manager_handle=manager_handle,
        person_id=person_id_for(org_id, handle),
        email=email,
        active=active,
        line=line,
    )


def _check_managers(people: list[Person]) -> None:
    by_handle: dict[str, Person] = {}
    for person in people:
        if person.handle in by_handle:
            raise PeopleCsvError(person.line, f"handle {person.handle!r} repeats line {by_handle[person.handle].line}")
        by_handle[person.handle] = person
    for person in people:
        if person.manager_handle is not None and person.manager_handle not in by_handle:
            raise PeopleCsvError(person.line, f"manager_handle {person.manager_handle!r} names no person of this file")
    for person in people:
        seen = {person.handle}
        manager = person.manager_handle
        while manager is not None and manager not in seen:
            seen.add(manager)
            manager = by_handle[manager].manager_handle
        if manager == person.handle:
            raise PeopleCsvError(person.line, f"the chain of managers of {person.handle!r} loops back to it")


def read_people(path: Path, org_id: str) -> list[Person]:
    """Return every person of the file, or raise PeopleCsvError for the first problem found."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        line = path.read_bytes()[: error.start].count(b"\n") + 1
        raise PeopleCsvError(line, f"byte {error.object[error.start]:#04x} is not UTF-8; save the file as UTF-8") from None
    with io.StringIO(text, newline="") as file:
        reader = csv.DictReader(file)
        header = reader.fieldnames or []
        missing = [column for column in REQUIRED_PEOPLE_COLUMNS if column not in header]
        if missing:
            raise PeopleCsvError(1, f"header lacks the columns {', '.join(missing)}")
        people = []
        for row in reader:
            if None in row or any(value is None for value in row.values()):
                raise PeopleCsvError(reader.line_num, f"row has a different number of fields than the header's {len(header)}")
            people.append(_parse_person(reader.line_num, row, org_id))
    _check_managers(people)
    return people


def managers_first(people: list[Person]) -> list[Person]:
    """Return the people ordered so that everyone comes after their manager, otherwise in file order."""
    by_handle = {person.handle: person for person in people}

    def depth(person: Person) -> int:
        levels = 0
        while person.manager_handle is not None and person.manager_handle in by_handle:
            person = by_handle[person.manager_handle]
            levels += 1
        return levels

    return sorted(people, key=depth)


def write_people(people: list[Person]) -> str:
    """Return the people CSV text of ``people`` in the given order, with every column of PEOPLE_COLUMNS."""
    output = io.StringIO()
    writer = csv.writer(output, lineterminator="\n")
    writer.writerow(PEOPLE_COLUMNS)
    for person in people:
        active = "true" if person.active else "false"
        writer.writerow([person.handle, person.display_name, person.email, person.team, person.manager_handle or "", active])
    return output.getvalue()
