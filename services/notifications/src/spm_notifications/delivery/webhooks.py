"""Webhook delivery: the target policy against SSRF, the request bodies, one signed POST and its outcome."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import random
import socket
import time
from dataclasses import dataclass
from typing import Any, Sequence
from urllib.parse import urlsplit

import httpx

from spm_notifications.delivery.signing import DELIVERY_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, signature

JSON_FORMAT = "json"
SLACK_FORMAT = "slack"
FORMATS = (JSON_FORMAT, SLACK_FORMAT)

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class WebhookTargetError(ValueError):
    """Raised for a webhook URL this service must not call."""


def parse_networks(text: str) -> tuple[IpNetwork, ...]:
    """Parse a comma-separated list of CIDR networks or addresses, e.g. ``127.0.0.1/32,10.20.0.0/16``."""
    networks = []
    for part in text.split(","):
        part = part.strip()
        if part:
            networks.append(ipaddress.ip_network(part, strict=False))
    return tuple(networks)


@dataclass(frozen=True)
class TargetPolicy:
    """The rule for which webhook URLs may be called.

    A URL must be http or https, without user info, and every address its host resolves to must
    be a global (public) address or lie in one of ``allowed_networks``. Loopback, private,
    link-local (the cloud metadata address 169.254.169.254 among them) and other special
    addresses are rejected unless listed.
    """

    allowed_networks: tuple[IpNetwork, ...] = ()

    def check_url(self, url: str) -> str:
        """Check the URL's form and return its host, or raise WebhookTargetError."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise WebhookTargetError(f"url scheme {parts.scheme or '(none)'!r} is not allowed; use http or https")
        if not parts.hostname:
            raise WebhookTargetError("url has no host; use a URL such as https://hooks.example.com/spm")
        if parts.username is not None or parts.password is not None:
            raise WebhookTargetError("url must not carry a user name or password; authenticate with the signature header")
        try:
            parts.port
        except ValueError:
            raise WebhookTargetError("url has an invalid port") from None
        return parts.hostname

    def check_addresses(self, host: str, addresses: Sequence[str]) -> None:
        if not addresses:
            raise WebhookTargetError(f"host {host!r} did not resolve to any address")
        for text in addresses:
            address = ipaddress.ip_address(text.split("%", 1)[0])
            if any(address in network for network in self.allowed_networks):
                continue
            if not address.is_global:
                raise WebhookTargetError(
                    f"host {host!r} resolves to {address}, a non-public address; webhooks may only call public "
                    "addresses or networks listed in SPM_WEBHOOK_ALLOWED_NETWORKS"
                )

    def check(self, url: str) -> None:
        """Check the URL and the addresses its host resolves to now (blocking DNS lookup)."""
        host = self.check_url(url)
        self.check_addresses(host, _resolve(host))

    async def check_async(self, url: str) -> None:
        host = self.check_url(url)
        addresses = await asyncio.to_thread(_resolve, host)
        self.check_addresses(host, addresses)


def _resolve(host: str) -> list[str]:
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except socket.gaierror as error:
        raise WebhookTargetError(f"host {host!r} could not be resolved: {error.strerror}") from None
    return sorted({str(info[4][0]) for info in infos})


def webhook_body(notification: dict[str, Any], delivery_id: str, body_format: str) -> bytes:
    """Build the request body: the notification as JSON, or a body Slack incoming webhooks accept."""
    if body_format == SLACK_FORMAT:
        context = f"{notification['kind']} at {notification['occurred_at']}"
        body: dict[str, Any] = {
            "text": notification["message"],
            "blocks": [
                {"type": "section", "text": {"type": "plain_text", "text": notification["message"]}},
                {"type": "context", "elements": [{"type": "plain_text", "text": context}]},
            ],
        }
    else:
        body = {"delivery_id": delivery_id, **notification}
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


@dataclass(frozen=True)
class AttemptResult:
    succeeded: bool
    # Whether a later attempt may succeed: 5xx, 408, 429, timeouts and connection errors.
    retryable: bool
    status_code: int | None
    error: str | None
    duration_ms: int


def is_retryable_status(status_code: int) -> bool:
    return status_code >= 500 or status_code in (408, 429)


async def post_webhook(
    client: httpx.AsyncClient,
    url: str,
    secret: str,
    delivery_id: str,
    body: bytes,
    timestamp: int,
    timeout_seconds: float,
) -> AttemptResult:
    """POST one signed body and classify the outcome. Redirects are not followed."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "spm-notifications-dispatcher",
        DELIVERY_ID_HEADER: delivery_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, timestamp, body),
    }
    started = time.monotonic()
    try:
        response = await client.post(url, content=body, headers=headers, timeout=timeout_seconds, follow_redirects=False)
    except httpx.TimeoutException as error:
        return AttemptResult(False, True, None, f"timed out after {timeout_seconds}s: {type(error).__name__}",
                             _elapsed_ms(started))
    except httpx.TransportError as error:
        return AttemptResult(False, True, None, f"connection failed: {type(error).__name__}: {error}", _elapsed_ms(started))
    duration_ms = _elapsed_ms(started)
    status_code = response.status_code
    if 200 <= status_code < 300:
        return AttemptResult(True, False, status_code, None, duration_ms)
    error = f"receiver returned HTTP {status_code}"
    return AttemptResult(False, is_retryable_status(status_code), status_code, error, duration_ms)


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def backoff_seconds(attempt: int, base_seconds: float, max_seconds: float, rng: random.Random) -> float:
    """Return the wait after failed attempt ``attempt`` (1-based): exponential, capped, with jitter.

    The cap applies first; the wait is then drawn uniformly from its upper half, so many
    deliveries that failed together do not retry together.
    """
    ceiling = min(max_seconds, base_seconds * 2 ** (attempt - 1))
    return rng.uniform(ceiling / 2, ceiling)
