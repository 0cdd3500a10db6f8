"""Fixtures for the goals tests: settings per storage backend, an API client, and tokens.

The broker and PostgreSQL fixtures (``kafka_bootstrap``, ``postgres_url_factory``) come from the
repository's root conftest.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from spm_events.auth import issue_token
from spm_goals.api import create_app
from spm_goals.settings import GoalsSettings


def sqlite_settings(data_dir: Path, **overrides: object) -> GoalsSettings:
    return GoalsSettings(data_dir=data_dir, database_url=None, **overrides)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend_settings(request: pytest.FixtureRequest, tmp_path: Path) -> GoalsSettings:
    """Settings for an empty event store and read database on SQLite files or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return sqlite_settings(tmp_path)
    database_url = request.getfixturevalue("postgres_url_factory")()
    return GoalsSettings(data_dir=tmp_path, database_url=database_url)


@pytest.fixture
def settings(tmp_path: Path) -> GoalsSettings:
    return sqlite_settings(tmp_path, max_body_bytes=8192)


@pytest.fixture
def client(settings: GoalsSettings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def backend_client(backend_settings: GoalsSettings) -> Iterator[TestClient]:
    """An API client on SQLite files or on a fresh PostgreSQL database."""
    with TestClient(create_app(backend_settings)) as test_client:
        yield test_client


@pytest.fixture
def auth_header(settings: GoalsSettings) -> Callable[..., dict[str, str]]:
    """Return a function that builds the Authorization header for a person of an org."""

    def build(org_id: str, person_id: str = "person-1", *, teams: tuple[str, ...] = (), admin: bool = False) -> dict[str, str]:
        token = issue_token(settings.jwt_secret.get_secret_value(), org_id, person_id, teams=teams, admin=admin)
        return {"Authorization": f"Bearer {token}"}

    return build
