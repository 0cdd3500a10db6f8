"""Routes of communities and of following people, and the HTTP responses to their errors."""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Callable
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from spm_events.auth import PERSON_ID_PATTERN, Principal
from spm_events.http import error_responses
from spm_social.api_responses import (
    COMMAND_RESPONSES,
    COMMUNITY_NOT_FOUND,
    PERSON_NOT_FOUND,
    READ_RESPONSES,
    SAVE_CONFLICT,
    unchanged_response,
)
from spm_social.application import SocialApplication
from spm_social.community import MAX_DESCRIPTION_LENGTH, MAX_NAME_LENGTH, CommunityPermissionError, LastOwnerError
from spm_social.directory_lookup import PersonDeactivatedError, PersonNotFoundError
from spm_social.event_time import EventTime, event_time_or_now
from spm_social.ids import TEXT_ID_PATTERN
from spm_social.graph_rules import SocialGraphError
from spm_social.network_commands import (
    CommunityDetail,
    CommunityNotFoundError,
    CommunitySummary,
    ConcurrentUpdateError,
    InvalidCommunityCursorError,
)

logger = logging.getLogger(__name__)

CommunityId = Annotated[UUID, Path(description="The id that POST /communities returned")]
GoalId = Annotated[str, Path(min_length=1, max_length=100, pattern=TEXT_ID_PATTERN)]
PersonIdPattern = rf"^{PERSON_ID_PATTERN.pattern}$"
PersonId = Annotated[str, Path(pattern=PersonIdPattern, description="A person id, as in a token's `sub`")]
OccurredAtQuery = Annotated[EventTime | None, Query()]

COMMUNITY_COMMAND = {**COMMAND_RESPONSES, **error_responses({404: COMMUNITY_NOT_FOUND})}
MEMBERS_ONLY = "Only members of the community may do this; join it first"
OWNERS_ONLY = "Only owners of the community may do this"
COMMUNITY_OR_GOAL_NOT_FOUND = (
    "Community not found in the token's organisation, or the goal is not known or not visible to the caller"
)
PERSON_COMMAND = {**COMMAND_RESPONSES, **error_responses({404: PERSON_NOT_FOUND})}


