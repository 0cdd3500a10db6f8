"""The social graph of one goal: followers, collaborator tags with consent, comments, reactions and kudos."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from spm_social.graph_rules import (
    MAX_COMMENT_LENGTH,
    MAX_KUDOS_MESSAGE_LENGTH,
    ActionNotAllowedError,
    CommentNotFoundError,
    GraphConflictError,
    SocialGraphError,
    check_event_time,
    check_mentions,
    check_not_before,
    check_text,
)
from spm_social.graph_state import (
    ACCEPTED,
    DECLINED,
    LEFT,
    PENDING,
    REACTION_KINDS,
    REACTION_TARGETS,
    UNTAGGED,
    CollaboratorTag,
    Comment,
    CommentRevision,
    Kudos,
    Reaction,
    TagChange,
)

# Graph ids are derived from the organisation and goal, so each goal has exactly one graph and
# the first follow of a goal never needs a lookup to find it.
GRAPH_ID_NAMESPACE = UUID("3c1f0b7e-2d4a-5e8b-9f60-7a1d2c3b4e5f")


def graph_id_for(org_id: str, goal_id: str) -> UUID:
    """Return the id of the social graph of one goal of one organisation."""
    return uuid5(GRAPH_ID_NAMESPACE, f"{org_id}/{goal_id}")


class GoalSocialGraph(Aggregate):
    """Followers, collaborator tags, comments, reactions and kudos of one goal.

    Each change is an event that carries its event time and actor.
    """

    @staticmethod
    def create_id(org_id: str, goal_id: str) -> UUID:
        return graph_id_for(org_id, goal_id)

    @event("Started")
    def __init__(self, org_id: str, goal_id: str) -> None:
        self.org_id = org_id
        self.goal_id = goal_id
        self.followers: set[str] = set()
        self.tags: dict[str, CollaboratorTag] = {}
        self.comments: dict[str, Comment] = {}
        self.reactions: set[Reaction] = set()
        self.kudos: list[Kudos] = []

    class GoalFollowed(Aggregate.Event):
        org_id: str
        goal_id: str
        follower_id: str
        actor_id: str
        occurred_at: datetime

        def apply(self, graph: GoalSocialGraph) -> None:
            graph.followers.add(self.follower_id)

    class GoalUnfollowed(Aggregate.Event):
        org_id: str
        goal_id: str
        follower_id: str
        actor_id: str
        occurred_at: datetime

        def apply(self, graph: GoalSocialGraph) -> None:
            graph.followers.discard(self.follower_id)

    class TagChanged(Aggregate.Event):
        """Base of the events that move a person's tag to ``tag_state``; it is never recorded itself."""

        org_id: str
        goal_id: str
        collaborator_id: str
        actor_id: str
        occurred_at: datetime
        tag_state = ""

        def apply(self, graph: GoalSocialGraph) -> None:
            graph.record_tag_change(self.collaborator_id, self.tag_state, self.actor_id, self.occurred_at)

    class CollaboratorTagged(TagChanged):
        tag_state = PENDING

    class TagAccepted(TagChanged):
        tag_state = ACCEPTED

    class TagDeclined(TagChanged):
        tag_state = DECLINED

    class CollaboratorLeft(TagChanged):
        tag_state = LEFT

    class CollaboratorUntagged(TagChanged):
        tag_state = UNTAGGED

    class CommentPosted(Aggregate.Event):
        org_id: str
        goal_id: str
        comment_id: str
        check_in_id: str | None
        body: str
        mentioned_ids: list[str]
        actor_id: str
        occurred_at: datetime

        def apply(self, graph: GoalSocialGraph) -> None:
            revision = CommentRevision(self.body, tuple(self.mentioned_ids), self.occurred_at)
            graph.comments[self.comment_id] = Comment(
                self.comment_id, self.actor_id, self.check_in_id, self.occurred_at, [revision]
            )

    class CommentEdited(Aggregate.Event):
        org_id: str
        goal_id: str
        comment_id: str
        body: str
        mentioned_ids: list[str]
        actor_id: str
        occurred_at: datetime

        def apply(self, graph: GoalSocialGraph) -> None:
            revision = CommentRevision(self.body, tuple(self.mentioned_ids), self.occurred_at)
            graph.comments[self.comment_id].revisions.append(revision)

    class CommentDeleted(Aggregate.Event):
        org_id: str
        goal_id: str
        comment_id: str
        actor_id: str
        occurred_at: datetime

        def apply(self, graph: GoalSocialGraph) -> None:
            comment = graph.comments[self.comment_id]
            comment.deleted_by = self.actor_id
            comment.deleted_at = self.occurred_at

    class ReactionChanged(Aggregate.Event):
        """Base of the reaction events; it is never recorded itself."""

        org_id: str
        goal_id: str
        target_kind: str
        target_id: str
        reaction: str
        actor_id: str
        occurred_at: datetime

        @property
        def key(self) -> Reaction:
            return Reaction(self.actor_id, self.target_kind, self.target_id, self.reaction)

    class ReactionAdded(ReactionChanged):
        def apply(self, graph: GoalSocialGraph) -> None:
            graph.reactions.add(self.key)

    class ReactionRemoved(ReactionChanged):
        def apply(self, graph: GoalSocialGraph) -> None:
            graph.reactions.discard(self.key)

    class KudosGiven(Aggregate.Event):
        org_id: str
        goal_id: str
        kudos_id: str
        receiver_id: str
        message: str
        actor_id: str
        occurred_at: datetime

        def apply(self, graph: GoalSocialGraph) -> None:
            graph.kudos.append(Kudos(self.kudos_id, self.actor_id, self.receiver_id, self.message, self.occurred_at))

    @property
    def collaborators(self) -> dict[str, str]:
        """The people whose tag is pending or accepted, each with who tagged them most recently."""
        return {person_id: tag.latest_tag.actor_id for person_id, tag in self.tags.items() if tag.is_open}

    def record_tag_change(self, person_id: str, state: str, actor_id: str, occurred_at: datetime) -> None:
        tag = self.tags.setdefault(person_id, CollaboratorTag(person_id))
        tag.history.append(TagChange(state, actor_id, occurred_at))

    def follow(self, person_id: str, occurred_at: datetime) -> bool:
        """Record that ``person_id`` follows the goal; return False if they already did."""
        occurred_at = check_event_time(occurred_at)
        if person_id in self.followers:
            return False
        self.trigger_event(self.GoalFollowed, **self._event_context(person_id, occurred_at), follower_id=person_id)
        return True

    def unfollow(self, person_id: str, occurred_at: datetime) -> bool:
        """Record that ``person_id`` stopped following the goal; return False if they did not follow it."""
        occurred_at = check_event_time(occurred_at)
        if person_id not in self.followers:
            return False
        self.trigger_event(self.GoalUnfollowed, **self._event_context(person_id, occurred_at), follower_id=person_id)
        return True

    def tag_collaborator(self, collaborator_id: str, tagged_by: str, occurred_at: datetime) -> bool:
        """Record that ``tagged_by`` tagged ``collaborator_id``; return False while their tag is pending or accepted.

        A person who declined, left or was untagged may be tagged again, which starts a new pending tag.
        """
        occurred_at = check_event_time(occurred_at)
        if collaborator_id == tagged_by:
            raise SocialGraphError("person_id", "cannot tag yourself as a collaborator; tag another person")
        tag = self.tags.get(collaborator_id)
        if tag is not None and tag.is_open:
            return False
        self.trigger_event(
            self.CollaboratorTagged, **self._event_context(tagged_by, occurred_at), collaborator_id=collaborator_id
        )
        return True

    def accept_tag(self, person_id: str, occurred_at: datetime) -> bool:
        """Record that the tagged person accepted; return False if they already had."""
        tag = self._tag_for_consent(person_id, occurred_at)
        if tag.state == ACCEPTED:
            return False
        if tag.state != PENDING:
            raise GraphConflictError(f"your tag on this goal is {tag.state}; ask an owner to tag you again")
        self._record_consent(self.TagAccepted, person_id, occurred_at)
        return True

    def decline_tag(self, person_id: str, occurred_at: datetime) -> bool:
        """Record that the tagged person declined a pending tag; return False if they already had."""
        tag = self._tag_for_consent(person_id, occurred_at)
        if tag.state == DECLINED:
            return False
        if tag.state == ACCEPTED:
            raise GraphConflictError("you accepted this tag; leave the goal instead of declining")
        if tag.state != PENDING:
            raise GraphConflictError(f"your tag on this goal is {tag.state}; there is nothing to decline")
        self._record_consent(self.TagDeclined, person_id, occurred_at)
        return True

    def leave(self, person_id: str, occurred_at: datetime) -> bool:
        """Record that a collaborator with an accepted tag left; return False if they already had."""
        tag = self._tag_for_consent(person_id, occurred_at)
        if tag.state == LEFT:
            return False
        if tag.state == PENDING:
            raise GraphConflictError("your tag on this goal is pending; decline it instead of leaving")
        if tag.state != ACCEPTED:
            raise GraphConflictError(f"your tag on this goal is {tag.state}; there is nothing to leave")
        self._record_consent(self.CollaboratorLeft, person_id, occurred_at)
        return True

    def untag(self, person_id: str, actor_id: str, occurred_at: datetime) -> bool:
        """Record that ``actor_id`` removed a pending or accepted tag; return False if the person has none."""
        occurred_at = check_event_time(occurred_at)
        tag = self.tags.get(person_id)
        if tag is None or not tag.is_open:
            return False
        check_not_before(occurred_at, tag.latest_tag.occurred_at, "the tag")
        self.trigger_event(
            self.CollaboratorUntagged, **self._event_context(actor_id, occurred_at), collaborator_id=person_id
        )
        return True

    def post_comment(
        self,
        comment_id: str,
        author_id: str,
        body: str,
        mentioned_ids: tuple[str, ...],
        check_in_id: str | None,
        occurred_at: datetime,
    ) -> None:
        occurred_at = check_event_time(occurred_at)
        check_text("body", body, MAX_COMMENT_LENGTH)
        check_mentions(mentioned_ids)
        if comment_id in self.comments:
            raise GraphConflictError(f"comment {comment_id!r} exists already on this goal")
        self.trigger_event(
            self.CommentPosted,
            **self._event_context(author_id, occurred_at),
            comment_id=comment_id,
            check_in_id=check_in_id,
            body=body,
            mentioned_ids=list(mentioned_ids),
        )

    def edit_comment(
        self, comment_id: str, actor_id: str, body: str, mentioned_ids: tuple[str, ...], occurred_at: datetime
    ) -> bool:
        """Record a new text of a comment by its author; return False if the text did not change."""
        occurred_at = check_event_time(occurred_at)
        comment = self.live_comment(comment_id)
        if comment.author_id != actor_id:
            raise ActionNotAllowedError("only the author of a comment may edit it")
        check_text("body", body, MAX_COMMENT_LENGTH)
        check_mentions(mentioned_ids)
        check_not_before(occurred_at, comment.current.occurred_at, "the comment's current text")
        if body == comment.current.body:
            return False
        self.trigger_event(
            self.CommentEdited,
            **self._event_context(actor_id, occurred_at),
            comment_id=comment_id,
            body=body,
            mentioned_ids=list(mentioned_ids),
        )
        return True

    def delete_comment(self, comment_id: str, actor_id: str, may_moderate: bool, occurred_at: datetime) -> bool:
        """Record that the author, or a moderator of the goal, deleted a comment; return False if it was deleted."""
        occurred_at = check_event_time(occurred_at)
        comment = self.comments.get(comment_id)
        if comment is None:
            raise CommentNotFoundError(self.goal_id, comment_id)
        if comment.author_id != actor_id and not may_moderate:
            raise ActionNotAllowedError(
                "only the author, an owner or co-owner of the goal, or an admin may delete a comment"
            )
        if comment.is_deleted:
            return False
        check_not_before(occurred_at, comment.current.occurred_at, "the comment's current text")
        self.trigger_event(self.CommentDeleted, **self._event_context(actor_id, occurred_at), comment_id=comment_id)
        return True

    def live_comment(self, comment_id: str) -> Comment:
        """Return the comment, raising CommentNotFoundError if it never existed or was deleted."""
        comment = self.comments.get(comment_id)
        if comment is None or comment.is_deleted:
            raise CommentNotFoundError(self.goal_id, comment_id)
        return comment

    def add_reaction(self, reaction: Reaction, occurred_at: datetime) -> bool:
        """Record a reaction of ``reaction.person_id``; return False if they had reacted the same way."""
        occurred_at = check_event_time(occurred_at)
        self._check_reaction_target(reaction)
        if reaction in self.reactions:
            return False
        self.trigger_event(self.ReactionAdded, **self._reaction_fields(reaction, occurred_at))
        return True

    def remove_reaction(self, reaction: Reaction, occurred_at: datetime) -> bool:
        """Record that a person took a reaction back; return False if they had no such reaction."""
        occurred_at = check_event_time(occurred_at)
        if reaction not in self.reactions:
            return False
        self.trigger_event(self.ReactionRemoved, **self._reaction_fields(reaction, occurred_at))
        return True

    def give_kudos(self, kudos_id: str, giver_id: str, receiver_id: str, message: str, occurred_at: datetime) -> None:
        """Record kudos from ``giver_id``, at most once per giver and UTC day of the event time."""
        occurred_at = check_event_time(occurred_at)
        if receiver_id == giver_id:
            raise SocialGraphError("receiver_id", "cannot give kudos to yourself; name another person")
        check_text("message", message, MAX_KUDOS_MESSAGE_LENGTH)
        day = occurred_at.date()
        if any(kudos.giver_id == giver_id and kudos.day == day for kudos in self.kudos):
            raise GraphConflictError(
                f"you already gave kudos on this goal on {day.isoformat()} (UTC); "
                "each person may give one kudos per goal per day"
            )
        self.trigger_event(
            self.KudosGiven,
            **self._event_context(giver_id, occurred_at),
            kudos_id=kudos_id,
            receiver_id=receiver_id,
            message=message,
        )

    def _tag_for_consent(self, person_id: str, occurred_at: datetime) -> CollaboratorTag:
        """Return the person's tag for a consent change at ``occurred_at``, checking the time against the tag."""
        occurred_at = check_event_time(occurred_at)
        tag = self.tags.get(person_id)
        if tag is None:
            raise GraphConflictError("you are not tagged on this goal; only a tagged person can answer a tag")
        check_not_before(occurred_at, tag.latest_tag.occurred_at, "the tag")
        return tag

    def _record_consent(self, event_class: type[Aggregate.Event], person_id: str, occurred_at: datetime) -> None:
        occurred_at = check_event_time(occurred_at)
        self.trigger_event(event_class, **self._event_context(person_id, occurred_at), collaborator_id=person_id)

    def _check_reaction_target(self, reaction: Reaction) -> None:
        if reaction.reaction not in REACTION_KINDS:
            raise SocialGraphError("reaction", f"reaction must be one of {', '.join(REACTION_KINDS)}")
        if reaction.target_kind not in REACTION_TARGETS:
            raise SocialGraphError("target_kind", f"target_kind must be one of {', '.join(REACTION_TARGETS)}")
        if reaction.target_kind == "goal" and reaction.target_id != self.goal_id:
            raise SocialGraphError(
                "target_id", "a reaction to the goal must name the goal's id as target_id, or omit it"
            )
        if reaction.target_kind == "comment":
            comment = self.comments.get(reaction.target_id)
            if comment is None or comment.is_deleted:
                raise SocialGraphError("target_id", f"comment {reaction.target_id!r} not found on this goal")

    def _reaction_fields(self, reaction: Reaction, occurred_at: datetime) -> dict[str, object]:
        return {
            **self._event_context(reaction.person_id, occurred_at),
            "target_kind": reaction.target_kind,
            "target_id": reaction.target_id,
            "reaction": reaction.reaction,
        }

    def _event_context(self, actor_id: str, occurred_at: datetime) -> dict[str, object]:
        return {"org_id": self.org_id, "goal_id": self.goal_id, "actor_id": actor_id, "occurred_at": occurred_at}

