"""Stable person ids for the people in a people CSV.

Events and tokens name people by id only. The demo and the importer derive each id from the
organisation and the handle, so every run gives the same person the same id without a lookup.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from spm_events.people import person_id_for

__all__ = ["Person", "person_id_for", "read_people"]


@dataclass(frozen=True)
class Person:
    handle: str
    display_name: str
    team: str
    manager_handle: str | None
    person_id: str


def read_people(path: Path, org_id: str) -> list[Person]:
    with path.open(newline="", encoding="utf-8") as file:
        return [
            Person(
                handle=row["handle"],
                display_name=row["display_name"],
                team=row["team"],
                manager_handle=row["manager_handle"] or None,
                person_id=person_id_for(org_id, row["handle"]),
            )
            for row in csv.DictReader(file)
        ]
