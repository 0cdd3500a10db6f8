"""Settings shared by every service; each service subclasses this once and reads it once at start-up."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import NoReturn
from urllib.parse import unquote, urlsplit

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

logger = logging.getLogger(__name__)

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

    @property
    def sqlite_data_dir(self) -> Path | None:
        """Return the directory of the SQLite files, or None when the databases are on PostgreSQL."""
        return None if self.uses_postgres else self.data_dir

    def sqlalchemy_url(self, sqlite_file: str) -> str:
        """Return the read-model database URL: PostgreSQL if configured, else a SQLite file under data_dir."""
        if self.uses_postgres:
            return self.database_url  # type: ignore[return-value]
        prepare_data_dir(self.data_dir, sqlite_file)
        return f"sqlite:///{(self.data_dir / sqlite_file).resolve()}"

    def event_store_env(self, sqlite_file: str) -> dict[str, str]:
        """Return the ``eventsourcing`` persistence settings for this service's event store."""
        if not self.uses_postgres:
            prepare_data_dir(self.data_dir, sqlite_file)
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
            "POSTGRES_CONNECT_TIMEOUT": "10",
        }


class DataDirectoryError(SystemExit):
    """A data directory a service cannot write to. Uncaught, it ends the process with status 1 and no traceback.

    The message is logged where the error is raised, so it is not printed a second time on exit.
    """

    def __init__(self, message: str) -> None:
        super().__init__(1)
        self.message = message

    def __str__(self) -> str:
        return self.message


def is_writable(path: Path) -> bool:
    """Return whether this process may write to ``path``: false on a read-only mount or an immutable file."""
    return os.access(path, os.W_OK)


# The files SQLite keeps next to a database: the database itself, its WAL and WAL index, its journal.
SQLITE_FILE_SUFFIXES = ("", "-wal", "-shm", "-journal")


def prepare_data_dir(data_dir: Path, sqlite_file: str | None = None) -> None:
    """Create ``data_dir`` if missing, and stop the process with a clear message if it cannot be written.

    SQLite creates its journal or WAL files next to the database, so a read-only directory fails
    writes, and SQLite's own message ("unable to open database file") does not name the cause.
    ``sqlite_file`` names a database in the directory whose existing files must be writable too.
    """
    directory = data_dir.resolve()
    advice = "mount it writable, or set SPM_DATA_DIR to a writable directory"
    if directory.exists() and not directory.is_dir():
        _stop(f"the data directory {directory} (SPM_DATA_DIR) is a file, not a directory; set SPM_DATA_DIR to a directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        _stop(f"cannot create the data directory {directory} (SPM_DATA_DIR): {error.strerror}; {advice}")
    # Creating a file needs write and search permission on the directory.
    if not os.access(directory, os.W_OK | os.X_OK):
        _stop(f"the data directory {directory} (SPM_DATA_DIR) is read-only or not writable by this process; {advice}")
    if sqlite_file is None:
        return
    for suffix in SQLITE_FILE_SUFFIXES:
        path = directory / f"{sqlite_file}{suffix}"
        if path.exists() and not is_writable(path):
            _stop(f"the database file {path} is read-only; make it writable, or set SPM_DATA_DIR to a writable directory")


def _stop(message: str) -> NoReturn:
    logger.error(message)
    raise DataDirectoryError(message)


def configure_logging(level: str) -> None:
    """Log to stderr as key=value lines that carry the process name; ids go into each message."""
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        force=True,
    )
