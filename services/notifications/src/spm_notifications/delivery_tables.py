"""Tables of delivery: preferences, mutes, webhook endpoints, planned deliveries and their attempts.

They are defined on the inbox read model's metadata (``open_read_model`` calls
``define_delivery_tables``), so SQL filters can join them with the inbox and one ``create_all``
creates every table of the database.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from spm_notifications.tables import Id, InboxTables, UtcDateTime


@dataclass(frozen=True)
class DeliveryTables:
    person_preferences: Table
    channel_preferences: Table
    mutes: Table
    webhooks: Table
    deliveries: Table
    delivery_attempts: Table
    dispatcher_cursors: Table


def define_delivery_tables(metadata: MetaData) -> DeliveryTables:
    # One row per person who changed a setting. A person without a row has the defaults of preferences.py.
    person_preferences = Table(
        "person_preferences",
        metadata,
        Column("org_id", Id, primary_key=True),
        Column("person_id", Id, primary_key=True),
        Column("time_zone", String(64), nullable=False),
        # Local wall-clock times "HH:MM". Both null means no quiet hours.
        Column("quiet_start", String(5), nullable=True),
        Column("quiet_end", String(5), nullable=True),
        Column("email_digest", String(20), nullable=False),
        Column("updated_at", UtcDateTime, nullable=False),
    )
    # Only the switches a person set. A missing (kind, channel) row means the channel's default.
    channel_preferences = Table(
        "channel_preferences",
        metadata,
        Column("org_id", Id, primary_key=True),
        Column("person_id", Id, primary_key=True),
        Column("kind", String(50), primary_key=True),
        Column("channel", String(20), primary_key=True),
        Column("enabled", Boolean, nullable=False),
    )
    mutes = Table(
        "mutes",
        metadata,
        Column("org_id", Id, primary_key=True),
        Column("person_id", Id, primary_key=True),
        Column("target_type", String(20), primary_key=True),
        Column("target_id", Id, primary_key=True),
        Column("created_at", UtcDateTime, nullable=False),
    )
    webhooks = Table(
        "webhooks",
        metadata,
        Column("webhook_id", String(36), primary_key=True),
        Column("org_id", Id, nullable=False),
        Column("person_id", Id, nullable=False),
        Column("url", String(2000), nullable=False),
        Column("format", String(10), nullable=False),
        # A JSON list of kinds, or null for every kind.
        Column("kinds", Text, nullable=True),
        # Kept in clear text because signing needs it. See "Known limitations" in the README.
        Column("secret", String(100), nullable=False),
        Column("created_at", UtcDateTime, nullable=False),
        Column("deleted_at", UtcDateTime, nullable=True),
        Index("ix_webhooks_person", "org_id", "person_id"),
    )
    deliveries = Table(
        "deliveries",
        metadata,
        # A UUID 5 of (notification, channel, target), so planning a notification again yields the same id.
        Column("delivery_id", String(36), primary_key=True),
        Column("notification_id", String(36), nullable=False),
        Column("sequence", BigInteger, nullable=False),
        Column("org_id", Id, nullable=False),
        Column("recipient_id", Id, nullable=False),
        Column("channel", String(20), nullable=False),
        # The webhook id for webhooks, the recipient id for e-mail.
        Column("target", Id, nullable=False),
        # pending, sent, dead (no more attempts) or dropped (no longer due: hidden, muted, switched off)
        Column("status", String(20), nullable=False),
        Column("attempts", Integer, nullable=False),
        Column("due_at", UtcDateTime, nullable=False),
        Column("created_at", UtcDateTime, nullable=False),
        Column("finished_at", UtcDateTime, nullable=True),
        Column("last_status_code", Integer, nullable=True),
        Column("last_error", Text, nullable=True),
        UniqueConstraint("notification_id", "channel", "target", name="uq_deliveries_notification_channel_target"),
        Index("ix_deliveries_due", "status", "channel", "due_at"),
        Index("ix_deliveries_target", "channel", "target", "sequence"),
    )
    delivery_attempts = Table(
        "delivery_attempts",
        metadata,
        Column("delivery_id", String(36), primary_key=True),
        Column("attempt", Integer, primary_key=True),
        Column("attempted_at", UtcDateTime, nullable=False),
        Column("status_code", Integer, nullable=True),
        Column("error", Text, nullable=True),
        Column("duration_ms", Integer, nullable=False),
    )
    # The last inbox sequence the dispatcher has planned deliveries for.
    dispatcher_cursors = Table(
        "dispatcher_cursors",
        metadata,
        Column("name", String(100), primary_key=True),
        Column("sequence", BigInteger, nullable=False),
    )
    return DeliveryTables(
        person_preferences=person_preferences,
        channel_preferences=channel_preferences,
        mutes=mutes,
        webhooks=webhooks,
        deliveries=deliveries,
        delivery_attempts=delivery_attempts,
        dispatcher_cursors=dispatcher_cursors,
    )


def delivery_tables_of(tables: InboxTables) -> DeliveryTables:
    """Return the delivery tables defined on the same metadata as ``tables``."""
    defined = tables.inbox.metadata.tables
    return DeliveryTables(**{name: defined[name] for name in DeliveryTables.__dataclass_fields__})
