"""The goals application: loads an Objective, runs one command on it, and saves its new events."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Callable, Sequence, TypeVar

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, JSONTranscoder, Notification, Transcoding
from eventsourcing.utils import get_topic
from sqlalchemy import Engine

from spm_goals.index import ObjectiveIndex
from spm_goals.objective import CheckIn, KeyResult, Objective, ObjectiveError, Period, goal_id_for

logger = logging.getLogger(__name__)

Result = TypeVar("Result")

OBJECTIVE_CREATED_TOPIC = get_topic(Objective.ObjectiveCreated)


class ObjectiveNotFoundError(LookupError):
    """Raised for a goal id that does not exist in the caller's organisation."""


class ObjectiveConflictError(RuntimeError):
    """Raised when concurrent writes to one goal kept conflicting after one retry."""


class DateAsISO(Transcoding):
    """Stores ``datetime.date`` values (period start and end) as ISO 8601 strings."""

    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


@dataclass(frozen=True)
class NewObjective:
    title: str
    team: str
    period: Period
    owner_id: str
    parent_goal_id: uuid.UUID | None
    contributing_teams: tuple[str, ...]
    external_ref: str | None
    occurred_at: datetime


@dataclass(frozen=True)
class NewKeyResult:
    title: str
    metric: str
    start_value: float
    target_value: float
    external_ref: str | None
    occurred_at: datetime


