"""The goals HTTP API: routes parse the request, call the application, and map its errors to HTTP."""

import logging
import uuid
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Annotated, Any, AsyncIterator, Callable, Literal

from fastapi import Depends, FastAPI, Header, Query, Request, status
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime
from sqlalchemy import MetaData

from spm_events.auth import Principal, principal_dependency
from spm_events.database import create_database_engine
from spm_events.http import BodyLimitMiddleware, add_common_error_handlers, add_storage_error_handler
from spm_events.readmodel import PositionedReadModel
from spm_events.relay import RelayPositions
from spm_goals.api_errors import add_error_handlers
from spm_goals.api_models import (
    AddKeyResultBody,
    AlignGoalBody,
    ChangeOwnersBody,
    ChangeVisibilityBody,
    CloseGoalBody,
    CreateGoalBody,
    RecordCheckInBody,
    StatusChangeBody,
    SupportBody,
)
from spm_goals.api_responses import (
    ChangeOut,
    CheckInOut,
    ConsumerPositionsOut,
    GoalOut,
    HealthOut,
    KeyResultWithGoalOut,
    RelayStatusOut,
    TreeNodeOut,
    error_responses,
)
from spm_goals.application import (
    GoalsApplication,
    NewKeyResult,
    NewObjective,
    ObjectiveNotFoundError,
    StatusTransition,
    WriteGuard,
)
from spm_goals.objective import Objective, SupportLink
from spm_goals.idempotency import IdempotencyStore
from spm_goals.relay import RELAY_NAME
from spm_goals.settings import EVENT_STORE_FILE, READ_DATABASE_FILE, GoalsSettings
from spm_goals.tree import alignment_tree
from spm_goals.views import check_in_history_view, check_in_view, goal_view, key_result_view
from spm_goals.writes import GuardedWrites, WriteRequest, etag_for


logger = logging.getLogger(__name__)

WRITE_ERRORS = error_responses(401, 403, 404, 409, 412, 413, 422, 503)

AsOfQuery = Annotated[
    AwareDatetime | None,
    Query(description="Rebuild the state from the events that occurred at or before this time (ISO 8601 with offset)"),
]
IfMatchHeader = Annotated[
    str | None,
    Header(
        alias="If-Match",
        max_length=100,
        description='The ETag of the goal version this write expects, such as "3". The write returns 412 when the goal is at another version',
    ),
]
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="A client-chosen key. A retry with the same key and body returns the first response and writes nothing",
    ),
]


