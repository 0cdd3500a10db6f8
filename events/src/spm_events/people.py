"""Stable person ids: every service and tool derives the same id from an organisation and a handle."""

from __future__ import annotations

import uuid

# Fixed forever: the ids in every stored event were derived with it.
PERSON_ID_NAMESPACE = uuid.UUID("0b6f8a7e-1f5e-4d43-8e0c-6a1d1d9b0c21")


def person_id_for(org_id: str, handle: str) -> str:
    """Return the id of the person with ``handle`` in ``org_id``, as a UUID 5 string."""
    return str(uuid.uuid5(PERSON_ID_NAMESPACE, f"{org_id}/{handle}"))
