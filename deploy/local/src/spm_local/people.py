"""Stable person ids for the people in a people CSV.

Events and tokens name people by id only. The demo and the importer derive each id from the
organisation and the handle, so every run gives the same person the same id without a lookup.
"""

from __future__ import annotations

import csv
import uuid
from dataclasses import dataclass
from pathlib import Path

PERSON_ID_NAMESPACE = uuid.UUID("0b6f8a7e-1f5e-4d43-8e0c-6a1d1d9b0c21")


def person_id_for(org_id: str, handle: str) -> str:
    return str(uuid.uuid5(PERSON_ID_NAMESPACE, f"{org_id}/{handle}"))


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
