"""Conditional and idempotent writes: the If-Match and Idempotency-Key headers of the goals API."""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass
from typing import Any, Callable

from fastapi import HTTPException, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from spm_events.auth import Principal
from spm_goals.application import IdempotencyKeyReusedError, RequestKey, WriteGuard
from spm_goals.idempotency import IdempotencyStore, StoredResponse, body_digest_for, key_digest_for

logger = logging.getLogger(__name__)

# A command run under a WriteGuard returns (status code, JSON body, goal version after it).
GuardedCommand = Callable[[WriteGuard], tuple[int, Any, int]]


# ASCII digits only: str.isdigit() also accepts digits such as "²" that int() rejects.
ETAG_PATTERN = re.compile(r"[0-9]{1,20}")


def etag_for(version: int) -> str:
    return f'"{version}"'


def parse_if_match(if_match: str | None) -> int | None:
    """Return the goal version an If-Match header expects, or None for no header or ``*``."""
    if if_match is None or if_match.strip() == "*":
        return None
    tag = if_match.strip().removeprefix("W/").strip('"')
    if not ETAG_PATTERN.fullmatch(tag):
        raise HTTPException(
            status_code=status.HTTP_412_PRECONDITION_FAILED,
            detail=f"If-Match {if_match!r} is not an ETag of this API. Send the ETag header of the goal's "
            'latest response, such as "3"',
        )
    return int(tag)


@dataclass(frozen=True)
class WriteRequest:
    """A write's HTTP request with the caller and the two headers that guard it."""

    request: Request
    principal: Principal
    if_match: str | None = None
    idempotency_key: str | None = None

    @property
    def org_id(self) -> str:
        return self.principal.org_id

    @property
    def person_id(self) -> str:
        return self.principal.person_id


class GuardedWrites:
    """Runs write commands under the request's If-Match and Idempotency-Key headers."""

    def __init__(self, store: IdempotencyStore, check_visible: Callable[[Principal, uuid.UUID], None]) -> None:
        """``check_visible`` raises for a goal the principal may no longer see, before a stored response is replayed."""
        self.store = store
        self.check_visible = check_visible

    def run(self, write: WriteRequest, body: BaseModel | None, command: GuardedCommand) -> JSONResponse:
        """Replay the stored response of a known Idempotency-Key, or run ``command`` and store its response."""
        request, principal, idempotency_key = write.request, write.principal, write.idempotency_key
        expected_version = parse_if_match(write.if_match)
        request_key = None
        if idempotency_key is not None:
            request_key = RequestKey(
                key_digest_for(principal.org_id, principal.person_id, request.url.path, idempotency_key),
                body_digest_for(None if body is None else body.model_dump(mode="json")),
            )
            stored = self.store.find(request_key.key_digest)
            if stored is not None:
                if stored.body_digest != request_key.body_digest:
                    raise IdempotencyKeyReusedError(
                        "Idempotency-Key was already used for another request with a different body. "
                        "Send a new key for a new request"
                    )
                # A person who may no longer see the goal gets 404, not the response they saw before.
                goal_id = request.path_params.get("goal_id")
                if goal_id is not None:
                    self.check_visible(principal, uuid.UUID(str(goal_id)))
                logger.info("replaying stored response path=%s org_id=%s", request.url.path, principal.org_id)
                return _json_response(stored.status_code, stored.body, stored.version)

        status_code, content, version = command(WriteGuard(expected_version, request_key, principal))
        if request_key is not None:
            # NOTE: a crash between saving the goal and this line loses only the stored response:
            # the goal's RequestApplied event still names the key, so the retry is replayed from it.
            self.store.store(
                request_key.key_digest,
                principal.org_id,
                StoredResponse(request_key.body_digest, status_code, content, version),
            )
        return _json_response(status_code, content, version)


def _json_response(status_code: int, content: Any, version: int) -> JSONResponse:
    return JSONResponse(status_code=status_code, content=content, headers={"ETag": etag_for(version)})
