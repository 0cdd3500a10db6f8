"""Request and response bodies of the goal interaction routes: tag consent, comments, reactions and kudos."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from spm_events.auth import PERSON_ID_PATTERN
from spm_events.schemas import ReactionKind, ReactionTarget
from spm_social.event_time import EventTime
from spm_social.goal_interactions import ReactionSummary
from spm_social.graph_rules import MAX_COMMENT_LENGTH, MAX_KUDOS_MESSAGE_LENGTH
from spm_social.graph_state import CollaboratorTag, Comment, CommentRevision, Kudos

# Ids of check-ins and other targets come from other services; only their shape is checked here.
TARGET_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$"


class CommandBody(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    occurred_at: EventTime | None = None


class PostCommentBody(CommandBody):
    body: str = Field(
        min_length=1,
        max_length=MAX_COMMENT_LENGTH,
        description="The text; each @handle must name an active person of the organisation's directory",
    )
    check_in_id: str | None = Field(
        default=None, pattern=TARGET_ID_PATTERN, description="Set to comment on one check-in of the goal"
    )


class EditCommentBody(CommandBody):
    body: str = Field(min_length=1, max_length=MAX_COMMENT_LENGTH)


class AddReactionBody(CommandBody):
    target_kind: ReactionTarget = "goal"
    target_id: str | None = Field(
        default=None,
        pattern=TARGET_ID_PATTERN,
        description="The check-in or comment id; for the goal itself leave it out or send the goal id",
    )
    reaction: ReactionKind


class GiveKudosBody(CommandBody):
    receiver_id: str = Field(
        pattern=rf"^{PERSON_ID_PATTERN.pattern}$", description="The person id of an active person, not yourself"
    )
    message: str = Field(min_length=1, max_length=MAX_KUDOS_MESSAGE_LENGTH)


class TagStateOut(BaseModel):
    goal_id: str
    collaborator_id: str
    state: str


class TagChangeOut(BaseModel):
    state: str
    actor_id: str
    occurred_at: datetime


class CollaboratorOut(BaseModel):
    person_id: str
    state: str = Field(description="pending, accepted, declined, left or untagged")
    tagged_by: str = Field(description="Who made the most recent tag")
    tagged_at: datetime
    changed_by: str
    changed_at: datetime
    history: list[TagChangeOut] = Field(description="Every change of the tag, oldest first")

    @classmethod
    def of(cls, tag: CollaboratorTag) -> CollaboratorOut:
        latest = tag.history[-1]
        return cls(
            person_id=tag.person_id,
            state=tag.state,
            tagged_by=tag.latest_tag.actor_id,
            tagged_at=tag.latest_tag.occurred_at,
            changed_by=latest.actor_id,
            changed_at=latest.occurred_at,
            history=[TagChangeOut(state=c.state, actor_id=c.actor_id, occurred_at=c.occurred_at) for c in tag.history],
        )


class CollaboratorsOut(BaseModel):
    goal_id: str
    collaborators: list[CollaboratorOut]


class CommentOut(BaseModel):
    comment_id: str
    goal_id: str
    author_id: str
    body: str
    check_in_id: str | None
    mentioned_ids: list[str]
    posted_at: datetime
    edited_at: datetime | None

    @classmethod
    def of(cls, goal_id: str, comment: Comment) -> CommentOut:
        return cls(
            comment_id=comment.comment_id,
            goal_id=goal_id,
            author_id=comment.author_id,
            body=comment.current.body,
            check_in_id=comment.check_in_id,
            mentioned_ids=list(comment.current.mentioned_ids),
            posted_at=comment.posted_at,
            edited_at=comment.edited_at,
        )


class CommentsPageOut(BaseModel):
    goal_id: str
    comments: list[CommentOut]
    next_cursor: str | None = Field(description="Pass as `cursor` to read the next page; null on the last page")


class CommentRevisionOut(BaseModel):
    body: str
    mentioned_ids: list[str]
    occurred_at: datetime

    @classmethod
    def of(cls, revision: CommentRevision) -> CommentRevisionOut:
        return cls(body=revision.body, mentioned_ids=list(revision.mentioned_ids), occurred_at=revision.occurred_at)


class CommentHistoryOut(BaseModel):
    comment_id: str
    goal_id: str
    author_id: str
    revisions: list[CommentRevisionOut] = Field(description="The posted text first, then each edit")


class ReactionOut(BaseModel):
    goal_id: str
    person_id: str
    target_kind: str
    target_id: str
    reaction: str
    reacted: bool = Field(description="Whether the person has this reaction now")


class ReactionSummaryOut(BaseModel):
    target_kind: str
    target_id: str
    counts: dict[str, int]
    mine: list[str] = Field(description="The reader's own reactions to the target")

    @classmethod
    def of(cls, summary: ReactionSummary) -> ReactionSummaryOut:
        return cls(
            target_kind=summary.target_kind, target_id=summary.target_id, counts=summary.counts, mine=summary.mine
        )


class ReactionsOut(BaseModel):
    goal_id: str
    targets: list[ReactionSummaryOut]


class KudosOut(BaseModel):
    kudos_id: str
    goal_id: str
    giver_id: str
    receiver_id: str
    message: str
    given_at: datetime
    day: date = Field(description="The UTC day of given_at, which the one-kudos-per-day limit counts")

    @classmethod
    def of(cls, goal_id: str, kudos: Kudos) -> KudosOut:
        return cls(
            kudos_id=kudos.kudos_id,
            goal_id=goal_id,
            giver_id=kudos.giver_id,
            receiver_id=kudos.receiver_id,
            message=kudos.message,
            given_at=kudos.occurred_at,
            day=kudos.day,
        )


class KudosPageOut(BaseModel):
    goal_id: str
    kudos: list[KudosOut]
    next_cursor: str | None = Field(description="Pass as `cursor` to read the next page; null on the last page")
