"""Routes of the people directory: admins write people in batches, every member of the org reads them."""

import base64
import re
from typing import Annotated, Any, Callable

from fastapi import APIRouter, Depends, HTTPException, Path, Query, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field

from spm_events.auth import Principal
from spm_events.http import error_responses
from spm_social.api_responses import ADMIN_ONLY, READ_RESPONSES
from spm_social.people import (
    MAX_DISPLAY_NAME_LENGTH,
    MAX_EMAIL_LENGTH,
    MAX_HANDLE_LENGTH,
    MAX_TEAM_LENGTH,
    PeopleBatchError,
    PeopleDirectory,
    PersonEntry,
)

MAX_BATCH_SIZE = 500
HANDLE_PATTERN = rf"^[a-z0-9][a-z0-9._-]{{0,{MAX_HANDLE_LENGTH - 1}}}$"
# The shape only: one "@", no spaces, a dot in the domain. Whether the address exists is not checked.
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"

Handle = Annotated[
    str,
    Field(
        pattern=HANDLE_PATTERN,
        description=f"Lowercase letters, digits, '.', '_' or '-', starting with a letter or digit, at most {MAX_HANDLE_LENGTH} characters",
        examples=["head-of-sales"],
    ),
]
HandlePath = Annotated[str, Path(pattern=HANDLE_PATTERN)]


class PersonBody(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, str_strip_whitespace=True)

    handle: Handle
    display_name: str = Field(min_length=1, max_length=MAX_DISPLAY_NAME_LENGTH)
    email: str = Field(max_length=MAX_EMAIL_LENGTH, pattern=EMAIL_PATTERN, examples=["casey@example.com"])
    team: str = Field(min_length=1, max_length=MAX_TEAM_LENGTH)
    manager_handle: Handle | None = Field(default=None, description="In this batch or already in the directory")


class PeopleBatchBody(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    people: list[PersonBody] = Field(min_length=1, max_length=MAX_BATCH_SIZE)


class PeopleBatchOut(BaseModel):
    created: int
    updated: int
    unchanged: int


class PersonOut(BaseModel):
    person_id: str
    handle: str
    display_name: str
    team: str
    manager_id: str | None
    active: bool
    email: str | None = Field(default=None, description="Only in responses to admins")


class PeoplePageOut(BaseModel):
    people: list[PersonOut]
    next_cursor: str | None = Field(description="Pass as `cursor` to read the next page; null on the last page")


def _encode_cursor(handle: str) -> str:
    return base64.urlsafe_b64encode(handle.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    """Return the handle a cursor names, or raise a 422 naming the ``cursor`` query parameter."""
    # binascii.Error (invalid base64), UnicodeDecodeError and the error for non-ASCII input are all ValueErrors.
    try:
        handle = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode()
    except ValueError:
        handle = ""
    if not re.fullmatch(HANDLE_PATTERN, handle):
        raise RequestValidationError(
            [{"type": "value_error", "loc": ("query", "cursor"), "msg": "invalid cursor; pass next_cursor from a previous page"}]
        )
    return handle


def _person_out(row: dict[str, Any], principal: Principal) -> PersonOut:
    fields = {column: row[column] for column in ("person_id", "handle", "display_name", "team", "manager_id", "active")}
    if principal.is_admin:
        fields["email"] = row["email"]
    return PersonOut(**fields)


def _admin_dependency(current_principal: Callable[..., Principal]) -> Callable[..., Principal]:
    """Build a dependency that returns the principal if they are an admin, else raises 403 before the body is read."""

    def current_admin(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if not principal.is_admin:
            raise HTTPException(
                status_code=status.HTTP_403_FORBIDDEN,
                detail="only an admin of the organisation may change the people directory; "
                "use a token with the admin role (spm-token --admin)",
            )
        return principal

    return current_admin


def _not_found(handle: str) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_404_NOT_FOUND,
        detail=f"person {handle!r} not found in your organisation; list people with GET /people",
    )


def people_routes(directory: PeopleDirectory, current_principal: Callable[..., Principal]) -> APIRouter:
    router = APIRouter(tags=["people"], responses=READ_RESPONSES)
    not_found = error_responses({404: "No person with this handle in the token's organisation"})
    CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
    CurrentAdmin = Annotated[Principal, Depends(_admin_dependency(current_principal))]

    @router.post("/people/batch", response_model=PeopleBatchOut, responses=error_responses({403: ADMIN_ONLY}))
    def upsert_people(body: PeopleBatchBody, principal: CurrentAdmin) -> PeopleBatchOut:
        entries = [
            PersonEntry(person.handle, person.display_name, person.email, person.team, person.manager_handle)
            for person in body.people
        ]
        try:
            result = directory.upsert_batch(principal.org_id, entries)
        except PeopleBatchError as error:
            loc = ("body", "people", error.row, error.field)
            raise RequestValidationError([{"type": "value_error", "loc": loc, "msg": error.message}]) from None
        return PeopleBatchOut(created=result.created, updated=result.updated, unchanged=result.unchanged)

    @router.get("/people", response_model=PeoplePageOut, response_model_exclude_unset=True)
    def list_people(
        principal: CurrentPrincipal,
        limit: Annotated[int, Query(ge=1, le=MAX_BATCH_SIZE)] = 100,
        cursor: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    ) -> PeoplePageOut:
        after_handle = None if cursor is None else _decode_cursor(cursor)
        rows = directory.page(principal.org_id, limit + 1, after_handle)
        people = [_person_out(row, principal) for row in rows[:limit]]
        next_cursor = _encode_cursor(people[-1].handle) if len(rows) > limit else None
        return PeoplePageOut(people=people, next_cursor=next_cursor)

    @router.get("/people/{handle}", response_model=PersonOut, response_model_exclude_unset=True, responses=not_found)
    def read_person(handle: HandlePath, principal: CurrentPrincipal) -> PersonOut:
        row = directory.find(principal.org_id, handle)
        if row is None:
            raise _not_found(handle)
        return _person_out(row, principal)

    @router.post(
        "/people/{handle}/deactivate", response_model=PersonOut, responses={**error_responses({403: ADMIN_ONLY}), **not_found}
    )
    def deactivate_person(handle: HandlePath, principal: CurrentAdmin) -> PersonOut:
        row = directory.deactivate(principal.org_id, handle)
        if row is None:
            raise _not_found(handle)
        return _person_out(row, principal)

    return router
