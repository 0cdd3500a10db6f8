"""HMAC-SHA256 signatures of webhook requests.

The signed text is ``"<timestamp>.<body>"``: the value of the timestamp header (Unix seconds), a
dot, and the raw request body. A receiver recomputes the HMAC with the endpoint's secret and
compares it in constant time with the hex digest after ``sha256=`` in the signature header. It also
rejects a timestamp far from its own clock, so a captured request cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

SIGNATURE_HEADER = "X-SPM-Signature"
TIMESTAMP_HEADER = "X-SPM-Timestamp"
DELIVERY_ID_HEADER = "X-SPM-Delivery-Id"
SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    """Generate an endpoint secret: 32 random bytes, URL-safe base64, with a recognisable prefix."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """Return the signature header value for a body sent at ``timestamp``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, timestamp: int, body: bytes, header_value: str) -> bool:
    """Tell whether ``header_value`` is the signature of ``body`` at ``timestamp``, in constant time."""
    return hmac.compare_digest(signature(secret, timestamp, body), header_value)
