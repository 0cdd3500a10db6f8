"""Score facts: the goal and social events that model v2 reads, one normalised record per event.

The read model keeps every such event rather than running totals. Scores are computed from the
facts at read time for any model, window and ``as_of``, so the stored state does not depend on
the order events arrive in, and a model can be replayed over the whole history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from spm_events.envelope import Envelope
from spm_events.schemas import (
    CheckInRecordedV1,
    CollaboratorLeftV1,
    CollaboratorTaggedV1,
    CollaboratorUntaggedV1,
    CommentDeletedV1,
    CommentPostedV1,
    GoalCreatedV1,
    GoalOwnersChangedV1,
    GoalStatusChangedV1,
    GoalVisibilityChangedV1,
    KeyResultAddedV1,
    KudosGivenV1,
    Payload,
    ReactionAddedV1,
    ReactionRemovedV1,
    TagAcceptedV1,
    TagDeclinedV1,
)

DEFAULT_GOAL_STATUS = "active"
DEFAULT_VISIBILITY = "organisation"


class FactKind(str, Enum):
    GOAL_CREATED = "goal_created"
    OWNERS_CHANGED = "owners_changed"
    VISIBILITY_CHANGED = "visibility_changed"
    STATUS_CHANGED = "status_changed"
    KEY_RESULT_ADDED = "key_result_added"
    CHECK_IN = "check_in"
    TAGGED = "tagged"
    TAG_ACCEPTED = "tag_accepted"
    TAG_DECLINED = "tag_declined"
    COLLABORATOR_LEFT = "collaborator_left"
    COLLABORATOR_UNTAGGED = "collaborator_untagged"
    COMMENT_POSTED = "comment_posted"
    COMMENT_DELETED = "comment_deleted"
    KUDOS_GIVEN = "kudos_given"
    REACTION_ADDED = "reaction_added"
    REACTION_REMOVED = "reaction_removed"


# Tag facts in the order of a goal's social graph: the latest one decides whether a person is an insider.
TAG_FACT_KINDS = frozenset(
    {
        FactKind.TAGGED,
        FactKind.TAG_ACCEPTED,
        FactKind.TAG_DECLINED,
        FactKind.COLLABORATOR_LEFT,
        FactKind.COLLABORATOR_UNTAGGED,
    }
)
TAG_ENDING_KINDS = frozenset({FactKind.TAG_DECLINED, FactKind.COLLABORATOR_LEFT, FactKind.COLLABORATOR_UNTAGGED})


@dataclass(frozen=True)
class Fact:
    """One event as model v2 reads it.

    ``person_id`` is the other person the event names (the tagged collaborator, the kudos
    receiver) and ``object_id`` the key result, comment, kudos or reaction target it is about.
    ``details`` contains the kind's remaining fields, such as a check-in's progress and confidence
    or a reaction's target kind.
    """

    org_id: str
    event_id: str
    event_type: str
    kind: FactKind
    subject: str
    aggregate_version: int
    occurred_at: datetime
    actor_id: str
    goal_id: str | None
    person_id: str | None = None
    object_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def order_key(self) -> tuple[datetime, int, str]:
        """Event time, then aggregate version, then event id: a total order that ignores arrival."""
        return (self.occurred_at, self.aggregate_version, self.event_id)


def fact_from_envelope(envelope: Envelope, payload: Payload, occurred_at: datetime) -> Fact | None:
    """Map an event to its fact, or None for an event type that model v2 does not read."""
    described = _describe(payload)
    if described is None:
        return None
    kind, goal_id, person_id, object_id, details = described
    return Fact(
        org_id=envelope.orgid,
        event_id=envelope.id,
        event_type=envelope.type,
        kind=kind,
        subject=envelope.subject,
        aggregate_version=envelope.aggregateversion,
        occurred_at=occurred_at,
        actor_id=envelope.actorid,
        goal_id=goal_id,
        person_id=person_id,
        object_id=object_id,
        details=details,
    )


_TAG_KINDS: dict[type[Payload], FactKind] = {
    CollaboratorTaggedV1: FactKind.TAGGED,
    TagAcceptedV1: FactKind.TAG_ACCEPTED,
    TagDeclinedV1: FactKind.TAG_DECLINED,
    CollaboratorLeftV1: FactKind.COLLABORATOR_LEFT,
    CollaboratorUntaggedV1: FactKind.COLLABORATOR_UNTAGGED,
}


def _describe(payload: Payload) -> tuple[FactKind, str, str | None, str | None, dict[str, Any]] | None:
    if isinstance(payload, GoalCreatedV1):
        details = {
            "owner_id": payload.owner_id,
            "co_owner_ids": sorted(set(payload.co_owner_ids)),
            "team": payload.team,
            "teams": sorted({payload.team, *payload.contributing_teams}),
            "period": {
                "name": payload.period.name,
                "start": payload.period.start.isoformat(),
                "end": payload.period.end.isoformat(),
            },
            "status": payload.status or DEFAULT_GOAL_STATUS,
            "visibility": payload.visibility or DEFAULT_VISIBILITY,
        }
        return FactKind.GOAL_CREATED, payload.goal_id, payload.owner_id, None, details
    if isinstance(payload, GoalOwnersChangedV1):
        details = {"owner_id": payload.owner_id, "co_owner_ids": sorted(set(payload.co_owner_ids))}
        return FactKind.OWNERS_CHANGED, payload.goal_id, payload.owner_id, None, details
    if isinstance(payload, GoalVisibilityChangedV1):
        return FactKind.VISIBILITY_CHANGED, payload.goal_id, None, None, {"visibility": payload.visibility}
    if isinstance(payload, GoalStatusChangedV1):
        details = {"status": payload.status, "outcome": payload.outcome}
        return FactKind.STATUS_CHANGED, payload.goal_id, None, None, details
    if isinstance(payload, KeyResultAddedV1):
        return FactKind.KEY_RESULT_ADDED, payload.goal_id, None, payload.key_result_id, {"weight": payload.weight}
    if isinstance(payload, CheckInRecordedV1):
        details = {"progress": payload.progress, "confidence": payload.confidence}
        return FactKind.CHECK_IN, payload.goal_id, None, payload.key_result_id, details
    tag_kind = _TAG_KINDS.get(type(payload))
    if tag_kind is not None:
        return tag_kind, payload.goal_id, payload.collaborator_id, None, {}  # type: ignore[attr-defined]
    if isinstance(payload, CommentPostedV1):
        return FactKind.COMMENT_POSTED, payload.goal_id, None, payload.comment_id, {}
    if isinstance(payload, CommentDeletedV1):
        return FactKind.COMMENT_DELETED, payload.goal_id, None, payload.comment_id, {}
    if isinstance(payload, KudosGivenV1):
        return FactKind.KUDOS_GIVEN, payload.goal_id, payload.receiver_id, payload.kudos_id, {}
    if isinstance(payload, (ReactionAddedV1, ReactionRemovedV1)):
        kind = FactKind.REACTION_ADDED if isinstance(payload, ReactionAddedV1) else FactKind.REACTION_REMOVED
        details = {"target_kind": payload.target_kind, "reaction": payload.reaction}
        return kind, payload.goal_id, None, payload.target_id, details
    return None
