"""HTTP routes of the feeds: the personal feed and a community's feed."""

from datetime import datetime
from typing import Annotated, Callable, Literal

from fastapi import APIRouter, Depends, Path, Query, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from spm_events.auth import Principal
from spm_events.http import error_responses
from spm_social.api_responses import READ_RESPONSES
from spm_social.fanout import FEED_KINDS
from spm_social.ids import TEXT_ID_PATTERN
from spm_social.views import FeedCursor, FeedPage, SocialViews

FeedKind = Literal[FEED_KINDS]  # type: ignore[valid-type]
Limit = Annotated[int, Query(ge=1, le=100)]
Before = Annotated[str | None, Query(min_length=1, max_length=300)]
Kinds = Annotated[
    list[FeedKind] | None,
    Query(description="Only items of these kinds; repeat the parameter for several kinds"),
]


class FeedItem(BaseModel):
    item_id: str
    event_id: str
    kind: str
    source: str
    source_id: str | None
    goal_id: str | None
    goal_title: str | None
    community_id: str | None
    key_result_id: str | None
    target_id: str | None
    actor_id: str
    subject_id: str | None
    summary: str
    occurred_at: datetime
    indexed_at: datetime


class FeedResponse(BaseModel):
    items: list[FeedItem]
    next_cursor: str | None


def feed_routes(views: SocialViews, current_principal: Callable[..., Principal]) -> APIRouter:
    router = APIRouter(responses=READ_RESPONSES)
    CurrentPrincipal = Annotated[Principal, Depends(current_principal)]

    @router.get("/feed")
    def read_feed(
        principal: CurrentPrincipal, limit: Limit = 20, before: Before = None, kind: Kinds = None
    ) -> FeedResponse:
        cursor = FeedCursor.decode(before) if before else None
        return _response(views.feed_page(principal, limit, cursor, kind))

    @router.get(
        "/communities/{community_id}/feed",
        response_model=FeedResponse,
        responses=error_responses(
            {404: "Community not found in the token's organisation, or the caller is not a member; both get the same body"}
        ),
    )
    def read_community_feed(
        community_id: Annotated[str, Path(min_length=1, max_length=100, pattern=TEXT_ID_PATTERN)],
        principal: CurrentPrincipal,
        limit: Limit = 20,
        before: Before = None,
        kind: Kinds = None,
    ) -> FeedResponse | JSONResponse:
        cursor = FeedCursor.decode(before) if before else None
        page = views.community_feed_page(principal, community_id, limit, cursor, kind)
        if page is None:
            # A community the reader is not a member of gets the same 404 as one that does not exist.
            detail = f"community {community_id} not found in your organisation; list communities with GET /communities"
            return JSONResponse(status_code=status.HTTP_404_NOT_FOUND, content={"detail": detail})
        return _response(page)

    return router


def _response(page: FeedPage) -> FeedResponse:
    return FeedResponse(items=[FeedItem(**item) for item in page.items], next_cursor=page.next_cursor)
