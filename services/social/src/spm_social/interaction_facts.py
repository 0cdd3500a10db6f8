"""Comments and reactions in the read model: the current text of each comment and one aggregate per reacted target.

Each comment's events come from its goal's social graph, so the aggregate version orders them. A
text replaces the stored one only from a higher version, and a deletion clears it for good.
Reactions are folded into one activity per target, addressed to the target's author, so a
popular check-in gives its author one item with a count instead of one item per reaction.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any
from uuid import UUID, uuid5

from sqlalchemy import Connection, Select, and_, bindparam, delete, select, update

from spm_events.envelope import Envelope
from spm_social.activities import publish_activity
from spm_social.fanout import CHECK_IN_RECORDED, COMMENT_POSTED, REACTIONS
from spm_social.readmodel import SocialTables, insert_ignoring_duplicates

REACTIONS_NAMESPACE = UUID("2f7c1d4e-8a9b-5c6d-9e0f-1a2b3c4d5e6f")
CHECK_IN_TARGET = "check_in"
COMMENT_TARGET = "comment"


def reactions_activity_id(org_id: str, target_kind: str, target_id: str) -> str:
    """Return the id of the one reactions activity of a target, used in feed items where other items have an event id."""
    return str(uuid5(REACTIONS_NAMESPACE, f"{org_id}/{target_kind}/{target_id}"))


def record_comment_text(
    connection: Connection,
    tables: SocialTables,
    envelope: Envelope,
    goal_id: str,
    comment_id: str,
    body: str | None,
    *,
    posted: bool = False,
    check_in_id: str | None = None,
) -> None:
    """Store a posted or edited text (or, with ``body`` None, a deletion) of one comment."""
    comments = tables.comments
    key = (comments.c.org_id == envelope.orgid, comments.c.comment_id == comment_id)
    insert_ignoring_duplicates(
        connection,
        comments,
        {
            "org_id": envelope.orgid,
            "comment_id": comment_id,
            "goal_id": goal_id,
            "check_in_id": None,
            "author_id": None,
            "activity_id": None,
            "body": None,
            "body_version": 0,
            "deleted": False,
        },
    )
    if posted:
        connection.execute(
            update(comments)
            .where(*key)
            .values(check_in_id=check_in_id, author_id=envelope.actorid, activity_id=envelope.id)
        )
    if body is None:
        connection.execute(update(comments).where(*key).values(deleted=True, body=None))
        return
    connection.execute(
        update(comments)
        .where(*key, comments.c.deleted.is_(False), comments.c.body_version < envelope.aggregateversion)
        .values(body=body, body_version=envelope.aggregateversion)
    )


def hide_deleted_comment(connection: Connection, tables: SocialTables, org_id: str, comment_id: str) -> None:
    """Hide the comment's activity and the reactions to it once the comment is deleted."""
    comments = tables.comments
    deleted = connection.execute(
        select(comments.c.deleted).where(comments.c.org_id == org_id, comments.c.comment_id == comment_id)
    ).scalar()
    if not deleted:
        return
    activities = tables.activities
    connection.execute(
        update(activities)
        .where(
            activities.c.org_id == org_id,
            activities.c.target_kind == COMMENT_TARGET,
            activities.c.target_id == comment_id,
            activities.c.kind.in_((COMMENT_POSTED, REACTIONS)),
        )
        .values(hidden=True)
    )


def record_reaction(
    connection: Connection,
    tables: SocialTables,
    envelope: Envelope,
    goal_id: str,
    target_kind: str,
    target_id: str,
    reaction: str,
    active: bool,
) -> None:
    """Store whether the actor's reaction is on, keeping the fact of the highest aggregate version."""
    reactions = tables.reactions
    key = (
        reactions.c.org_id == envelope.orgid,
        reactions.c.target_kind == target_kind,
        reactions.c.target_id == target_id,
        reactions.c.actor_id == envelope.actorid,
        reactions.c.reaction == reaction,
    )
    inserted = insert_ignoring_duplicates(
        connection,
        reactions,
        {
            "org_id": envelope.orgid,
            "target_kind": target_kind,
            "target_id": target_id,
            "actor_id": envelope.actorid,
            "reaction": reaction,
            "goal_id": goal_id,
            "active": active,
            "aggregate_version": envelope.aggregateversion,
            "occurred_at": envelope.time,
        },
    )
    if not inserted:
        connection.execute(
            update(reactions)
            .where(*key, reactions.c.aggregate_version < envelope.aggregateversion)
            .values(active=active, aggregate_version=envelope.aggregateversion, occurred_at=envelope.time)
        )


