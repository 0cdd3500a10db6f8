"""Score queries: people, teams, goals and the collaboration ranking, within the caller's organisation."""

# No "from __future__ import annotations": FastAPI must resolve the local dependency in Annotated at runtime.
import logging
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from pydantic import AwareDatetime

from spm_events.auth import Principal
from spm_events.http import error_responses
from spm_scoring.activities import as_utc
from spm_scoring.api_context import READ_RESPONSES, UNKNOWN_MODEL, ApiContext, invalid_query, not_found, resolve_model
from spm_scoring.engine import OrgScores
from spm_scoring.explanations import explained, goal_filter_for
from spm_scoring.formula import WINDOW
from spm_scoring.model_store import ScoringModelRef
from spm_scoring.responses import (
    GoalScoresResponse,
    PersonScoresResponse,
    RankedPersonResponse,
    ScoreResponse,
    TeamScoresResponse,
    TopCollaboratorsResponse,
)
from spm_scoring.scoreboard import OrgSnapshot
from spm_scoring.windows import InvalidWindowError

logger = logging.getLogger(__name__)

V1_WINDOW_LABEL = f"{WINDOW.days}d"

AsOfQuery = Annotated[
    AwareDatetime | None,
    Query(description="End of the window, an ISO 8601 datetime with a time zone; default: the org's latest event time"),
]
ModelQuery = Annotated[
    str | None,
    Query(min_length=1, max_length=40, description="Scoring model id (v1, v2, v2.1, ...); default: the org's active model"),
]
WindowQuery = Annotated[
    str | None,
    Query(min_length=2, max_length=120, description="'7d', '28d', '90d' or 'period:<name>'; default: the model's default window"),
]


def _v2_scores(
    context: ApiContext, org_id: str, model: ScoringModelRef, window_label: str | None, as_of: datetime | None
) -> tuple[OrgSnapshot, OrgScores | None]:
    """Return the org's facts and its scores, or None for the scores when the org has no events and no as_of was given."""
    assert model.definition is not None
    snapshot = context.scoreboard.snapshot(org_id)
    if snapshot.latest_event_time is None and as_of is None:
        return snapshot, None
    try:
        window = context.scoreboard.resolve_window(snapshot, model.definition, window_label, as_of)
    except InvalidWindowError as error:
        raise invalid_query(error.field, str(error), as_of if error.field == "as_of" else window_label) from None
    return snapshot, context.scoreboard.org_scores(snapshot, model.model_id, model.definition, window)


def _person_not_found(person_id: str) -> Exception:
    return not_found(f"person {person_id!r} has no goals or goal activity in your organisation; check the person id")


