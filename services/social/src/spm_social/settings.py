"""Settings of the social service, read once at start-up from ``SPM_`` environment variables."""

from __future__ import annotations

from pydantic import Field

from spm_events.settings import ServiceSettings

EVENT_STORE_FILE = "social-events.db"
READ_MODEL_FILE = "social-read.db"


class SocialSettings(ServiceSettings):
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8102, ge=1, le=65535)
    processor_id: str = Field(
        default="spm-social-feed",
        min_length=1,
        max_length=100,
        description="faust app id of the feed worker, which is also its Kafka consumer group",
    )
