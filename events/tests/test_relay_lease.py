"""The relay lock on PostgreSQL survives a lost session and is never held by two relays at once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from spm_events.database import create_database_engine
from spm_events.relay import RelayLockHeldError, single_active_relay

pytestmark = pytest.mark.postgres

RELAY_NAME = "lease-test-relay"


@pytest.fixture
def engine(postgres_url_factory) -> Iterator[Engine]:  # type: ignore[no-untyped-def]
    engine = create_database_engine(postgres_url_factory())
    yield engine
    engine.dispose()


def terminate_session(engine: Engine, backend_pid: int) -> None:
    with engine.connect() as connection:
        assert connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend_pid}).scalar()


def session_pid(lease) -> int:  # type: ignore[no-untyped-def]
    return lease.connection.execute(text("SELECT pg_backend_pid()")).scalar()


def test_lease_confirms_held_lock(engine: Engine, tmp_path: Path) -> None:
    with single_active_relay(engine, RELAY_NAME, tmp_path) as lease:
        pid = session_pid(lease)
        lease.confirm()

        assert session_pid(lease) == pid


def test_lost_session_takes_lock_again(engine: Engine, tmp_path: Path) -> None:
    with single_active_relay(engine, RELAY_NAME, tmp_path) as lease:
        lost_pid = session_pid(lease)
        terminate_session(engine, lost_pid)

        lease.confirm()

        assert session_pid(lease) != lost_pid
        with pytest.raises(RelayLockHeldError):
            with single_active_relay(engine, RELAY_NAME, tmp_path):
                pass


def test_lock_taken_meanwhile_stops_relay(engine: Engine, tmp_path: Path) -> None:
    with single_active_relay(engine, RELAY_NAME, tmp_path) as lease:
        terminate_session(engine, session_pid(lease))
        with single_active_relay(engine, RELAY_NAME, tmp_path):
            with pytest.raises(RelayLockHeldError):
                lease.confirm()
