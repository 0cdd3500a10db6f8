"""Each person's delivery preferences: channel switches per kind, mutes, digest cadence, time zone, quiet hours.

Also the SQL condition that hides muted and switched-off notifications from the inbox and the
live stream, and the time arithmetic the dispatcher uses for quiet hours and digests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, timezone
from typing import Iterable
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Connection, and_, delete, exists, not_, select

from spm_events.auth import Principal

from spm_notifications.delivery_tables import delivery_tables_of
from spm_notifications.tables import InboxTables, insert_ignoring_duplicates, upsert

IN_APP = "in_app"
PUSH = "push"
WEBHOOK = "webhook"
EMAIL = "email"
CHANNELS = (IN_APP, PUSH, WEBHOOK, EMAIL)

IMMEDIATE = "immediate"
DAILY = "daily"
WEEKLY = "weekly"
DIGESTS = (IMMEDIATE, DAILY, WEEKLY)

GOAL = "goal"
COMMUNITY = "community"
MUTE_TARGETS = (GOAL, COMMUNITY)

DEFAULT_TIME_ZONE = "UTC"
DEFAULT_DIGEST = DAILY


@dataclass(frozen=True)
class QuietHours:
    """Local wall-clock times. ``start`` after ``end`` means the range runs over midnight."""

    start: time
    end: time

    def contains(self, local: time) -> bool:
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


@dataclass(frozen=True)
class Preferences:
    time_zone: str = DEFAULT_TIME_ZONE
    quiet_hours: QuietHours | None = None
    email_digest: str = DEFAULT_DIGEST
    # (kind, channel) -> enabled, only for the switches the person set.
    switches: dict[tuple[str, str], bool] = field(default_factory=dict)

    def enabled(self, kind: str, channel: str) -> bool:
        """Tell whether ``kind`` goes out on ``channel``. Every channel is on until the person turns it off."""
        return self.switches.get((kind, channel), True)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def is_quiet(self, instant: datetime) -> bool:
        if self.quiet_hours is None:
            return False
        return self.quiet_hours.contains(instant.astimezone(self.zone).time())

    def end_of_quiet(self, instant: datetime) -> datetime:
        """Return the first moment at or after ``instant`` outside quiet hours, as a UTC datetime."""
        if self.quiet_hours is None or not self.is_quiet(instant):
            return instant
        local = instant.astimezone(self.zone)
        end = datetime.combine(local.date(), self.quiet_hours.end, tzinfo=self.zone)
        if end <= local:
            end = datetime.combine(local.date() + timedelta(days=1), self.quiet_hours.end, tzinfo=self.zone)
        # A wall-clock time skipped by a daylight-saving change normalises to a real instant.
        return end.astimezone(timezone.utc)

    def next_digest_at(self, instant: datetime, local_hour: int) -> datetime:
        """Return when the digest that collects a notification planned at ``instant`` goes out.

        Daily: the next ``local_hour``:00 in the person's zone after ``instant``. Weekly: the next
        Monday at that hour. Immediate: ``instant`` itself. Quiet hours are applied when sending.
        """
        if self.email_digest == IMMEDIATE:
            return instant
        local = instant.astimezone(self.zone)
        slot = datetime.combine(local.date(), time(local_hour), tzinfo=self.zone)
        if slot <= local:
            slot += timedelta(days=1)
        if self.email_digest == WEEKLY:
            slot += timedelta(days=(7 - slot.weekday()) % 7)
        # Rebuild from the wall-clock fields, so a daylight-saving change between now and then keeps the local hour.
        slot = datetime.combine(slot.date(), time(local_hour), tzinfo=self.zone)
        return slot.astimezone(timezone.utc)


def parse_local_time(text: str) -> time:
    """Parse "HH:MM" (24-hour clock) or raise ValueError."""
    hours, separator, minutes = text.partition(":")
    if separator != ":" or len(hours) != 2 or len(minutes) != 2 or not (hours + minutes).isdigit():
        raise ValueError(f"time {text!r} is not in the form HH:MM, for example 22:30")
    value_hours, value_minutes = int(hours), int(minutes)
    if value_hours > 23 or value_minutes > 59:
        raise ValueError(f"time {text!r} is out of range: hours 00-23, minutes 00-59")
    return time(value_hours, value_minutes)


def format_local_time(value: time) -> str:
    return value.strftime("%H:%M")


class PreferenceStore:
    """Reads and writes preferences and mutes in a connection's transaction."""

    def __init__(self, tables: InboxTables) -> None:
        self.tables = delivery_tables_of(tables)

    def load(self, connection: Connection, org_id: str, person_id: str) -> Preferences:
        return self.load_many(connection, org_id, [person_id])[person_id]

    def load_many(self, connection: Connection, org_id: str, person_ids: Iterable[str]) -> dict[str, Preferences]:
        """Return the preferences of each person, with the defaults for a person who set nothing."""
        wanted = sorted(set(person_ids))
        found: dict[str, Preferences] = {person_id: Preferences() for person_id in wanted}
        if not wanted:
            return found
        people, switches = self.tables.person_preferences, self.tables.channel_preferences
        for row in connection.execute(
            select(people).where(people.c.org_id == org_id, people.c.person_id.in_(wanted))
        ):
            quiet = None
            if row.quiet_start is not None and row.quiet_end is not None:
                quiet = QuietHours(parse_local_time(row.quiet_start), parse_local_time(row.quiet_end))
            found[row.person_id] = Preferences(row.time_zone, quiet, row.email_digest, {})
        for row in connection.execute(
            select(switches).where(switches.c.org_id == org_id, switches.c.person_id.in_(wanted))
        ):
            found[row.person_id].switches[(row.kind, row.channel)] = row.enabled
        return found

    def save(
        self,
        connection: Connection,
        org_id: str,
        person_id: str,
        preferences: Preferences,
        updated_at: datetime,
    ) -> None:
        """Store the whole preference set, replacing the person's previous one."""
        quiet = preferences.quiet_hours
        upsert(connection, self.tables.person_preferences, {
            "org_id": org_id,
            "person_id": person_id,
            "time_zone": preferences.time_zone,
            "quiet_start": None if quiet is None else format_local_time(quiet.start),
            "quiet_end": None if quiet is None else format_local_time(quiet.end),
            "email_digest": preferences.email_digest,
            "updated_at": updated_at,
        })
        switches = self.tables.channel_preferences
        connection.execute(delete(switches).where(switches.c.org_id == org_id, switches.c.person_id == person_id))
        insert_ignoring_duplicates(connection, switches, [
            {"org_id": org_id, "person_id": person_id, "kind": kind, "channel": channel, "enabled": enabled}
            for (kind, channel), enabled in sorted(preferences.switches.items())
        ])

    def mutes(self, connection: Connection, org_id: str, person_id: str) -> dict[str, list[str]]:
        mutes = self.tables.mutes
        result: dict[str, list[str]] = {target: [] for target in MUTE_TARGETS}
        for row in connection.execute(
            select(mutes.c.target_type, mutes.c.target_id)
            .where(mutes.c.org_id == org_id, mutes.c.person_id == person_id)
            .order_by(mutes.c.target_type, mutes.c.target_id)
        ):
            result[row.target_type].append(row.target_id)
        return result

    def mute(
        self, connection: Connection, org_id: str, person_id: str, target_type: str, target_id: str, at: datetime
    ) -> None:
        insert_ignoring_duplicates(connection, self.tables.mutes, [{
            "org_id": org_id, "person_id": person_id, "target_type": target_type, "target_id": target_id,
            "created_at": at,
        }])

    def unmute(self, connection: Connection, org_id: str, person_id: str, target_type: str, target_id: str) -> None:
        mutes = self.tables.mutes
        connection.execute(delete(mutes).where(
            mutes.c.org_id == org_id,
            mutes.c.person_id == person_id,
            mutes.c.target_type == target_type,
            mutes.c.target_id == target_id,
        ))


