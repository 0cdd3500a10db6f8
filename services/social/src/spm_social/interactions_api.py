"""Routes of goal interactions: tag consent, comments with mentions, reactions and kudos.

Commands count against the per-person rate limit, and queries do not. For a goal the caller may
not see, every route returns the same 404 as for an unknown goal.
"""

import logging
from typing import Annotated, Callable

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request, Response, status
from fastapi.responses import JSONResponse

from spm_events.auth import PERSON_ID_PATTERN, Principal
from spm_events.http import error_responses
from spm_events.schemas import ReactionKind, ReactionTarget
from spm_social.api_responses import (
    COMMAND_RESPONSES,
    GOAL_NOT_FOUND,
    READ_RESPONSES,
    SAVE_CONFLICT,
    unchanged_response,
)
from spm_social.application import SocialApplication
from spm_social.event_time import EventTime, event_time_or_now
from spm_social.ids import TEXT_ID_PATTERN
from spm_social.graph_rules import ActionNotAllowedError, CommentNotFoundError, GraphConflictError
from spm_social.interaction_schemas import (
    TARGET_ID_PATTERN,
    AddReactionBody,
    CollaboratorOut,
    CollaboratorsOut,
    CommandBody,
    CommentHistoryOut,
    CommentOut,
    CommentRevisionOut,
    CommentsPageOut,
    EditCommentBody,
    GiveKudosBody,
    KudosOut,
    KudosPageOut,
    PostCommentBody,
    ReactionOut,
    ReactionsOut,
    ReactionSummaryOut,
    TagStateOut,
)
from spm_social.pages import InvalidPageCursorError, PageCursor

logger = logging.getLogger(__name__)

GoalId = Annotated[str, Path(min_length=1, max_length=100, pattern=TEXT_ID_PATTERN)]
CommentId = Annotated[str, Path(min_length=1, max_length=100)]
PersonId = Annotated[str, Path(pattern=rf"^{PERSON_ID_PATTERN.pattern}$")]
OccurredAtQuery = Annotated[EventTime | None, Query()]
Cursor = Annotated[str | None, Query(min_length=1, max_length=300)]
Limit = Annotated[int, Query(ge=1, le=100)]

COMMANDS_ON_GOAL = {**COMMAND_RESPONSES, **error_responses({404: GOAL_NOT_FOUND})}
QUERIES_OF_GOAL = {**READ_RESPONSES, **error_responses({404: GOAL_NOT_FOUND})}
TAG_STATE_CONFLICT = error_responses(
    {409: f"The caller's tag is not in a state that allows this change, such as leaving a pending tag. Or: {SAVE_CONFLICT}"}
)
COMMENT_NOT_FOUND = "Goal not found or not visible to the caller, or the comment is not on the goal"


def interaction_routes(
    social: SocialApplication,
    current_principal: Callable[..., Principal],
    limited_principal: Callable[..., Principal],
) -> APIRouter:
    """Build the goal interaction routes; commands depend on ``limited_principal``, which applies the rate limit."""
    router = APIRouter(tags=["goal interactions"])
    router.include_router(_consent_routes(social, limited_principal), responses=COMMANDS_ON_GOAL)
    router.include_router(_comment_routes(social, limited_principal), responses=COMMANDS_ON_GOAL)
    router.include_router(_reaction_and_kudos_routes(social, limited_principal), responses=COMMANDS_ON_GOAL)
    router.include_router(_query_routes(social, current_principal), responses=QUERIES_OF_GOAL)
    return router


def _consent_routes(social: SocialApplication, limited_principal: Callable[..., Principal]) -> APIRouter:
    router = APIRouter()
    Actor = Annotated[Principal, Depends(limited_principal)]

    @router.post("/goals/{goal_id}/collaborators/me/accept", responses=TAG_STATE_CONFLICT)
    def accept_tag(goal_id: GoalId, actor: Actor, body: CommandBody | None = None) -> TagStateOut:
        social.accept_tag(actor, goal_id, event_time_or_now(body.occurred_at if body else None))
        return TagStateOut(goal_id=goal_id, collaborator_id=actor.person_id, state="accepted")

    @router.post("/goals/{goal_id}/collaborators/me/decline", responses=TAG_STATE_CONFLICT)
    def decline_tag(goal_id: GoalId, actor: Actor, body: CommandBody | None = None) -> TagStateOut:
        social.decline_tag(actor, goal_id, event_time_or_now(body.occurred_at if body else None))
        return TagStateOut(goal_id=goal_id, collaborator_id=actor.person_id, state="declined")

    @router.post("/goals/{goal_id}/collaborators/me/leave", responses=TAG_STATE_CONFLICT)
    def leave_goal(goal_id: GoalId, actor: Actor, body: CommandBody | None = None) -> TagStateOut:
        social.leave_goal(actor, goal_id, event_time_or_now(body.occurred_at if body else None))
        return TagStateOut(goal_id=goal_id, collaborator_id=actor.person_id, state="left")

    @router.delete(
        "/goals/{goal_id}/collaborators/{person_id}",
        responses=error_responses(
            {
                403: "Only an owner or co-owner of the goal, or an admin, may untag a collaborator",
                404: "Goal not found or not visible to the caller, or the person was never tagged on it",
            }
        ),
    )
    def untag_collaborator(
        goal_id: GoalId, person_id: PersonId, actor: Actor, occurred_at: OccurredAtQuery = None
    ) -> TagStateOut:
        state = social.untag_collaborator(actor, goal_id, person_id, event_time_or_now(occurred_at))
        if state is None:
            raise HTTPException(
                status_code=status.HTTP_404_NOT_FOUND,
                detail=f"person {person_id!r} was never tagged on goal {goal_id!r}; "
                f"list its collaborators with GET /goals/{goal_id}/collaborators",
            )
        return TagStateOut(goal_id=goal_id, collaborator_id=person_id, state=state)

    return router