def refresh_reactions_activity(
    connection: Connection, tables: SocialTables, org_id: str, target_kind: str, target_id: str, now: datetime
) -> str | None:
    """Recompute the target's reactions activity from its reactions; return its id if any reactions exist."""
    target_parameters = {"org_id": org_id, "target_kind": target_kind, "target_id": target_id}
    if connection.execute(_any_reaction_statement(tables), target_parameters).first() is None:
        # Most check-ins and comments never get a reaction, so this is the common path.
        return None
    reactions = tables.reactions
    target = (reactions.c.org_id == org_id, reactions.c.target_kind == target_kind, reactions.c.target_id == target_id)
    active = connection.execute(
        select(reactions.c.actor_id, reactions.c.goal_id, reactions.c.occurred_at)
        .where(*target, reactions.c.active.is_(True))
        .order_by(reactions.c.occurred_at.desc(), reactions.c.actor_id.desc(), reactions.c.reaction.desc())
    ).all()

    event_id = reactions_activity_id(org_id, target_kind, target_id)
    activities = tables.activities
    key = (activities.c.org_id == org_id, activities.c.event_id == event_id)
    if not active:
        connection.execute(delete(activities).where(*key))
    else:
        latest = active[0]
        author_id, hidden = _target_author(connection, tables, org_id, target_kind, target_id)
        values = {
            "kind": REACTIONS,
            "goal_id": latest.goal_id,
            "community_id": None,
            # The item shows the latest reaction's time and person, and reaction_count counts the reactions on now.
            "actor_id": latest.actor_id,
            "subject_id": author_id,
            "direct_recipient_id": author_id,
            "target_kind": target_kind,
            "target_id": target_id,
            "key_result_id": None,
            "progress": None,
            "message": None,
            "reaction_count": len(active),
            "hidden": hidden,
            "occurred_at": latest.occurred_at,
        }
        inserted = insert_ignoring_duplicates(
            connection, activities, {"org_id": org_id, "event_id": event_id, "indexed_at": now} | values
        )
        if not inserted:
            connection.execute(update(activities).where(*key).values(values))
    publish_activity(connection, tables, org_id, event_id)
    return event_id


@lru_cache(maxsize=64)
def _any_reaction_statement(tables: SocialTables) -> Select[Any]:
    reactions = tables.reactions
    return (
        select(reactions.c.actor_id)
        .where(
            reactions.c.org_id == bindparam("org_id"),
            reactions.c.target_kind == bindparam("target_kind"),
            reactions.c.target_id == bindparam("target_id"),
        )
        .limit(1)
    )


def _target_author(
    connection: Connection, tables: SocialTables, org_id: str, target_kind: str, target_id: str
) -> tuple[str | None, bool]:
    """Return who wrote a reacted check-in or comment (None while unknown, or for the goal) and whether it is hidden."""
    if target_kind == COMMENT_TARGET:
        comments = tables.comments
        row = connection.execute(
            select(comments.c.author_id, comments.c.deleted).where(
                comments.c.org_id == org_id, comments.c.comment_id == target_id
            )
        ).first()
        return (None, False) if row is None else (row.author_id, bool(row.deleted))
    if target_kind == CHECK_IN_TARGET:
        activities = tables.activities
        author = connection.execute(
            select(activities.c.actor_id).where(
                and_(
                    activities.c.org_id == org_id,
                    activities.c.target_id == target_id,
                    activities.c.kind == CHECK_IN_RECORDED,
                )
            )
        ).scalar()
        return author, False
    return None, False
