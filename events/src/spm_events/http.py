"""Guards every service's HTTP API puts in front of its routes: body limits and error responses."""

from __future__ import annotations

import copy
import json
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from eventsourcing.persistence import OperationalError as EventStoreOperationalError
from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import OperationalError as ReadModelOperationalError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from spm_events.settings import is_writable

logger = logging.getLogger(__name__)


# Methods whose request body BodyLimitMiddleware reads and checks. Requests of other methods pass through unchecked.
GUARDED_METHODS = frozenset({"POST", "PUT", "PATCH"})


def validation_error_content(message: str, loc: tuple[str, ...] = ("body",), error_type: str = "value_error") -> dict[str, Any]:
    """Return a 422 body in FastAPI's documented shape: ``detail`` is a list of ``{type, loc, msg}``."""
    return {"detail": [{"type": error_type, "loc": list(loc), "msg": message}]}


def add_common_error_handlers(app: FastAPI) -> None:
    """Register handlers that return 422 for invalid requests without echoing the input.

    FastAPI's default 422 body repeats the rejected input, which strict JSON cannot always encode
    (NaN, Infinity, a lone UTF-16 surrogate), so the client would get a 500 instead. The app's
    OpenAPI document also gains the 413 and 422 responses that ``BodyLimitMiddleware`` sends.
    """
    document_body_guards(app)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        detail = [
            {"type": str(item.get("type", "value_error")), "loc": [str(part) for part in item.get("loc", ())],
             "msg": str(item.get("msg", "invalid value"))}
            for item in error.errors()
        ]
        return JSONResponse(status_code=status.HTTP_422_UNPROCESSABLE_CONTENT, content={"detail": detail})

    @app.exception_handler(OverflowError)
    async def out_of_range(request: Request, error: OverflowError) -> JSONResponse:
        logger.info("rejected %s %s with 422: %s", request.method, request.url.path, error)
        message = "a date or number in the request is outside the supported range; use dates between years 1900 and 9000"
        # The exception does not say which parameter overflowed, so loc names the request as a whole.
        content = validation_error_content(message, loc=("request",))
        return JSONResponse(status_code=status.HTTP_422_UNPROCESSABLE_CONTENT, content=content)


# Seconds a client is asked to wait after a 503 for a database that cannot be written or reached.
STORAGE_RETRY_AFTER_SECONDS = 5


def storage_failure_reason(error: Exception, data_dir: Path | None = None) -> str:
    """Name the cause of a database error in plain words, without the SQL text the error carries.

    ``data_dir`` is the directory of the SQLite files, None on PostgreSQL. SQLite reports a
    directory that turned read-only as "unable to open database file", so the directory is checked.
    """
    message = str(getattr(error, "orig", None) or error).lower()
    # SQLite reports "database or disk is full", PostgreSQL "could not extend file ...: No space left on device".
    if "full" in message or "no space left" in message:
        return "the disk that holds the database is full"
    if data_dir is not None and not is_writable(data_dir):
        return f"the data directory {data_dir.resolve()} is read-only"
    if "readonly" in message or "read-only" in message:
        return "the database is read-only"
    return "the database is not reachable"


def add_storage_error_handler(
    app: FastAPI, service: str, data_dir: Path | None, write_retry_advice: str = "retry in a few seconds"
) -> None:
    """Register handlers that return 503, with Retry-After and the cause, when the database cannot be reached or written.

    ``write_retry_advice`` ends the message of a failed POST, PUT, PATCH or DELETE; reads get "retry in a few seconds".
    """

    @app.exception_handler(EventStoreOperationalError)
    @app.exception_handler(ReadModelOperationalError)
    async def storage_unavailable(request: Request, error: Exception) -> JSONResponse:
        reason = storage_failure_reason(error, data_dir)
        logger.error("failed %s %s with 503: %s: %s", request.method, request.url.path, reason, getattr(error, "orig", error))
        advice = write_retry_advice if request.method in GUARDED_METHODS | {"DELETE"} else "retry in a few seconds"
        return JSONResponse(
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            content={"detail": f"the {service} service could not use its database: {reason}; {advice}"},
            headers={"Retry-After": str(STORAGE_RETRY_AFTER_SECONDS)},
        )


class ErrorOut(BaseModel):
    """Body of an error response other than 422, with one message."""

    detail: str = Field(description="What failed, on which value, and what to do next")


# Description of the 401 that spm_events.auth.principal_dependency sends.
UNAUTHORIZED = "Missing, invalid or expired bearer token"
# FastAPI cannot infer response headers from a route. The services send Retry-After as a number of seconds.
_RETRY_AFTER_HEADER = {
    "Retry-After": {"description": "Seconds to wait before sending the request again", "schema": {"type": "integer"}}
}


def error_responses(descriptions: Mapping[int, str]) -> dict[int | str, dict[str, Any]]:
    """Return OpenAPI ``responses`` entries with an ``ErrorOut`` body for the given status codes and their descriptions.

    Pass the result as ``responses=`` of a route or router. A 429 or 503 entry also documents the Retry-After header.
    """
    responses: dict[int | str, dict[str, Any]] = {}
    for status_code, description in descriptions.items():
        entry: dict[str, Any] = {"model": ErrorOut, "description": description}
        if status_code in (status.HTTP_429_TOO_MANY_REQUESTS, status.HTTP_503_SERVICE_UNAVAILABLE):
            entry["headers"] = copy.deepcopy(_RETRY_AFTER_HEADER)
        responses[status_code] = entry
    return responses