def _comment_routes(social: SocialApplication, limited_principal: Callable[..., Principal]) -> APIRouter:
    router = APIRouter()
    Actor = Annotated[Principal, Depends(limited_principal)]

    @router.post("/goals/{goal_id}/comments", status_code=status.HTTP_201_CREATED)
    def post_comment(goal_id: GoalId, body: PostCommentBody, actor: Actor) -> CommentOut:
        occurred_at = event_time_or_now(body.occurred_at)
        comment = social.post_comment(actor, goal_id, body.body, body.check_in_id, occurred_at)
        return CommentOut.of(goal_id, comment)

    @router.patch(
        "/goals/{goal_id}/comments/{comment_id}",
        responses=error_responses(
            {403: "Only the author of a comment may edit it", 404: f"{COMMENT_NOT_FOUND}, or it was deleted"}
        ),
    )
    def edit_comment(goal_id: GoalId, comment_id: CommentId, body: EditCommentBody, actor: Actor) -> CommentOut:
        occurred_at = event_time_or_now(body.occurred_at)
        _, comment = social.edit_comment(actor, goal_id, comment_id, body.body, occurred_at)
        return CommentOut.of(goal_id, comment)

    @router.delete(
        "/goals/{goal_id}/comments/{comment_id}",
        status_code=status.HTTP_204_NO_CONTENT,
        responses=error_responses(
            {
                403: "Only the author, an owner or co-owner of the goal, or an admin may delete a comment",
                404: f"{COMMENT_NOT_FOUND} (deleting a deleted comment gets 204)",
            }
        ),
    )
    def delete_comment(
        goal_id: GoalId, comment_id: CommentId, actor: Actor, occurred_at: OccurredAtQuery = None
    ) -> Response:
        social.delete_comment(actor, goal_id, comment_id, event_time_or_now(occurred_at))
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    return router


def _reaction_and_kudos_routes(social: SocialApplication, limited_principal: Callable[..., Principal]) -> APIRouter:
    router = APIRouter()
    Actor = Annotated[Principal, Depends(limited_principal)]

    @router.post(
        "/goals/{goal_id}/reactions",
        status_code=status.HTTP_201_CREATED,
        responses=unchanged_response(ReactionOut, "The caller already reacted so to this target; nothing was written"),
    )
    def add_reaction(goal_id: GoalId, body: AddReactionBody, actor: Actor, response: Response) -> ReactionOut:
        occurred_at = event_time_or_now(body.occurred_at)
        recorded, key = social.add_reaction(
            actor, goal_id, body.target_kind, body.target_id, body.reaction, occurred_at
        )
        if not recorded:
            response.status_code = status.HTTP_200_OK
        return ReactionOut(goal_id=goal_id, **key._asdict(), reacted=True)

    @router.delete("/goals/{goal_id}/reactions/me")
    def remove_reaction(
        goal_id: GoalId,
        actor: Actor,
        reaction: Annotated[ReactionKind, Query()],
        target_kind: Annotated[ReactionTarget, Query()] = "goal",
        target_id: Annotated[str | None, Query(pattern=TARGET_ID_PATTERN)] = None,
        occurred_at: OccurredAtQuery = None,
    ) -> ReactionOut:
        occurred_at = event_time_or_now(occurred_at)
        _, key = social.remove_reaction(actor, goal_id, target_kind, target_id, reaction, occurred_at)
        return ReactionOut(goal_id=goal_id, **key._asdict(), reacted=False)

    @router.post(
        "/goals/{goal_id}/kudos",
        status_code=status.HTTP_201_CREATED,
        responses=error_responses(
            {409: f"The giver already gave kudos on this goal on the UTC day of occurred_at. Or: {SAVE_CONFLICT}"}
        ),
    )
    def give_kudos(goal_id: GoalId, body: GiveKudosBody, actor: Actor) -> KudosOut:
        occurred_at = event_time_or_now(body.occurred_at)
        kudos = social.give_kudos(actor, goal_id, body.receiver_id, body.message, occurred_at)
        return KudosOut.of(goal_id, kudos)

    return router


