"""The writes of one event to the social read model, shared by the goal and social event appliers."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection

from spm_events.envelope import Envelope
from spm_social.activities import channel_event_ids, record_activity
from spm_social.fanout import GOAL_OWNERS_CHANNEL, Channel
from spm_social.feedsync import reconcile_feed_items, write_new_activity_items
from spm_social.interaction_facts import refresh_reactions_activity
from spm_social.readmodel import SocialTables
from spm_social.subscriptions import Member, MembershipUpdate, record_membership_change, sync_owner_subscriptions


class FeedWriter:
    """The read-model writes of one event, all in the transaction that records its Kafka position."""

    def __init__(
        self, connection: Connection, tables: SocialTables, envelope: Envelope, now: datetime, read_time_threshold: int
    ) -> None:
        self.connection = connection
        self.tables = tables
        self.envelope = envelope
        self.now = now
        self.read_time_threshold = read_time_threshold

    @property
    def org_id(self) -> str:
        return self.envelope.orgid

    def add_activity(self, kind: str, **values: object) -> None:
        """Store the event as an activity of ``kind`` and write the items of its written audience."""
        new = record_activity(
            self.connection,
            self.tables,
            {
                "org_id": self.org_id,
                "event_id": self.envelope.id,
                "kind": kind,
                "actor_id": self.envelope.actorid,
                "occurred_at": self.envelope.time,
            }
            | values,
            self.now,
        )
        if new is None:
            self.reconcile([self.envelope.id])
            return
        activity, channels = new
        write_new_activity_items(self.connection, self.tables, self.org_id, activity, channels, self.now)

    def change_membership(self, member: Member, starts: bool) -> MembershipUpdate:
        """Store a follow, tag or join (or its end) and rewrite the items it adds or removes."""
        update = record_membership_change(
            self.connection, self.tables, self.envelope, member, starts, self.read_time_threshold
        )
        channel = member.channel
        if update.group_turned_read_time:
            # The group's items are read at read time from now on, so every written one goes.
            self.reconcile(channel_event_ids(self.connection, self.tables, self.org_id, channel, None))
        elif update.changed and not update.group_read_time:
            event_ids = channel_event_ids(self.connection, self.tables, self.org_id, channel, update.since)
            self.reconcile(event_ids, frozenset({member.person_id}))
        return update

    def sync_owners(self, goal_id: str) -> None:
        """Give the goal's current owners and co-owners the goal's items, and take them from former ones."""
        changed_people = sync_owner_subscriptions(self.connection, self.tables, self.org_id, goal_id)
        if changed_people:
            channel = Channel(GOAL_OWNERS_CHANNEL, goal_id)
            event_ids = channel_event_ids(self.connection, self.tables, self.org_id, channel, None)
            self.reconcile(event_ids, frozenset(changed_people))

    def refresh_reactions(self, target_kind: str, target_id: str) -> None:
        event_id = refresh_reactions_activity(
            self.connection, self.tables, self.org_id, target_kind, target_id, self.now
        )
        if event_id is not None:
            self.reconcile([event_id])

    def reconcile(self, event_ids: Iterable[str], people: frozenset[str] | None = None) -> None:
        reconcile_feed_items(self.connection, self.tables, self.org_id, event_ids, self.now, people)
