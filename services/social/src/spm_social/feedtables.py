"""Tables of the feed: activities, the channels they are published on, subscriptions, and the written items.

Every row derives from events alone (no surrogate keys, no processing order), so a rebuild from
the topics gives the same rows. ``indexed_at`` is the only wall-clock column.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from spm_social.fanout import CHANNEL_KINDS, FEED_KINDS, SOURCES

START = "start"
END = "end"
MEMBERSHIP_CHANGES = (START, END)


def one_of(column: str, values: tuple[str, ...]) -> CheckConstraint:
    return CheckConstraint(f"{column} IN ({', '.join(repr(value) for value in values)})")


@dataclass(frozen=True)
class FeedTables:
    audience_changes: Table
    subscriptions: Table
    audience_groups: Table
    link_changes: Table
    goal_links: Table
    activities: Table
    channel_activities: Table
    feed_items: Table
    comments: Table
    reactions: Table
    communities: Table
    settings: Table


def define_feed_tables(metadata: MetaData) -> FeedTables:
    audience_changes, subscriptions, audience_groups = _define_subscription_tables(metadata)
    link_changes, goal_links = _define_link_tables(metadata)
    activities, channel_activities, feed_items = _define_activity_tables(metadata)
    comments, reactions, communities = _define_interaction_tables(metadata)
    # Values fixed when the read model is created, such as the read-time threshold, so that a
    # code change cannot make one read model mix two fan-out rules.
    settings = Table(
        "feed_settings",
        metadata,
        Column("name", String(100), primary_key=True),
        Column("value", Integer, nullable=False),
    )
    return FeedTables(
        audience_changes,
        subscriptions,
        audience_groups,
        link_changes,
        goal_links,
        activities,
        channel_activities,
        feed_items,
        comments,
        reactions,
        communities,
        settings,
    )


def _define_subscription_tables(metadata: MetaData) -> tuple[Table, Table, Table]:
    # Every start or end of a membership (follow, tag, join, ...) with its event time and version.
    audience_changes = Table(
        "audience_changes",
        metadata,
        Column("org_id", String(100), primary_key=True),
        Column("event_id", String(64), primary_key=True),
        Column("channel_kind", String(20), nullable=False),
        Column("channel_id", String(100), nullable=False),
        Column("source", String(30), nullable=False),
        Column("person_id", String(100), nullable=False),
        Column("change", String(10), nullable=False),
        Column("actor_id", String(100), nullable=False),
        Column("occurred_at", DateTime(timezone=True), nullable=False),
        Column("aggregate_version", Integer, nullable=False),
        one_of("change", MEMBERSHIP_CHANGES),
        one_of("source", SOURCES),
        Index("ix_audience_changes_member", "org_id", "channel_kind", "channel_id", "source", "person_id"),
    )
    # The intervals computed from those changes; NULL bounds are open. Owners get one open interval.
    subscriptions = Table(
        "feed_subscriptions",
        metadata,
        Column("org_id", String(100), primary_key=True),
        Column("channel_kind", String(20), primary_key=True),
        Column("channel_id", String(100), primary_key=True),
        Column("source", String(30), primary_key=True),
        Column("person_id", String(100), primary_key=True),
        Column("interval_number", Integer, primary_key=True),
        Column("starts_at", DateTime(timezone=True), nullable=True),
        Column("ends_at", DateTime(timezone=True), nullable=True),
        one_of("channel_kind", CHANNEL_KINDS),
        Index("ix_feed_subscriptions_reader", "org_id", "person_id", "channel_kind", "channel_id"),
    )
    # One row per channel and source that anyone ever joined; ``read_time`` turns true, and stays
    # true, once ``people_count`` reaches the read model's threshold.
    audience_groups = Table(
        "feed_audience_groups",
        metadata,
        Column("org_id", String(100), primary_key=True),
        Column("channel_kind", String(20), primary_key=True),
        Column("channel_id", String(100), primary_key=True),
        Column("source", String(30), primary_key=True),
        Column("people_count", Integer, nullable=False),
        Column("read_time", Boolean, nullable=False),
    )
    return audience_changes, subscriptions, audience_groups


def _define_link_tables(metadata: MetaData) -> tuple[Table, Table]:
    link_changes = Table(
        "community_link_changes",
        metadata,
        Column("org_id", String(100), primary_key=True),
        Column("event_id", String(64), primary_key=True),
        Column("community_id", String(100), nullable=False),
        Column("goal_id", String(100), nullable=False),
        Column("change", String(10), nullable=False),
        Column("occurred_at", DateTime(timezone=True), nullable=False),
        Column("aggregate_version", Integer, nullable=False),
        one_of("change", MEMBERSHIP_CHANGES),
        Index("ix_community_link_changes_link", "org_id", "community_id", "goal_id"),
    )
    goal_links = Table(
        "community_goal_links",
        metadata,
        Column("org_id", String(100), primary_key=True),
        Column("community_id", String(100), primary_key=True),
        Column("goal_id", String(100), primary_key=True),
        Column("interval_number", Integer, primary_key=True),
        Column("starts_at", DateTime(timezone=True), nullable=True),
        Column("ends_at", DateTime(timezone=True), nullable=True),
        Index("ix_community_goal_links_goal", "org_id", "goal_id"),
    )
    return link_changes, goal_links


def _define_activity_tables(metadata: MetaData) -> tuple[Table, Table, Table]:
    # One row per feed-worthy fact. Titles, names and comment texts are joined in at read time, so
    # an edit or a late GoalCreated changes one row, not every reader's item.
    activities = Table(
        "feed_activities",
        metadata,
        Column("org_id", String(100), primary_key=True),
        Column("event_id", String(64), primary_key=True),
        Column("kind", String(30), nullable=False),
        Column("goal_id", String(100), nullable=True),
        Column("community_id", String(100), nullable=True),
        Column("actor_id", String(100), nullable=False),
        Column("subject_id", String(100), nullable=True),
        Column("direct_recipient_id", String(100), nullable=True),
        Column("target_kind", String(20), nullable=True),
        Column("target_id", String(100), nullable=True),
        Column("key_result_id", String(100), nullable=True),
        Column("progress", Float, nullable=True),
        Column("message", String(1000), nullable=True),
        Column("reaction_count", Integer, nullable=True),
        Column("hidden", Boolean, nullable=False),
        Column("occurred_at", DateTime(timezone=True), nullable=False),
        Column("indexed_at", DateTime(timezone=True), nullable=False),
        one_of("kind", FEED_KINDS),
        Index("ix_feed_activities_goal", "org_id", "goal_id", "occurred_at"),
        Index("ix_feed_activities_target", "org_id", "target_id"),
    )
    channel_activities = Table(
        "feed_channel_activities",
        metadata,
        Column("org_id", String(100), primary_key=True),
        Column("channel_kind", String(20), primary_key=True),
        Column("channel_id", String(100), primary_key=True),
        Column("event_id", String(64), primary_key=True),
        Column("kind", String(30), nullable=False),
        Column("occurred_at", DateTime(timezone=True), nullable=False),
        one_of("channel_kind", CHANNEL_KINDS),
        Index("ix_feed_channel_activities_page", "org_id", "channel_kind", "channel_id", "occurred_at", "event_id"),
        Index("ix_feed_channel_activities_event", "org_id", "event_id"),
    )
    # Write fan-out: one row per reader and activity, for subscriber groups below the threshold,
    # owners and direct recipients. ``source`` is the reader's best reason for the item.
    feed_items = Table(
        "feed_items",
        metadata,
        Column("item_id", String(64), primary_key=True),
        Column("org_id", String(100), nullable=False),
        Column("person_id", String(100), nullable=False),
        Column("event_id", String(64), nullable=False),
        Column("kind", String(30), nullable=False),
        Column("goal_id", String(100), nullable=True),
        Column("community_id", String(100), nullable=True),
        Column("source", String(30), nullable=False),
        Column("source_id", String(100), nullable=True),
        Column("occurred_at", DateTime(timezone=True), nullable=False),
        Column("indexed_at", DateTime(timezone=True), nullable=False),
        one_of("source", SOURCES),
        UniqueConstraint("org_id", "person_id", "event_id", name="uq_feed_items_person_event"),
        Index("ix_feed_items_page", "org_id", "person_id", "occurred_at", "event_id"),
        Index("ix_feed_items_event", "org_id", "event_id"),
    )
    return activities, channel_activities, feed_items


def _define_interaction_tables(metadata: MetaData) -> tuple[Table, Table, Table]:
    # The current text of each comment. The version guards against an older text replacing a
    # newer one, and a deletion clears the text for good.
    comments = Table(
        "feed_comments",
        metadata,
        Column("org_id", String(100), primary_key=True),
        Column("comment_id", String(100), primary_key=True),
        Column("goal_id", String(100), nullable=False),
        Column("check_in_id", String(100), nullable=True),
        Column("author_id", String(100), nullable=True),
        Column("activity_id", String(64), nullable=True),
        Column("body", Text, nullable=True),
        Column("body_version", Integer, nullable=False),
        Column("deleted", Boolean, nullable=False),
    )
    # Whether each person's reaction of each kind to each target is on now, by the latest version.
    reactions = Table(
        "feed_reactions",
        metadata,
        Column("org_id", String(100), primary_key=True),
        Column("target_kind", String(20), primary_key=True),
        Column("target_id", String(100), primary_key=True),
        Column("actor_id", String(100), primary_key=True),
        Column("reaction", String(20), primary_key=True),
        Column("goal_id", String(100), nullable=False),
        Column("active", Boolean, nullable=False),
        Column("aggregate_version", Integer, nullable=False),
        Column("occurred_at", DateTime(timezone=True), nullable=False),
    )
    communities = Table(
        "feed_communities",
        metadata,
        Column("org_id", String(100), primary_key=True),
        Column("community_id", String(100), primary_key=True),
        Column("created", Boolean, nullable=False),
        Column("name", String(200), nullable=True),
        Column("name_version", Integer, nullable=False),
    )
    return comments, reactions, communities
