"""E-mail delivery: addresses from the social service's people directory, messages, and SMTP sending.

Addresses are personal data kept only by the social service. The dispatcher fetches them right
before a send and keeps them in memory for that send only.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Iterable

import aiosmtplib
import httpx

from spm_events.auth import issue_token

logger = logging.getLogger(__name__)

DIRECTORY_PAGE_SIZE = 500
DIRECTORY_READER_ID = "spm-notifications-dispatcher"
DELIVERY_IDS_HEADER = "X-SPM-Delivery-Ids"
MESSAGE_ID_NAMESPACE = uuid.UUID("4f0c3f55-5a0e-4d8f-9d47-0c1c2f6a9b13")


class DirectoryError(RuntimeError):
    """Raised when the people directory cannot be read; the send is retried later."""


@dataclass(frozen=True)
class DirectoryPerson:
    """An active person's e-mail address and team, as the people directory returns them."""

    email: str | None
    team: str | None


class PeopleDirectoryClient:
    """Reads people from the social API's ``GET /people`` with an admin token of the org.

    The directory is looked up by handle only, so this pages through the org's people and keeps
    the entries of the requested person ids.
    """

    def __init__(self, base_url: str, jwt_secret: str, timeout_seconds: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.jwt_secret = jwt_secret
        self.timeout_seconds = timeout_seconds

    async def people(self, org_id: str, person_ids: Iterable[str]) -> dict[str, DirectoryPerson]:
        """Return person id -> e-mail address and team of the active people among ``person_ids``."""
        requested = set(person_ids)
        token = issue_token(self.jwt_secret, org_id, DIRECTORY_READER_ID, timedelta(minutes=5), admin=True)
        found: dict[str, DirectoryPerson] = {}
        cursor: str | None = None
        async with httpx.AsyncClient(base_url=self.base_url, timeout=self.timeout_seconds) as client:
            while True:
                params: dict[str, str | int] = {"limit": DIRECTORY_PAGE_SIZE}
                if cursor is not None:
                    params["cursor"] = cursor
                try:
                    response = await client.get("/people", params=params, headers={"Authorization": f"Bearer {token}"})
                except httpx.HTTPError as error:
                    raise DirectoryError(f"people directory request failed: {type(error).__name__}: {error}") from None
                if response.status_code != 200:
                    raise DirectoryError(f"people directory returned HTTP {response.status_code} for org {org_id}")
                page = response.json()
                for person in page["people"]:
                    if person["person_id"] in requested and person.get("active", True):
                        found[person["person_id"]] = DirectoryPerson(person.get("email") or None, person.get("team"))
                cursor = page.get("next_cursor")
                if cursor is None or len(found) == len(requested):
                    return found


@dataclass(frozen=True)
class DigestItem:
    """One line of a mail: a notification, or a group of them shown as one, as the inbox shows it."""

    delivery_ids: tuple[str, ...]
    message: str
    kind: str
    occurred_at: datetime


def build_message(
    sender: str,
    recipient_address: str,
    items: list[DigestItem],
    digest: str,
    sent_at: datetime,
) -> EmailMessage:
    """Build one mail for a recipient: a single notification, or a digest listing several.

    The Message-ID derives from the delivery ids, so a mail sent again after a crash carries the
    same Message-ID and the ``X-SPM-Delivery-Ids`` header lists the same ids.
    """
    ordered = sorted(items, key=lambda item: (item.occurred_at, item.delivery_ids))
    delivery_ids = [delivery_id for item in ordered for delivery_id in item.delivery_ids]
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient_address
    message["Date"] = format_datetime(sent_at)
    message_uuid = uuid.uuid5(MESSAGE_ID_NAMESPACE, ",".join(sorted(delivery_ids)))
    message["Message-ID"] = f"<{message_uuid}@spm-notifications>"
    # Comma and space, so a long list folds over several lines instead of being encoded.
    message[DELIVERY_IDS_HEADER] = ", ".join(delivery_ids)
    if len(ordered) == 1 and digest == "immediate":
        message["Subject"] = ordered[0].message
    else:
        label = {"daily": "Your daily digest", "weekly": "Your weekly digest"}.get(digest, "Your notifications")
        count = len(delivery_ids)
        message["Subject"] = f"{label}: {count} notification{'s' if count != 1 else ''}"
    lines = [f"- {item.message} ({item.occurred_at:%Y-%m-%d %H:%M} UTC)" for item in ordered]
    footer = "\nChange what you receive with PATCH /preferences on the notifications API.\n"
    message.set_content("\n".join(lines) + "\n" + footer)
    return message


async def send_message(message: EmailMessage, host: str, port: int, timeout_seconds: float) -> None:
    """Send through the SMTP server. Raises aiosmtplib.SMTPException or OSError on failure."""
    await aiosmtplib.send(message, hostname=host, port=port, timeout=timeout_seconds)
