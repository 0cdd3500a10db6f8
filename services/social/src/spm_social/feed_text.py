"""The one-line summary of a feed item, written at read time from the activity and the current titles."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from spm_social.fanout import (
    CHECK_IN_RECORDED,
    COLLABORATOR_TAGGED,
    COMMENT_POSTED,
    COMMUNITY_GOAL_LINKED,
    GOAL_CREATED,
    GOAL_FOLLOWED,
    KEY_RESULT_ADDED,
    KUDOS_GIVEN,
    MEMBER_JOINED,
    REACTIONS,
    TAG_ACCEPTED,
)

MAX_SUMMARY_LENGTH = 1200
MAX_COMMENT_EXCERPT = 280
REACTION_TARGET_NAMES = {"check_in": "check-in", "comment": "comment"}


def summarize(row: Mapping[str, Any], reader_id: str) -> str:
    """Return the summary of one item for ``reader_id``; ``row`` contains the activity and the joined titles."""
    goal = row["goal_title"] or row["goal_id"] or ""
    is_about_reader = row["subject_id"] == reader_id
    kind = row["kind"]
    if kind == GOAL_CREATED:
        text = f"Goal created: {goal}"
    elif kind == KEY_RESULT_ADDED:
        text = f"Key result added to '{goal}': {row['key_result_title'] or row['key_result_id']}"
    elif kind == CHECK_IN_RECORDED:
        key_result = row["key_result_title"] or row["key_result_id"]
        text = f"Check-in on '{key_result}': progress {row['progress'] or 0.0:.0%}"
    elif kind == GOAL_FOLLOWED:
        text = f"Your goal '{goal}' has a new follower"
    elif kind == COLLABORATOR_TAGGED:
        text = (
            f"You were tagged as a collaborator on '{goal}'"
            if is_about_reader
            else f"A collaborator was tagged on your goal '{goal}'"
        )
    elif kind == TAG_ACCEPTED:
        text = (
            f"You accepted the tag on '{goal}'"
            if is_about_reader
            else f"A collaborator accepted the tag on '{goal}'"
        )
    elif kind == COMMENT_POSTED:
        where = f"a check-in of '{goal}'" if row["comment_check_in_id"] else f"'{goal}'"
        text = f"Comment on {where}: {_excerpt(row['comment_body'] or '')}"
    elif kind == REACTIONS:
        text = _reactions_summary(row, goal)
    elif kind == KUDOS_GIVEN:
        text = (
            f"You received kudos on '{goal}': {row['message']}"
            if is_about_reader
            else f"Kudos on '{goal}': {row['message']}"
        )
    elif kind == COMMUNITY_GOAL_LINKED:
        text = f"Goal '{goal}' linked to the community '{_community(row)}'"
    elif kind == MEMBER_JOINED:
        text = f"A new member joined '{_community(row)}'"
    else:
        text = kind
    return text[:MAX_SUMMARY_LENGTH]


def _reactions_summary(row: Mapping[str, Any], goal: str) -> str:
    count = row["reaction_count"] or 0
    noun = "reaction" if count == 1 else "reactions"
    target = REACTION_TARGET_NAMES.get(row["target_kind"])
    if target is None:
        return f"{count} {noun} to your goal '{goal}'"
    return f"{count} {noun} to your {target} on '{goal}'"


def _community(row: Mapping[str, Any]) -> str:
    return row["community_name"] or row["community_id"] or ""


def _excerpt(body: str) -> str:
    return body if len(body) <= MAX_COMMENT_EXCERPT else body[: MAX_COMMENT_EXCERPT - 1] + "…"
