"""Settings of the notifications service, read once at start-up."""

from __future__ import annotations

from pydantic import Field, field_validator

from spm_events.settings import ServiceSettings

from spm_notifications.delivery.webhooks import parse_networks

READ_MODEL_FILE = "notifications-read.db"


class NotificationsSettings(ServiceSettings):
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8104, ge=1, le=65535)
    processor_id: str = Field(
        default="spm-notifications",
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9._-]+$",
        description="Kafka consumer group id of the worker and the consumer name its read-model positions are stored under",
    )

    # Delivery: live push, the dispatcher, webhooks and e-mail.
    stream_poll_interval_seconds: float = Field(
        default=1.0, gt=0, le=60, description="Seconds between inbox reads of an open /inbox/stream"
    )
    stream_ping_seconds: float = Field(
        default=15.0, gt=0, le=300, description="Seconds between keep-alive comments on an idle /inbox/stream"
    )
    dispatcher_poll_interval_seconds: float = Field(
        default=1.0, gt=0, le=60, description="Seconds the dispatcher waits after a round that found nothing to do"
    )
    dispatcher_batch_size: int = Field(
        default=200, ge=1, le=5000, description="Inbox rows planned, and deliveries sent, per dispatcher round"
    )
    delivery_max_attempts: int = Field(
        default=6, ge=1, le=50, description="Attempts of a webhook or e-mail delivery before it is dead-lettered"
    )
    delivery_backoff_base_seconds: float = Field(
        default=5.0, gt=0, description="Wait before the second attempt; each later wait doubles, with jitter"
    )
    delivery_backoff_max_seconds: float = Field(default=3600.0, gt=0, description="Maximum wait between two attempts")
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=120, description="Timeout of one webhook request")
    webhook_concurrency: int = Field(default=8, ge=1, le=100, description="Webhook requests in flight at once")
    webhook_allowed_networks: str = Field(
        default="",
        description=(
            "Comma-separated CIDR networks that webhooks may call although they are not public, e.g. "
            "127.0.0.1/32 for local tests. Public addresses are always allowed"
        ),
    )
    social_api_url: str | None = Field(
        default=None, description="Base URL of the social API, whose people directory stores e-mail addresses"
    )
    smtp_host: str | None = Field(
        default=None, description="SMTP server for e-mail. While unset, no e-mail is planned or sent"
    )
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_from: str = Field(default="SPM notifications <notifications@localhost>", description="From header of e-mails")
    smtp_timeout_seconds: float = Field(default=30.0, gt=0, le=300)
    digest_local_hour: int = Field(
        default=8, ge=0, le=23, description="Local hour (in each person's time zone) when daily and weekly digests go out"
    )

    @field_validator("webhook_allowed_networks")
    @classmethod
    def _valid_networks(cls, value: str) -> str:
        parse_networks(value)
        return value