class EventTimeBody(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    occurred_at: EventTime | None = None


class CreateCommunityBody(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH)
    description: str = Field(default="", max_length=MAX_DESCRIPTION_LENGTH)
    occurred_at: EventTime | None = None


class DescribeCommunityBody(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, str_strip_whitespace=True)

    name: str | None = Field(
        default=None, min_length=1, max_length=MAX_NAME_LENGTH, description="Unchanged when absent"
    )
    description: str | None = Field(
        default=None, max_length=MAX_DESCRIPTION_LENGTH, description="Unchanged when absent"
    )
    occurred_at: EventTime | None = None

    @model_validator(mode="after")
    def check_something_changes(self) -> "DescribeCommunityBody":
        if self.name is None and self.description is None:
            raise ValueError("send a name, a description or both")
        return self


class InviteBody(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    person_id: str = Field(pattern=PersonIdPattern, description="The id of an active person of the people directory")
    occurred_at: EventTime | None = None


class LinkGoalBody(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    goal_id: str = Field(min_length=1, max_length=100, pattern=TEXT_ID_PATTERN)
    occurred_at: EventTime | None = None


class LinkedGoalOut(BaseModel):
    goal_id: str
    linked_by: str
    linked_at: datetime


class CommunitySummaryOut(BaseModel):
    community_id: str
    name: str
    description: str
    created_by: str
    created_at: datetime
    owner_ids: list[str]
    member_count: int
    follower_count: int
    your_role: str | None = Field(description="owner, member, or null when the reader is not a member")
    invited: bool = Field(description="Whether the reader has an invitation they have not used by joining")
    following: bool


class CommunityOut(CommunitySummaryOut):
    linked_goals: list[LinkedGoalOut] = Field(description="Only the linked goals the reader may see now")
    pending_invitee_ids: list[str] | None = Field(
        description="Invited people who have not joined; null for non-members"
    )


class CommunityPageOut(BaseModel):
    communities: list[CommunitySummaryOut]
    next_cursor: str | None = Field(description="Pass as `cursor` to read the next page; null on the last page")


class PersonFollowingOut(BaseModel):
    person_id: str
    follower_id: str
    following: bool


class PersonFollowersOut(BaseModel):
    person_id: str
    follower_count: int
    followers: list[str]


def _summary_out(summary: CommunitySummary) -> CommunitySummaryOut:
    fields = {name: getattr(summary, name) for name in CommunitySummaryOut.model_fields}
    return CommunitySummaryOut(**fields)


def _community_out(detail: CommunityDetail) -> CommunityOut:
    fields = {name: getattr(detail, name) for name in CommunitySummaryOut.model_fields}
    links = [
        LinkedGoalOut(goal_id=link.goal_id, linked_by=link.linked_by, linked_at=link.linked_at)
        for link in detail.linked_goals
    ]
    return CommunityOut(**fields, linked_goals=links, pending_invitee_ids=detail.pending_invitee_ids)


def _invalid(location: str, field: str, message: str) -> RequestValidationError:
    return RequestValidationError([{"type": "value_error", "loc": (location, field), "msg": message}])


@contextmanager
def _person_id_errors(location: str) -> Iterator[None]:
    """Report rule errors about the ``person_id`` field at its real location, the path or the body."""
    try:
        yield
    except SocialGraphError as error:
        if error.field != "person_id":
            raise
        raise _invalid(location, "person_id", error.message) from None
    except PersonDeactivatedError as error:
        message = f"person {error.person_id!r} is deactivated; name an active person"
        raise _invalid(location, "person_id", message) from None
    except PersonNotFoundError as error:
        if location == "path":
            raise
        message = f"person {error.person_id!r} is not in your organisation's people directory; check the id"
        raise _invalid(location, "person_id", message) from None


def _created_or_ok(response: Response, recorded: bool) -> None:
    response.status_code = status.HTTP_201_CREATED if recorded else status.HTTP_200_OK


def community_routes(
    social: SocialApplication,
    current_principal: Callable[..., Principal],
    command_principal: Callable[..., Principal] | None = None,
) -> APIRouter:
    """Build the community routes. ``command_principal`` guards the commands, for example with a rate limit."""
    router = APIRouter(tags=["communities"])
    Reader = Annotated[Principal, Depends(current_principal)]
    Actor = Annotated[Principal, Depends(command_principal or current_principal)]

    @router.post("/communities", status_code=status.HTTP_201_CREATED, responses=COMMAND_RESPONSES)
    def create_community(body: CreateCommunityBody, principal: Actor) -> CommunityOut:
        occurred_at = event_time_or_now(body.occurred_at)
        return _community_out(social.create_community(principal, body.name, body.description, occurred_at))

    @router.get("/communities", responses=READ_RESPONSES)
    def list_communities(
        principal: Reader,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        cursor: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    ) -> CommunityPageOut:
        summaries, next_cursor = social.list_communities(principal, limit, cursor)
        return CommunityPageOut(communities=[_summary_out(summary) for summary in summaries], next_cursor=next_cursor)

    @router.get("/communities/{community_id}", responses={**READ_RESPONSES, **error_responses({404: COMMUNITY_NOT_FOUND})})
    def read_community(community_id: CommunityId, principal: Reader) -> CommunityOut:
        return _community_out(social.get_community(principal, community_id))

    @router.post("/communities/{community_id}/describe", responses={**COMMUNITY_COMMAND, **error_responses({403: OWNERS_ONLY})})
    def describe_community(community_id: CommunityId, body: DescribeCommunityBody, principal: Actor) -> CommunityOut:
        occurred_at = event_time_or_now(body.occurred_at)
        social.describe_community(principal, community_id, body.name, body.description, occurred_at)
        return _community_out(social.get_community(principal, community_id))

    @router.post(
        "/communities/{community_id}/join",
        status_code=status.HTTP_201_CREATED,
        responses={**COMMUNITY_COMMAND, **unchanged_response(CommunityOut, "The caller was a member already; nothing was written")},
    )
    def join_community(
        community_id: CommunityId, principal: Actor, response: Response, body: EventTimeBody | None = None
    ) -> CommunityOut:
        recorded = social.join_community(principal, community_id, event_time_or_now(body.occurred_at if body else None))
        _created_or_ok(response, recorded)
        return _community_out(social.get_community(principal, community_id))

    @router.post(
        "/communities/{community_id}/leave",
        responses={
            **COMMUNITY_COMMAND,
            **error_responses({409: f"The caller is the last owner and other members remain. Or: {SAVE_CONFLICT}"}),
        },
    )
    def leave_community(community_id: CommunityId, principal: Actor, body: EventTimeBody | None = None) -> CommunityOut:
        social.leave_community(principal, community_id, event_time_or_now(body.occurred_at if body else None))
        return _community_out(social.get_community(principal, community_id))

    @router.post(
        "/communities/{community_id}/invite",
        status_code=status.HTTP_201_CREATED,
        responses={
            **COMMUNITY_COMMAND,
            **error_responses({403: MEMBERS_ONLY}),
            **unchanged_response(CommunityOut, "The person was a member or invited already; nothing was written"),
        },
    )
    def invite_to_community(
        community_id: CommunityId, body: InviteBody, principal: Actor, response: Response
    ) -> CommunityOut:
        with _person_id_errors("body"):
            recorded = social.invite_to_community(
                principal, community_id, body.person_id, event_time_or_now(body.occurred_at)
            )
        _created_or_ok(response, recorded)
        return _community_out(social.get_community(principal, community_id))

    @router.post(
        "/communities/{community_id}/members/{person_id}/remove",
        responses={**COMMUNITY_COMMAND, **error_responses({403: OWNERS_ONLY})},
    )
    def remove_community_member(
        community_id: CommunityId, person_id: PersonId, principal: Actor, body: EventTimeBody | None = None
    ) -> CommunityOut:
        occurred_at = event_time_or_now(body.occurred_at if body else None)
        with _person_id_errors("path"):
            social.remove_community_member(principal, community_id, person_id, occurred_at)
        return _community_out(social.get_community(principal, community_id))

    @router.post(
        "/communities/{community_id}/goals",
        status_code=status.HTTP_201_CREATED,
        responses={
            **COMMAND_RESPONSES,
            **error_responses({403: MEMBERS_ONLY, 404: COMMUNITY_OR_GOAL_NOT_FOUND}),
            **unchanged_response(CommunityOut, "The goal was linked already; nothing was written"),
        },
    )
    def link_goal(community_id: CommunityId, body: LinkGoalBody, principal: Actor, response: Response) -> CommunityOut:
        occurred_at = event_time_or_now(body.occurred_at)
        recorded = social.link_community_goal(principal, community_id, body.goal_id, occurred_at)
        _created_or_ok(response, recorded)
        return _community_out(social.get_community(principal, community_id))

    @router.delete(
        "/communities/{community_id}/goals/{goal_id}",
        responses={
            **COMMAND_RESPONSES,
            **error_responses(
                {403: "Only an owner, or the member who linked the goal, may unlink it", 404: COMMUNITY_OR_GOAL_NOT_FOUND}
            ),
        },
    )
    def unlink_goal(
        community_id: CommunityId, goal_id: GoalId, principal: Actor, occurred_at: OccurredAtQuery = None
    ) -> CommunityOut:
        social.unlink_community_goal(principal, community_id, goal_id, event_time_or_now(occurred_at))
        return _community_out(social.get_community(principal, community_id))

    @router.post(
        "/communities/{community_id}/followers",
        status_code=status.HTTP_201_CREATED,
        responses={**COMMUNITY_COMMAND, **unchanged_response(CommunityOut, "The caller followed the community already; nothing was written")},
    )
    def follow_community(
        community_id: CommunityId, principal: Actor, response: Response, body: EventTimeBody | None = None
    ) -> CommunityOut:
        occurred_at = event_time_or_now(body.occurred_at if body else None)
        recorded = social.follow_community(principal, community_id, occurred_at)
        _created_or_ok(response, recorded)
        return _community_out(social.get_community(principal, community_id))

    @router.delete("/communities/{community_id}/followers", responses=COMMUNITY_COMMAND)
    def unfollow_community(
        community_id: CommunityId, principal: Actor, occurred_at: OccurredAtQuery = None
    ) -> CommunityOut:
        social.unfollow_community(principal, community_id, event_time_or_now(occurred_at))
        return _community_out(social.get_community(principal, community_id))

    return router


def person_follow_routes(
    social: SocialApplication,
    current_principal: Callable[..., Principal],
    command_principal: Callable[..., Principal] | None = None,
) -> APIRouter:
    """Build the routes that follow people. ``command_principal`` guards the commands, for example with a rate limit."""
    router = APIRouter(tags=["people"])
    Reader = Annotated[Principal, Depends(current_principal)]
    Actor = Annotated[Principal, Depends(command_principal or current_principal)]

    @router.post(
        "/people/{person_id}/followers",
        status_code=status.HTTP_201_CREATED,
        responses={**PERSON_COMMAND, **unchanged_response(PersonFollowingOut, "The caller followed the person already; nothing was written")},
    )
    def follow_person(
        person_id: PersonId, principal: Actor, response: Response, body: EventTimeBody | None = None
    ) -> PersonFollowingOut:
        with _person_id_errors("path"):
            recorded = social.follow_person(principal, person_id, event_time_or_now(body.occurred_at if body else None))
        _created_or_ok(response, recorded)
        return PersonFollowingOut(person_id=person_id, follower_id=principal.person_id, following=True)

    @router.delete("/people/{person_id}/followers", responses=PERSON_COMMAND)
    def unfollow_person(
        person_id: PersonId, principal: Actor, occurred_at: OccurredAtQuery = None
    ) -> PersonFollowingOut:
        with _person_id_errors("path"):
            social.unfollow_person(principal, person_id, event_time_or_now(occurred_at))
        return PersonFollowingOut(person_id=person_id, follower_id=principal.person_id, following=False)

    @router.get("/people/{person_id}/followers", responses={**READ_RESPONSES, **error_responses({404: PERSON_NOT_FOUND})})
    def read_person_followers(person_id: PersonId, principal: Reader) -> PersonFollowersOut:
        followers = social.get_person_followers(principal, person_id)
        return PersonFollowersOut(person_id=person_id, follower_count=len(followers), followers=followers)

    return router


def add_network_routes(
    app: FastAPI,
    social: SocialApplication,
    current_principal: Callable[..., Principal],
    command_principal: Callable[..., Principal] | None = None,
) -> None:
    """Register the community and person-follow routes and the HTTP responses to their errors."""
    app.include_router(community_routes(social, current_principal, command_principal))
    app.include_router(person_follow_routes(social, current_principal, command_principal))
    _add_error_handlers(app)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(CommunityNotFoundError)
    async def community_not_found(_: Request, error: CommunityNotFoundError) -> JSONResponse:
        detail = (
            f"community {error.community_id} not found in your organisation; "
            "list communities with GET /communities"
        )
        return JSONResponse(status_code=status.HTTP_404_NOT_FOUND, content={"detail": detail})

    @app.exception_handler(PersonNotFoundError)
    async def person_not_found(_: Request, error: PersonNotFoundError) -> JSONResponse:
        detail = f"person {error.person_id!r} not found in your organisation; list people with GET /people"
        return JSONResponse(status_code=status.HTTP_404_NOT_FOUND, content={"detail": detail})

    @app.exception_handler(CommunityPermissionError)
    async def not_allowed(request: Request, error: CommunityPermissionError) -> JSONResponse:
        logger.info("rejected %s %s with 403: %s", request.method, request.url.path, error)
        return JSONResponse(status_code=status.HTTP_403_FORBIDDEN, content={"detail": str(error)})

    @app.exception_handler(LastOwnerError)
    async def last_owner(request: Request, error: LastOwnerError) -> JSONResponse:
        logger.info("rejected %s %s with 409: %s", request.method, request.url.path, error)
        return JSONResponse(status_code=status.HTTP_409_CONFLICT, content={"detail": str(error)})

    @app.exception_handler(InvalidCommunityCursorError)
    async def invalid_cursor(_: Request, error: InvalidCommunityCursorError) -> JSONResponse:
        detail = [{"type": "value_error", "loc": ["query", "cursor"], "msg": str(error)}]
        return JSONResponse(status_code=status.HTTP_422_UNPROCESSABLE_CONTENT, content={"detail": detail})

    @app.exception_handler(ConcurrentUpdateError)
    async def concurrent_update(_: Request, error: ConcurrentUpdateError) -> JSONResponse:
        logger.warning("rejected command after repeated version conflicts: %s", error)
        detail = "the community or follow graph changed while this request ran; retry the request"
        return JSONResponse(status_code=status.HTTP_409_CONFLICT, content={"detail": detail})
