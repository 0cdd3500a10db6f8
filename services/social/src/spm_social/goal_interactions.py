"""Use cases of tag consent, comments, reactions and kudos on a goal's social graph.

``GoalInteractions`` is a mixin of ``SocialApplication``. It changes and saves graphs with the
application's ``_change_graph`` and checks visibility with ``_check_goal_is_visible``. A person
who may not see the goal therefore gets the same 404 from every use case here as for an unknown goal.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar
from uuid import uuid4

from spm_events.auth import Principal
from spm_events.visibility import GoalAudience
from spm_social.directory_lookup import (
    DirectoryLookups,
    PersonDeactivatedError,
    PersonNotFoundError,
    find_person,
    require_directory,
)
from spm_social.domain import GoalSocialGraph
from spm_social.graph_rules import ActionNotAllowedError, CommentNotFoundError, SocialGraphError
from spm_social.graph_state import CollaboratorTag, Comment, Kudos, Reaction
from spm_social.mentions import mentioned_people_who_may_see, resolve_mentions
from spm_social.pages import Page, PageCursor, page_of

Result = TypeVar("Result")


@dataclass(frozen=True)
class ReactionSummary:
    """The reactions to one target: a count per reaction kind, and the reader's own reactions."""

    target_kind: str
    target_id: str
    counts: dict[str, int]
    mine: list[str]


def may_manage(principal: Principal, audience: GoalAudience) -> bool:
    """Tell whether the principal is an owner, a co-owner or an admin, who manage the goal's tags and comments."""
    is_owner = principal.person_id == audience.owner_id or principal.person_id in audience.co_owner_ids
    return principal.is_admin or is_owner


