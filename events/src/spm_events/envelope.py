"""The envelope every integration event travels in, with CloudEvents 1.0 attribute names."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

# Event ids are derived from the aggregate id and version, so a relay that publishes the same
# stored event twice (at-least-once delivery) produces the same id and consumers can drop it.
EVENT_ID_NAMESPACE = uuid.UUID("6f0e2b1c-6a53-4f0e-9a55-2f1f4d1c7a10")


def event_id_for(org_id: str, aggregate_id: str, aggregate_version: int) -> str:
    """Return the stable event id of one version of one aggregate of one organisation.

    The org id is part of it, so two organisations whose aggregate ids happen to match never
    share an event id, and no consumer drops one's event as a repeat of the other's.
    """
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{org_id}:{aggregate_id}:{aggregate_version}"))


class Envelope(BaseModel):
    """One integration event: CloudEvents 1.0 attributes plus org, actor and aggregate version.

    ``time`` is event time: when the fact happened in the world (a check-in dated 2020-03-02),
    not when a service stored or published it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(min_length=1, max_length=64)
    source: str = Field(min_length=1, max_length=200, examples=["/spm/goals"])
    type: str = Field(min_length=1, max_length=200, examples=["spm.goals.GoalCreated.v1"])
    subject: str = Field(min_length=1, max_length=200, description="The aggregate id")
    time: AwareDatetime
    dataschema: str = Field(min_length=1, max_length=200)
    datacontenttype: Literal["application/json"] = "application/json"
    orgid: str = Field(min_length=1, max_length=100)
    actorid: str = Field(min_length=1, max_length=100)
    # The read models store versions in 32-bit integer columns (PostgreSQL INTEGER).
    aggregateversion: int = Field(ge=1, le=2**31 - 1)
    data: dict[str, Any]

    @field_validator("id", "source", "type", "subject", "dataschema", "orgid", "actorid")
    @classmethod
    def reject_control_characters(cls, value: str) -> str:
        # PostgreSQL text cannot hold NUL, so such an id would fail every read model's lookup.
        if any(ord(character) < 0x20 or ord(character) == 0x7F for character in value):
            raise ValueError("must not contain control characters (U+0000 to U+001F, U+007F)")
        return value

    @field_validator("time")
    @classmethod
    def normalise_time_to_utc(cls, value: datetime) -> datetime:
        try:
            return value.astimezone(timezone.utc)
        except OverflowError:
            # 0001-01-01T00:00:00+01:00 is valid ISO 8601 but lies before datetime.min in UTC.
            # A ValueError makes pydantic report the field instead of letting OverflowError escape.
            raise ValueError(f"time {value.isoformat()} is out of range once converted to UTC") from None


class InvalidEnvelopeError(ValueError):
    """Raised when bytes from a topic are not a valid envelope."""


def encode_envelope(envelope: Envelope) -> bytes:
    """Serialise an envelope to the JSON bytes published on Kafka."""
    return envelope.model_dump_json().encode("utf-8")


def decode_envelope(raw: bytes | str) -> Envelope:
    """Parse JSON bytes from Kafka into an envelope, raising InvalidEnvelopeError if they are not one."""
    try:
        return Envelope.model_validate_json(raw)
    except ValueError as error:
        raise InvalidEnvelopeError(str(error)) from error