class GoalsApplication(Application):
    """Commands and queries on the goals of every organisation, each scoped to one org id."""

    name = "Goals"
    # The relay and the goal index read up to this many notifications at a time, and the
    # notification log raises ValueError for a larger batch.
    log_section_size = 500

    def __init__(self, env: dict[str, str], index_engine: Engine) -> None:
        super().__init__(env=env)
        self.index = ObjectiveIndex(index_engine, self._read_created_notifications, self._read_goal_org)

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())

    def create_objective(self, org_id: str, actor_id: str, new: NewObjective) -> tuple[Objective, bool]:
        """Create a goal and return it with True, or return the goal with the same external_ref and False."""
        if new.external_ref is not None:
            existing = self._find(org_id, goal_id_for(org_id, new.external_ref))
            if existing is not None:
                return existing, False
        if new.parent_goal_id is not None and self._find(org_id, new.parent_goal_id) is None:
            raise ObjectiveError("parent_goal_id", f"parent goal {new.parent_goal_id} not found in this organisation")
        objective = Objective.create(
            org_id=org_id,
            owner_id=new.owner_id,
            team=new.team,
            contributing_teams=new.contributing_teams,
            period=new.period,
            parent_goal_id=new.parent_goal_id,
            title=new.title,
            external_ref=new.external_ref,
            occurred_at=new.occurred_at,
            actor_id=actor_id,
        )
        try:
            self.save(objective)
        except IntegrityError:
            # Only a derived id can collide: a concurrent request created the same external_ref first.
            existing = self._find(org_id, objective.id)
            if existing is None:
                raise ObjectiveConflictError(f"goal {objective.id} was written concurrently. Retry the request") from None
            logger.info("objective already created concurrently goal_id=%s org_id=%s", objective.id, org_id)
            return existing, False
        logger.info("objective created goal_id=%s org_id=%s", objective.id, org_id)
        return objective, True

    def add_key_result(
        self, org_id: str, goal_id: uuid.UUID, actor_id: str, new: NewKeyResult
    ) -> tuple[Objective, KeyResult, bool]:
        """Add a key result and return it with True, or return the one with the same external_ref and False."""

        def add(objective: Objective) -> tuple[KeyResult, bool]:
            existing = objective.key_result_with_ref(new.external_ref) if new.external_ref is not None else None
            if existing is not None:
                return existing, False
            key_result = objective.add_key_result(
                title=new.title,
                metric=new.metric,
                start_value=new.start_value,
                target_value=new.target_value,
                external_ref=new.external_ref,
                occurred_at=new.occurred_at,
                actor_id=actor_id,
            )
            return key_result, True

        objective, (key_result, created) = self.update_objective(org_id, goal_id, add)
        if created:
            logger.info("key result added goal_id=%s key_result_id=%s", goal_id, key_result.key_result_id)
        return objective, key_result, created

    def record_check_in(
        self,
        org_id: str,
        goal_id: uuid.UUID,
        key_result_id: uuid.UUID,
        actor_id: str,
        *,
        value: float,
        comment: str,
        occurred_at: datetime,
    ) -> tuple[Objective, KeyResult, CheckIn]:
        """Record a check-in on a key result and return the goal, the key result and the check-in."""

        def record(objective: Objective) -> CheckIn:
            return objective.record_check_in(
                key_result_id=key_result_id, value=value, comment=comment, occurred_at=occurred_at, actor_id=actor_id
            )

        objective, check_in = self.update_objective(org_id, goal_id, record)
        logger.info(
            "check-in recorded goal_id=%s key_result_id=%s check_in_id=%s",
            goal_id, key_result_id, check_in.check_in_id,
        )
        return objective, objective.key_result(key_result_id), check_in

    def update_objective(
        self, org_id: str, goal_id: uuid.UUID, change: Callable[[Objective], Result]
    ) -> tuple[Objective, Result]:
        """Load the goal, apply ``change`` and save. After a version conflict, do it all once more.

        A second conflict raises ObjectiveConflictError. A change that records no event saves nothing.
        """
        for attempt in (1, 2):
            objective = self.get_objective(org_id, goal_id)
            result = change(objective)
            if not objective.pending_events:
                return objective, result
            try:
                self.save(objective)
            except IntegrityError:
                if attempt == 2:
                    logger.warning("version conflict again goal_id=%s, giving up", goal_id)
                    raise ObjectiveConflictError(
                        f"goal {goal_id} was changed by concurrent requests. Reload it and retry"
                    ) from None
                logger.info("version conflict goal_id=%s version=%s, retrying once", goal_id, objective.version)
                continue
            return objective, result
        raise AssertionError("unreachable: the loop returns or raises")

    def get_objective(self, org_id: str, goal_id: uuid.UUID) -> Objective:
        """Return the goal, raising ObjectiveNotFoundError if it is missing or belongs to another org."""
        objective = self._find(org_id, goal_id)
        if objective is None:
            raise ObjectiveNotFoundError(f"goal {goal_id} not found")
        return objective

    def list_objectives(self, org_id: str) -> list[Objective]:
        """Return the org's goals sorted by external_ref (goals without one last), then title."""
        # NOTE: rebuilds every goal of the org from its events on each call; no pagination yet.
        objectives = [self.get_objective(org_id, goal_id) for goal_id in self.index.goal_ids(org_id)]
        return sorted(
            objectives,
            key=lambda goal: (goal.external_ref is None, goal.external_ref or "", goal.title, str(goal.id)),
        )

    def max_notification_id(self) -> int:
        return self.recorder.max_notification_id() or 0

    def read_notifications(self, after: int, limit: int) -> Sequence[Notification]:
        return self.notification_log.select(start=after, limit=limit, inclusive_of_start=False)

    def _find(self, org_id: str, goal_id: uuid.UUID) -> Objective | None:
        try:
            objective = self.repository.get(goal_id)
        except AggregateNotFoundError:
            return None
        if not isinstance(objective, Objective) or objective.org_id != org_id:
            return None
        return objective

    def _read_created_notifications(self, after: int, limit: int) -> Sequence[Notification]:
        return self.notification_log.select(
            start=after, limit=limit, topics=[OBJECTIVE_CREATED_TOPIC], inclusive_of_start=False
        )

    def _read_goal_org(self, notification: Notification) -> tuple[uuid.UUID, str]:
        created = self.mapper.to_domain_event(notification)
        assert isinstance(created, Objective.ObjectiveCreated)
        return created.originator_id, created.org_id
