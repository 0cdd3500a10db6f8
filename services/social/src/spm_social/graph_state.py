"""Value objects a goal's social graph keeps about tags, comments, reactions and kudos."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import NamedTuple, get_args

from spm_events.schemas import ReactionKind, ReactionTarget

PENDING = "pending"
ACCEPTED = "accepted"
DECLINED = "declined"
LEFT = "left"
UNTAGGED = "untagged"
TAG_STATES = (PENDING, ACCEPTED, DECLINED, LEFT, UNTAGGED)
# A tag in one of these states makes the person an insider of the goal; the others ended it.
OPEN_TAG_STATES = frozenset({PENDING, ACCEPTED})

REACTION_KINDS: tuple[str, ...] = get_args(ReactionKind)
REACTION_TARGETS: tuple[str, ...] = get_args(ReactionTarget)


@dataclass(frozen=True)
class TagChange:
    """One step of a tag's life: the state it entered, who made the change, and the event time."""

    state: str
    actor_id: str
    occurred_at: datetime


@dataclass
class CollaboratorTag:
    """The tag of one person on the goal, with every change since the first time they were tagged."""

    person_id: str
    history: list[TagChange] = field(default_factory=list)

    @property
    def state(self) -> str:
        return self.history[-1].state

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_TAG_STATES

    @property
    def latest_tag(self) -> TagChange:
        """The most recent change that tagged the person, which an accept, decline or untag responds to."""
        return next(change for change in reversed(self.history) if change.state == PENDING)


@dataclass(frozen=True)
class CommentRevision:
    """One text of a comment: the first one posted, or a later edit."""

    body: str
    mentioned_ids: tuple[str, ...]
    occurred_at: datetime


@dataclass
class Comment:
    comment_id: str
    author_id: str
    check_in_id: str | None
    posted_at: datetime
    revisions: list[CommentRevision]
    deleted_by: str | None = None
    deleted_at: datetime | None = None

    @property
    def current(self) -> CommentRevision:
        return self.revisions[-1]

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None

    @property
    def edited_at(self) -> datetime | None:
        return self.revisions[-1].occurred_at if len(self.revisions) > 1 else None


class Reaction(NamedTuple):
    person_id: str
    target_kind: str
    target_id: str
    reaction: str


@dataclass(frozen=True)
class Kudos:
    kudos_id: str
    giver_id: str
    receiver_id: str
    message: str
    occurred_at: datetime

    @property
    def day(self) -> date:
        """The UTC day of the event time, which the one-kudos-per-day rule counts by."""
        return self.occurred_at.date()
