"""The goals relay: publishes the stored Objective events to spm.goals.v1 as versioned integration events."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Callable

from aiokafka import AIOKafkaProducer
from eventsourcing.domain import DomainEventProtocol
from sqlalchemy import Engine

from spm_events.database import create_database_engine
from spm_events.envelope import Envelope
from spm_events.registry import new_envelope
from spm_events.relay import (
    NotificationBatch,
    ReadNotifications,
    Relay,
    RelayLease,
    RelayPositions,
    create_idempotent_producer,
    single_active_relay,
)
from spm_events.schemas import (
    CheckInRecordedV1,
    GoalAlignedV1,
    GoalCreatedV1,
    GoalOwnersChangedV1,
    GoalStatusChangedV1,
    GoalSupportAddedV1,
    GoalSupportRemovedV1,
    GoalVisibilityChangedV1,
    KeyResultAddedV1,
    Payload,
    PeriodV1,
)
from spm_events.topics import ensure_topics
from spm_goals.application import GoalsApplication
from spm_goals.objective import Objective
from spm_goals.settings import EVENT_STORE_FILE, READ_DATABASE_FILE, GoalsSettings

logger = logging.getLogger(__name__)

RELAY_NAME = "goals"
DEFAULT_BATCH_SIZE = 200

LoadObjective = Callable[[uuid.UUID], Objective]

# Each lifecycle event moves a goal from one fixed status to another.
STATUS_EVENTS: dict[type, tuple[str, str]] = {
    Objective.ObjectiveActivated: ("draft", "active"),
    Objective.ObjectiveClosed: ("active", "closed"),
    Objective.ObjectiveArchived: ("closed", "archived"),
    Objective.ObjectiveReopened: ("closed", "active"),
}


def envelope_for(domain_event: DomainEventProtocol[uuid.UUID], load_objective: LoadObjective) -> Envelope | None:
    """Map one stored Objective event to its integration envelope, or None for an event that is not published.

    Key-result and check-in events carry neither the org id nor the key result's start and target,
    so they come from the goal, which never changes either once recorded.
    """
    goal_id = domain_event.originator_id
    if isinstance(domain_event, Objective.RequestApplied):
        # Internal bookkeeping of Idempotency-Keys: no fact for other services.
        return None
    if isinstance(domain_event, Objective.ObjectiveCreated):
        org_id = domain_event.org_id
        payload: Payload = GoalCreatedV1(
            goal_id=str(goal_id),
            title=domain_event.title,
            owner_id=domain_event.owner_id,
            team=domain_event.team,
            contributing_teams=tuple(domain_event.contributing_teams),
            period=PeriodV1(
                name=domain_event.period_name, start=domain_event.period_start, end=domain_event.period_end
            ),
            parent_goal_id=None if domain_event.parent_goal_id is None else str(domain_event.parent_goal_id),
            external_ref=domain_event.external_ref,
            status=domain_event.status,
            level=domain_event.level,
            co_owner_ids=tuple(domain_event.co_owner_ids),
            visibility=domain_event.visibility,
        )
    elif isinstance(domain_event, Objective.KeyResultAdded):
        org_id = load_objective(goal_id).org_id
        payload = KeyResultAddedV1(
            goal_id=str(goal_id),
            key_result_id=str(domain_event.key_result_id),
            title=domain_event.title,
            metric=domain_event.metric,
            start_value=domain_event.start_value,
            target_value=domain_event.target_value,
            external_ref=domain_event.external_ref,
            unit=domain_event.unit,
            weight=domain_event.weight,
        )
    elif isinstance(domain_event, Objective.CheckInRecorded):
        objective = load_objective(goal_id)
        org_id = objective.org_id
        key_result = objective.key_result(domain_event.key_result_id)
        check_in = next(item for item in key_result.check_ins if item.check_in_id == domain_event.check_in_id)
        payload = CheckInRecordedV1(
            goal_id=str(goal_id),
            key_result_id=str(domain_event.key_result_id),
            check_in_id=str(domain_event.check_in_id),
            value=domain_event.value,
            progress=key_result.progress_of(domain_event.value),
            comment=domain_event.comment,
            confidence=check_in.confidence,
            status=check_in.status,
        )
    elif type(domain_event) in STATUS_EVENTS:
        org_id = load_objective(goal_id).org_id
        previous_status, status = STATUS_EVENTS[type(domain_event)]
        payload = GoalStatusChangedV1(
            goal_id=str(goal_id),
            status=status,
            previous_status=previous_status,
            outcome=getattr(domain_event, "outcome", None),
        )
    elif isinstance(domain_event, Objective.ObjectiveAligned):
        org_id = load_objective(goal_id).org_id
        parent_goal_id = domain_event.parent_goal_id
        payload = GoalAlignedV1(goal_id=str(goal_id), parent_goal_id=None if parent_goal_id is None else str(parent_goal_id))
    elif isinstance(domain_event, Objective.ObjectiveOwnersChanged):
        org_id = load_objective(goal_id).org_id
        payload = GoalOwnersChangedV1(
            goal_id=str(goal_id), owner_id=domain_event.owner_id, co_owner_ids=tuple(domain_event.co_owner_ids)
        )
    elif isinstance(domain_event, Objective.ObjectiveVisibilityChanged):
        org_id = load_objective(goal_id).org_id
        payload = GoalVisibilityChangedV1(
            goal_id=str(goal_id),
            visibility=domain_event.visibility,
            previous_visibility=domain_event.previous_visibility,
        )
    elif isinstance(domain_event, (Objective.SupportAdded, Objective.SupportRemoved)):
        org_id = load_objective(goal_id).org_id
        support_type = GoalSupportAddedV1 if isinstance(domain_event, Objective.SupportAdded) else GoalSupportRemovedV1
        key_result_id = domain_event.supported_key_result_id
        payload = support_type(
            goal_id=str(goal_id),
            supported_goal_id=str(domain_event.supported_goal_id),
            supported_key_result_id=None if key_result_id is None else str(key_result_id),
        )
    else:
        logger.warning(
            "not publishing event type=%s goal_id=%s version=%s",
            type(domain_event).__qualname__, goal_id, domain_event.originator_version,
        )
        return None
    return new_envelope(
        payload,
        subject=str(goal_id),
        org_id=org_id,
        actor_id=domain_event.actor_id,
        aggregate_version=domain_event.originator_version,
        time=domain_event.occurred_at,
    )


def notification_reader(goals: GoalsApplication) -> ReadNotifications:
    """Return the relay's reader: notifications after a position, each mapped to its envelope."""

    def read_notifications(after: int, limit: int) -> NotificationBatch:
        loaded: dict[uuid.UUID, Objective] = {}

        def load_objective(goal_id: uuid.UUID) -> Objective:
            if goal_id not in loaded:
                loaded[goal_id] = goals.repository.get(goal_id)
            return loaded[goal_id]

        batch = []
        for notification in goals.read_notifications(after, limit):
            domain_event = goals.mapper.to_domain_event(notification)
            batch.append((notification.id, envelope_for(domain_event, load_objective)))
        return batch

    return read_notifications


def create_goals_relay(
    goals: GoalsApplication,
    engine: Engine,
    producer: AIOKafkaProducer,
    batch_size: int = DEFAULT_BATCH_SIZE,
    lease: RelayLease | None = None,
) -> Relay:
    return Relay(RELAY_NAME, notification_reader(goals), RelayPositions(engine), producer, batch_size=batch_size, lease=lease)


async def run_goals_relay(settings: GoalsSettings, stop: asyncio.Event, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
    """Publish goals events until ``stop`` is set, holding the lock that keeps one relay active."""
    await ensure_topics(settings.kafka_bootstrap)
    engine = create_database_engine(settings.sqlalchemy_url(READ_DATABASE_FILE))
    goals = GoalsApplication(env=settings.event_store_env(EVENT_STORE_FILE), index_engine=engine)
    try:
        with single_active_relay(engine, RELAY_NAME, settings.data_dir) as lease:
            producer = create_idempotent_producer(settings.kafka_bootstrap)
            await producer.start()
            try:
                await create_goals_relay(goals, engine, producer, batch_size, lease).run(stop)
            finally:
                await producer.stop()
    finally:
        goals.close()
        engine.dispose()
    logger.info("relay=%s stopped", RELAY_NAME)
