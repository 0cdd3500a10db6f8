"""Session fixtures shared by every test: a real Kafka broker and a real PostgreSQL server.

Where each comes from, first match wins:
1. an address given from outside (SPM_TEST_KAFKA_BOOTSTRAP, SPM_TEST_POSTGRES_URL);
2. testcontainers, where a Docker engine is reachable;
3. a broker from the Maven Central jars and a PostgreSQL server from the machine's packages,
   started here on free ports of 127.0.0.1 and stopped at the end of the session.
No test is skipped for want of either: a failure to start one fails the session.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Callable, Iterator

import psycopg
import pytest

from spm_events.topics import ensure_topics


def _docker_engine_reachable() -> bool:
    try:
        import docker  # noqa: PLC0415 - optional, only where testcontainers is installed

        docker.from_env(timeout=2).ping()
        return True
    except Exception:  # noqa: BLE001 - no client library, no socket or no daemon all mean "no engine"
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external_bootstrap = os.environ.get("SPM_TEST_KAFKA_BOOTSTRAP")
    if external_bootstrap:
        asyncio.run(ensure_topics(external_bootstrap))
        yield external_bootstrap
        return
    if _docker_engine_reachable():
        from testcontainers.kafka import KafkaContainer  # noqa: PLC0415

        with KafkaContainer().with_kraft() as container:
            bootstrap = container.get_bootstrap_server()
            asyncio.run(ensure_topics(bootstrap))
            yield bootstrap
        return
    from spm_local.kafka import LocalBroker  # noqa: PLC0415

    broker = LocalBroker(tmp_path_factory.mktemp("kafka")).start()
    try:
        asyncio.run(ensure_topics(broker.bootstrap))
        yield broker.bootstrap
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def postgres_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external_url = os.environ.get("SPM_TEST_POSTGRES_URL")
    if external_url:
        yield external_url
        return
    if _docker_engine_reachable():
        from testcontainers.postgres import PostgresContainer  # noqa: PLC0415

        with PostgresContainer("postgres:16", driver="psycopg") as container:
            yield container.get_connection_url()
        return
    from spm_local.postgres import LocalPostgres  # noqa: PLC0415

    # Not under pytest's temporary directory: its parent is private to root, and the server runs
    # as the 'postgres' user, which must reach its own directory.
    state_dir = Path(tempfile.mkdtemp(prefix="spm-test-postgres-"))
    server = LocalPostgres(state_dir).start()
    try:
        yield server.admin_url
    finally:
        server.stop()
        shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url_factory(postgres_admin_url: str) -> Iterator[Callable[[], str]]:
    """Return a callable that creates an empty database and returns its SQLAlchemy URL."""
    libpq_admin_url = postgres_admin_url.replace("postgresql+psycopg://", "postgresql://")
    created: list[str] = []

    def create_database() -> str:
        name = f"spm_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(libpq_admin_url, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        return postgres_admin_url.rsplit("/", 1)[0] + f"/{name}"

    yield create_database
    with psycopg.connect(libpq_admin_url, autocommit=True) as connection:
        for name in created:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def unique_name() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def repository_root() -> Path:
    return Path(__file__).resolve().parent
