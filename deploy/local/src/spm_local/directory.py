"""The social service's people directory seen from the command-line tools: batch upload and full read."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import httpx

from spm_local.people import Person, managers_first

logger = logging.getLogger(__name__)

# The largest batch POST /people/batch accepts, and the largest page GET /people returns.
BATCH_SIZE = 500


class DirectoryError(RuntimeError):
    """The people directory rejected a request or returned something the tools cannot use."""


@dataclass
class UploadResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deactivated: int = 0


def _batch_body(people: list[Person]) -> dict[str, object]:
    return {
        "people": [
            {
                "handle": person.handle,
                "display_name": person.display_name,
                "email": person.email,
                "team": person.team,
                "manager_handle": person.manager_handle,
            }
            for person in people
        ]
    }


def upload_people(client: httpx.Client, people: list[Person]) -> UploadResult:
    """Store the people in the directory, managers first and in batches, then deactivate the inactive ones.

    Each batch names only managers of the same or an earlier batch, which the directory requires.
    """
    result = UploadResult()
    ordered = managers_first(people)
    for start in range(0, len(ordered), BATCH_SIZE):
        batch = ordered[start : start + BATCH_SIZE]
        response = client.post("/people/batch", json=_batch_body(batch))
        if response.status_code != 200:
            raise DirectoryError(f"people batch of {len(batch)} rows (from line {batch[0].line}) was rejected: "
                                 f"{response.status_code} {response.text}")
        counts = response.json()
        result.created += counts["created"]
        result.updated += counts["updated"]
        result.unchanged += counts["unchanged"]
    for person in ordered:
        if not person.active:
            response = client.post(f"/people/{person.handle}/deactivate")
            if response.status_code != 200:
                raise DirectoryError(f"deactivating line {person.line} failed: {response.status_code} {response.text}")
            result.deactivated += 1
    logger.info("people stored created=%s updated=%s unchanged=%s deactivated=%s",
                result.created, result.updated, result.unchanged, result.deactivated)
    return result


def read_directory(client: httpx.Client) -> list[Person]:
    """Return every person of the token's organisation in handle order, with e-mail addresses (admin tokens only)."""
    entries: list[dict] = []
    cursor = None
    while True:
        params: dict[str, object] = {"limit": BATCH_SIZE} | ({"cursor": cursor} if cursor else {})
        response = client.get("/people", params=params)
        if response.status_code != 200:
            raise DirectoryError(f"reading the people directory failed: {response.status_code} {response.text}")
        page = response.json()
        entries.extend(page["people"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    if any("email" not in entry for entry in entries):
        raise DirectoryError("the people directory returned no e-mail addresses; use a token with the admin role")
    handle_of = {entry["person_id"]: entry["handle"] for entry in entries}
    people = []
    for entry in entries:
        manager_id = entry["manager_id"]
        if manager_id is not None and manager_id not in handle_of:
            raise DirectoryError(f"the manager of {entry['handle']!r} has id {manager_id}, which is in no directory entry")
        people.append(Person(
            handle=entry["handle"],
            display_name=entry["display_name"],
            team=entry["team"],
            manager_handle=None if manager_id is None else handle_of[manager_id],
            person_id=entry["person_id"],
            email=entry["email"],
            active=entry["active"],
        ))
    return people
