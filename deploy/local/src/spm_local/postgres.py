"""A private PostgreSQL server from the machine's packages, started on a free port of 127.0.0.1.

The binaries come from Debian's ``postgresql`` package (``scripts/install-system-packages.sh``
installs it). The cluster lives in its own directory with trust authentication on loopback only,
so tests and local runs never touch a system-wide cluster.
"""

from __future__ import annotations

import argparse
import logging
import os
import pwd
import shutil
import subprocess
import time
from pathlib import Path

import psycopg

from spm_local.ports import free_port

logger = logging.getLogger(__name__)

READY_TIMEOUT_SECONDS = 60.0


def find_postgres_bin_dir() -> Path:
    """Return the newest installed PostgreSQL server's bin directory."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda path: int(path.parts[-3]))
    if candidates:
        return candidates[-1].parent
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).resolve().parent
    raise RuntimeError(
        "no PostgreSQL server found; run 'sudo scripts/install-system-packages.sh' (installs Debian's postgresql)"
    )


def _as_server_user(command: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root, so root runs it as the 'postgres' system user.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


class LocalPostgres:
    def __init__(self, state_dir: Path, port: int | None = None) -> None:
        self.state_dir = state_dir.resolve()
        self.data_dir = self.state_dir / "data"
        self.port = port or free_port()
        self.bin_dir = find_postgres_bin_dir()

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _libpq_url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> LocalPostgres:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            server_user = pwd.getpwnam("postgres")
            os.chown(self.state_dir, server_user.pw_uid, server_user.pw_gid)
        if not (self.data_dir / "PG_VERSION").exists():
            subprocess.run(
                _as_server_user([
                    str(self.bin_dir / "initdb"), "-D", str(self.data_dir), "-U", "postgres",
                    "--auth=trust", "--encoding=UTF8", "--no-sync",
                ]),
                check=True,
                stdout=subprocess.DEVNULL,
            )
        options = f"-p {self.port} -k {self.state_dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        subprocess.run(
            _as_server_user([
                str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.state_dir / "server.log"),
                "-o", options, "-w", "start",
            ]),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        self._wait_until_ready()
        logger.info("PostgreSQL ready at 127.0.0.1:%s", self.port)
        return self

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while True:
            try:
                with psycopg.connect(self._libpq_url("postgres"), connect_timeout=3):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)

    def create_database(self, name: str) -> str:
        """Create an empty database and return its SQLAlchemy URL."""
        with psycopg.connect(self._libpq_url("postgres"), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        subprocess.run(
            _as_server_user([str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"]),
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )


def main() -> None:
    """Start a private PostgreSQL server and print its admin URL (``spm-postgres``)."""
    parser = argparse.ArgumentParser(description="Start a private PostgreSQL server on 127.0.0.1.")
    parser.add_argument("--state-dir", type=Path, default=Path("var/postgres"), help="cluster directory")
    parser.add_argument("--port", type=int, default=None, help="port (default: a free one)")
    arguments = parser.parse_args()
    server = LocalPostgres(arguments.state_dir, arguments.port).start()
    print(server.admin_url)
