"""The goals application: loads an Objective, runs one command on it, and saves its new events."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Callable, Literal, Sequence, TypeVar

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, JSONTranscoder, Notification, Transcoding
from eventsourcing.utils import get_topic
from sqlalchemy import Engine

from spm_events.auth import Principal
from spm_events.database import retry_creation_race
from spm_goals.access import GoalAccess, PermissionDeniedError
from spm_goals.history import changes_between, objective_as_of
from spm_goals.index import ObjectiveIndex
from spm_goals.objective import (
    AppliedRequest,
    CheckIn,
    GOAL_ID_NAMESPACE,
    KeyResult,
    Objective,
    ObjectiveError,
    Period,
    SupportLink,
    goal_id_for,
)

logger = logging.getLogger(__name__)

Result = TypeVar("Result")

OBJECTIVE_CREATED_TOPIC = get_topic(Objective.ObjectiveCreated)


# Real cascades are a handful of levels deep; the cap keeps the tree response small enough to render.
MAX_ALIGNMENT_DEPTH = 32


class ObjectiveNotFoundError(LookupError):
    """Raised for a goal id that does not exist in the caller's organisation."""


class ObjectiveConflictError(RuntimeError):
    """Raised when concurrent writes to one goal kept conflicting after one retry."""


class StaleVersionError(RuntimeError):
    """Raised when the goal's version differs from the version the client's If-Match header expects."""

    def __init__(self, goal_id: uuid.UUID, expected_version: int, current_version: int) -> None:
        super().__init__(
            f"goal {goal_id} is at version {current_version}, not the version {expected_version} named in If-Match. "
            "Reload the goal, check its changes, and retry with its current ETag"
        )
        self.current_version = current_version


class IdempotencyKeyReusedError(ValueError):
    """Raised when an Idempotency-Key comes back with a request body different from its first request."""


@dataclass(frozen=True)
class RequestKey:
    """Digests identifying a client request: ``key_digest`` of its org, person, path and Idempotency-Key,
    ``body_digest`` of its validated body."""

    key_digest: str
    body_digest: str


def check_same_request(applied: AppliedRequest, request: RequestKey) -> None:
    if applied.body_digest != request.body_digest:
        raise IdempotencyKeyReusedError(
            "Idempotency-Key was already used for another request with a different body. "
            "Send a new key for a new request"
        )


@dataclass(frozen=True)
class WriteGuard:
    """Preconditions of a write: the goal version from If-Match, the request's Idempotency-Key digests,
    and the person asking, whose access is checked (None skips the check, for trusted callers)."""

    expected_version: int | None = None
    request: RequestKey | None = None
    reader: Principal | None = None


NO_GUARD = WriteGuard()


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
    status: str = "active"
    level: str = "team"
    co_owner_ids: tuple[str, ...] = ()
    visibility: str = "organisation"


@dataclass(frozen=True)
class NewKeyResult:
    title: str
    metric: str
    start_value: float
    target_value: float
    external_ref: str | None
    occurred_at: datetime
    unit: str | None = None
    weight: float = 1.0


@dataclass(frozen=True)
class StatusTransition:
    action: Literal["activate", "close", "archive", "reopen"]
    occurred_at: datetime
    outcome: str | None = None