def score_router(context: ApiContext) -> APIRouter:
    router = APIRouter(responses=READ_RESPONSES)
    current_principal = context.current_principal
    queries = context.queries

    def read_v1_person_scores(principal: Principal, person_id: str, window: str | None, as_of: datetime | None) -> PersonScoresResponse:
        if window not in (None, V1_WINDOW_LABEL):
            raise invalid_query("window", f"model v1 has only the {V1_WINDOW_LABEL} window", window)
        org_id = principal.org_id
        latest = queries.latest_event_time(org_id)
        if latest is None or not queries.is_known_person(org_id, person_id):
            raise _person_not_found(person_id)
        scores = queries.person_scores(org_id, person_id, as_of or latest)
        return PersonScoresResponse(
            person_id=person_id,
            org_id=org_id,
            model_id="v1",
            window=V1_WINDOW_LABEL,
            as_of=scores.as_of,
            window_days=WINDOW.days,
            performance=ScoreResponse.from_score(scores.performance),
            collaboration=ScoreResponse.from_score(scores.collaboration),
        )

    def read_v1_top_collaborators(
        principal: Principal, limit: int, window: str | None, as_of: datetime | None
    ) -> TopCollaboratorsResponse:
        if window not in (None, V1_WINDOW_LABEL):
            raise invalid_query("window", f"model v1 has only the {V1_WINDOW_LABEL} window", window)
        window_end = as_of or queries.latest_event_time(principal.org_id)
        if window_end is None:
            return TopCollaboratorsResponse(as_of=None, model_id="v1", window=V1_WINDOW_LABEL, people=[])
        window_end = as_utc(window_end)
        ranked = queries.top_collaborators(principal.org_id, window_end, limit)
        people = [
            RankedPersonResponse(
                person_id=entry.person_id,
                score=entry.collaboration.score or 0.0,
                components=ScoreResponse.from_score(entry.collaboration).components,
            )
            for entry in ranked
        ]
        return TopCollaboratorsResponse(as_of=window_end, model_id="v1", window=V1_WINDOW_LABEL, people=people)

    @router.get(
        "/people/{person_id}/scores",
        response_model=PersonScoresResponse,
        responses=error_responses({404: f"The person has no goals or goal activity in the organisation. Or: {UNKNOWN_MODEL}"}),
    )
    def read_person_scores(
        person_id: Annotated[str, Path(min_length=1, max_length=100)],
        principal: Annotated[Principal, Depends(current_principal)],
        as_of: AsOfQuery = None,
        model: ModelQuery = None,
        window: WindowQuery = None,
    ) -> PersonScoresResponse:
        model_ref = resolve_model(context, principal.org_id, model)
        if model_ref.definition is None:
            return read_v1_person_scores(principal, person_id, window, as_of)
        snapshot, scores = _v2_scores(context, principal.org_id, model_ref, window, as_of)
        subject = None if scores is None else scores.people.get(person_id)
        if scores is None or subject is None:
            raise _person_not_found(person_id)
        can_see = goal_filter_for(snapshot.history, principal)
        limit = model_ref.definition.explanation_events
        logger.debug("scored person_id=%s org_id=%s model_id=%s window=%s", person_id, principal.org_id, model_ref.model_id, scores.window.label)
        return PersonScoresResponse(
            person_id=person_id,
            org_id=principal.org_id,
            model_id=model_ref.model_id,
            window=scores.window.label,
            window_days=scores.window.days,
            as_of=scores.window.end,
            team=subject.team,
            performance=explained(subject.performance, can_see, limit),
            collaboration=explained(subject.collaboration, can_see, limit),
        )

    @router.get(
        "/teams/{team}/scores",
        response_model=TeamScoresResponse,
        responses=error_responses({404: f"The team has no goals or members in the organisation at as_of. Or: {UNKNOWN_MODEL}"}),
    )
    def read_team_scores(
        team: Annotated[str, Path(min_length=1, max_length=200)],
        principal: Annotated[Principal, Depends(current_principal)],
        as_of: AsOfQuery = None,
        model: ModelQuery = None,
        window: WindowQuery = None,
    ) -> TeamScoresResponse:
        model_ref = resolve_model(context, principal.org_id, model)
        if model_ref.definition is None:
            raise invalid_query("model", "model v1 scores people only; choose v2 or a stored revision", model)
        snapshot, scores = _v2_scores(context, principal.org_id, model_ref, window, as_of)
        subject = None if scores is None else scores.teams.get(team)
        if scores is None or subject is None:
            raise not_found(f"team {team!r} has no goals or members in your organisation at as_of; check the team name")
        can_see = goal_filter_for(snapshot.history, principal)
        limit = model_ref.definition.explanation_events
        return TeamScoresResponse(
            team=team,
            org_id=principal.org_id,
            model_id=model_ref.model_id,
            window=scores.window.label,
            window_days=scores.window.days,
            as_of=scores.window.end,
            member_count=subject.member_count or 0,
            performance=explained(subject.performance, can_see, limit),
            collaboration=explained(subject.collaboration, can_see, limit),
        )

    @router.get(
        "/goals/{goal_id}/scores",
        response_model=GoalScoresResponse,
        responses=error_responses(
            {404: f"The goal is not known in the organisation at as_of, or not visible to the caller. Or: {UNKNOWN_MODEL}"}
        ),
    )
    def read_goal_scores(
        goal_id: Annotated[str, Path(min_length=1, max_length=100)],
        principal: Annotated[Principal, Depends(current_principal)],
        as_of: AsOfQuery = None,
        model: ModelQuery = None,
        window: WindowQuery = None,
    ) -> GoalScoresResponse:
        model_ref = resolve_model(context, principal.org_id, model)
        if model_ref.definition is None:
            raise invalid_query("model", "model v1 scores people only; choose v2 or a stored revision", model)
        snapshot, scores = _v2_scores(context, principal.org_id, model_ref, window, as_of)
        can_see = goal_filter_for(snapshot.history, principal)
        subject = None if scores is None else scores.goals.get(goal_id)
        # A goal the reader may not see gets the same 404 as a goal that does not exist.
        if scores is None or subject is None or not can_see(goal_id):
            raise not_found(f"goal {goal_id!r} not found in your organisation at as_of; check the goal id and as_of")
        limit = model_ref.definition.explanation_events
        return GoalScoresResponse(
            goal_id=goal_id,
            team=subject.team or "",
            org_id=principal.org_id,
            model_id=model_ref.model_id,
            window=scores.window.label,
            window_days=scores.window.days,
            as_of=scores.window.end,
            performance=explained(subject.performance, can_see, limit),
            collaboration=explained(subject.collaboration, can_see, limit),
        )

    @router.get(
        "/scores/collaboration/top", response_model=TopCollaboratorsResponse, responses=error_responses({404: UNKNOWN_MODEL})
    )
    def read_top_collaborators(
        principal: Annotated[Principal, Depends(current_principal)],
        limit: Annotated[int, Query(ge=1, le=100, description="Number of people to return")] = 5,
        as_of: AsOfQuery = None,
        model: ModelQuery = None,
        window: WindowQuery = None,
    ) -> TopCollaboratorsResponse:
        model_ref = resolve_model(context, principal.org_id, model)
        if model_ref.definition is None:
            return read_v1_top_collaborators(principal, limit, window, as_of)
        snapshot, scores = _v2_scores(context, principal.org_id, model_ref, window, as_of)
        if scores is None:
            return TopCollaboratorsResponse(as_of=None, model_id=model_ref.model_id, window=window, people=[])
        credited = [subject for subject in scores.people.values() if (subject.collaboration.score or 0.0) > 0]
        credited.sort(key=lambda subject: (-(subject.collaboration.score or 0.0), subject.subject_id))
        can_see = goal_filter_for(snapshot.history, principal)
        events_per_component = model_ref.definition.explanation_events
        people = [
            RankedPersonResponse(
                person_id=subject.subject_id,
                score=subject.collaboration.score or 0.0,
                components=explained(subject.collaboration, can_see, events_per_component).components,
            )
            for subject in credited[:limit]
        ]
        return TopCollaboratorsResponse(
            as_of=scores.window.end, model_id=model_ref.model_id, window=scores.window.label, people=people
        )

    return router
