"""Appliers of spm.social.v1 events: the read-model writes of each event type."""

from __future__ import annotations

from typing import Any, Callable

from sqlalchemy import update

from spm_events.schemas import (
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
    CommunityMemberJoinedV1,
    CommunityMemberLeftV1,
    CommunityUnfollowedV1,
    GoalFollowedV1,
    GoalUnfollowedV1,
    KudosGivenV1,
    Payload,
    PersonFollowedV1,
    PersonUnfollowedV1,
    ReactionAddedV1,
    ReactionRemovedV1,
    TagAcceptedV1,
    TagDeclinedV1,
)
from spm_social.activities import republish_for_link
from spm_social.community_links import record_link_change
from spm_social.fanout import (
    COLLABORATOR,
    COLLABORATOR_TAGGED,
    COMMENT_POSTED,
    COMMUNITY_CHANNEL,
    COMMUNITY_GOAL_LINKED,
    COMMUNITY_MEMBER,
    FOLLOWED_COMMUNITY,
    FOLLOWED_GOAL,
    FOLLOWED_PERSON,
    GOAL_CHANNEL,
    GOAL_FOLLOWED,
    KUDOS_GIVEN,
    MEMBER_JOINED,
    PERSON_CHANNEL,
    TAG_ACCEPTED,
    Channel,
)
from spm_social.feedwriter import FeedWriter
from spm_social.interaction_facts import (
    COMMENT_TARGET,
    hide_deleted_comment,
    record_comment_text,
    record_reaction,
)
from spm_social.readmodel import insert_ignoring_duplicates
from spm_social.subscriptions import Member, has_open_interval
from spm_social.visibility import record_collaborator

KUDOS_TARGET = "kudos"


def apply_goal_followed(writer: FeedWriter, payload: GoalFollowedV1) -> None:
    member = Member(Channel(GOAL_CHANNEL, payload.goal_id), FOLLOWED_GOAL, payload.follower_id)
    writer.change_membership(member, starts=True)
    writer.add_activity(GOAL_FOLLOWED, goal_id=payload.goal_id, subject_id=payload.follower_id)


def apply_goal_unfollowed(writer: FeedWriter, payload: GoalUnfollowedV1) -> None:
    member = Member(Channel(GOAL_CHANNEL, payload.goal_id), FOLLOWED_GOAL, payload.follower_id)
    writer.change_membership(member, starts=False)


def apply_collaborator_tagged(writer: FeedWriter, payload: CollaboratorTaggedV1) -> None:
    _change_collaboration(writer, payload.goal_id, payload.collaborator_id, starts=True)
    writer.add_activity(
        COLLABORATOR_TAGGED,
        goal_id=payload.goal_id,
        subject_id=payload.collaborator_id,
        direct_recipient_id=payload.collaborator_id,
    )


def apply_tag_accepted(writer: FeedWriter, payload: TagAcceptedV1) -> None:
    # Accepting keeps the tag as it is; only the activity is new.
    writer.add_activity(TAG_ACCEPTED, goal_id=payload.goal_id, subject_id=payload.collaborator_id)


def apply_collaboration_ended(
    writer: FeedWriter, payload: TagDeclinedV1 | CollaboratorLeftV1 | CollaboratorUntaggedV1
) -> None:
    _change_collaboration(writer, payload.goal_id, payload.collaborator_id, starts=False)


def _change_collaboration(writer: FeedWriter, goal_id: str, person_id: str, starts: bool) -> None:
    member = Member(Channel(GOAL_CHANNEL, goal_id), COLLABORATOR, person_id)
    writer.change_membership(member, starts)
    is_insider = has_open_interval(writer.connection, writer.tables, writer.org_id, member)
    record_collaborator(writer.connection, writer.tables, writer.org_id, goal_id, person_id, is_insider)


def apply_comment_posted(writer: FeedWriter, payload: CommentPostedV1) -> None:
    record_comment_text(
        writer.connection,
        writer.tables,
        writer.envelope,
        payload.goal_id,
        payload.comment_id,
        payload.body,
        posted=True,
        check_in_id=payload.check_in_id,
    )
    writer.add_activity(
        COMMENT_POSTED, goal_id=payload.goal_id, target_kind=COMMENT_TARGET, target_id=payload.comment_id
    )
    hide_deleted_comment(writer.connection, writer.tables, writer.org_id, payload.comment_id)
    writer.refresh_reactions(COMMENT_TARGET, payload.comment_id)


def apply_comment_edited(writer: FeedWriter, payload: CommentEditedV1) -> None:
    # The text is joined in at read time, so no feed item changes.
    record_comment_text(
        writer.connection, writer.tables, writer.envelope, payload.goal_id, payload.comment_id, payload.body
    )


def apply_comment_deleted(writer: FeedWriter, payload: CommentDeletedV1) -> None:
    record_comment_text(writer.connection, writer.tables, writer.envelope, payload.goal_id, payload.comment_id, None)
    hide_deleted_comment(writer.connection, writer.tables, writer.org_id, payload.comment_id)


def apply_reaction_changed(writer: FeedWriter, payload: ReactionAddedV1 | ReactionRemovedV1) -> None:
    record_reaction(
        writer.connection,
        writer.tables,
        writer.envelope,
        payload.goal_id,
        payload.target_kind,
        payload.target_id,
        payload.reaction,
        active=isinstance(payload, ReactionAddedV1),
    )
    writer.refresh_reactions(payload.target_kind, payload.target_id)