class GoalsApplication(Application):
    """Commands and queries on the goals of every organisation, each scoped to one org id."""

    name = "Goals"
    # The relay and the goal index read up to this many notifications at a time, and the
    # notification log raises ValueError for a larger batch.
    log_section_size = 500

    def __init__(self, env: dict[str, str], index_engine: Engine) -> None:
        # The API and the relay create the event store's tables at the same start-up.
        retry_creation_race(lambda: super(GoalsApplication, self).__init__(env=env), "the goals event store")
        self.index = ObjectiveIndex(index_engine, self._read_created_notifications, self._read_goal_org)
        self.access = GoalAccess(index_engine)

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())

    def create_objective(
        self,
        org_id: str,
        actor_id: str,
        new: NewObjective,
        request: RequestKey | None = None,
        reader: Principal | None = None,
    ) -> tuple[Objective, bool]:
        """Create a goal and return it with True, or return the goal with the same external_ref and False.

        With ``request``, a goal that this request already created is returned as at its creation, with True.
        With ``reader``, the reader must own or co-own the new goal (or be an admin) and see its parent.
        """
        goal_id = self._new_goal_id(org_id, new.external_ref, request)
        existing = self._find(org_id, goal_id)
        if existing is not None:
            if reader is not None and not self.access.can_see(existing, reader):
                raise ObjectiveError("external_ref", f"external_ref {new.external_ref!r} is already used in this organisation; choose another")
            return self._existing_goal(existing, request)
        if reader is not None and not reader.is_admin and actor_id != new.owner_id and actor_id not in new.co_owner_ids:
            raise PermissionDeniedError(
                "you can create goals that you own or co-own; add yourself to co_owner_ids, or ask an org admin"
            )
        if new.parent_goal_id is not None:
            self.check_parent(org_id, new.parent_goal_id, child_id=None, reader=reader)
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
            goal_id=goal_id,
            status=new.status,
            level=new.level,
            co_owner_ids=new.co_owner_ids,
            visibility=new.visibility,
        )
        if request is not None:
            objective.mark_request_applied(request.key_digest, request.body_digest, None)
        try:
            self.save(objective)
        except IntegrityError:
            # Only a derived id can collide: a concurrent request created the same goal first.
            existing = self._find(org_id, objective.id)
            if existing is None:
                raise ObjectiveConflictError(f"goal {objective.id} was written concurrently. Retry the request") from None
            logger.info("objective already created concurrently goal_id=%s org_id=%s", objective.id, org_id)
            return self._existing_goal(existing, request)
        logger.info("objective created goal_id=%s org_id=%s", objective.id, org_id)
        return objective, True

    def _new_goal_id(self, org_id: str, external_ref: str | None, request: RequestKey | None) -> uuid.UUID:
        # A goal created under an Idempotency-Key gets an id derived from it, so a retry finds it.
        if external_ref is None and request is not None:
            return uuid.uuid5(GOAL_ID_NAMESPACE, f"{org_id}/request/{request.key_digest}")
        return goal_id_for(org_id, external_ref)

    def _existing_goal(self, existing: Objective, request: RequestKey | None) -> tuple[Objective, bool]:
        applied = None if request is None else existing.applied_requests.get(request.key_digest)
        if applied is None or request is None:
            return existing, False
        check_same_request(applied, request)
        return self.objective_at_version(existing.id, applied.version), True

    def objective_at_version(self, goal_id: uuid.UUID, version: int) -> Objective:
        objective = self.repository.get(goal_id, version=version)
        assert isinstance(objective, Objective)
        return objective

    def add_key_result(
        self,
        org_id: str,
        goal_id: uuid.UUID,
        actor_id: str,
        new: NewKeyResult,
        guard: WriteGuard = NO_GUARD,
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
                unit=new.unit,
                weight=new.weight,
            )
            return key_result, True

        def replay(objective: Objective, subject_id: uuid.UUID | None) -> tuple[KeyResult, bool]:
            assert subject_id is not None
            return objective.key_result(subject_id), True

        objective, (key_result, created) = self.update_objective(
            org_id, goal_id, add, guard, subject_of=lambda result: result[0].key_result_id, replay=replay
        )
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
        confidence: float | None = None,
        status: str | None = None,
        guard: WriteGuard = NO_GUARD,
    ) -> tuple[Objective, KeyResult, CheckIn]:
        """Record a check-in on a key result and return the goal, the key result and the check-in."""

        def record(objective: Objective) -> CheckIn:
            return objective.record_check_in(
                key_result_id=key_result_id,
                value=value,
                comment=comment,
                occurred_at=occurred_at,
                actor_id=actor_id,
                confidence=confidence,
                status=status,
            )

        def replay(objective: Objective, subject_id: uuid.UUID | None) -> CheckIn:
            return next(
                check_in for check_in in objective.key_result(key_result_id).check_ins if check_in.check_in_id == subject_id
            )

        objective, check_in = self.update_objective(
            org_id, goal_id, record, guard, subject_of=lambda result: result.check_in_id, replay=replay, permission="see"
        )
        logger.info(
            "check-in recorded goal_id=%s key_result_id=%s check_in_id=%s",
            goal_id, key_result_id, check_in.check_in_id,
        )
        return objective, objective.key_result(key_result_id), check_in

    def align_objective(
        self,
        org_id: str,
        goal_id: uuid.UUID,
        actor_id: str,
        parent_goal_id: uuid.UUID | None,
        occurred_at: datetime,
        guard: WriteGuard = NO_GUARD,
    ) -> Objective:
        """Make ``parent_goal_id`` the goal's parent (None detaches it), rejecting a foreign parent or a cycle."""
        self.check_can_change(org_id, goal_id, guard.reader)
        if parent_goal_id is not None:
            self.check_parent(org_id, parent_goal_id, child_id=goal_id, reader=guard.reader)

        def align(objective: Objective) -> None:
            objective.align(parent_goal_id, occurred_at, actor_id)

        # NOTE: two concurrent alignments of different goals can still close a cycle together,
        # because each reads the other's old parent before either saves. The tree view stops at repeats.
        objective = self.change_objective(org_id, goal_id, align, guard)
        logger.info("goal aligned goal_id=%s parent_goal_id=%s", goal_id, parent_goal_id)
        return objective

    def check_can_change(self, org_id: str, goal_id: uuid.UUID, reader: Principal | None) -> Objective:
        """Return the goal, raising ObjectiveNotFoundError or PermissionDeniedError unless ``reader`` may change it."""
        objective = self.get_objective(org_id, goal_id, reader)
        if reader is not None:
            self.access.check_can_manage(objective, reader, "change")
        return objective

    def check_parent(
        self,
        org_id: str,
        parent_goal_id: uuid.UUID,
        child_id: uuid.UUID | None,
        reader: Principal | None = None,
        field_name: str = "parent_goal_id",
    ) -> Objective:
        """Return the parent, raising ObjectiveError (on ``field_name``) for a parent missing in the org,
        hidden from ``reader``, or one that ``child_id`` is above, through parent goals and supports alike."""
        parent = self._find_visible(org_id, parent_goal_id, reader)
        if parent is None:
            raise ObjectiveError(field_name, f"goal {parent_goal_id} not found in this organisation")
        if self._depth(org_id, parent) >= MAX_ALIGNMENT_DEPTH:
            raise ObjectiveError(
                field_name, f"goal {parent_goal_id} is already {MAX_ALIGNMENT_DEPTH} levels deep; align to a goal higher up"
            )
        # Every ancestor counts, including goals the reader cannot see: a cycle through them is a cycle too.
        seen: set[uuid.UUID] = set()
        pending = [parent]
        while pending:
            ancestor = pending.pop()
            if ancestor.id == child_id:
                raise ObjectiveError(
                    field_name, f"goal {parent_goal_id} is aligned below goal {child_id}, so this link would make a cycle"
                )
            seen.add(ancestor.id)
            for above_id in ancestor.parent_ids:
                above = None if above_id in seen else self._find(org_id, above_id)
                if above is not None:
                    pending.append(above)
        return parent

    def _depth(self, org_id: str, objective: Objective) -> int:
        """Return how many parent goals lie above ``objective``, stopping at a repeat or a missing goal."""
        seen = {objective.id}
        parent = objective
        while parent.parent_goal_id is not None and parent.parent_goal_id not in seen:
            above = self._find(org_id, parent.parent_goal_id)
            if above is None:
                break
            seen.add(above.id)
            parent = above
        return len(seen) - 1

    def add_support(
        self,
        org_id: str,
        goal_id: uuid.UUID,
        actor_id: str,
        link: SupportLink,
        occurred_at: datetime,
        guard: WriteGuard = NO_GUARD,
    ) -> Objective:
        """Make the goal also support another goal or one of its key results, refusing hidden targets and cycles."""
        self.check_can_change(org_id, goal_id, guard.reader)
        if link.goal_id == goal_id:
            raise ObjectiveError("goal_id", f"goal {goal_id} cannot support itself or its own key results")
        target = self.check_parent(org_id, link.goal_id, child_id=goal_id, reader=guard.reader, field_name="goal_id")
        if link.key_result_id is not None and link.key_result_id not in target.key_results:
            raise ObjectiveError("key_result_id", f"key result {link.key_result_id} not found in goal {link.goal_id}")

        objective = self.change_objective(
            org_id, goal_id, lambda objective: objective.add_support(link, occurred_at, actor_id), guard
        )
        logger.info("support added goal_id=%s supported_goal_id=%s", goal_id, link.goal_id)
        return objective

    def remove_support(
        self,
        org_id: str,
        goal_id: uuid.UUID,
        actor_id: str,
        link: SupportLink,
        occurred_at: datetime,
        guard: WriteGuard = NO_GUARD,
    ) -> Objective:
        objective = self.change_objective(
            org_id, goal_id, lambda objective: objective.remove_support(link, occurred_at, actor_id), guard
        )
        logger.info("support removed goal_id=%s supported_goal_id=%s", goal_id, link.goal_id)
        return objective

    def change_owners(
        self,
        org_id: str,
        goal_id: uuid.UUID,
        actor_id: str,
        owner_id: str,
        co_owner_ids: tuple[str, ...],
        occurred_at: datetime,
        guard: WriteGuard = NO_GUARD,
    ) -> Objective:
        def change(objective: Objective) -> None:
            reader = guard.reader
            if reader is not None and owner_id != objective.owner_id and not (reader.is_admin or reader.person_id == objective.owner_id):
                raise PermissionDeniedError(
                    f"only the owner or an org admin can hand goal {goal_id} to another owner; co-owners may change the co-owners"
                )
            objective.change_owners(owner_id, co_owner_ids, occurred_at, actor_id)

        objective = self.change_objective(org_id, goal_id, change, guard)
        logger.info("goal owners changed goal_id=%s co_owners=%s", goal_id, len(objective.co_owner_ids))
        return objective

    def change_visibility(
        self,
        org_id: str,
        goal_id: uuid.UUID,
        actor_id: str,
        visibility: str,
        occurred_at: datetime,
        guard: WriteGuard = NO_GUARD,
    ) -> Objective:
        objective = self.change_objective(
            org_id, goal_id, lambda objective: objective.change_visibility(visibility, occurred_at, actor_id), guard
        )
        logger.info("goal visibility changed goal_id=%s visibility=%s", goal_id, objective.visibility)
        return objective

    def change_status(
        self,
        org_id: str,
        goal_id: uuid.UUID,
        actor_id: str,
        transition: StatusTransition,
        guard: WriteGuard = NO_GUARD,
    ) -> Objective:
        """Move the goal along its lifecycle (activate, close, archive or reopen) and return it."""

        def change(objective: Objective) -> None:
            if transition.action == "activate":
                objective.activate(transition.occurred_at, actor_id)
            elif transition.action == "close":
                objective.close(transition.outcome or "", transition.occurred_at, actor_id)
            elif transition.action == "archive":
                objective.archive(transition.occurred_at, actor_id)
            else:
                objective.reopen(transition.occurred_at, actor_id)

        objective = self.change_objective(org_id, goal_id, change, guard)
        logger.info("goal status changed goal_id=%s status=%s", goal_id, objective.status)
        return objective

    def change_objective(
        self, org_id: str, goal_id: uuid.UUID, change: Callable[[Objective], None], guard: WriteGuard = NO_GUARD
    ) -> Objective:
        """Apply a change that creates nothing (so a replayed request returns the goal as right after it)."""
        objective, _ = self.update_objective(org_id, goal_id, change, guard, replay=lambda earlier, _: None)
        return objective

    def update_objective(
        self,
        org_id: str,
        goal_id: uuid.UUID,
        change: Callable[[Objective], Result],
        guard: WriteGuard = NO_GUARD,
        *,
        subject_of: Callable[[Result], uuid.UUID | None] = lambda _: None,
        replay: Callable[[Objective, uuid.UUID | None], Result] | None = None,
        permission: Literal["see", "manage"] = "manage",
    ) -> tuple[Objective, Result]:
        """Load the goal, apply ``change`` and save. After a version conflict, do it all once more.

        With ``guard.reader``, a reader who cannot see the goal gets ObjectiveNotFoundError, and one who
        may see but not manage it gets PermissionDeniedError when ``permission`` is "manage".

        For a request whose Idempotency-Key this goal already applied, return what ``replay`` builds
        from the goal as it was right after that change. A goal whose version differs from
        ``guard.expected_version`` raises StaleVersionError, on the first load or after a conflict.
        Without an expected version, a second conflict raises ObjectiveConflictError.
        A change that records no event saves nothing.
        """
        if guard.request is not None and replay is None:
            raise TypeError("update_objective needs replay when the guard carries an Idempotency-Key")
        for attempt in (1, 2):
            objective = self.get_objective(org_id, goal_id, guard.reader)
            if guard.reader is not None and permission == "manage":
                self.access.check_can_manage(objective, guard.reader, "change")
            request = guard.request
            applied = None if request is None else objective.applied_requests.get(request.key_digest)
            if applied is not None and request is not None and replay is not None:
                check_same_request(applied, request)
                earlier = self.objective_at_version(goal_id, applied.version)
                return earlier, replay(earlier, applied.subject_id)
            if guard.expected_version is not None and objective.version != guard.expected_version:
                raise StaleVersionError(goal_id, guard.expected_version, objective.version)
            result = change(objective)
            if not objective.pending_events:
                return objective, result
            if request is not None:
                objective.mark_request_applied(request.key_digest, request.body_digest, subject_of(result))
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

    def get_objective(self, org_id: str, goal_id: uuid.UUID, reader: Principal | None = None) -> Objective:
        """Return the goal, raising ObjectiveNotFoundError if it is missing, belongs to another org,
        or is hidden from ``reader``, so that a hidden goal gets the same response as a missing one."""
        objective = self._find_visible(org_id, goal_id, reader)
        if objective is None:
            raise ObjectiveNotFoundError(f"goal {goal_id} not found")
        return objective

    def list_objectives(self, org_id: str, reader: Principal | None = None) -> list[Objective]:
        """Return the org's goals that ``reader`` may see, sorted by external_ref (goals without one last), then title."""
        # NOTE: rebuilds every goal of the org from its events on each call; no pagination yet.
        objectives = [self.get_objective(org_id, goal_id) for goal_id in self.index.goal_ids(org_id)]
        if reader is not None:
            objectives = [objective for objective in objectives if self.access.can_see(objective, reader)]
        return sorted(
            objectives,
            key=lambda goal: (goal.external_ref is None, goal.external_ref or "", goal.title, str(goal.id)),
        )

    def get_objective_as_of(
        self, org_id: str, goal_id: uuid.UUID, as_of: datetime, reader: Principal | None = None
    ) -> Objective:
        """Return the goal rebuilt from its events that occurred at or before ``as_of`` (event time).

        Who may see it is decided by the goal as it is now, not as it was then.
        """
        self.get_objective(org_id, goal_id, reader)
        objective = objective_as_of(self.repository.event_store.get(goal_id), as_of)
        if objective is None:
            raise ObjectiveNotFoundError(f"goal {goal_id} did not exist yet at {as_of.isoformat()}")
        return objective

    def list_objectives_as_of(self, org_id: str, as_of: datetime, reader: Principal | None = None) -> list[Objective]:
        """Return the org's goals as they were at ``as_of``, leaving out goals created later (event time)
        and goals that ``reader`` may not see now."""
        rebuilt = []
        for goal_id in self.index.goal_ids(org_id):
            if reader is not None and self._find_visible(org_id, goal_id, reader) is None:
                continue
            objective = objective_as_of(self.repository.event_store.get(goal_id), as_of)
            if objective is not None and objective.org_id == org_id:
                rebuilt.append(objective)
        return rebuilt

    def list_changes(
        self,
        org_id: str,
        goal_id: uuid.UUID,
        start: datetime | None,
        end: datetime | None,
        reader: Principal | None = None,
    ) -> list[dict[str, Any]]:
        """Return the goal's changes whose event time lies from ``start`` to ``end``, both inclusive.

        Ids of linked goals that ``reader`` may not see are replaced with null.
        """
        self.get_objective(org_id, goal_id, reader)
        changes = changes_between(self.repository.event_store.get(goal_id), start, end)
        shows = self.link_filter(org_id, reader)
        for change in changes:
            data = change["data"]
            if data.get("parent_goal_id") is not None and not shows(uuid.UUID(data["parent_goal_id"])):
                data["parent_goal_id"] = None
            if data.get("supported_goal_id") is not None and not shows(uuid.UUID(data["supported_goal_id"])):
                data["supported_goal_id"] = None
                data["supported_key_result_id"] = None
        return changes

    def link_filter(self, org_id: str, reader: Principal | None) -> Callable[[uuid.UUID], bool]:
        """Return a check of whether ``reader`` may see the goal with a given id, caching each result."""
        if reader is None or reader.is_admin:
            return lambda _: True
        seen: dict[uuid.UUID, bool] = {}

        def shows(goal_id: uuid.UUID) -> bool:
            if goal_id not in seen:
                seen[goal_id] = self._find_visible(org_id, goal_id, reader) is not None
            return seen[goal_id]

        return shows

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

    def _find_visible(self, org_id: str, goal_id: uuid.UUID, reader: Principal | None) -> Objective | None:
        objective = self._find(org_id, goal_id)
        if objective is None or (reader is not None and not self.access.can_see(objective, reader)):
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
