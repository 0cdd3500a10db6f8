"""Maps the goal graph's tag consent, comment, reaction and kudos events to their spm.social.v1 payloads."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from spm_events.schemas import (
    CollaboratorLeftV1,
    CollaboratorUntaggedV1,
    CommentDeletedV1,
    CommentEditedV1,
    CommentPostedV1,
    KudosGivenV1,
    Payload,
    ReactionAddedV1,
    ReactionRemovedV1,
    TagAcceptedV1,
    TagDeclinedV1,
)
from spm_social.domain import GoalSocialGraph

Graph = GoalSocialGraph


def _consent(schema: type[Payload]) -> Callable[[Any], Payload]:
    return lambda event: schema(goal_id=event.goal_id, collaborator_id=event.collaborator_id)


def _reaction(schema: type[Payload]) -> Callable[[Any], Payload]:
    return lambda event: schema(
        goal_id=event.goal_id, target_kind=event.target_kind, target_id=event.target_id, reaction=event.reaction
    )


_PAYLOAD_BUILDERS: dict[type, Callable[[Any], Payload]] = {
    Graph.TagAccepted: _consent(TagAcceptedV1),
    Graph.TagDeclined: _consent(TagDeclinedV1),
    Graph.CollaboratorLeft: _consent(CollaboratorLeftV1),
    Graph.CollaboratorUntagged: _consent(CollaboratorUntaggedV1),
    Graph.CommentPosted: lambda event: CommentPostedV1(
        goal_id=event.goal_id,
        comment_id=event.comment_id,
        check_in_id=event.check_in_id,
        body=event.body,
        mentioned_ids=tuple(event.mentioned_ids),
    ),
    Graph.CommentEdited: lambda event: CommentEditedV1(
        goal_id=event.goal_id, comment_id=event.comment_id, body=event.body, mentioned_ids=tuple(event.mentioned_ids)
    ),
    Graph.CommentDeleted: lambda event: CommentDeletedV1(goal_id=event.goal_id, comment_id=event.comment_id),
    Graph.ReactionAdded: _reaction(ReactionAddedV1),
    Graph.ReactionRemoved: _reaction(ReactionRemovedV1),
    Graph.KudosGiven: lambda event: KudosGivenV1(
        goal_id=event.goal_id, kudos_id=event.kudos_id, receiver_id=event.receiver_id, message=event.message
    ),
}


def goal_interaction_payload(domain_event: object) -> Payload | None:
    """Return the payload of a tag consent, comment, reaction or kudos event, or None for any other event."""
    build = _PAYLOAD_BUILDERS.get(type(domain_event))
    return None if build is None else build(domain_event)
