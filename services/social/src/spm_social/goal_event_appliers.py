"""Appliers of spm.goals.v1 events: the read-model writes of each event type."""

from __future__ import annotations

from typing import Any, Callable

from spm_events.schemas import (
    CheckInRecordedV1,
    GoalCreatedV1,
    GoalOwnersChangedV1,
    GoalVisibilityChangedV1,
    KeyResultAddedV1,
    Payload,
)
from spm_social.fanout import CHECK_IN_RECORDED, GOAL_CREATED, KEY_RESULT_ADDED
from spm_social.feedwriter import FeedWriter
from spm_social.interaction_facts import CHECK_IN_TARGET
from spm_social.readmodel import insert_ignoring_duplicates
from spm_social.visibility import record_goal_created, record_owners, record_visibility


def apply_goal_created(writer: FeedWriter, payload: GoalCreatedV1) -> None:
    envelope = writer.envelope
    insert_ignoring_duplicates(
        writer.connection,
        writer.tables.known_goals,
        {
            "org_id": writer.org_id,
            "goal_id": payload.goal_id,
            "title": payload.title,
            "owner_id": payload.owner_id,
            "team": payload.team,
            "period_start": payload.period.start,
            "period_end": payload.period.end,
            "created_at": envelope.time,
        },
    )
    record_goal_created(
        writer.connection,
        writer.tables,
        writer.org_id,
        payload.goal_id,
        visibility=payload.visibility,
        owner_id=payload.owner_id,
        co_owner_ids=payload.co_owner_ids,
        teams=(payload.team, *payload.contributing_teams),
        aggregate_version=envelope.aggregateversion,
    )
    # Activities of the goal may have arrived before it; its owners get those items from here on.
    writer.sync_owners(payload.goal_id)
    writer.add_activity(GOAL_CREATED, goal_id=payload.goal_id, subject_id=payload.owner_id)


def apply_key_result_added(writer: FeedWriter, payload: KeyResultAddedV1) -> None:
    insert_ignoring_duplicates(
        writer.connection,
        writer.tables.key_results,
        {
            "org_id": writer.org_id,
            "key_result_id": payload.key_result_id,
            "goal_id": payload.goal_id,
            "title": payload.title,
        },
    )
    writer.add_activity(KEY_RESULT_ADDED, goal_id=payload.goal_id, key_result_id=payload.key_result_id)


def apply_check_in_recorded(writer: FeedWriter, payload: CheckInRecordedV1) -> None:
    writer.add_activity(
        CHECK_IN_RECORDED,
        goal_id=payload.goal_id,
        key_result_id=payload.key_result_id,
        progress=payload.progress,
        target_kind=CHECK_IN_TARGET,
        target_id=payload.check_in_id,
    )
    # Reactions to the check-in that arrived first could not name their recipient until now.
    writer.refresh_reactions(CHECK_IN_TARGET, payload.check_in_id)


# Owners and visibility change who may read the goal's items. Visibility is checked at read time,
# so only the owners' written items change.
def apply_goal_owners_changed(writer: FeedWriter, payload: GoalOwnersChangedV1) -> None:
    record_owners(
        writer.connection,
        writer.tables,
        writer.org_id,
        payload.goal_id,
        payload.owner_id,
        payload.co_owner_ids,
        writer.envelope.aggregateversion,
    )
    writer.sync_owners(payload.goal_id)


def apply_goal_visibility_changed(writer: FeedWriter, payload: GoalVisibilityChangedV1) -> None:
    record_visibility(
        writer.connection,
        writer.tables,
        writer.org_id,
        payload.goal_id,
        payload.visibility,
        writer.envelope.aggregateversion,
    )


GOAL_APPLIERS: dict[type[Payload], Callable[[FeedWriter, Any], None]] = {
    GoalCreatedV1: apply_goal_created,
    KeyResultAddedV1: apply_key_result_added,
    CheckInRecordedV1: apply_check_in_recorded,
    GoalOwnersChangedV1: apply_goal_owners_changed,
    GoalVisibilityChangedV1: apply_goal_visibility_changed,
}
