"""Routes of the teams of the people directory: admins write teams in batches, every member of the org reads them."""

import base64
from typing import Annotated, Callable

from fastapi import APIRouter, Depends, Query
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field

from spm_events.auth import MAX_TEAM_NAME_LENGTH, Principal
from spm_events.http import error_responses
from spm_social.api_responses import ADMIN_ONLY, READ_RESPONSES
from spm_social.people_api import MAX_BATCH_SIZE, _admin_dependency
from spm_social.teams import TeamBatchError, TeamDirectory, TeamEntry

TeamName = Annotated[str, Field(min_length=1, max_length=MAX_TEAM_NAME_LENGTH, examples=["Sales EMEA"])]


class TeamBody(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, str_strip_whitespace=True)

    name: TeamName
    parent_name: TeamName | None = Field(
        default=None, description="In this batch or already a team; absent for a top-level team"
    )


class TeamsBatchBody(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    teams: list[TeamBody] = Field(min_length=1, max_length=MAX_BATCH_SIZE)


class TeamsBatchOut(BaseModel):
    created: int
    updated: int
    unchanged: int


class TeamOut(BaseModel):
    name: str
    parent_name: str | None


class TeamsPageOut(BaseModel):
    teams: list[TeamOut]
    next_cursor: str | None = Field(description="Pass as `cursor` to read the next page; null on the last page")


def _encode_cursor(name: str) -> str:
    return base64.urlsafe_b64encode(name.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    """Return the team name a cursor names, or raise a 422 naming the ``cursor`` query parameter."""
    # binascii.Error (invalid base64), UnicodeDecodeError and the error for non-ASCII input are all ValueErrors.
    try:
        name = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode()
    except ValueError:
        name = ""
    if not 1 <= len(name) <= MAX_TEAM_NAME_LENGTH:
        message = "invalid cursor; pass next_cursor from a previous page"
        raise RequestValidationError([{"type": "value_error", "loc": ("query", "cursor"), "msg": message}])
    return name


def team_routes(directory: TeamDirectory, current_principal: Callable[..., Principal]) -> APIRouter:
    router = APIRouter(tags=["teams"], responses=READ_RESPONSES)
    CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
    CurrentAdmin = Annotated[Principal, Depends(_admin_dependency(current_principal))]

    @router.post("/teams/batch", responses=error_responses({403: ADMIN_ONLY}))
    def upsert_teams(body: TeamsBatchBody, principal: CurrentAdmin) -> TeamsBatchOut:
        entries = [TeamEntry(team.name, team.parent_name) for team in body.teams]
        try:
            result = directory.upsert_batch(principal.org_id, entries)
        except TeamBatchError as error:
            loc = ("body", "teams", error.row, error.field)
            raise RequestValidationError([{"type": "value_error", "loc": loc, "msg": error.message}]) from None
        return TeamsBatchOut(created=result.created, updated=result.updated, unchanged=result.unchanged)

    @router.get("/teams")
    def list_teams(
        principal: CurrentPrincipal,
        limit: Annotated[int, Query(ge=1, le=MAX_BATCH_SIZE)] = 100,
        # A 200-character name of 4-byte UTF-8 characters encodes to 1,067 cursor characters.
        cursor: Annotated[str | None, Query(min_length=1, max_length=1100)] = None,
    ) -> TeamsPageOut:
        after_name = None if cursor is None else _decode_cursor(cursor)
        rows = directory.page(principal.org_id, limit + 1, after_name)
        teams = [TeamOut(name=row["name"], parent_name=row["parent_name"]) for row in rows[:limit]]
        next_cursor = _encode_cursor(teams[-1].name) if len(rows) > limit else None
        return TeamsPageOut(teams=teams, next_cursor=next_cursor)

    return router