def is_muted(mutes: dict[str, list[str]], goal_id: str, community_id: str | None) -> bool:
    return goal_id in mutes[GOAL] or (community_id is not None and community_id in mutes[COMMUNITY])


def preference_condition(tables: InboxTables, reader: Principal, channel: str) -> ColumnElement[bool]:
    """Build a condition true for inbox rows that ``reader`` has neither muted nor switched off on ``channel``.

    A row is hidden when its goal is muted, when its ``community_id`` (where the inbox has that
    column) is muted, or when the reader turned the row's kind off for the channel.
    """
    inbox = tables.inbox
    delivery = delivery_tables_of(tables)
    mutes, switches = delivery.mutes, delivery.channel_preferences
    own_mute = and_(mutes.c.org_id == reader.org_id, mutes.c.person_id == reader.person_id)
    hidden = [
        exists().where(own_mute, mutes.c.target_type == GOAL, mutes.c.target_id == inbox.c.goal_id),
        exists().where(
            switches.c.org_id == reader.org_id,
            switches.c.person_id == reader.person_id,
            switches.c.kind == inbox.c.kind,
            switches.c.channel == channel,
            switches.c.enabled.is_(False),
        ),
    ]
    if "community_id" in inbox.c:
        hidden.append(
            exists().where(own_mute, mutes.c.target_type == COMMUNITY, mutes.c.target_id == inbox.c.community_id)
        )
    return and_(*[not_(condition) for condition in hidden])

