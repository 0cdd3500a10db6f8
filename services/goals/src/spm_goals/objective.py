"""The Objective aggregate: a goal of one organisation, with its key results and their check-ins.

Domain events store ``occurred_at``, the event time (when the fact happened in the world, UTC),
and ``actor_id``, the person who recorded it. The library's own ``timestamp`` stays the time the
event was stored.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone
from typing import Any, Literal, get_args

from eventsourcing.domain import Aggregate, event

MetricKind = Literal["number", "percent", "currency", "milestone"]
METRIC_KINDS: tuple[str, ...] = get_args(MetricKind)
GoalLevel = Literal["company", "team", "person"]
GOAL_LEVELS: tuple[str, ...] = get_args(GoalLevel)
Visibility = Literal["organisation", "team", "private"]
VISIBILITIES: tuple[str, ...] = get_args(Visibility)
MAX_CO_OWNERS = 20
MAX_SUPPORTED = 20

# Bounds the weighted sum, so the mean of finite progress values stays finite.
MAX_KEY_RESULT_WEIGHT = 1000.0

# Fixed forever: goal and key-result ids derived from external references depend on it, and
# those ids are what make an importer's second run find the goals of its first run.
GOAL_ID_NAMESPACE = uuid.UUID("0b6f3c2e-5d7a-4e29-9c41-8a1f2d6b7e30")


class ObjectiveError(ValueError):
    """Raised when a command would break a rule of the Objective. ``field_name`` names the input at fault."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field_name = field_name


GoalStatus = Literal["draft", "active", "closed", "archived"]
CloseOutcome = Literal["achieved", "partially", "missed"]
CLOSE_OUTCOMES: tuple[str, ...] = get_args(CloseOutcome)


class ObjectiveStateError(RuntimeError):
    """Raised for a command that the goal's lifecycle status does not allow."""

    def __init__(self, goal_id: uuid.UUID, status: str, message: str) -> None:
        super().__init__(message)
        self.goal_id = goal_id
        self.status = status


class KeyResultNotFoundError(LookupError):
    """Raised for a key result id that the objective does not contain."""


@dataclass(frozen=True, order=True)
class SupportLink:
    """An extra parent of a goal: another goal, or one key result of it (``key_result_id``)."""

    goal_id: uuid.UUID
    key_result_id: uuid.UUID | None = None


@dataclass(frozen=True)
class AppliedRequest:
    """A client request (by its Idempotency-Key) whose change this goal stored, for replaying its response.

    ``version`` is the goal's version right after the change, and ``subject_id`` the key result or
    check-in the request created, if any.
    """

    body_digest: str
    version: int
    subject_id: uuid.UUID | None


def goal_id_for(org_id: str, external_ref: str | None) -> uuid.UUID:
    """Return the goal id: derived from the org and external reference when given, else random."""
    if external_ref is None:
        return uuid.uuid4()
    return uuid.uuid5(GOAL_ID_NAMESPACE, f"{org_id}/{external_ref}")


def key_result_id_for(goal_id: uuid.UUID, external_ref: str | None) -> uuid.UUID:
    """Return the key result id: derived from the goal id and external reference when given, else random."""
    if external_ref is None:
        return uuid.uuid4()
    return uuid.uuid5(GOAL_ID_NAMESPACE, f"{goal_id}/{external_ref}")


def check_event_time(occurred_at: datetime) -> datetime:
    """Return ``occurred_at`` in UTC, raising ObjectiveError if it is naive or in the future."""
    if occurred_at.tzinfo is None or occurred_at.utcoffset() is None:
        raise ObjectiveError("occurred_at", "occurred_at needs a timezone offset, for example 'Z' or '+00:00'")
    occurred_at = occurred_at.astimezone(timezone.utc)
    now = datetime.now(timezone.utc)
    if occurred_at > now:
        raise ObjectiveError(
            "occurred_at",
            f"occurred_at {occurred_at.isoformat()} is in the future (now is {now.isoformat()}); "
            "send the time the fact happened, or leave it out to use the current time",
        )
    return occurred_at


