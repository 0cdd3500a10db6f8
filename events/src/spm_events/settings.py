"""Settings shared by every service; each service subclasses this once and reads it once at start-up."""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import unquote, urlsplit

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEVELOPMENT_JWT_SECRET = "spm-development-secret-not-for-production-use"


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SPM_", extra="ignore")

    data_dir: Path = Field(default=Path("var"), description="Directory for the SQLite databases")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of a PostgreSQL database (postgresql+psycopg://...); unset means SQLite files under data_dir",
    )
    kafka_bootstrap: str = Field(default="127.0.0.1:9092", description="Kafka bootstrap servers, comma-separated")
    jwt_secret: SecretStr = Field(default=SecretStr(DEVELOPMENT_JWT_SECRET), min_length=32)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, description="Largest accepted request body, in bytes")
    max_json_depth: int = Field(default=32, ge=2, description="Deepest accepted nesting of a JSON request body")
    consumer_session_timeout_seconds: float = Field(
        default=20.0,
        ge=6.0,
        le=90.0,
        description=(
            "Seconds without a heartbeat before the broker drops a stream processor from its consumer group. "
            "A processor restarted after a crash gets its partitions back only once the old member's session "
            "has expired, so this bounds the pause after a crash"
        ),
    )
    log_level: str = "INFO"

    @property
    def uses_postgres(self) -> bool:
        return bool(self.database_url) and self.database_url.startswith("postgresql")

    def sqlalchemy_url(self, sqlite_file: str) -> str:
        """Return the read-model database URL: PostgreSQL if configured, else a SQLite file under data_dir."""
        if self.uses_postgres:
            return self.database_url  # type: ignore[return-value]
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(self.data_dir / sqlite_file).resolve()}"

    def event_store_env(self, sqlite_file: str) -> dict[str, str]:
        """Return the ``eventsourcing`` persistence settings for this service's event store."""
        if not self.uses_postgres:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            return {
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": str((self.data_dir / sqlite_file).resolve()),
                "SQLITE_LOCK_TIMEOUT": "10",
            }
        parts = urlsplit(self.database_url)
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": parts.path.lstrip("/"),
            "POSTGRES_HOST": parts.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(parts.port or 5432),
            "POSTGRES_USER": unquote(parts.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(parts.password or ""),
            "POSTGRES_CONN_MAX_AGE": "300",
        }


def configure_logging(level: str) -> None:
    """Log to stderr as key=value lines that carry the process name; ids go into each message."""
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        force=True,
    )
