"""Tables of the facts behind notifications: activities, tag and membership changes, key results, nudge timers.

They live on the inbox read model's metadata (``define_inbox_tables`` calls
``define_activity_tables``), so one transaction updates them together with the inbox and the
Kafka positions.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Boolean, Column, Float, Index, Integer, MetaData, String, Table, Text

from spm_notifications.tables import Id, UtcDateTime


@dataclass(frozen=True)
class ActivityTables:
    activities: Table
    collaborator_changes: Table
    member_changes: Table
    comment_mentions: Table
    goal_status_changes: Table
    key_results: Table
    key_result_check_ins: Table
    nudge_timers: Table
    event_clocks: Table


def define_activity_tables(metadata: MetaData) -> ActivityTables:
    # Every event that notifies someone (rules.Activity), kept so that its notifications can be
    # derived again when a fact that decides them is read later.
    activities = Table(
        "activities",
        metadata,
        Column("event_id", String(64), primary_key=True),
        Column("org_id", Id, nullable=False),
        Column("goal_id", Id, nullable=False),
        Column("source", String(30), nullable=False),
        Column("actor_id", Id, nullable=False),
        Column("occurred_at", UtcDateTime, nullable=False),
        # The goal's version for events of the goals topic; null for social events.
        Column("goal_version", Integer, nullable=True),
        # Space-separated ids of the people the event names (mentioned people, the kudos receiver).
        Column("people", Text, nullable=False, default=""),
        Column("community_id", Id, nullable=True),
        # The new status of a status change.
        Column("detail", String(50), nullable=True),
        # The comment of a comment activity, or the key result of a confidence nudge.
        Column("ref_id", Id, nullable=True),
        Index("ix_activities_goal_time", "org_id", "goal_id", "occurred_at"),
        Index("ix_activities_community", "org_id", "community_id"),
        Index("ix_activities_ref", "org_id", "ref_id"),
    )
    # Every CollaboratorTagged, TagAccepted, TagDeclined, CollaboratorLeft and CollaboratorUntagged.
    collaborator_changes = Table(
        "collaborator_changes",
        metadata,
        Column("event_id", String(64), primary_key=True),
        Column("org_id", Id, nullable=False),
        Column("goal_id", Id, nullable=False),
        Column("person_id", Id, nullable=False),
        Column("actor_id", Id, nullable=False),
        Column("change", String(20), nullable=False),
        Column("occurred_at", UtcDateTime, nullable=False),
        Column("aggregate_version", Integer, nullable=False),
        Index("ix_collaborator_changes_goal", "org_id", "goal_id", "person_id"),
    )
    # Every join and leave of a community (CommunityCreated makes its creator a member).
    member_changes = Table(
        "community_member_changes",
        metadata,
        Column("event_id", String(64), primary_key=True),
        Column("org_id", Id, nullable=False),
        Column("community_id", Id, nullable=False),
        Column("person_id", Id, nullable=False),
        Column("member", Boolean, nullable=False),
        Column("occurred_at", UtcDateTime, nullable=False),
        Column("aggregate_version", Integer, nullable=False),
        Index("ix_community_member_changes", "org_id", "community_id", "person_id"),
    )
    # Everyone a comment ever mentioned, so an edit notifies only the newly mentioned.
    comment_mentions = Table(
        "comment_mentions",
        metadata,
        Column("org_id", Id, primary_key=True),
        Column("comment_id", Id, primary_key=True),
        Column("person_id", Id, primary_key=True),
    )
    # Every lifecycle status a goal event carried. A key result's nudge needs the goal active at its deadline.
    goal_status_changes = Table(
        "goal_status_changes",
        metadata,
        Column("org_id", Id, primary_key=True),
        Column("goal_id", Id, primary_key=True),
        Column("aggregate_version", Integer, primary_key=True),
        Column("status", String(20), nullable=False),
        Column("occurred_at", UtcDateTime, nullable=False),
    )
    key_results = Table(
        "key_results",
        metadata,
        Column("org_id", Id, primary_key=True),
        Column("key_result_id", Id, primary_key=True),
        Column("goal_id", Id, nullable=False),
        Column("event_id", String(64), nullable=False),
        Column("actor_id", Id, nullable=False),
        Column("occurred_at", UtcDateTime, nullable=False),
        Column("aggregate_version", Integer, nullable=False),
    )
    key_result_check_ins = Table(
        "key_result_check_ins",
        metadata,
        Column("event_id", String(64), primary_key=True),
        Column("org_id", Id, nullable=False),
        Column("goal_id", Id, nullable=False),
        Column("key_result_id", Id, nullable=False),
        Column("actor_id", Id, nullable=False),
        Column("occurred_at", UtcDateTime, nullable=False),
        Column("aggregate_version", Integer, nullable=False),
        Column("confidence", Float, nullable=True),
        Index("ix_key_result_check_ins", "org_id", "key_result_id"),
    )
    # Nudges that fire when the organisation's event time reaches due_at. timer_id is the nudge's
    # event id (rules.nudge_cause_id), so firing twice inserts nothing new.
    nudge_timers = Table(
        "nudge_timers",
        metadata,
        Column("timer_id", String(64), primary_key=True),
        Column("org_id", Id, nullable=False),
        Column("goal_id", Id, nullable=False),
        Column("kind", String(50), nullable=False),
        # The key result (check-in nudges) or the tagged person (tag nudges) the timer belongs to.
        Column("subject_id", String(210), nullable=False),
        # The recipient; null means the goal's owner when the timer fires.
        Column("person_id", Id, nullable=True),
        Column("due_at", UtcDateTime, nullable=False),
        # pending, fired, or skipped (the goal was not active when it fell due).
        Column("state", String(20), nullable=False),
        Index("ix_nudge_timers_due", "org_id", "state", "due_at"),
        Index("ix_nudge_timers_subject", "org_id", "kind", "subject_id"),
    )
    # Each organisation's stream clock: the latest event time applied for it.
    event_clocks = Table(
        "event_clocks",
        metadata,
        Column("org_id", Id, primary_key=True),
        Column("event_time", UtcDateTime, nullable=False),
    )
    return ActivityTables(
        activities=activities,
        collaborator_changes=collaborator_changes,
        member_changes=member_changes,
        comment_mentions=comment_mentions,
        goal_status_changes=goal_status_changes,
        key_results=key_results,
        key_result_check_ins=key_result_check_ins,
        nudge_timers=nudge_timers,
        event_clocks=event_clocks,
    )