_BODY_TOO_LARGE_RESPONSE = {
    "description": "Request body larger than SPM_MAX_BODY_BYTES; nothing was written",
    "content": {
        "application/json": {
            "schema": {"type": "object", "properties": {"detail": {"type": "string"}}, "required": ["detail"]}
        }
    },
}
_FIELD_ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "type": {"type": "string"},
        "loc": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
        "msg": {"type": "string"},
    },
    "required": ["type", "loc", "msg"],
}
_INVALID_BODY_RESPONSE = {
    "description": "Invalid request; detail[].loc names the field, or is [\"body\"] for a body that is not valid JSON text",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {"detail": {"type": "array", "items": _FIELD_ERROR_SCHEMA}},
                "required": ["detail"],
            }
        }
    },
}


def document_body_guards(app: FastAPI) -> None:
    """Add the 413 and 422 responses of ``BodyLimitMiddleware`` to every guarded operation of the OpenAPI document.

    The middleware responds before any route runs, so FastAPI cannot know of these responses. An
    operation that already documents 413 or 422 keeps its own description.
    """
    build_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = build_openapi()
        for path_item in document.get("paths", {}).values():
            for method, operation in path_item.items():
                if method.upper() not in GUARDED_METHODS:
                    continue
                responses = operation.setdefault("responses", {})
                responses.setdefault("413", copy.deepcopy(_BODY_TOO_LARGE_RESPONSE))
                responses.setdefault("422", copy.deepcopy(_INVALID_BODY_RESPONSE))
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]


class RequestRejected(Exception):
    def __init__(self, status_code: int, detail: str, error_type: str = "value_error") -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.error_type = error_type


def json_nesting_depth(body: bytes) -> int:
    """Return the deepest nesting of arrays and objects in a JSON text, without parsing values."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # closing quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return deepest


_SURROGATE_ESCAPE = re.compile(rb"(\\+)u([dD][89a-fA-F][0-9a-fA-F]{2})")


def has_unpaired_surrogate_escape(body: bytes) -> bool:
    """Tell whether a JSON text escapes half of a UTF-16 surrogate pair without the other half.

    Python's JSON parser turns such an escape into a string that cannot be encoded as UTF-8, so
    storing it would break every later response and event that carries it.
    """
    pending_high_end = None
    for match in _SURROGATE_ESCAPE.finditer(body):
        if len(match.group(1)) % 2 == 0:
            continue  # an escaped backslash followed by a literal "u", not a \u escape
        is_high = match.group(2)[1:2].lower() in b"89ab"
        if pending_high_end is not None:
            if is_high or match.start() != pending_high_end:
                return True
            pending_high_end = None
        elif is_high:
            pending_high_end = match.end()
        else:
            return True
    return pending_high_end is not None


# C0 control characters other than tab (09), line feed (0a) and carriage return (0d).
_CONTROL_CHARACTER_ESCAPE = re.compile(rb"(\\+)u00(?:0[0-8bBcCeEfF]|1[0-9a-fA-F])")


def has_control_character_escape(body: bytes) -> bool:
    """Tell whether a JSON text escapes a control character such as NUL inside a string.

    A JSON parser accepts them, but PostgreSQL text columns reject NUL, so one such title would stop
    every consumer that stores it.
    """
    return any(len(match.group(1)) % 2 == 1 for match in _CONTROL_CHARACTER_ESCAPE.finditer(body))


class BodyLimitMiddleware:
    """Reject bodies larger than ``max_bytes`` with 413, and JSON bodies that are not UTF-8 or nest deeper than ``max_depth`` with 422.

    The body is read here in full (it is at most ``max_bytes``) and replayed to the route, so no route
    receives a body that breaks a limit and nothing is written for one. A 422 has FastAPI's shape,
    a ``detail`` list whose ``loc`` is ``["body"]``.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, max_depth: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_depth = max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in GUARDED_METHODS:
            await self.app(scope, receive, send)
            return
        try:
            body = await self._read_bounded_body(scope, receive)
            self._check_json(scope, body)
        except RequestRejected as rejection:
            if rejection.status_code == status.HTTP_422_UNPROCESSABLE_CONTENT:
                content = validation_error_content(rejection.detail, error_type=rejection.error_type)
            else:
                content = {"detail": rejection.detail}
            await _send_json(send, rejection.status_code, content)
            return

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _read_bounded_body(self, scope: Scope, receive: Receive) -> bytes:
        too_large = RequestRejected(413, f"request body is larger than the limit of {self.max_bytes} bytes")
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                raise too_large
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise RequestRejected(400, "client disconnected before sending the whole body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                raise too_large
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _check_json(self, scope: Scope, body: bytes) -> None:
        content_type = dict(scope.get("headers", [])).get(b"content-type", b"").lower()
        # A body without a Content-Type gets the JSON checks too, because FastAPI parses it as JSON
        # when a route or app sets strict_content_type=False.
        if content_type and b"json" not in content_type:
            return
        if json_nesting_depth(body) > self.max_depth:
            raise RequestRejected(422, f"JSON body is nested deeper than the limit of {self.max_depth} levels")
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as error:
            # FastAPI would respond with an undocumented 400 and no hint. RFC 8259 requires UTF-8 for JSON between systems.
            raise RequestRejected(
                422, f"JSON body is not valid UTF-8 (invalid byte at offset {error.start}); send the body as UTF-8 text", "json_invalid"
            ) from None
        if has_unpaired_surrogate_escape(body):
            raise RequestRejected(422, "JSON body contains an unpaired UTF-16 surrogate escape; send valid Unicode text")
        if has_control_character_escape(body):
            raise RequestRejected(
                422, "JSON body contains a control character such as \\u0000; only tab, line feed and carriage return are allowed"
            )


async def _send_json(send: Send, status_code: int, payload: dict[str, Any]) -> None:
    body = json.dumps(payload).encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": status_code,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
