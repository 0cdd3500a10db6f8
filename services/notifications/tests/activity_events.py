"""Builders of the goal and social events the activity, nudge and privacy tests need, on top of conftest's EventFactory."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from spm_events.envelope import Envelope
from spm_events.schemas import (
    CheckInRecordedV1,
    CollaboratorLeftV1,
    CollaboratorUntaggedV1,
    CommentDeletedV1,
    CommentEditedV1,
    CommentPostedV1,
    CommunityCreatedV1,
    CommunityGoalLinkedV1,
    CommunityMemberJoinedV1,
    CommunityMemberLeftV1,
    GoalStatusChangedV1,
    KeyResultAddedV1,
    KudosGivenV1,
    ReactionAddedV1,
    TagAcceptedV1,
    TagDeclinedV1,
)

DAY = 24 * 60
# conftest.START: every builder counts minutes from the same instant.
START = datetime(2020, 3, 2, 9, 0, tzinfo=timezone.utc)


def at(minutes: int) -> datetime:
    return START + timedelta(minutes=minutes)


class ActivityEvents:
    """Event builders sharing one EventFactory, so each aggregate's versions keep counting up."""

    def __init__(self, events) -> None:  # type: ignore[no-untyped-def]
        self.events = events
        self.org_id = events.org_id

    def _goal_event(self, payload, goal_id: str, actor_id: str, minute: int) -> Envelope:  # type: ignore[no-untyped-def]
        return self.events._envelope(payload, goal_id, actor_id, at(minute))

    def _social(self, payload, goal_id: str, actor_id: str, minute: int) -> Envelope:  # type: ignore[no-untyped-def]
        return self.events._envelope(payload, f"social-{goal_id}", actor_id, at(minute))

    def _community(self, payload, community_id: str, actor_id: str, minute: int) -> Envelope:  # type: ignore[no-untyped-def]
        return self.events._envelope(payload, community_id, actor_id, at(minute))

    def key_result_added(self, goal_id: str, key_result_id: str, actor_id: str, minute: int) -> Envelope:
        payload = KeyResultAddedV1(
            goal_id=goal_id, key_result_id=key_result_id, title="Weekly active users", metric="number",
            start_value=0, target_value=100,
        )
        return self._goal_event(payload, goal_id, actor_id, minute)

    def check_in(
        self, goal_id: str, key_result_id: str, actor_id: str, minute: int, confidence: float | None = None
    ) -> Envelope:
        payload = CheckInRecordedV1(
            goal_id=goal_id, key_result_id=key_result_id, check_in_id=str(uuid.uuid4()), value=1, progress=0.1,
            confidence=confidence,
        )
        return self._goal_event(payload, goal_id, actor_id, minute)

    def status_changed(
        self, goal_id: str, status: str, previous: str, actor_id: str, minute: int, outcome: str | None = None
    ) -> Envelope:
        payload = GoalStatusChangedV1(goal_id=goal_id, status=status, previous_status=previous, outcome=outcome)
        return self._goal_event(payload, goal_id, actor_id, minute)

    def comment(
        self, goal_id: str, comment_id: str, actor_id: str, minute: int, mentioned: tuple[str, ...] = ()
    ) -> Envelope:
        payload = CommentPostedV1(goal_id=goal_id, comment_id=comment_id, body="Nice work", mentioned_ids=mentioned)
        return self._social(payload, goal_id, actor_id, minute)

    def comment_edited(
        self, goal_id: str, comment_id: str, actor_id: str, minute: int, mentioned: tuple[str, ...] = ()
    ) -> Envelope:
        payload = CommentEditedV1(goal_id=goal_id, comment_id=comment_id, body="Nice work!", mentioned_ids=mentioned)
        return self._social(payload, goal_id, actor_id, minute)

    def comment_deleted(self, goal_id: str, comment_id: str, actor_id: str, minute: int) -> Envelope:
        return self._social(CommentDeletedV1(goal_id=goal_id, comment_id=comment_id), goal_id, actor_id, minute)

    def reaction(self, goal_id: str, actor_id: str, minute: int) -> Envelope:
        payload = ReactionAddedV1(goal_id=goal_id, target_kind="goal", target_id=goal_id, reaction="celebrate")
        return self._social(payload, goal_id, actor_id, minute)

    def kudos(self, goal_id: str, receiver_id: str, actor_id: str, minute: int) -> Envelope:
        payload = KudosGivenV1(goal_id=goal_id, kudos_id=str(uuid.uuid4()), receiver_id=receiver_id, message="Thanks")
        return self._social(payload, goal_id, actor_id, minute)

    def tag_accepted(self, goal_id: str, person_id: str, minute: int) -> Envelope:
        return self._social(TagAcceptedV1(goal_id=goal_id, collaborator_id=person_id), goal_id, person_id, minute)

    def tag_declined(self, goal_id: str, person_id: str, minute: int) -> Envelope:
        return self._social(TagDeclinedV1(goal_id=goal_id, collaborator_id=person_id), goal_id, person_id, minute)

    def collaborator_left(self, goal_id: str, person_id: str, minute: int) -> Envelope:
        return self._social(CollaboratorLeftV1(goal_id=goal_id, collaborator_id=person_id), goal_id, person_id, minute)

    def untagged(self, goal_id: str, person_id: str, actor_id: str, minute: int) -> Envelope:
        payload = CollaboratorUntaggedV1(goal_id=goal_id, collaborator_id=person_id)
        return self._social(payload, goal_id, actor_id, minute)

    def community_created(self, community_id: str, owner_id: str, minute: int) -> Envelope:
        payload = CommunityCreatedV1(community_id=community_id, name="Guild", owner_id=owner_id)
        return self._community(payload, community_id, owner_id, minute)

    def joined(self, community_id: str, person_id: str, minute: int) -> Envelope:
        payload = CommunityMemberJoinedV1(community_id=community_id, member_id=person_id)
        return self._community(payload, community_id, person_id, minute)

    def left(self, community_id: str, person_id: str, minute: int) -> Envelope:
        payload = CommunityMemberLeftV1(community_id=community_id, member_id=person_id)
        return self._community(payload, community_id, person_id, minute)

    def linked(self, community_id: str, goal_id: str, actor_id: str, minute: int) -> Envelope:
        payload = CommunityGoalLinkedV1(community_id=community_id, goal_id=goal_id)
        return self._community(payload, community_id, actor_id, minute)
