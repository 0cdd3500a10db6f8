"""HTTP API of the social service: follows, collaborator tags and personal feeds."""

import logging
import time
from contextlib import asynccontextmanager
from typing import Annotated, AsyncIterator, Callable

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from spm_events.auth import PERSON_ID_PATTERN, Principal, principal_dependency
from spm_events.database import create_database_engine
from spm_events.http import BodyLimitMiddleware, add_common_error_handlers, add_storage_error_handler, error_responses
from spm_events.relay import RelayPositions
from spm_social.api_responses import (
    COMMAND_RESPONSES,
    GOAL_NOT_FOUND,
    READ_RESPONSES,
    STORAGE_UNAVAILABLE,
    unchanged_response,
)
from spm_social.application import ConcurrentChangeError, GoalNotFoundError, SocialApplication
from spm_social.community_api import add_network_routes
from spm_social.directory_lookup import PeopleLookup
from spm_social.domain import SocialGraphError
from spm_social.event_time import EventTime, event_time_or_now
from spm_social.ids import TEXT_ID_PATTERN
from spm_social.feed_api import feed_routes
from spm_social.interactions_api import add_interaction_error_handlers, interaction_routes
from spm_social.people import PeopleDirectory
from spm_social.people_api import people_routes
from spm_social.ratelimit import SOCIAL_COMMANDS, RateLimit, RateLimiter, rate_limited_principal
from spm_social.readmodel import FEED_CONSUMER, open_read_model
from spm_social.relay import RELAY_NAME
from spm_social.settings import EVENT_STORE_FILE, READ_MODEL_FILE, SocialSettings
from spm_social.teams import TeamDirectory
from spm_social.teams_api import team_routes
from spm_social.views import InvalidCursorError, SocialViews

logger = logging.getLogger(__name__)

GoalId = Annotated[str, Path(min_length=1, max_length=100, pattern=TEXT_ID_PATTERN)]


class FollowRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    occurred_at: EventTime | None = None


class TagCollaboratorRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    person_id: str = Field(
        min_length=1,
        max_length=100,
        pattern=rf"^{PERSON_ID_PATTERN.pattern}$",
        description="The id of the person to tag as a collaborator (as in their token's `sub`), not a name or handle",
    )
    occurred_at: EventTime | None = None


class FollowingResponse(BaseModel):
    goal_id: str
    follower_id: str
    following: bool


class CollaboratorResponse(BaseModel):
    goal_id: str
    collaborator_id: str
    tagged_by: str


class FollowersResponse(BaseModel):
    goal_id: str
    follower_count: int
    followers: list[str]


def create_app(settings: SocialSettings, rate_limit_clock: Callable[[], float] = time.time) -> FastAPI:
    """Wire the event store, the read model and the routes into one FastAPI app.

    ``rate_limit_clock`` returns Unix seconds for the rate limit's windows, so tests can hold time still.
    """
    read_engine = create_database_engine(settings.sqlalchemy_url(READ_MODEL_FILE))
    views = SocialViews(open_read_model(read_engine, FEED_CONSUMER))
    people = PeopleDirectory(read_engine)
    social = SocialApplication(
        goal_audiences=views, env=settings.event_store_env(EVENT_STORE_FILE), people=PeopleLookup(read_engine, people.table)
    )
    relay_positions = RelayPositions(read_engine)
    command_limit = RateLimit(SOCIAL_COMMANDS, settings.rate_limit_commands, settings.rate_limit_window_seconds)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        social.close()
        read_engine.dispose()

    app = FastAPI(title="SPM social", lifespan=lifespan)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes, max_depth=settings.max_json_depth)
    app.state.social = social
    app.state.views = views
    add_error_handlers(app, settings)
    add_interaction_error_handlers(app)
    current_principal = principal_dependency(settings.jwt_secret.get_secret_value())
    rate_limiter = RateLimiter(read_engine, rate_limit_clock)
    limited_principal = rate_limited_principal(rate_limiter, command_limit, current_principal)
    app.include_router(command_routes(social, current_principal, limited_principal))
    app.include_router(interaction_routes(social, current_principal, limited_principal))
    app.include_router(query_routes(social, views, current_principal))
    app.include_router(feed_routes(views, current_principal))
    app.include_router(internal_routes(social, views, relay_positions))
    app.include_router(people_routes(people, current_principal))
    add_network_routes(app, social, current_principal, limited_principal)
    app.include_router(team_routes(TeamDirectory(read_engine), current_principal))
    return app


