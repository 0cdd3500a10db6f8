"""Settings of the goals service, read once at start-up from SPM_* environment variables."""

from __future__ import annotations

from pydantic import Field

from spm_events.settings import ServiceSettings

EVENT_STORE_FILE = "goals-events.db"
READ_DATABASE_FILE = "goals-read.db"


class GoalsSettings(ServiceSettings):
    http_host: str = Field(default="127.0.0.1", description="Address the HTTP API listens on")
    http_port: int = Field(default=8101, ge=1, le=65535, description="TCP port the HTTP API listens on")
    processor_id: str = Field(
        default="spm-goals-collaborators",
        pattern=r"^[A-Za-z0-9._-]{1,100}$",
        description="faust app id of the collaborator worker: its Kafka consumer group and the name its positions are recorded under",
    )
