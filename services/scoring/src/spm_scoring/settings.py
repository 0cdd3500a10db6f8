"""The scoring service's settings, read once at start-up from SPM_* environment variables."""

from __future__ import annotations

from pydantic import Field

from spm_events.settings import ServiceSettings


class ScoringSettings(ServiceSettings):
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8103, ge=1, le=65535)
    processor_id: str = Field(
        default="spm-scoring",
        pattern=r"^[A-Za-z0-9._-]{1,100}$",
        description="faust app id: the Kafka consumer group and the consumer name the read model records positions under",
    )
    score_publish_interval_seconds: float = Field(
        default=1.0, gt=0, le=3600, description="How often the worker looks for score changes to publish on spm.scores.v1"
    )
    publish_scores: bool = Field(default=True, description="Whether the worker publishes score changes on spm.scores.v1")
