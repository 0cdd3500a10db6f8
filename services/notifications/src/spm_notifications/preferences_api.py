"""Routes under /preferences: a person reads and changes their own delivery preferences and mutes."""

# No "from __future__ import annotations": FastAPI resolves the route annotations at definition time.

import functools
import logging
import zoneinfo
from datetime import datetime
from typing import Annotated, Callable, Literal

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import Engine

from spm_events.auth import Principal
from spm_events.http import UNAUTHORIZED, error_responses

from spm_notifications.preferences import (
    CHANNELS,
    COMMUNITY,
    DIGESTS,
    GOAL,
    PreferenceStore,
    Preferences,
    QuietHours,
    format_local_time,
    parse_local_time,
)
from spm_notifications.rules import NOTIFICATION_KINDS
from spm_notifications.tables import InboxTables

logger = logging.getLogger(__name__)

TARGET_TYPES = {"goals": GOAL, "communities": COMMUNITY}
# Goal and community ids are UUIDs today. The pattern also admits the other ids envelopes carry.
TARGET_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,99}$"


@functools.cache
def _time_zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


class QuietHoursBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: str = Field(description="Local time HH:MM when quiet hours begin", examples=["22:00"])
    end: str = Field(description="Local time HH:MM when they end; before start means over midnight", examples=["07:00"])

    @field_validator("start", "end")
    @classmethod
    def _valid_time(cls, value: str) -> str:
        parse_local_time(value)
        return value


class PreferencesPatch(BaseModel):
    """A partial change: fields left out keep their value; ``quiet_hours: null`` removes quiet hours."""

    model_config = ConfigDict(extra="forbid")

    time_zone: str | None = Field(default=None, max_length=64, description="IANA time zone, e.g. Europe/Berlin")
    quiet_hours: QuietHoursBody | None = None
    email_digest: Literal["immediate", "daily", "weekly"] | None = None
    channels: dict[str, dict[str, bool]] | None = Field(
        default=None,
        description="kind -> channel -> on/off, e.g. {\"followed_goal_check_in\": {\"email\": false}}",
    )

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None and value not in _time_zone_names():
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as Europe/Berlin or UTC")
        return value

    @field_validator("channels")
    @classmethod
    def _known_kinds_and_channels(cls, value: dict[str, dict[str, bool]] | None) -> dict[str, dict[str, bool]] | None:
        if value is None:
            return None
        for kind, switches in value.items():
            if kind not in NOTIFICATION_KINDS:
                raise ValueError(f"unknown notification kind {kind!r}; expected one of {', '.join(NOTIFICATION_KINDS)}")
            for channel in switches:
                if channel not in CHANNELS:
                    raise ValueError(f"unknown channel {channel!r} for kind {kind!r}; expected one of {', '.join(CHANNELS)}")
        return value


class QuietHoursOut(BaseModel):
    start: str
    end: str


class MutedOut(BaseModel):
    goals: list[str]
    communities: list[str]


class PreferencesOut(BaseModel):
    time_zone: str
    quiet_hours: QuietHoursOut | None
    email_digest: str
    channels: dict[str, dict[str, bool]] = Field(description="Every kind and channel with its effective switch")
    muted: MutedOut
    kinds: dict[str, str] = Field(description="Every notification kind with what it is about")


class MuteOut(BaseModel):
    target_type: str
    target_id: str
    muted: bool


def _preferences_out(preferences: Preferences, mutes: dict[str, list[str]]) -> PreferencesOut:
    quiet = preferences.quiet_hours
    return PreferencesOut(
        time_zone=preferences.time_zone,
        quiet_hours=None if quiet is None else QuietHoursOut(start=format_local_time(quiet.start), end=format_local_time(quiet.end)),
        email_digest=preferences.email_digest,
        channels={
            kind: {channel: preferences.enabled(kind, channel) for channel in CHANNELS} for kind in NOTIFICATION_KINDS
        },
        muted=MutedOut(goals=mutes[GOAL], communities=mutes[COMMUNITY]),
        kinds=dict(NOTIFICATION_KINDS),
    )


def _changed(current: Preferences, patch: PreferencesPatch) -> Preferences:
    quiet = current.quiet_hours
    if "quiet_hours" in patch.model_fields_set:
        body = patch.quiet_hours
        quiet = None if body is None else QuietHours(parse_local_time(body.start), parse_local_time(body.end))
    switches = dict(current.switches)
    for kind, channel_switches in (patch.channels or {}).items():
        for channel, enabled in channel_switches.items():
            switches[(kind, channel)] = enabled
    return Preferences(
        time_zone=patch.time_zone or current.time_zone,
        quiet_hours=quiet,
        email_digest=patch.email_digest or current.email_digest,
        switches=switches,
    )


def preference_routes(
    engine: Engine,
    tables: InboxTables,
    current_principal: Callable[..., Principal],
    clock: Callable[[], datetime],
) -> APIRouter:
    router = APIRouter(tags=["preferences"], responses=error_responses({401: UNAUTHORIZED}))
    store = PreferenceStore(tables)
    CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
    TargetType = Annotated[Literal["goals", "communities"], Path(description="goals or communities")]
    TargetId = Annotated[str, Path(pattern=TARGET_ID_PATTERN, description="The goal's or community's id")]

    @router.get("/preferences", response_model=PreferencesOut)
    def read_preferences(principal: CurrentPrincipal) -> PreferencesOut:
        with engine.connect() as connection:
            preferences = store.load(connection, principal.org_id, principal.person_id)
            mutes = store.mutes(connection, principal.org_id, principal.person_id)
        return _preferences_out(preferences, mutes)

    @router.patch("/preferences", response_model=PreferencesOut)
    def change_preferences(patch: PreferencesPatch, principal: CurrentPrincipal) -> PreferencesOut:
        with engine.begin() as connection:
            current = store.load(connection, principal.org_id, principal.person_id)
            changed = _changed(current, patch)
            store.save(connection, principal.org_id, principal.person_id, changed, clock())
            mutes = store.mutes(connection, principal.org_id, principal.person_id)
        logger.info("changed preferences org_id=%s person_id=%s fields=%s",
                    principal.org_id, principal.person_id, ",".join(sorted(patch.model_fields_set)))
        return _preferences_out(changed, mutes)

    @router.put("/preferences/mutes/{target_type}/{target_id}", response_model=MuteOut)
    def mute(target_type: TargetType, target_id: TargetId, principal: CurrentPrincipal) -> MuteOut:
        with engine.begin() as connection:
            store.mute(connection, principal.org_id, principal.person_id, TARGET_TYPES[target_type], target_id, clock())
        logger.info("muted org_id=%s person_id=%s %s=%s", principal.org_id, principal.person_id, target_type, target_id)
        return MuteOut(target_type=TARGET_TYPES[target_type], target_id=target_id, muted=True)

    @router.delete("/preferences/mutes/{target_type}/{target_id}", response_model=MuteOut)
    def unmute(target_type: TargetType, target_id: TargetId, principal: CurrentPrincipal) -> MuteOut:
        with engine.begin() as connection:
            store.unmute(connection, principal.org_id, principal.person_id, TARGET_TYPES[target_type], target_id)
        logger.info("unmuted org_id=%s person_id=%s %s=%s", principal.org_id, principal.person_id, target_type, target_id)
        return MuteOut(target_type=TARGET_TYPES[target_type], target_id=target_id, muted=False)

    return router
