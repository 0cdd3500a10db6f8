"""Maps the social graph's domain events to the published spm.social.v1 integration events."""

from __future__ import annotations

import logging

from eventsourcing.domain import DomainEventProtocol

from spm_events.envelope import Envelope
from spm_events.registry import new_envelope
from spm_events.relay import NotificationBatch, ReadNotifications
from spm_events.schemas import CollaboratorTaggedV1, GoalFollowedV1, GoalUnfollowedV1, Payload
from spm_social.application import SocialApplication
from spm_social.domain import GoalSocialGraph
from spm_social.interaction_events import goal_interaction_payload
from spm_social.network_events import is_network_event, network_integration_payload

logger = logging.getLogger(__name__)

RELAY_NAME = "social-relay"


class UnmappedDomainEventError(TypeError):
    """Raised for a stored domain event with no integration event mapping, so the relay stops loudly."""


def integration_payload(domain_event: object) -> Payload | None:
    """Return the integration payload of a domain event, or None for an event that is not published."""
    if isinstance(domain_event, GoalSocialGraph.Started):
        return None
    if is_network_event(domain_event):
        return network_integration_payload(domain_event)
    interaction_payload = goal_interaction_payload(domain_event)
    if interaction_payload is not None:
        return interaction_payload
    if isinstance(domain_event, GoalSocialGraph.GoalFollowed):
        return GoalFollowedV1(goal_id=domain_event.goal_id, follower_id=domain_event.follower_id)
    if isinstance(domain_event, GoalSocialGraph.GoalUnfollowed):
        return GoalUnfollowedV1(goal_id=domain_event.goal_id, follower_id=domain_event.follower_id)
    if isinstance(domain_event, GoalSocialGraph.CollaboratorTagged):
        return CollaboratorTaggedV1(goal_id=domain_event.goal_id, collaborator_id=domain_event.collaborator_id)
    raise UnmappedDomainEventError(f"no integration event for domain event {type(domain_event).__qualname__}")


def to_envelope(domain_event: DomainEventProtocol) -> Envelope | None:
    """Wrap a published domain event in its envelope, stamped with the event time it carries."""
    payload = integration_payload(domain_event)
    if payload is None:
        return None
    return new_envelope(
        payload,
        subject=str(domain_event.originator_id),
        org_id=domain_event.org_id,  # type: ignore[attr-defined]
        actor_id=domain_event.actor_id,  # type: ignore[attr-defined]
        aggregate_version=domain_event.originator_version,
        time=domain_event.occurred_at,  # type: ignore[attr-defined]
    )


def notification_reader(social: SocialApplication) -> ReadNotifications:
    """Build the ``read_notifications`` callable the shared Relay polls."""
    section_size = social.notification_log.section_size

    def read_notifications(after_position: int, limit: int) -> NotificationBatch:
        notifications = social.notification_log.select(
            start=after_position, limit=min(limit, section_size), inclusive_of_start=False
        )
        return [
            (notification.id, to_envelope(social.mapper.to_domain_event(notification)))
            for notification in notifications
        ]

    return read_notifications
