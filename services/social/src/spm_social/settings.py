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
    rate_limit_commands: int = Field(
        default=60,
        ge=1,
        description="Most social commands one person may send per rate-limit window; more get 429",
    )
    rate_limit_window_seconds: int = Field(
        default=10, ge=1, le=3600, description="Length of the fixed rate-limit window, in seconds"
    )