def command_routes(
    social: SocialApplication, current_principal: Callable[..., Principal], limited_principal: Callable[..., Principal]
) -> APIRouter:
    # Every command counts against the caller's rate limit before its body is checked.
    router = APIRouter(
        dependencies=[Depends(limited_principal)],
        responses={**COMMAND_RESPONSES, **error_responses({404: GOAL_NOT_FOUND})},
    )
    CurrentPrincipal = Annotated[Principal, Depends(current_principal)]

    @router.post(
        "/goals/{goal_id}/followers",
        status_code=status.HTTP_201_CREATED,
        responses=unchanged_response(FollowingResponse, "The caller already followed the goal; nothing was written"),
    )
    def follow_goal(
        goal_id: GoalId, principal: CurrentPrincipal, response: Response, body: FollowRequest | None = None
    ) -> FollowingResponse:
        occurred_at = event_time_or_now(body.occurred_at if body else None)
        recorded = social.follow_goal(principal, goal_id, occurred_at)
        if not recorded:
            response.status_code = status.HTTP_200_OK
        return FollowingResponse(goal_id=goal_id, follower_id=principal.person_id, following=True)

    @router.delete("/goals/{goal_id}/followers/me")
    def unfollow_goal(
        goal_id: GoalId, principal: CurrentPrincipal, occurred_at: Annotated[EventTime | None, Query()] = None
    ) -> FollowingResponse:
        social.unfollow_goal(principal, goal_id, event_time_or_now(occurred_at))
        return FollowingResponse(goal_id=goal_id, follower_id=principal.person_id, following=False)

    @router.post(
        "/goals/{goal_id}/collaborators",
        status_code=status.HTTP_201_CREATED,
        responses=unchanged_response(
            CollaboratorResponse, "The person's tag is already pending or accepted; nothing was written"
        ),
    )
    def tag_collaborator(
        goal_id: GoalId, body: TagCollaboratorRequest, principal: CurrentPrincipal, response: Response
    ) -> CollaboratorResponse:
        occurred_at = event_time_or_now(body.occurred_at)
        recorded = social.tag_collaborator(principal, goal_id, body.person_id, occurred_at)
        if not recorded:
            response.status_code = status.HTTP_200_OK
        tagged_by = social.get_tagger(principal.org_id, goal_id, body.person_id) or principal.person_id
        return CollaboratorResponse(goal_id=goal_id, collaborator_id=body.person_id, tagged_by=tagged_by)

    return router


def query_routes(
    social: SocialApplication, views: SocialViews, current_principal: Callable[..., Principal]
) -> APIRouter:
    router = APIRouter(responses={**READ_RESPONSES, **error_responses({404: GOAL_NOT_FOUND})})
    CurrentPrincipal = Annotated[Principal, Depends(current_principal)]

    @router.get("/goals/{goal_id}/followers")
    def read_followers(goal_id: GoalId, principal: CurrentPrincipal) -> FollowersResponse:
        followers = social.get_followers(principal, goal_id)
        return FollowersResponse(goal_id=goal_id, follower_count=len(followers), followers=followers)

    return router


def internal_routes(social: SocialApplication, views: SocialViews, relay_positions: RelayPositions) -> APIRouter:
    router = APIRouter()

    @router.get("/healthz")
    def read_health() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/internal/relay", responses=error_responses({503: STORAGE_UNAVAILABLE}))
    def read_relay_progress() -> dict[str, object]:
        return {
            "relay": RELAY_NAME,
            "published_position": relay_positions.read(RELAY_NAME),
            "max_notification_id": social.max_notification_id(),
        }

    @router.get("/internal/positions", responses=error_responses({503: STORAGE_UNAVAILABLE}))
    def read_consumer_positions() -> dict[str, object]:
        return {"consumer": FEED_CONSUMER, "positions": views.consumer_positions()}

    return router


def add_error_handlers(app: FastAPI, settings: SocialSettings) -> None:
    add_common_error_handlers(app)
    add_storage_error_handler(app, "social", settings.sqlite_data_dir)

    @app.exception_handler(GoalNotFoundError)
    async def goal_not_found(_: Request, error: GoalNotFoundError) -> JSONResponse:
        detail = (
            f"goal {error.goal_id!r} not found in your organisation; check the goal id, "
            "or retry shortly if the goal was created moments ago"
        )
        return JSONResponse(status_code=status.HTTP_404_NOT_FOUND, content={"detail": detail})

    @app.exception_handler(SocialGraphError)
    async def social_graph_rule_broken(request: Request, error: SocialGraphError) -> JSONResponse:
        location = "query" if error.field in request.query_params else "body"
        detail = [{"type": "value_error", "loc": [location, error.field], "msg": error.message}]
        return JSONResponse(status_code=status.HTTP_422_UNPROCESSABLE_CONTENT, content={"detail": detail})

    @app.exception_handler(InvalidCursorError)
    async def invalid_cursor(_: Request, error: InvalidCursorError) -> JSONResponse:
        detail = [{"type": "value_error", "loc": ["query", "before"], "msg": str(error)}]
        return JSONResponse(status_code=status.HTTP_422_UNPROCESSABLE_CONTENT, content={"detail": detail})

    @app.exception_handler(ConcurrentChangeError)
    async def concurrent_change(_: Request, error: ConcurrentChangeError) -> JSONResponse:
        logger.warning("rejected command after repeated version conflicts: %s", error)
        detail = "the goal's social graph changed while this request ran; retry the request"
        return JSONResponse(status_code=status.HTTP_409_CONFLICT, content={"detail": detail})
