"""Settings of the notifications service, read once at start-up."""

from __future__ import annotations

from pydantic import Field

from spm_events.settings import ServiceSettings

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
    consumer_session_timeout_seconds: float = Field(
        default=60.0,
        ge=6.0,
        le=90.0,
        description=(
            "Seconds without a heartbeat before the broker drops the worker from its consumer group. A worker "
            "restarted after a crash gets its partitions only once the old member's session has expired"
        ),
    )
