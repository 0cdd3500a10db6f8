"""Applies goal and social events to the inbox read model, inside the transaction the worker opens."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any, Callable

from sqlalchemy import Connection, and_, or_, select, true, update

from spm_events.envelope import Envelope
from spm_events.registry import EVENT_TYPES, parse_payload
from spm_events.schemas import (
    CheckInRecordedV1,
    CollaboratorLeftV1,
    CollaboratorTaggedV1,
    CollaboratorUntaggedV1,
    CommentDeletedV1,
    CommentEditedV1,
    CommentPostedV1,
    CommunityCreatedV1,
    CommunityGoalLinkedV1,
    CommunityMemberJoinedV1,
    CommunityMemberLeftV1,
    GoalCreatedV1,
    GoalFollowedV1,
    GoalOwnersChangedV1,
    GoalStatusChangedV1,
    GoalUnfollowedV1,
    GoalVisibilityChangedV1,
    KeyResultAddedV1,
    KudosGivenV1,
    ReactionAddedV1,
    TagAcceptedV1,
    TagDeclinedV1,
)

from spm_notifications.audience import GoalAudiences
from spm_notifications.fanout import ActivityFanout, write_notifications
from spm_notifications.nudges import ACTIVE, Nudges
from spm_notifications.rules import (
    ACCEPTED_CHANGE,
    CHECK_IN_ACTIVITY,
    COMMENT_ACTIVITY,
    COMMUNITY_LINK_ACTIVITY,
    FOLLOW_ACTIVITY,
    KUDOS_ACTIVITY,
    MENTION_ACTIVITY,
    REACTION_ACTIVITY,
    STATUS_ACTIVITY,
    TAGGED,
    TAGGED_CHANGE,
    Activity,
    CollaboratorChange,
    KeyResultCheckIn,
    current_collaborators,
    tagged_recipients,
)
from spm_notifications.tables import InboxTables, inbox_row, insert_ignoring_duplicates

logger = logging.getLogger(__name__)

# The change a tag event records for its person (rules.CollaboratorChange).
_TAG_CHANGES = {
    CollaboratorTaggedV1: TAGGED_CHANGE,
    TagAcceptedV1: ACCEPTED_CHANGE,
    TagDeclinedV1: "declined",
    CollaboratorLeftV1: "left",
    CollaboratorUntaggedV1: "untagged",
}


class InboxProjection:
    """The handler given to ``PositionedReadModel.apply``: one event in, inbox rows out."""

    def __init__(self, tables: InboxTables, clock: Callable[[], datetime] | None = None) -> None:
        self.tables = tables
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.audiences = GoalAudiences(tables)
        self.fanout = ActivityFanout(tables, self.audiences, self.clock)
        self.nudges = Nudges(tables, self.fanout, self.clock)
        self._appliers: dict[type, Callable[[Connection, Envelope, Any], None]] = {
            GoalCreatedV1: self._apply_goal_created,
            GoalOwnersChangedV1: self._apply_owners_changed,
            GoalVisibilityChangedV1: self._apply_visibility_changed,
            GoalStatusChangedV1: self._apply_status_changed,
            KeyResultAddedV1: self._apply_key_result_added,
            CheckInRecordedV1: self._apply_check_in_recorded,
            GoalFollowedV1: self._apply_follow_change,
            GoalUnfollowedV1: self._apply_follow_change,
            CollaboratorTaggedV1: self._apply_tag_change,
            TagAcceptedV1: self._apply_tag_change,
            TagDeclinedV1: self._apply_tag_change,
            CollaboratorLeftV1: self._apply_tag_change,
            CollaboratorUntaggedV1: self._apply_tag_change,
            CommentPostedV1: self._apply_comment,
            CommentEditedV1: self._apply_comment,
            CommentDeletedV1: self._apply_comment_deleted,
            ReactionAddedV1: self._apply_reaction,
            KudosGivenV1: self._apply_kudos,
            CommunityCreatedV1: self._apply_membership,
            CommunityMemberJoinedV1: self._apply_membership,
            CommunityMemberLeftV1: self._apply_membership,
            CommunityGoalLinkedV1: self._apply_community_link,
        }
        self._handled_types = {name for name, event_type in EVENT_TYPES.items() if event_type.model in self._appliers}

    def __call__(self, connection: Connection, envelope: Envelope) -> None:
        # Other event types, including ones added to the topics later, create no notification, but
        # their event time still moves the organisation's clock, which fires due nudges.
        if envelope.type in self._handled_types:
            payload = parse_payload(envelope)
            self._appliers[type(payload)](connection, envelope, payload)
        self.nudges.advance(connection, envelope.orgid, envelope.time)

    # --- goal events ---

    def _apply_goal_created(self, connection: Connection, envelope: Envelope, payload: GoalCreatedV1) -> None:
        goals, inbox = self.tables.goals, self.tables.inbox
        org_id, goal_id, version, time = envelope.orgid, payload.goal_id, envelope.aggregateversion, envelope.time
        insert_ignoring_duplicates(
            connection,
            goals,
            [{"org_id": org_id, "goal_id": goal_id, "title": payload.title, "owner_id": payload.owner_id}],
        )
        connection.execute(
            update(inbox)
            .where(inbox.c.org_id == org_id, inbox.c.goal_id == goal_id, inbox.c.goal_title.is_(None))
            .values(goal_title=payload.title)
        )
        self._record_status(connection, org_id, goal_id, version, payload.status or ACTIVE, time)
        self.audiences.record_teams(connection, org_id, goal_id, {payload.team, *payload.contributing_teams})
        self.audiences.record_visibility(connection, org_id, goal_id, version, payload.visibility, time)
        self.audiences.record_owners(connection, org_id, goal_id, version, payload.owner_id, payload.co_owner_ids, time)
        self._reconcile_after_goal_fact(connection, org_id, goal_id, version)
        self.nudges.rejudge(connection, org_id, goal_id, time)

    def _apply_owners_changed(self, connection: Connection, envelope: Envelope, payload: GoalOwnersChangedV1) -> None:
        org_id, goal_id, version = envelope.orgid, payload.goal_id, envelope.aggregateversion
        self.audiences.record_owners(
            connection, org_id, goal_id, version, payload.owner_id, payload.co_owner_ids, envelope.time
        )
        logger.info("goal owners changed goal_id=%s event_id=%s co_owners=%s",
                    goal_id, envelope.id, len(payload.co_owner_ids))
        self._reconcile_after_goal_fact(connection, org_id, goal_id, version)
        self.nudges.rejudge(connection, org_id, goal_id, envelope.time)

    def _apply_visibility_changed(
        self, connection: Connection, envelope: Envelope, payload: GoalVisibilityChangedV1
    ) -> None:
        org_id, goal_id, version = envelope.orgid, payload.goal_id, envelope.aggregateversion
        self.audiences.record_visibility(connection, org_id, goal_id, version, payload.visibility, envelope.time)
        logger.info("goal visibility changed goal_id=%s event_id=%s visibility=%s",
                    goal_id, envelope.id, payload.visibility)
        self._reconcile_after_goal_fact(connection, org_id, goal_id, version)

    def _reconcile_after_goal_fact(self, connection: Connection, org_id: str, goal_id: str, version: int) -> None:
        # A goal's events share one partition, so goal activities of a later version are normally read
        # later and this selects none of them. Social activities are judged by event time against
        # every goal fact, so each new fact may change them.
        activities = self.tables.activity.activities
        self.fanout.reconcile(
            connection, org_id, goal_id,
            or_(activities.c.goal_version > version, activities.c.goal_version.is_(None)),
        )

    def _apply_status_changed(self, connection: Connection, envelope: Envelope, payload: GoalStatusChangedV1) -> None:
        org_id, goal_id = envelope.orgid, payload.goal_id
        self._record_status(connection, org_id, goal_id, envelope.aggregateversion, payload.status, envelope.time)
        self.nudges.rejudge(connection, org_id, goal_id, envelope.time)
        self.fanout.record(connection, org_id, Activity(
            event_id=envelope.id,
            source=STATUS_ACTIVITY,
            goal_id=goal_id,
            actor_id=envelope.actorid,
            occurred_at=envelope.time,
            goal_version=envelope.aggregateversion,
            detail=payload.status,
        ))

    def _record_status(
        self, connection: Connection, org_id: str, goal_id: str, version: int, status: str, occurred_at: datetime
    ) -> None:
        insert_ignoring_duplicates(connection, self.tables.activity.goal_status_changes, [{
            "org_id": org_id, "goal_id": goal_id, "aggregate_version": version, "status": status,
            "occurred_at": occurred_at,
        }])

    def _apply_key_result_added(self, connection: Connection, envelope: Envelope, payload: KeyResultAddedV1) -> None:
        added = KeyResultCheckIn(envelope.id, envelope.actorid, envelope.time, envelope.aggregateversion, None)
        self.nudges.key_result_added(connection, envelope.orgid, payload.goal_id, payload.key_result_id, added)

    def _apply_check_in_recorded(
        self, connection: Connection, envelope: Envelope, payload: CheckInRecordedV1
    ) -> None:
        self.fanout.record(connection, envelope.orgid, Activity(
            event_id=envelope.id,
            source=CHECK_IN_ACTIVITY,
            goal_id=payload.goal_id,
            actor_id=envelope.actorid,
            occurred_at=envelope.time,
            goal_version=envelope.aggregateversion,
        ))
        check_in = KeyResultCheckIn(
            envelope.id, envelope.actorid, envelope.time, envelope.aggregateversion, payload.confidence
        )
        self.nudges.check_in_recorded(connection, envelope.orgid, payload.goal_id, payload.key_result_id, check_in)

    # --- social events ---

    def _apply_follow_change(
        self, connection: Connection, envelope: Envelope, payload: GoalFollowedV1 | GoalUnfollowedV1
    ) -> None:
        insert_ignoring_duplicates(
            connection,
            self.tables.follow_changes,
            [{
                "event_id": envelope.id,
                "org_id": envelope.orgid,
                "goal_id": payload.goal_id,
                "person_id": payload.follower_id,
                "following": isinstance(payload, GoalFollowedV1),
                "occurred_at": envelope.time,
                "aggregate_version": envelope.aggregateversion,
            }],
        )
        # A follow change travels on the social topic and can be read after activities that happened
        # later in event time. Only activities at or after the change's time can be affected.
        activities = self.tables.activity.activities
        self.fanout.reconcile(
            connection, envelope.orgid, payload.goal_id, activities.c.occurred_at >= envelope.time,
            person_id=payload.follower_id,
        )
        if isinstance(payload, GoalFollowedV1):
            self._record_social(connection, envelope, payload.goal_id, FOLLOW_ACTIVITY)

    def _apply_tag_change(self, connection: Connection, envelope: Envelope, payload: Any) -> None:
        org_id, goal_id, person_id = envelope.orgid, payload.goal_id, payload.collaborator_id
        changes = self.tables.activity.collaborator_changes
        insert_ignoring_duplicates(connection, changes, [{
            "event_id": envelope.id, "org_id": org_id, "goal_id": goal_id, "person_id": person_id,
            "actor_id": envelope.actorid, "change": _TAG_CHANGES[type(payload)],
            "occurred_at": envelope.time, "aggregate_version": envelope.aggregateversion,
        }])
        history = [
            CollaboratorChange(row.event_id, row.person_id, row.change, row.occurred_at, row.aggregate_version)
            for row in connection.execute(
                select(changes).where(changes.c.org_id == org_id, changes.c.goal_id == goal_id,
                                      changes.c.person_id == person_id)
            )
        ]
        self.audiences.set_collaborator(connection, org_id, goal_id, person_id, person_id in current_collaborators(history))
        if isinstance(payload, CollaboratorTaggedV1):
            self._notify(connection, envelope, goal_id, TAGGED, tagged_recipients(person_id, envelope.actorid))
        # A collaborator is an insider, who hears of activities while the goal is private. One who
        # declined, left or was untagged no longer does.
        self.fanout.reconcile(connection, org_id, goal_id, true(), person_id=person_id)
        self.nudges.tag_changed(connection, org_id, goal_id, person_id)

    def _apply_comment(
        self, connection: Connection, envelope: Envelope, payload: CommentPostedV1 | CommentEditedV1
    ) -> None:
        mentions = self.tables.activity.comment_mentions
        org_id = envelope.orgid
        already = set(connection.execute(
            select(mentions.c.person_id).where(mentions.c.org_id == org_id, mentions.c.comment_id == payload.comment_id)
        ).scalars())
        mentioned = set(payload.mentioned_ids)
        insert_ignoring_duplicates(connection, mentions, [
            {"org_id": org_id, "comment_id": payload.comment_id, "person_id": person} for person in sorted(mentioned)
        ])
        # An edit notifies only the people it mentions for the first time, because the owners were notified of the comment.
        if isinstance(payload, CommentEditedV1):
            if mentioned - already:
                self._record_social(connection, envelope, payload.goal_id, MENTION_ACTIVITY,
                                    people=frozenset(mentioned - already), ref_id=payload.comment_id)
            return
        self._record_social(connection, envelope, payload.goal_id, COMMENT_ACTIVITY,
                            people=frozenset(mentioned), ref_id=payload.comment_id)

    def _apply_comment_deleted(self, connection: Connection, envelope: Envelope, payload: CommentDeletedV1) -> None:
        activities = self.tables.activity.activities
        event_ids = connection.execute(
            select(activities.c.event_id).where(
                activities.c.org_id == envelope.orgid,
                activities.c.ref_id == payload.comment_id,
                activities.c.source.in_((COMMENT_ACTIVITY, MENTION_ACTIVITY)),
            )
        ).scalars()
        self.fanout.withdraw(connection, envelope.orgid, event_ids)

    def _apply_reaction(self, connection: Connection, envelope: Envelope, payload: ReactionAddedV1) -> None:
        self._record_social(connection, envelope, payload.goal_id, REACTION_ACTIVITY)

    def _apply_kudos(self, connection: Connection, envelope: Envelope, payload: KudosGivenV1) -> None:
        self._record_social(connection, envelope, payload.goal_id, KUDOS_ACTIVITY, people=frozenset({payload.receiver_id}))

    def _apply_membership(
        self,
        connection: Connection,
        envelope: Envelope,
        payload: CommunityCreatedV1 | CommunityMemberJoinedV1 | CommunityMemberLeftV1,
    ) -> None:
        if isinstance(payload, CommunityCreatedV1):
            person_id, member = payload.owner_id, True
        else:
            person_id, member = payload.member_id, isinstance(payload, CommunityMemberJoinedV1)
        org_id, community_id = envelope.orgid, payload.community_id
        insert_ignoring_duplicates(connection, self.tables.activity.member_changes, [{
            "event_id": envelope.id, "org_id": org_id, "community_id": community_id, "person_id": person_id,
            "member": member, "occurred_at": envelope.time, "aggregate_version": envelope.aggregateversion,
        }])
        # Links of the community's goals at or after this change may now reach this person, or no longer.
        activities = self.tables.activity.activities
        linked = and_(activities.c.community_id == community_id, activities.c.occurred_at >= envelope.time)
        goal_ids = connection.execute(
            select(activities.c.goal_id).distinct().where(activities.c.org_id == org_id, linked)
        ).scalars().all()
        for goal_id in sorted(goal_ids):
            self.fanout.reconcile(connection, org_id, goal_id, linked, person_id=person_id)

    def _apply_community_link(self, connection: Connection, envelope: Envelope, payload: CommunityGoalLinkedV1) -> None:
        self._record_social(connection, envelope, payload.goal_id, COMMUNITY_LINK_ACTIVITY,
                            community_id=payload.community_id)

    def _record_social(
        self,
        connection: Connection,
        envelope: Envelope,
        goal_id: str,
        source: str,
        people: frozenset[str] = frozenset(),
        community_id: str | None = None,
        ref_id: str | None = None,
    ) -> None:
        activity = Activity(
            event_id=envelope.id,
            source=source,
            goal_id=goal_id,
            actor_id=envelope.actorid,
            occurred_at=envelope.time,
            people=people,
            community_id=community_id,
        )
        self.fanout.record(connection, envelope.orgid, activity, ref_id=ref_id)

    def _notify(self, connection: Connection, envelope: Envelope, goal_id: str, kind: str, recipients: set[str]) -> None:
        if not recipients:
            return
        title = self.fanout.goal_title(connection, envelope.orgid, goal_id)
        rows = [
            inbox_row(
                org_id=envelope.orgid,
                recipient_id=recipient,
                kind=kind,
                goal_id=goal_id,
                goal_title=title,
                actor_id=envelope.actorid,
                event_id=envelope.id,
                occurred_at=envelope.time,
                created_at=self.clock(),
            )
            for recipient in sorted(recipients)
        ]
        write_notifications(connection, self.tables, rows)
        logger.debug("notified kind=%s goal_id=%s event_id=%s recipients=%s", kind, goal_id, envelope.id, len(rows))