def _query_routes(social: SocialApplication, current_principal: Callable[..., Principal]) -> APIRouter:
    router = APIRouter()
    Reader = Annotated[Principal, Depends(current_principal)]

    @router.get("/goals/{goal_id}/collaborators")
    def read_collaborators(goal_id: GoalId, reader: Reader) -> CollaboratorsOut:
        tags = social.collaborator_tags(reader, goal_id)
        return CollaboratorsOut(goal_id=goal_id, collaborators=[CollaboratorOut.of(tag) for tag in tags])

    @router.get("/goals/{goal_id}/comments")
    def read_comments(
        goal_id: GoalId,
        reader: Reader,
        check_in_id: Annotated[str | None, Query(pattern=TARGET_ID_PATTERN)] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> CommentsPageOut:
        after = PageCursor.decode(cursor) if cursor else None
        page = social.comments_page(reader, goal_id, check_in_id, limit, after)
        comments = [CommentOut.of(goal_id, comment) for comment in page.items]
        return CommentsPageOut(goal_id=goal_id, comments=comments, next_cursor=page.next_cursor)

    @router.get(
        "/goals/{goal_id}/comments/{comment_id}/history",
        responses=error_responses({404: f"{COMMENT_NOT_FOUND}, or it was deleted"}),
    )
    def read_comment_history(goal_id: GoalId, comment_id: CommentId, reader: Reader) -> CommentHistoryOut:
        comment = social.comment_with_history(reader, goal_id, comment_id)
        revisions = [CommentRevisionOut.of(revision) for revision in comment.revisions]
        return CommentHistoryOut(
            comment_id=comment.comment_id, goal_id=goal_id, author_id=comment.author_id, revisions=revisions
        )

    @router.get("/goals/{goal_id}/reactions")
    def read_reactions(
        goal_id: GoalId, reader: Reader, target_kind: Annotated[ReactionTarget | None, Query()] = None
    ) -> ReactionsOut:
        summaries = social.reaction_summaries(reader, goal_id, target_kind)
        return ReactionsOut(goal_id=goal_id, targets=[ReactionSummaryOut.of(summary) for summary in summaries])

    @router.get("/goals/{goal_id}/kudos")
    def read_kudos(goal_id: GoalId, reader: Reader, limit: Limit = 50, cursor: Cursor = None) -> KudosPageOut:
        before = PageCursor.decode(cursor) if cursor else None
        page = social.kudos_page(reader, goal_id, limit, before)
        return KudosPageOut(
            goal_id=goal_id, kudos=[KudosOut.of(goal_id, kudos) for kudos in page.items], next_cursor=page.next_cursor
        )

    return router


def add_interaction_error_handlers(app: FastAPI) -> None:
    """Map the graph's conflict, permission and missing-comment errors, and invalid cursors, to HTTP responses."""

    @app.exception_handler(GraphConflictError)
    async def graph_conflict(request: Request, error: GraphConflictError) -> JSONResponse:
        logger.info("rejected %s %s with 409: %s", request.method, request.url.path, error.message)
        return JSONResponse(status_code=status.HTTP_409_CONFLICT, content={"detail": error.message})

    @app.exception_handler(ActionNotAllowedError)
    async def action_not_allowed(request: Request, error: ActionNotAllowedError) -> JSONResponse:
        logger.info("rejected %s %s with 403: %s", request.method, request.url.path, error.message)
        return JSONResponse(status_code=status.HTTP_403_FORBIDDEN, content={"detail": error.message})

    @app.exception_handler(CommentNotFoundError)
    async def comment_not_found(_: Request, error: CommentNotFoundError) -> JSONResponse:
        detail = (
            f"comment {error.comment_id!r} not found on goal {error.goal_id!r}; "
            f"list its comments with GET /goals/{error.goal_id}/comments"
        )
        return JSONResponse(status_code=status.HTTP_404_NOT_FOUND, content={"detail": detail})

    @app.exception_handler(InvalidPageCursorError)
    async def invalid_cursor(_: Request, error: InvalidPageCursorError) -> JSONResponse:
        detail = [{"type": "value_error", "loc": ["query", "cursor"], "msg": str(error)}]
        return JSONResponse(status_code=status.HTTP_422_UNPROCESSABLE_CONTENT, content={"detail": detail})