def create_app(settings: GoalsSettings) -> FastAPI:
    """Build the API with its event store, read database and relay position table from ``settings``."""
    engine = create_database_engine(settings.sqlalchemy_url(READ_DATABASE_FILE))
    goals = GoalsApplication(env=settings.event_store_env(EVENT_STORE_FILE), index_engine=engine)
    relay_positions = RelayPositions(engine)
    # The collaborator worker's positions, kept with its table in this database.
    worker_positions = PositionedReadModel(engine, MetaData(), settings.processor_id)
    worker_positions.create_tables()

    def check_visible(principal: Principal, goal_id: uuid.UUID) -> None:
        goals.get_objective(principal.org_id, goal_id, principal)

    writes = GuardedWrites(IdempotencyStore(engine), check_visible)
    current_principal = principal_dependency(settings.jwt_secret.get_secret_value())

    PrincipalDependency = Annotated[Principal, Depends(current_principal)]

    def goal_write(
        request: Request,
        principal: PrincipalDependency,
        if_match: IfMatchHeader = None,
        idempotency_key: IdempotencyKeyHeader = None,
    ) -> WriteRequest:
        return WriteRequest(request, principal, if_match, idempotency_key)

    def new_goal_write(
        request: Request, principal: PrincipalDependency, idempotency_key: IdempotencyKeyHeader = None
    ) -> WriteRequest:
        return WriteRequest(request, principal, None, idempotency_key)

    # A write to an existing goal takes If-Match and Idempotency-Key. Creating a goal takes only the key.
    GoalWrite = Annotated[WriteRequest, Depends(goal_write)]
    NewGoalWrite = Annotated[WriteRequest, Depends(new_goal_write)]

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        goals.close()
        engine.dispose()

    app = FastAPI(title="SPM goals", version="1", lifespan=lifespan)
    app.state.goals = goals
    app.state.writes = writes
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes, max_depth=settings.max_json_depth)
    add_common_error_handlers(app)
    # The event store writes a command's events and its Idempotency-Key in one transaction, so a
    # retry with the same key applies the command at most once even if the failed commit did succeed.
    add_storage_error_handler(
        app, "goals", settings.sqlite_data_dir, "retry in a few seconds with the same Idempotency-Key"
    )
    add_error_handlers(app)

    def goal_response(change: Callable[[WriteGuard], Objective]) -> Callable[[WriteGuard], tuple[int, Any, int]]:
        """Wrap a change that returns the goal into a guarded command that responds 200 with the goal."""

        def command(guard: WriteGuard) -> tuple[int, Any, int]:
            objective = change(guard)
            shows = goals.link_filter(objective.org_id, guard.reader)
            return status.HTTP_200_OK, goal_view(objective, shows), objective.version

        return command

    @app.get("/healthz", response_model=HealthOut, tags=["operations"])
    def read_health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/internal/relay", response_model=RelayStatusOut, tags=["operations"])
    def read_relay_status() -> dict[str, Any]:
        return {
            "relay": RELAY_NAME,
            "published_position": relay_positions.read(RELAY_NAME),
            "max_notification_id": goals.max_notification_id(),
        }

    @app.get("/internal/positions", response_model=ConsumerPositionsOut, tags=["operations"])
    def read_worker_positions() -> dict[str, Any]:
        offsets = sorted(worker_positions.recorded_offsets().items())
        return {
            "consumer": settings.processor_id,
            "positions": [{"topic": topic, "partition": partition, "offset": offset} for (topic, partition), offset in offsets],
        }

    @app.post(
        "/goals",
        status_code=status.HTTP_201_CREATED,
        response_model=GoalOut,
        responses={200: {"model": GoalOut, "description": "A goal with this external_ref exists; it is returned unchanged"}, **error_responses(401, 403, 409, 413, 422, 503)},
        summary="Create a goal",
    )
    def create_goal(body: CreateGoalBody, write: NewGoalWrite) -> JSONResponse:
        new = NewObjective(
            title=body.title,
            team=body.team,
            period=body.period.to_period(),
            owner_id=body.owner_id or write.person_id,
            co_owner_ids=tuple(body.co_owner_ids),
            level=body.level,
            visibility=body.visibility,
            parent_goal_id=body.parent_goal_id,
            contributing_teams=tuple(body.contributing_teams),
            external_ref=body.external_ref,
            occurred_at=body.event_time(),
            status=body.status,
        )

        def create(guard: WriteGuard) -> tuple[int, Any, int]:
            objective, created = goals.create_objective(
                write.org_id, write.person_id, new, guard.request, reader=write.principal
            )
            shows = goals.link_filter(write.org_id, write.principal)
            return _created_or_ok(created), goal_view(objective, shows), objective.version

        return writes.run(write, body, create)

    @app.post(
        "/goals/{goal_id}/key-results",
        status_code=status.HTTP_201_CREATED,
        response_model=KeyResultWithGoalOut,
        responses={200: {"model": KeyResultWithGoalOut, "description": "A key result with this external_ref exists; it is returned unchanged"}, **WRITE_ERRORS},
        summary="Add a key result to a goal",
    )
    def add_key_result(goal_id: uuid.UUID, body: AddKeyResultBody, write: GoalWrite) -> JSONResponse:
        new = NewKeyResult(
            title=body.title,
            metric=body.metric,
            start_value=body.start_value,
            target_value=body.target_value,
            external_ref=body.external_ref,
            occurred_at=body.event_time(),
            unit=body.unit,
            weight=body.weight,
        )

        def add(guard: WriteGuard) -> tuple[int, Any, int]:
            objective, key_result, created = goals.add_key_result(
                write.org_id, goal_id, write.person_id, new, guard
            )
            return _created_or_ok(created), key_result_view(objective, key_result), objective.version

        return writes.run(write, body, add)

    @app.post(
        "/goals/{goal_id}/key-results/{key_result_id}/check-ins",
        status_code=status.HTTP_201_CREATED,
        response_model=CheckInOut,
        responses=WRITE_ERRORS,
        summary="Record a check-in on a key result",
    )
    def record_check_in(
        goal_id: uuid.UUID,
        key_result_id: uuid.UUID,
        body: RecordCheckInBody,
        write: GoalWrite,
    ) -> JSONResponse:
        occurred_at = body.event_time()

        def record(guard: WriteGuard) -> tuple[int, Any, int]:
            objective, key_result, check_in = goals.record_check_in(
                write.org_id,
                goal_id,
                key_result_id,
                write.person_id,
                value=body.value,
                comment=body.comment,
                occurred_at=occurred_at,
                confidence=body.confidence,
                status=body.status,
                guard=guard,
            )
            return status.HTTP_201_CREATED, check_in_view(objective, key_result, check_in), objective.version

        return writes.run(write, body, record)

    def change_status(
        goal_id: uuid.UUID,
        action: Literal["activate", "close", "archive", "reopen"],
        body: StatusChangeBody | CloseGoalBody | None,
        write: WriteRequest,
    ) -> JSONResponse:
        occurred_at = body.event_time() if body is not None else datetime.now(timezone.utc)
        outcome = body.outcome if isinstance(body, CloseGoalBody) else None
        transition = StatusTransition(action, occurred_at, outcome)

        def run(guard: WriteGuard) -> Objective:
            return goals.change_status(write.org_id, goal_id, write.person_id, transition, guard)

        return writes.run(write, body, goal_response(run))

    @app.post("/goals/{goal_id}/align", response_model=GoalOut, responses=WRITE_ERRORS, summary="Align a goal under a parent goal, or detach it")
    def align_goal(goal_id: uuid.UUID, body: AlignGoalBody, write: GoalWrite) -> JSONResponse:
        occurred_at = body.event_time()

        def align(guard: WriteGuard) -> Objective:
            return goals.align_objective(write.org_id, goal_id, write.person_id, body.parent_goal_id, occurred_at, guard)

        return writes.run(write, body, goal_response(align))

    @app.post("/goals/{goal_id}/owners", response_model=GoalOut, responses=WRITE_ERRORS, summary="Set a goal's owner and co-owners")
    def change_owners(goal_id: uuid.UUID, body: ChangeOwnersBody, write: GoalWrite) -> JSONResponse:
        occurred_at = body.event_time()
        owners = (body.owner_id, tuple(body.co_owner_ids))

        def change(guard: WriteGuard) -> Objective:
            return goals.change_owners(write.org_id, goal_id, write.person_id, *owners, occurred_at, guard)

        return writes.run(write, body, goal_response(change))

    @app.post("/goals/{goal_id}/visibility", response_model=GoalOut, responses=WRITE_ERRORS, summary="Change who may see a goal")
    def change_visibility(goal_id: uuid.UUID, body: ChangeVisibilityBody, write: GoalWrite) -> JSONResponse:
        occurred_at = body.event_time()

        def change(guard: WriteGuard) -> Objective:
            return goals.change_visibility(write.org_id, goal_id, write.person_id, body.visibility, occurred_at, guard)

        return writes.run(write, body, goal_response(change))

    @app.post(
        "/goals/{goal_id}/supports",
        response_model=GoalOut,
        responses=WRITE_ERRORS,
        summary="Make a goal also support another goal or one of its key results",
    )
    def add_support(goal_id: uuid.UUID, body: SupportBody, write: GoalWrite) -> JSONResponse:
        occurred_at = body.event_time()
        link = SupportLink(body.goal_id, body.key_result_id)

        def add(guard: WriteGuard) -> Objective:
            return goals.add_support(write.org_id, goal_id, write.person_id, link, occurred_at, guard)

        return writes.run(write, body, goal_response(add))

    @app.delete(
        "/goals/{goal_id}/supports/{supported_goal_id}",
        response_model=GoalOut,
        responses=WRITE_ERRORS,
        summary="Stop supporting a goal, or one key result of it",
    )
    def remove_support(
        goal_id: uuid.UUID,
        supported_goal_id: uuid.UUID,
        write: GoalWrite,
        key_result_id: Annotated[
            uuid.UUID | None, Query(description="The supported key result; leave out for a link to the whole goal")
        ] = None,
    ) -> JSONResponse:
        link = SupportLink(supported_goal_id, key_result_id)

        def remove(guard: WriteGuard) -> Objective:
            return goals.remove_support(write.org_id, goal_id, write.person_id, link, datetime.now(timezone.utc), guard)

        return writes.run(write, None, goal_response(remove))

    @app.post("/goals/{goal_id}/activate", response_model=GoalOut, responses=WRITE_ERRORS, summary="Activate a draft goal")
    def activate_goal(goal_id: uuid.UUID, write: GoalWrite, body: StatusChangeBody | None = None) -> JSONResponse:
        return change_status(goal_id, "activate", body, write)

    @app.post("/goals/{goal_id}/close", response_model=GoalOut, responses=WRITE_ERRORS, summary="Close an active goal with its outcome")
    def close_goal(goal_id: uuid.UUID, body: CloseGoalBody, write: GoalWrite) -> JSONResponse:
        return change_status(goal_id, "close", body, write)

    @app.post("/goals/{goal_id}/archive", response_model=GoalOut, responses=WRITE_ERRORS, summary="Archive a closed goal")
    def archive_goal(goal_id: uuid.UUID, write: GoalWrite, body: StatusChangeBody | None = None) -> JSONResponse:
        return change_status(goal_id, "archive", body, write)

    @app.post("/goals/{goal_id}/reopen", response_model=GoalOut, responses=WRITE_ERRORS, summary="Reopen a closed goal")
    def reopen_goal(goal_id: uuid.UUID, write: GoalWrite, body: StatusChangeBody | None = None) -> JSONResponse:
        return change_status(goal_id, "reopen", body, write)

    @app.get(
        "/goals/{goal_id}/key-results/{key_result_id}/check-ins",
        response_model=list[CheckInOut],
        responses=error_responses(401, 404, 422, 503),
        summary="List every check-in of a key result, oldest event time first",
    )
    def list_check_ins(goal_id: uuid.UUID, key_result_id: uuid.UUID, principal: PrincipalDependency) -> JSONResponse:
        objective = goals.get_objective(principal.org_id, goal_id, principal)
        key_result = objective.key_result(key_result_id)
        history = check_in_history_view(objective, key_result)
        return JSONResponse(history, headers={"ETag": etag_for(objective.version)})

    @app.get("/goals", response_model=list[GoalOut], responses=error_responses(401, 503), summary="List the organisation's goals")
    def list_goals(principal: PrincipalDependency) -> list[dict[str, Any]]:
        objectives = goals.list_objectives(principal.org_id, principal)
        visible_ids = {objective.id for objective in objectives}
        return [goal_view(objective, visible_ids.__contains__) for objective in objectives]

    @app.get(
        "/goals/tree",
        response_model=list[TreeNodeOut],
        responses=error_responses(401, 404, 422, 503),
        summary="Return the alignment tree with rolled-up progress",
    )
    def read_goal_tree(
        principal: PrincipalDependency, root: uuid.UUID | None = None, as_of: AsOfQuery = None
    ) -> list[dict[str, Any]]:
        if as_of is None:
            objectives = goals.list_objectives(principal.org_id, principal)
        else:
            objectives = goals.list_objectives_as_of(principal.org_id, as_of, principal)
        if root is not None and root not in {objective.id for objective in objectives}:
            raise ObjectiveNotFoundError(f"goal {root} not found")
        return alignment_tree(objectives, root)

    @app.get(
        "/goals/{goal_id}",
        response_model=GoalOut,
        responses=error_responses(401, 404, 422, 503),
        summary="Return one goal, now or as of an event time",
    )
    def read_goal(goal_id: uuid.UUID, principal: PrincipalDependency, as_of: AsOfQuery = None) -> JSONResponse:
        shows = goals.link_filter(principal.org_id, principal)
        if as_of is not None:
            return JSONResponse(goal_view(goals.get_objective_as_of(principal.org_id, goal_id, as_of, principal), shows))
        objective = goals.get_objective(principal.org_id, goal_id, principal)
        return JSONResponse(goal_view(objective, shows), headers={"ETag": etag_for(objective.version)})

    @app.get(
        "/goals/{goal_id}/changes",
        response_model=list[ChangeOut],
        responses=error_responses(401, 404, 422, 503),
        summary="List a goal's changes in an event-time range",
    )
    def list_goal_changes(
        goal_id: uuid.UUID,
        principal: PrincipalDependency,
        start: Annotated[AwareDatetime | None, Query(alias="from", description="Earliest event time, inclusive")] = None,
        end: Annotated[AwareDatetime | None, Query(alias="to", description="Latest event time, inclusive")] = None,
    ) -> list[dict[str, Any]]:
        return goals.list_changes(principal.org_id, goal_id, start, end, principal)

    return app




def _created_or_ok(created: bool) -> int:
    return status.HTTP_201_CREATED if created else status.HTTP_200_OK
