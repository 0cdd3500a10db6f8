"""Error responses of the social API's routes, for its OpenAPI document.

Every error body but a 422 is ``{"detail": str}`` (``spm_events.http.ErrorOut``). The 413 and 422 of
the body guard are added to every POST, PUT and PATCH by ``spm_events.http.add_common_error_handlers``.
"""

from __future__ import annotations

from typing import Any

from spm_events.http import UNAUTHORIZED, error_responses

GOAL_NOT_FOUND = (
    "Goal not known in the token's organisation, or not visible to the caller; both get the same body"
)
COMMUNITY_NOT_FOUND = "Community not found in the token's organisation"
PERSON_NOT_FOUND = "Person not found in the organisation's people directory"
SAVE_CONFLICT = (
    "Another request kept changing the same goal graph, community or person follow graph during every save "
    "attempt; retry the request"
)
RATE_LIMITED = (
    "The caller sent more commands than SPM_RATE_LIMIT_COMMANDS in the current window; nothing was written"
)
ADMIN_ONLY = "Only an admin of the organisation may change the people directory"
STORAGE_UNAVAILABLE = "The service's database cannot be written or reached; detail names the cause"

# Every route but /healthz and /internal/* reads the caller from the bearer token and uses the database.
READ_RESPONSES = error_responses({401: UNAUTHORIZED, 503: STORAGE_UNAVAILABLE})
# Commands also count against the rate limit, and give up saving after a few version conflicts.
COMMAND_RESPONSES = error_responses({401: UNAUTHORIZED, 409: SAVE_CONFLICT, 429: RATE_LIMITED, 503: STORAGE_UNAVAILABLE})


def unchanged_response(model: type, description: str) -> dict[int | str, dict[str, Any]]:
    """Return the 200 entry of a command that creates with 201 and writes nothing when the state is already as requested."""
    return {200: {"model": model, "description": description}}