def apply_kudos_given(writer: FeedWriter, payload: KudosGivenV1) -> None:
    writer.add_activity(
        KUDOS_GIVEN,
        goal_id=payload.goal_id,
        subject_id=payload.receiver_id,
        direct_recipient_id=payload.receiver_id,
        target_kind=KUDOS_TARGET,
        target_id=payload.kudos_id,
        message=payload.message,
    )


def apply_person_follow_changed(writer: FeedWriter, payload: PersonFollowedV1 | PersonUnfollowedV1) -> None:
    starts = isinstance(payload, PersonFollowedV1)
    member = Member(Channel(PERSON_CHANNEL, payload.person_id), FOLLOWED_PERSON, payload.follower_id)
    writer.change_membership(member, starts)


def apply_community_created(writer: FeedWriter, payload: CommunityCreatedV1) -> None:
    _record_community_name(writer, payload.community_id, payload.name, created=True)
    # The creator is the community's first member; no separate join event is published for them.
    writer.change_membership(
        Member(Channel(COMMUNITY_CHANNEL, payload.community_id), COMMUNITY_MEMBER, payload.owner_id), starts=True
    )


def apply_community_described(writer: FeedWriter, payload: CommunityDescribedV1) -> None:
    _record_community_name(writer, payload.community_id, payload.name, created=False)


def _record_community_name(writer: FeedWriter, community_id: str, name: str, created: bool) -> None:
    communities = writer.tables.communities
    key = (communities.c.org_id == writer.org_id, communities.c.community_id == community_id)
    insert_ignoring_duplicates(
        writer.connection,
        communities,
        {"org_id": writer.org_id, "community_id": community_id, "created": False, "name": None, "name_version": 0},
    )
    if created:
        writer.connection.execute(update(communities).where(*key).values(created=True))
    version = writer.envelope.aggregateversion
    writer.connection.execute(
        update(communities).where(*key, communities.c.name_version < version).values(name=name, name_version=version)
    )


def apply_member_joined(writer: FeedWriter, payload: CommunityMemberJoinedV1) -> None:
    member = Member(Channel(COMMUNITY_CHANNEL, payload.community_id), COMMUNITY_MEMBER, payload.member_id)
    writer.change_membership(member, starts=True)
    writer.add_activity(MEMBER_JOINED, community_id=payload.community_id, subject_id=payload.member_id)


def apply_member_left(writer: FeedWriter, payload: CommunityMemberLeftV1) -> None:
    member = Member(Channel(COMMUNITY_CHANNEL, payload.community_id), COMMUNITY_MEMBER, payload.member_id)
    writer.change_membership(member, starts=False)


def apply_community_follow_changed(
    writer: FeedWriter, payload: CommunityFollowedV1 | CommunityUnfollowedV1
) -> None:
    starts = isinstance(payload, CommunityFollowedV1)
    member = Member(Channel(COMMUNITY_CHANNEL, payload.community_id), FOLLOWED_COMMUNITY, payload.follower_id)
    writer.change_membership(member, starts)


def apply_goal_link_changed(writer: FeedWriter, payload: CommunityGoalLinkedV1 | CommunityGoalUnlinkedV1) -> None:
    starts = isinstance(payload, CommunityGoalLinkedV1)
    changed = record_link_change(
        writer.connection, writer.tables, writer.envelope, payload.community_id, payload.goal_id, starts
    )
    if changed:
        touched = republish_for_link(
            writer.connection, writer.tables, writer.org_id, payload.community_id, payload.goal_id
        )
        writer.reconcile(touched)
    if starts:
        writer.add_activity(COMMUNITY_GOAL_LINKED, goal_id=payload.goal_id, community_id=payload.community_id)


SOCIAL_APPLIERS: dict[type[Payload], Callable[[FeedWriter, Any], None]] = {
    GoalFollowedV1: apply_goal_followed,
    GoalUnfollowedV1: apply_goal_unfollowed,
    CollaboratorTaggedV1: apply_collaborator_tagged,
    TagAcceptedV1: apply_tag_accepted,
    TagDeclinedV1: apply_collaboration_ended,
    CollaboratorLeftV1: apply_collaboration_ended,
    CollaboratorUntaggedV1: apply_collaboration_ended,
    CommentPostedV1: apply_comment_posted,
    CommentEditedV1: apply_comment_edited,
    CommentDeletedV1: apply_comment_deleted,
    ReactionAddedV1: apply_reaction_changed,
    ReactionRemovedV1: apply_reaction_changed,
    KudosGivenV1: apply_kudos_given,
    PersonFollowedV1: apply_person_follow_changed,
    PersonUnfollowedV1: apply_person_follow_changed,
    CommunityCreatedV1: apply_community_created,
    CommunityDescribedV1: apply_community_described,
    CommunityMemberJoinedV1: apply_member_joined,
    CommunityMemberLeftV1: apply_member_left,
    CommunityFollowedV1: apply_community_follow_changed,
    CommunityUnfollowedV1: apply_community_follow_changed,
    CommunityGoalLinkedV1: apply_goal_link_changed,
    CommunityGoalUnlinkedV1: apply_goal_link_changed,
}
