"""Errors a goal's social graph raises, and the checks of command input it runs before recording an event."""

from __future__ import annotations

from datetime import datetime, timezone


class SocialGraphError(ValueError):
    """Raised when a command would break a rule of the social graph; nothing is recorded."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class GraphConflictError(Exception):
    """Raised when a command does not fit the graph's current state, such as accepting a declined tag."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ActionNotAllowedError(PermissionError):
    """Raised when the actor may see the goal but may not make this change, such as editing another's comment."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class CommentNotFoundError(LookupError):
    """Raised for a comment id that the goal never had, or whose comment was deleted."""

    def __init__(self, goal_id: str, comment_id: str) -> None:
        super().__init__(f"comment {comment_id!r} not found on goal {goal_id!r}")
        self.goal_id = goal_id
        self.comment_id = comment_id


def check_event_time(occurred_at: datetime) -> datetime:
    """Return ``occurred_at`` in UTC, raising SocialGraphError if it is naive or in the future."""
    if occurred_at.tzinfo is None or occurred_at.utcoffset() is None:
        raise SocialGraphError("occurred_at", "occurred_at must include a timezone offset")
    in_utc = occurred_at.astimezone(timezone.utc)
    if in_utc > datetime.now(timezone.utc):
        raise SocialGraphError("occurred_at", "occurred_at is in the future; send a time at or before now")
    return in_utc


# Limits of the published payloads (spm_events.schemas), checked here so that every recorded event
# can be published: the relay could not map a longer comment or a longer list of mentions.
MAX_COMMENT_LENGTH = 10_000
MAX_MENTIONS = 50
MAX_KUDOS_MESSAGE_LENGTH = 1000


def check_text(field: str, text: str, max_length: int) -> str:
    """Return ``text`` unchanged, raising SocialGraphError if it is blank or longer than ``max_length``."""
    if not text.strip():
        raise SocialGraphError(field, f"{field} is blank; send some text")
    if len(text) > max_length:
        raise SocialGraphError(field, f"{field} has {len(text)} characters; the limit is {max_length}")
    return text


def check_not_before(occurred_at: datetime, earliest: datetime, what: str) -> None:
    if occurred_at < earliest:
        raise SocialGraphError(
            "occurred_at", f"occurred_at is before {what} ({earliest.isoformat()}); send a time at or after it"
        )


def check_mentions(mentioned_ids: tuple[str, ...]) -> None:
    if len(mentioned_ids) > MAX_MENTIONS:
        raise SocialGraphError("body", f"body mentions {len(mentioned_ids)} people; the limit is {MAX_MENTIONS}")
