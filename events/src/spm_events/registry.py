"""The one registry of topics, their keys, and the event types published on each."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from spm_events.envelope import Envelope, event_id_for
from spm_events.schemas import (
    CheckInRecordedV1,
    CollaboratorLeftV1,
    CollaboratorTaggedV1,
    CollaboratorUntaggedV1,
    CommentDeletedV1,
    CommentEditedV1,
    CommentPostedV1,
    CommunityCreatedV1,
    CommunityDescribedV1,
    CommunityFollowedV1,
    CommunityGoalLinkedV1,
    CommunityGoalUnlinkedV1,
    CommunityMemberInvitedV1,
    CommunityMemberJoinedV1,
    CommunityMemberLeftV1,
    CommunityUnfollowedV1,
    GoalAlignedV1,
    GoalCreatedV1,
    GoalFollowedV1,
    GoalOwnersChangedV1,
    GoalStatusChangedV1,
    GoalSupportAddedV1,
    GoalSupportRemovedV1,
    GoalUnfollowedV1,
    GoalVisibilityChangedV1,
    KeyResultAddedV1,
    KudosGivenV1,
    Payload,
    PersonFollowedV1,
    PersonUnfollowedV1,
    ReactionAddedV1,
    ReactionRemovedV1,
    ScoreChangedV1,
    TagAcceptedV1,
    TagDeclinedV1,
)


@dataclass(frozen=True)
class Topic:
    name: str
    producer: str
    key: str
    partitions: int = 3


GOALS_TOPIC = Topic("spm.goals.v1", producer="goals", key="goal id (the aggregate id)")
SOCIAL_TOPIC = Topic(
    "spm.social.v1", producer="social", key="social aggregate id (one per goal, per community and per followed person)"
)
SCORES_TOPIC = Topic("spm.scores.v1", producer="scoring", key="scored subject: person:<id>, team:<name> or goal:<id>")
NOTIFICATIONS_TOPIC = Topic("spm.notifications.v1", producer="notifications", key="recipient id")
DEADLETTER_TOPIC = Topic("spm.deadletter.v1", producer="any processor", key="original key", partitions=1)

TOPICS: dict[str, Topic] = {
    topic.name: topic
    for topic in (GOALS_TOPIC, SOCIAL_TOPIC, SCORES_TOPIC, NOTIFICATIONS_TOPIC, DEADLETTER_TOPIC)
}


@dataclass(frozen=True)
class EventType:
    name: str
    version: int
    model: type[Payload]
    topic: Topic

    @property
    def type(self) -> str:
        return f"spm.{self.topic.producer}.{self.name}.v{self.version}"

    @property
    def source(self) -> str:
        return f"/spm/{self.topic.producer}"

    @property
    def dataschema(self) -> str:
        return f"urn:spm:schema:{self.topic.producer}.{self.name}:{self.version}"


EVENT_TYPES: dict[str, EventType] = {
    event_type.type: event_type
    for event_type in (
        EventType("GoalCreated", 1, GoalCreatedV1, GOALS_TOPIC),
        EventType("KeyResultAdded", 1, KeyResultAddedV1, GOALS_TOPIC),
        EventType("CheckInRecorded", 1, CheckInRecordedV1, GOALS_TOPIC),
        EventType("GoalStatusChanged", 1, GoalStatusChangedV1, GOALS_TOPIC),
        EventType("GoalAligned", 1, GoalAlignedV1, GOALS_TOPIC),
        EventType("GoalOwnersChanged", 1, GoalOwnersChangedV1, GOALS_TOPIC),
        EventType("GoalVisibilityChanged", 1, GoalVisibilityChangedV1, GOALS_TOPIC),
        EventType("GoalSupportAdded", 1, GoalSupportAddedV1, GOALS_TOPIC),
        EventType("GoalSupportRemoved", 1, GoalSupportRemovedV1, GOALS_TOPIC),
        EventType("GoalFollowed", 1, GoalFollowedV1, SOCIAL_TOPIC),
        EventType("GoalUnfollowed", 1, GoalUnfollowedV1, SOCIAL_TOPIC),
        EventType("CollaboratorTagged", 1, CollaboratorTaggedV1, SOCIAL_TOPIC),
        EventType("TagAccepted", 1, TagAcceptedV1, SOCIAL_TOPIC),
        EventType("TagDeclined", 1, TagDeclinedV1, SOCIAL_TOPIC),
        EventType("CollaboratorLeft", 1, CollaboratorLeftV1, SOCIAL_TOPIC),
        EventType("CollaboratorUntagged", 1, CollaboratorUntaggedV1, SOCIAL_TOPIC),
        EventType("CommentPosted", 1, CommentPostedV1, SOCIAL_TOPIC),
        EventType("CommentEdited", 1, CommentEditedV1, SOCIAL_TOPIC),
        EventType("CommentDeleted", 1, CommentDeletedV1, SOCIAL_TOPIC),
        EventType("ReactionAdded", 1, ReactionAddedV1, SOCIAL_TOPIC),
        EventType("ReactionRemoved", 1, ReactionRemovedV1, SOCIAL_TOPIC),
        EventType("KudosGiven", 1, KudosGivenV1, SOCIAL_TOPIC),
        EventType("PersonFollowed", 1, PersonFollowedV1, SOCIAL_TOPIC),
        EventType("PersonUnfollowed", 1, PersonUnfollowedV1, SOCIAL_TOPIC),
        EventType("CommunityCreated", 1, CommunityCreatedV1, SOCIAL_TOPIC),
        EventType("CommunityDescribed", 1, CommunityDescribedV1, SOCIAL_TOPIC),
        EventType("CommunityMemberJoined", 1, CommunityMemberJoinedV1, SOCIAL_TOPIC),
        EventType("CommunityMemberLeft", 1, CommunityMemberLeftV1, SOCIAL_TOPIC),
        EventType("CommunityMemberInvited", 1, CommunityMemberInvitedV1, SOCIAL_TOPIC),
        EventType("CommunityFollowed", 1, CommunityFollowedV1, SOCIAL_TOPIC),
        EventType("CommunityUnfollowed", 1, CommunityUnfollowedV1, SOCIAL_TOPIC),
        EventType("CommunityGoalLinked", 1, CommunityGoalLinkedV1, SOCIAL_TOPIC),
        EventType("CommunityGoalUnlinked", 1, CommunityGoalUnlinkedV1, SOCIAL_TOPIC),
        EventType("ScoreChanged", 1, ScoreChangedV1, SCORES_TOPIC),
    )
}

_EVENT_TYPE_BY_MODEL = {event_type.model: event_type for event_type in EVENT_TYPES.values()}


class UnknownEventTypeError(KeyError):
    """Raised for an envelope type that the registry does not list."""


def event_type_for(type_name: str) -> EventType:
    """Look up a registered event type by its CloudEvents ``type`` attribute."""
    try:
        return EVENT_TYPES[type_name]
    except KeyError:
        raise UnknownEventTypeError(type_name) from None


def new_envelope(
    payload: Payload,
    *,
    subject: str,
    org_id: str,
    actor_id: str,
    aggregate_version: int,
    time: datetime,
) -> Envelope:
    """Wrap a payload in its envelope, with the id derived from the aggregate id and version."""
    event_type = _EVENT_TYPE_BY_MODEL[type(payload)]
    return Envelope(
        id=event_id_for(org_id, subject, aggregate_version),
        source=event_type.source,
        type=event_type.type,
        subject=subject,
        time=time,
        dataschema=event_type.dataschema,
        orgid=org_id,
        actorid=actor_id,
        aggregateversion=aggregate_version,
        data=payload.model_dump(mode="json"),
    )


def parse_payload(envelope: Envelope) -> Payload:
    """Validate an envelope's data against the schema its type names."""
    return event_type_for(envelope.type).model.model_validate(envelope.data)