def check_finite(field_name: str, value: float) -> float:
    if not math.isfinite(value):
        raise ObjectiveError(field_name, f"{field_name} must be a finite number, got {value!r}")
    return float(value)


def check_weight(weight: float) -> float:
    weight = check_finite("weight", weight)
    if not 0 < weight <= MAX_KEY_RESULT_WEIGHT:
        raise ObjectiveError("weight", f"weight must be above 0 and at most {MAX_KEY_RESULT_WEIGHT}, got {weight}")
    return weight


def check_visibility(visibility: str) -> str:
    if visibility not in VISIBILITIES:
        raise ObjectiveError("visibility", f"visibility {visibility!r} is not one of {', '.join(VISIBILITIES)}")
    return visibility


def check_co_owners(owner_id: str, co_owner_ids: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Return the co-owners without repeats, in the given order, refusing the owner and more than MAX_CO_OWNERS."""
    unique = tuple(dict.fromkeys(co_owner_ids))
    if owner_id in unique:
        raise ObjectiveError("co_owner_ids", f"the owner {owner_id} cannot also be a co-owner")
    if len(unique) > MAX_CO_OWNERS:
        raise ObjectiveError("co_owner_ids", f"a goal has at most {MAX_CO_OWNERS} co-owners, got {len(unique)}")
    return unique


@dataclass(frozen=True)
class Period:
    """The time box of a goal, in whole UTC days from ``start`` to ``end`` inclusive."""

    name: str
    start: date
    end: date

    @property
    def first_moment(self) -> datetime:
        return datetime.combine(self.start, time.min, tzinfo=timezone.utc)

    @property
    def last_moment(self) -> datetime:
        return datetime.combine(self.end, time(23, 59, 59, 999000), tzinfo=timezone.utc)

    def contains(self, moment: datetime) -> bool:
        return self.first_moment <= moment <= self.last_moment

    def elapsed_share(self, moment: datetime) -> float:
        """Return the share of the period elapsed at ``moment``: 0.0 at its first moment, 1.0 at its last."""
        length = (self.last_moment - self.first_moment).total_seconds()
        elapsed = (moment - self.first_moment).total_seconds()
        return min(1.0, max(0.0, elapsed / length))


def status_from_pace(progress: float, expected_progress: float) -> str:
    """Return on_track, at_risk or off_track from how far ``progress`` trails ``expected_progress``."""
    shortfall = expected_progress - progress
    if shortfall <= ON_TRACK_MAX_SHORTFALL:
        return "on_track"
    if shortfall <= AT_RISK_MAX_SHORTFALL:
        return "at_risk"
    return "off_track"


CheckInStatus = Literal["on_track", "at_risk", "off_track"]
CHECK_IN_STATUSES: tuple[str, ...] = get_args(CheckInStatus)

# Pace thresholds: how far progress may trail the expected linear progress (both as shares of the
# distance from start to target) and still count as on track, or as at risk.
ON_TRACK_MAX_SHORTFALL = 0.1
AT_RISK_MAX_SHORTFALL = 0.25


@dataclass(frozen=True)
class CheckIn:
    check_in_id: uuid.UUID
    value: float
    comment: str
    occurred_at: datetime
    actor_id: str
    confidence: float | None = None
    status: str = "on_track"
    status_overridden: bool = False


@dataclass
class KeyResult:
    key_result_id: uuid.UUID
    title: str
    metric: str
    start_value: float
    target_value: float
    external_ref: str | None
    unit: str | None = None
    weight: float = 1.0
    check_ins: list[CheckIn] = field(default_factory=list)

    @property
    def direction(self) -> str:
        """``decrease`` for a metric that improves downwards (target below start), else ``increase``."""
        return "decrease" if self.target_value < self.start_value else "increase"

    def progress_of(self, value: float) -> float:
        """Return how far ``value`` is from start (0.0) to target (1.0).

        The ratio works for decreasing metrics too (start 20, target 5). Values past the target
        keep their over-achievement (above 1.0). Values behind the start count as 0.0.
        """
        return max(0.0, (value - self.start_value) / (self.target_value - self.start_value))

    @property
    def latest_check_in(self) -> CheckIn | None:
        """The check-in with the latest event time (of equal times, the one recorded last)."""
        latest: CheckIn | None = None
        for check_in in self.check_ins:
            if latest is None or check_in.occurred_at >= latest.occurred_at:
                latest = check_in
        return latest

    @property
    def current_value(self) -> float:
        latest = self.latest_check_in
        return self.start_value if latest is None else latest.value

    @property
    def progress(self) -> float:
        return self.progress_of(self.current_value)


class Objective(Aggregate):
    """A goal of one organisation, owned by one person and one team, for one period.

    Key results live inside the aggregate, so a check-in is checked against its key result and
    the goal's period in one consistent write.

    Event-time rules: no event may occur in the future. A check-in must occur inside the goal's
    period, from the start day at 00:00 UTC to the end day at 23:59:59.999 UTC. Objectives and
    key results may be recorded before the period starts (planning) or after it ends (imports).
    """

    @staticmethod
    def create_id(org_id: str, external_ref: str | None) -> uuid.UUID:
        return goal_id_for(org_id, external_ref)

    @classmethod
    def create(
        cls,
        *,
        org_id: str,
        owner_id: str,
        team: str,
        contributing_teams: tuple[str, ...],
        period: Period,
        parent_goal_id: uuid.UUID | None,
        title: str,
        external_ref: str | None,
        occurred_at: datetime,
        actor_id: str,
        goal_id: uuid.UUID | None = None,
        status: str = "active",
        level: str = "team",
        co_owner_ids: tuple[str, ...] = (),
        visibility: str = "organisation",
    ) -> Objective:
        """Check the new goal's facts and record ObjectiveCreated, with ``goal_id`` or an id from ``create_id``."""
        occurred_at = check_event_time(occurred_at)
        if period.end < period.start:
            raise ObjectiveError("period", f"period end {period.end} is before its start {period.start}")
        if status not in ("draft", "active"):
            raise ObjectiveError("status", f"a new goal's status must be draft or active, got {status!r}")
        if level not in GOAL_LEVELS:
            raise ObjectiveError("level", f"level {level!r} is not one of {', '.join(GOAL_LEVELS)}")
        check_visibility(visibility)
        return cls._create(
            cls.ObjectiveCreated,
            id=goal_id or goal_id_for(org_id, external_ref),
            org_id=org_id,
            owner_id=owner_id,
            team=team,
            contributing_teams=tuple(contributing_teams),
            period_name=period.name,
            period_start=period.start,
            period_end=period.end,
            parent_goal_id=parent_goal_id,
            title=title,
            external_ref=external_ref,
            occurred_at=occurred_at,
            actor_id=actor_id,
            status=status,
            level=level,
            co_owner_ids=check_co_owners(owner_id, co_owner_ids),
            visibility=visibility,
        )

    class ObjectiveCreated(Aggregate.Created):
        """Version 2 added level, co-owners and visibility; version 1 events may also lack status."""

        class_version = 2
        org_id: str
        owner_id: str
        team: str
        contributing_teams: tuple[str, ...]
        period_name: str
        period_start: date
        period_end: date
        parent_goal_id: uuid.UUID | None
        title: str
        external_ref: str | None
        occurred_at: datetime
        actor_id: str
        status: str
        level: str
        co_owner_ids: tuple[str, ...]
        visibility: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state.setdefault("status", "active")
            state["level"] = "team"
            state["co_owner_ids"] = []
            state["visibility"] = "organisation"

    @event(ObjectiveCreated)
    def __init__(
        self,
        org_id: str,
        owner_id: str,
        team: str,
        contributing_teams: tuple[str, ...],
        period_name: str,
        period_start: date,
        period_end: date,
        parent_goal_id: uuid.UUID | None,
        title: str,
        external_ref: str | None,
        occurred_at: datetime,
        actor_id: str,
        status: str,
        level: str,
        co_owner_ids: tuple[str, ...],
        visibility: str,
    ) -> None:
        self.org_id = org_id
        self.owner_id = owner_id
        self.co_owner_ids = tuple(co_owner_ids)
        self.level = level
        self.visibility = visibility
        self.supports: tuple[SupportLink, ...] = ()
        self.team = team
        # The JSON transcoder stores tuples as lists, so a replayed event brings a list back.
        self.contributing_teams = tuple(contributing_teams)
        self.period = Period(period_name, period_start, period_end)
        self.parent_goal_id = parent_goal_id
        self.title = title
        self.external_ref = external_ref
        self.created_at = occurred_at
        self.key_results: dict[uuid.UUID, KeyResult] = {}
        self.applied_requests: dict[str, AppliedRequest] = {}
        self.status = status
        self.outcome: str | None = None

    @property
    def progress(self) -> float:
        """The mean of the key results' progress weighted by their ``weight``, uncapped, or 0.0 without key results.

        Over-achievement on one key result is not capped, so it can make up for another that
        lags behind.
        """
        if not self.key_results:
            return 0.0
        # Dividing before adding keeps the mean of finite values finite, however large they are.
        # fsum is exact, so the result does not depend on the order the key results were added in.
        total_weight = math.fsum(key_result.weight for key_result in self.key_results.values())
        return math.fsum(
            key_result.progress * (key_result.weight / total_weight) for key_result in self.key_results.values()
        )

    def key_result(self, key_result_id: uuid.UUID) -> KeyResult:
        try:
            return self.key_results[key_result_id]
        except KeyError:
            raise KeyResultNotFoundError(
                f"key result {key_result_id} not found in goal {self.id}"
            ) from None

    def key_result_with_ref(self, external_ref: str) -> KeyResult | None:
        return self.key_results.get(key_result_id_for(self.id, external_ref))

    def add_key_result(
        self,
        *,
        title: str,
        metric: str,
        start_value: float,
        target_value: float,
        external_ref: str | None,
        occurred_at: datetime,
        actor_id: str,
        unit: str | None = None,
        weight: float = 1.0,
    ) -> KeyResult:
        """Check the key result's facts, record KeyResultAdded and return the new key result."""
        self.check_open("add key results to it")
        occurred_at = check_event_time(occurred_at)
        if metric not in METRIC_KINDS:
            raise ObjectiveError("metric", f"metric {metric!r} is not one of {', '.join(METRIC_KINDS)}")
        weight = check_weight(weight)

        start_value = check_finite("start_value", start_value)
        target_value = check_finite("target_value", target_value)
        if not math.isfinite(target_value - start_value):
            raise ObjectiveError(
                "target_value", f"target_value {target_value} is too far from start_value {start_value} to measure progress"
            )
        if target_value == start_value:
            raise ObjectiveError(
                "target_value",
                f"target_value must differ from start_value (both are {start_value}), because progress "
                "measures the distance from start to target",
            )
        key_result_id = key_result_id_for(self.id, external_ref)
        if key_result_id in self.key_results:
            raise ObjectiveError("external_ref", f"key result with external_ref {external_ref!r} already exists")
        self._add_key_result(
            key_result_id=key_result_id,
            title=title,
            metric=metric,
            start_value=start_value,
            target_value=target_value,
            external_ref=external_ref,
            occurred_at=occurred_at,
            actor_id=actor_id,
            unit=unit,
            weight=weight,
        )
        return self.key_results[key_result_id]

    class KeyResultAdded(Aggregate.Event):
        """Version 2 made unit and weight part of every event."""

        class_version = 2
        key_result_id: uuid.UUID
        title: str
        metric: str
        start_value: float
        target_value: float
        external_ref: str | None
        occurred_at: datetime
        actor_id: str
        unit: str | None
        weight: float

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state.setdefault("unit", None)
            state.setdefault("weight", 1.0)

    @event(KeyResultAdded)
    def _add_key_result(
        self,
        key_result_id: uuid.UUID,
        title: str,
        metric: str,
        start_value: float,
        target_value: float,
        external_ref: str | None,
        occurred_at: datetime,
        actor_id: str,
        unit: str | None,
        weight: float,
    ) -> None:
        self.key_results[key_result_id] = KeyResult(
            key_result_id=key_result_id,
            title=title,
            metric=metric,
            start_value=start_value,
            target_value=target_value,
            external_ref=external_ref,
            unit=unit,
            weight=weight,
        )

    def record_check_in(
        self,
        *,
        key_result_id: uuid.UUID,
        value: float,
        comment: str,
        occurred_at: datetime,
        actor_id: str,
        confidence: float | None = None,
        status: str | None = None,
    ) -> CheckIn:
        """Check the check-in against its key result and the period, record CheckInRecorded and return it.

        Without ``status`` the check-in's status comes from its pace (see ``status_from_pace``).
        """
        self.check_open("record check-ins on it")
        key_result = self.key_result(key_result_id)
        value = check_finite("value", value)
        if confidence is not None and not 0.0 <= check_finite("confidence", confidence) <= 1.0:
            raise ObjectiveError("confidence", f"confidence must be from 0 to 1, got {confidence}")
        if status is not None and status not in CHECK_IN_STATUSES:
            raise ObjectiveError("status", f"status {status!r} is not one of {', '.join(CHECK_IN_STATUSES)}")
        if not math.isfinite(key_result.progress_of(value)):
            raise ObjectiveError(
                "value", f"value {value} is too far from the key result's start {key_result.start_value} to measure progress"
            )
        occurred_at = check_event_time(occurred_at)
        if not self.period.contains(occurred_at):
            raise ObjectiveError(
                "occurred_at",
                f"occurred_at {occurred_at.isoformat()} is outside the goal's period {self.period.name} "
                f"({self.period.first_moment.isoformat()} to {self.period.last_moment.isoformat()})",
            )
        check_in_id = uuid.uuid4()
        paced_status = status_from_pace(key_result.progress_of(value), self.period.elapsed_share(occurred_at))
        self._record_check_in(
            key_result_id=key_result.key_result_id,
            check_in_id=check_in_id,
            value=value,
            comment=comment,
            occurred_at=occurred_at,
            actor_id=actor_id,
            confidence=confidence,
            status=status or paced_status,
            status_overridden=status is not None,
        )
        return key_result.check_ins[-1]

    class CheckInRecorded(Aggregate.Event):
        """Version 2 made confidence, status and its source part of every event.

        A version 1 event has no status, so its status is derived from pace when it is applied.
        """

        class_version = 2
        key_result_id: uuid.UUID
        check_in_id: uuid.UUID
        value: float
        comment: str
        occurred_at: datetime
        actor_id: str
        confidence: float | None
        status: str | None
        status_overridden: bool

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state.setdefault("confidence", None)
            state.setdefault("status", None)
            state.setdefault("status_overridden", False)

    @event(CheckInRecorded)
    def _record_check_in(
        self,
        key_result_id: uuid.UUID,
        check_in_id: uuid.UUID,
        value: float,
        comment: str,
        occurred_at: datetime,
        actor_id: str,
        confidence: float | None,
        status: str | None,
        status_overridden: bool,
    ) -> None:
        key_result = self.key_results[key_result_id]
        if status is None:
            status = status_from_pace(key_result.progress_of(value), self.period.elapsed_share(occurred_at))
        check_in = CheckIn(check_in_id, value, comment, occurred_at, actor_id, confidence, status, status_overridden)
        key_result.check_ins.append(check_in)

    def mark_request_applied(self, key_digest: str, body_digest: str, subject_id: uuid.UUID | None) -> None:
        """Record that the change pending on this goal was made for the request with this Idempotency-Key digest.

        Saved in the same transaction as the change, so a retry finds the key even when the API
        process stopped before it stored the response.
        """
        self._apply_request(key_digest=key_digest, body_digest=body_digest, subject_id=subject_id)

    @event("RequestApplied")
    def _apply_request(self, key_digest: str, body_digest: str, subject_id: uuid.UUID | None) -> None:
        # This event's own version is one above the current one while it is being applied.
        self.applied_requests[key_digest] = AppliedRequest(body_digest, self.version + 1, subject_id)

    def check_open(self, action: str) -> None:
        """Raise ObjectiveStateError unless the goal is draft or active, naming the ``action`` refused."""
        if self.status in ("closed", "archived"):
            raise ObjectiveStateError(
                self.id,
                self.status,
                f"goal {self.id} is {self.status}, so you cannot {action}. Reopen it with POST /goals/{self.id}/reopen first",
            )

    def activate(self, occurred_at: datetime, actor_id: str) -> None:
        self._check_status("activate", "draft")
        self._activate(occurred_at=check_event_time(occurred_at), actor_id=actor_id)

    def close(self, outcome: str, occurred_at: datetime, actor_id: str) -> None:
        """Close the goal with its outcome. Key results and check-ins stay as they are."""
        self._check_status("close", "active")
        if outcome not in CLOSE_OUTCOMES:
            raise ObjectiveError("outcome", f"outcome {outcome!r} is not one of {', '.join(CLOSE_OUTCOMES)}")
        self._close(outcome=outcome, occurred_at=check_event_time(occurred_at), actor_id=actor_id)

    def archive(self, occurred_at: datetime, actor_id: str) -> None:
        self._check_status("archive", "closed")
        self._archive(occurred_at=check_event_time(occurred_at), actor_id=actor_id)

    def reopen(self, occurred_at: datetime, actor_id: str) -> None:
        self._check_status("reopen", "closed")
        self._reopen(occurred_at=check_event_time(occurred_at), actor_id=actor_id)

    def _check_status(self, action: str, required: str) -> None:
        if self.status != required:
            raise ObjectiveStateError(
                self.id, self.status, f"goal {self.id} is {self.status}; only a {required} goal can {action}"
            )

    @event("ObjectiveActivated")
    def _activate(self, occurred_at: datetime, actor_id: str) -> None:
        self.status = "active"

    @event("ObjectiveClosed")
    def _close(self, outcome: str, occurred_at: datetime, actor_id: str) -> None:
        self.status = "closed"
        self.outcome = outcome

    @event("ObjectiveArchived")
    def _archive(self, occurred_at: datetime, actor_id: str) -> None:
        self.status = "archived"

    @event("ObjectiveReopened")
    def _reopen(self, occurred_at: datetime, actor_id: str) -> None:
        self.status = "active"
        self.outcome = None

    def align(self, parent_goal_id: uuid.UUID | None, occurred_at: datetime, actor_id: str) -> None:
        """Record ObjectiveAligned with the new parent goal; the application checks that it exists and makes no cycle."""
        if parent_goal_id == self.id:
            raise ObjectiveError("parent_goal_id", f"goal {self.id} cannot be its own parent")
        occurred_at = check_event_time(occurred_at)
        if parent_goal_id != self.parent_goal_id:
            self._align(parent_goal_id=parent_goal_id, occurred_at=occurred_at, actor_id=actor_id)

    @event("ObjectiveAligned")
    def _align(self, parent_goal_id: uuid.UUID | None, occurred_at: datetime, actor_id: str) -> None:
        self.parent_goal_id = parent_goal_id

    def is_manager(self, person_id: str) -> bool:
        """True for the owner and the co-owners: the people who may change the goal itself."""
        return person_id == self.owner_id or person_id in self.co_owner_ids

    def change_owners(self, owner_id: str, co_owner_ids: tuple[str, ...], occurred_at: datetime, actor_id: str) -> None:
        """Record ObjectiveOwnersChanged with the new owner and the whole new set of co-owners, if either differs."""
        co_owner_ids = check_co_owners(owner_id, co_owner_ids)
        occurred_at = check_event_time(occurred_at)
        if owner_id != self.owner_id or co_owner_ids != self.co_owner_ids:
            self._change_owners(owner_id=owner_id, co_owner_ids=co_owner_ids, occurred_at=occurred_at, actor_id=actor_id)

    @event("ObjectiveOwnersChanged")
    def _change_owners(self, owner_id: str, co_owner_ids: tuple[str, ...], occurred_at: datetime, actor_id: str) -> None:
        self.owner_id = owner_id
        self.co_owner_ids = tuple(co_owner_ids)

    def change_visibility(self, visibility: str, occurred_at: datetime, actor_id: str) -> None:
        """Record ObjectiveVisibilityChanged when ``visibility`` differs from the current one."""
        check_visibility(visibility)
        occurred_at = check_event_time(occurred_at)
        if visibility != self.visibility:
            self._change_visibility(
                visibility=visibility, previous_visibility=self.visibility, occurred_at=occurred_at, actor_id=actor_id
            )

    @event("ObjectiveVisibilityChanged")
    def _change_visibility(self, visibility: str, previous_visibility: str, occurred_at: datetime, actor_id: str) -> None:
        self.visibility = visibility

    def add_support(self, link: SupportLink, occurred_at: datetime, actor_id: str) -> None:
        """Record SupportAdded for a goal or key result this goal does not support yet.

        The application checks that the supported goal and key result exist and that the link makes no cycle.
        """
        if link.goal_id == self.id:
            raise ObjectiveError("goal_id", f"goal {self.id} cannot support itself or its own key results")
        occurred_at = check_event_time(occurred_at)
        if link in self.supports:
            return
        if len(self.supports) >= MAX_SUPPORTED:
            raise ObjectiveError("goal_id", f"a goal supports at most {MAX_SUPPORTED} goals or key results; remove one first")
        self._add_support(
            supported_goal_id=link.goal_id, supported_key_result_id=link.key_result_id, occurred_at=occurred_at, actor_id=actor_id
        )

    @event("SupportAdded")
    def _add_support(
        self, supported_goal_id: uuid.UUID, supported_key_result_id: uuid.UUID | None, occurred_at: datetime, actor_id: str
    ) -> None:
        self.supports = (*self.supports, SupportLink(supported_goal_id, supported_key_result_id))

    def remove_support(self, link: SupportLink, occurred_at: datetime, actor_id: str) -> None:
        """Record SupportRemoved if the goal supports ``link``; removing a missing link changes nothing."""
        occurred_at = check_event_time(occurred_at)
        if link in self.supports:
            self._remove_support(
                supported_goal_id=link.goal_id, supported_key_result_id=link.key_result_id, occurred_at=occurred_at, actor_id=actor_id
            )

    @event("SupportRemoved")
    def _remove_support(
        self, supported_goal_id: uuid.UUID, supported_key_result_id: uuid.UUID | None, occurred_at: datetime, actor_id: str
    ) -> None:
        removed = SupportLink(supported_goal_id, supported_key_result_id)
        self.supports = tuple(link for link in self.supports if link != removed)

    @property
    def parent_ids(self) -> tuple[uuid.UUID, ...]:
        """Every goal above this one: the parent goal, then the goals whose key results or selves it supports."""
        parents = [] if self.parent_goal_id is None else [self.parent_goal_id]
        parents += [link.goal_id for link in self.supports if link.goal_id not in parents]
        return tuple(parents)