class GoalInteractions:
    # Annotations only: SocialApplication provides these, and the annotations create no attributes.
    people: DirectoryLookups | None
    _change_graph: Callable[[str, str, Callable[[GoalSocialGraph], bool]], bool]
    _load_graph: Callable[[str, str], GoalSocialGraph | None]
    _check_goal_is_visible: Callable[[Principal, str], GoalAudience]

    def accept_tag(self, actor: Principal, goal_id: str, occurred_at: datetime) -> bool:
        """Accept the actor's pending tag on a goal; return False if they had accepted it already."""
        self._check_goal_is_visible(actor, goal_id)
        return self._change_graph(actor.org_id, goal_id, lambda graph: graph.accept_tag(actor.person_id, occurred_at))

    def decline_tag(self, actor: Principal, goal_id: str, occurred_at: datetime) -> bool:
        """Decline the actor's pending tag on a goal; return False if they had declined it already."""
        self._check_goal_is_visible(actor, goal_id)
        return self._change_graph(actor.org_id, goal_id, lambda graph: graph.decline_tag(actor.person_id, occurred_at))

    def leave_goal(self, actor: Principal, goal_id: str, occurred_at: datetime) -> bool:
        """End the actor's accepted collaboration on a goal; return False if they had left already."""
        self._check_goal_is_visible(actor, goal_id)
        return self._change_graph(actor.org_id, goal_id, lambda graph: graph.leave(actor.person_id, occurred_at))

    def untag_collaborator(self, actor: Principal, goal_id: str, person_id: str, occurred_at: datetime) -> str | None:
        """Remove a pending or accepted tag, as an owner, co-owner or admin.

        Return the tag's state afterwards, or None if the person was never tagged on the goal.
        """
        audience = self._check_goal_is_visible(actor, goal_id)
        if not may_manage(actor, audience):
            raise ActionNotAllowedError("only an owner or co-owner of the goal, or an admin, may untag a collaborator")
        _, tag = self._change_and_read(
            actor.org_id,
            goal_id,
            lambda graph: graph.untag(person_id, actor.person_id, occurred_at),
            lambda graph: graph.tags.get(person_id),
        )
        return None if tag is None else tag.state

    def post_comment(
        self, actor: Principal, goal_id: str, body: str, check_in_id: str | None, occurred_at: datetime
    ) -> Comment:
        """Post a comment on a goal, or on one of its check-ins, with its @handle mentions resolved."""
        audience = self._check_goal_is_visible(actor, goal_id)
        mentioned_ids = self._mentioned_ids(actor.org_id, audience, body)
        comment_id = str(uuid4())

        def post(graph: GoalSocialGraph) -> bool:
            graph.post_comment(comment_id, actor.person_id, body, mentioned_ids, check_in_id, occurred_at)
            return True

        _, comment = self._change_and_read(actor.org_id, goal_id, post, lambda graph: graph.comments[comment_id])
        return comment

    def edit_comment(
        self, actor: Principal, goal_id: str, comment_id: str, body: str, occurred_at: datetime
    ) -> tuple[bool, Comment]:
        """Replace the text of the actor's own comment; return whether an edit was recorded, and the comment."""
        audience = self._check_goal_is_visible(actor, goal_id)
        mentioned_ids = self._mentioned_ids(actor.org_id, audience, body)
        return self._change_and_read(
            actor.org_id,
            goal_id,
            lambda graph: graph.edit_comment(comment_id, actor.person_id, body, mentioned_ids, occurred_at),
            lambda graph: graph.comments[comment_id],
        )

    def delete_comment(self, actor: Principal, goal_id: str, comment_id: str, occurred_at: datetime) -> bool:
        """Delete a comment as its author, an owner, a co-owner or an admin; return False if it was deleted already."""
        audience = self._check_goal_is_visible(actor, goal_id)
        may_moderate = may_manage(actor, audience)
        return self._change_graph(
            actor.org_id,
            goal_id,
            lambda graph: graph.delete_comment(comment_id, actor.person_id, may_moderate, occurred_at),
        )

    def add_reaction(
        self,
        actor: Principal,
        goal_id: str,
        target_kind: str,
        target_id: str | None,
        reaction: str,
        occurred_at: datetime,
    ) -> tuple[bool, Reaction]:
        """React to the goal, one of its check-ins or one of its comments; return False if already reacted so."""
        self._check_goal_is_visible(actor, goal_id)
        key = Reaction(actor.person_id, target_kind, self._target_id_or_goal(goal_id, target_kind, target_id), reaction)
        return self._change_graph(actor.org_id, goal_id, lambda graph: graph.add_reaction(key, occurred_at)), key

    def remove_reaction(
        self,
        actor: Principal,
        goal_id: str,
        target_kind: str,
        target_id: str | None,
        reaction: str,
        occurred_at: datetime,
    ) -> tuple[bool, Reaction]:
        """Take back one of the actor's reactions; return False if they had no such reaction."""
        self._check_goal_is_visible(actor, goal_id)
        key = Reaction(actor.person_id, target_kind, self._target_id_or_goal(goal_id, target_kind, target_id), reaction)
        return self._change_graph(actor.org_id, goal_id, lambda graph: graph.remove_reaction(key, occurred_at)), key

    def give_kudos(
        self, actor: Principal, goal_id: str, receiver_id: str, message: str, occurred_at: datetime
    ) -> Kudos:
        """Give kudos with a message to an active person of the organisation for their work on a goal."""
        self._check_goal_is_visible(actor, goal_id)
        if receiver_id != actor.person_id:
            self._check_person_is_active(actor.org_id, receiver_id, "receiver_id")
        kudos_id = str(uuid4())

        def give(graph: GoalSocialGraph) -> bool:
            graph.give_kudos(kudos_id, actor.person_id, receiver_id, message, occurred_at)
            return True

        _, kudos = self._change_and_read(actor.org_id, goal_id, give, lambda graph: graph.kudos[-1])
        return kudos

    def comments_page(
        self, reader: Principal, goal_id: str, check_in_id: str | None, limit: int, after: PageCursor | None
    ) -> Page[Comment]:
        """Return the goal's comments that are not deleted, oldest first, optionally those of one check-in."""
        graph = self._visible_graph(reader, goal_id)
        comments = [
            comment
            for comment in (graph.comments.values() if graph else ())
            if not comment.is_deleted and (check_in_id is None or comment.check_in_id == check_in_id)
        ]
        return page_of(comments, _comment_sort_key, limit, after, newest_first=False)

    def comment_with_history(self, reader: Principal, goal_id: str, comment_id: str) -> Comment:
        """Return a comment that is not deleted, with every text it had."""
        graph = self._visible_graph(reader, goal_id)
        if graph is None:
            raise CommentNotFoundError(goal_id, comment_id)
        return graph.live_comment(comment_id)

    def collaborator_tags(self, reader: Principal, goal_id: str) -> list[CollaboratorTag]:
        """Return everyone ever tagged on the goal with their tag's state and history, first tagged first."""
        graph = self._visible_graph(reader, goal_id)
        tags = list(graph.tags.values()) if graph else []
        return sorted(tags, key=lambda tag: (tag.history[0].occurred_at, tag.person_id))

    def kudos_page(self, reader: Principal, goal_id: str, limit: int, before: PageCursor | None) -> Page[Kudos]:
        """Return the goal's kudos, newest event time first."""
        graph = self._visible_graph(reader, goal_id)
        return page_of(graph.kudos if graph else [], _kudos_sort_key, limit, before, newest_first=True)

    def reaction_summaries(self, reader: Principal, goal_id: str, target_kind: str | None) -> list[ReactionSummary]:
        """Return a summary per reacted target of the goal, leaving out deleted comments."""
        graph = self._visible_graph(reader, goal_id)
        if graph is None:
            return []
        by_target: dict[tuple[str, str], list[Reaction]] = {}
        for reaction in graph.reactions:
            if target_kind is not None and reaction.target_kind != target_kind:
                continue
            if reaction.target_kind == "comment" and graph.comments[reaction.target_id].is_deleted:
                continue
            by_target.setdefault((reaction.target_kind, reaction.target_id), []).append(reaction)
        return [
            ReactionSummary(
                target_kind=kind,
                target_id=target,
                counts=dict(sorted(Counter(reaction.reaction for reaction in reactions).items())),
                mine=sorted(reaction.reaction for reaction in reactions if reaction.person_id == reader.person_id),
            )
            for (kind, target), reactions in sorted(by_target.items())
        ]

    def _check_person_is_active(self, org_id: str, person_id: str, field: str) -> None:
        """Raise SocialGraphError naming ``field`` unless the person is active in the organisation's directory."""
        try:
            find_person(self.people, org_id, person_id, must_be_active=True)
        except PersonNotFoundError:
            raise SocialGraphError(
                field,
                f"{field} {person_id!r} is not in your organisation's people directory; name a person from GET /people",
            ) from None
        except PersonDeactivatedError:
            raise SocialGraphError(
                field, f"{field} {person_id!r} names a deactivated person; name an active person"
            ) from None

    def _mentioned_ids(self, org_id: str, audience: GoalAudience, body: str) -> tuple[str, ...]:
        """Resolve the mentions of ``body`` and keep the people who may see the goal, so no event names the others."""
        mentioned = resolve_mentions(require_directory(self.people), org_id, body)
        return mentioned_people_who_may_see(org_id, audience, mentioned)

    def _visible_graph(self, reader: Principal, goal_id: str) -> GoalSocialGraph | None:
        self._check_goal_is_visible(reader, goal_id)
        return self._load_graph(reader.org_id, goal_id)

    def _change_and_read(
        self,
        org_id: str,
        goal_id: str,
        change: Callable[[GoalSocialGraph], bool],
        read: Callable[[GoalSocialGraph], Result],
    ) -> tuple[bool, Result]:
        """Run ``change`` like ``_change_graph``, and return what ``read`` takes from the graph of the last attempt."""
        results: list[Result] = []

        def change_then_read(graph: GoalSocialGraph) -> bool:
            recorded = change(graph)
            results[:] = [read(graph)]
            return recorded

        recorded = self._change_graph(org_id, goal_id, change_then_read)
        return recorded, results[0]

    @staticmethod
    def _target_id_or_goal(goal_id: str, target_kind: str, target_id: str | None) -> str:
        if target_id is not None:
            return target_id
        if target_kind == "goal":
            return goal_id
        raise SocialGraphError("target_id", f"target_id is required for a reaction to a {target_kind}")


def _comment_sort_key(comment: Comment) -> PageCursor:
    return PageCursor(comment.posted_at, comment.comment_id)


def _kudos_sort_key(kudos: Kudos) -> PageCursor:
    return PageCursor(kudos.occurred_at, kudos.kudos_id)
