"""The SPM event contract: the envelope, one versioned schema per event type, and the topic registry.

Importing this package needs only pydantic, so analytics consumers can depend on it alone.
The modules for services (relay, processor, auth, HTTP guards) need the ``service`` extra.
"""

from spm_events.envelope import Envelope, decode_envelope, encode_envelope
from spm_events.registry import EVENT_TYPES, TOPICS, EventType, event_type_for, new_envelope

__all__ = [
    "EVENT_TYPES",
    "TOPICS",
    "Envelope",
    "EventType",
    "decode_envelope",
    "encode_envelope",
    "event_type_for",
    "new_envelope",
]
