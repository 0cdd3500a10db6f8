"""Read-only data directories: at start-up (a read-only mount) and while a service runs.

Linux refuses to remount a file system read-only while a process has files on it open for writing,
so a directory cannot be switched to read-only under a running service by a remount. The running
case sets the immutable attribute (``chattr +i``) on the directory and its files instead. Writes then
fail as on a read-only mount: SQLite can neither create its journal nor write the database. The
start-up case uses a real read-only bind mount. Both need root; elsewhere the tests are skipped.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from spm_events.auth import issue_token
from spm_events.settings import DEVELOPMENT_JWT_SECRET, DataDirectoryError
from spm_goals.api import create_app as create_goals_app
from spm_goals.settings import EVENT_STORE_FILE as GOALS_EVENT_STORE_FILE
from spm_goals.settings import GoalsSettings
from spm_goals.worker import create_collaborator_worker
from spm_local.ports import free_port
from spm_social.api import create_app as create_social_app
from spm_social.settings import SocialSettings
from test_storage_faults import goal_body, integrity, stored_versions

pytestmark = pytest.mark.reliability

# Every process that keeps SQLite files in its SPM_DATA_DIR.
DATA_DIR_PROCESSES = (
    "spm-goals-api", "spm-goals-relay", "spm-goals-worker",
    "spm-social-api", "spm-social-relay", "spm-social-worker",
    "spm-scoring-api", "spm-scoring-worker",
    "spm-notifications-api", "spm-notifications-worker", "spm-notifications-dispatcher",
)
START_TIMEOUT_SECONDS = 60


def require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("read-only mounts and the immutable attribute need root")


@pytest.fixture
def writable_and_read_only_views() -> Iterator[tuple[Path, Path]]:
    """Return a directory and a read-only bind mount of it: the same files, seen through two mounts."""
    require_root()
    writable = Path(tempfile.mkdtemp(prefix="spm-data-"))
    read_only = Path(tempfile.mkdtemp(prefix="spm-data-read-only-"))
    subprocess.run(["mount", "--bind", str(writable), str(read_only)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(read_only)], check=True)
        yield writable, read_only
    finally:
        subprocess.run(["umount", str(read_only)], check=True)
        read_only.rmdir()
        subprocess.run(["rm", "-rf", str(writable)], check=True)


class ImmutableDirectory:
    """A directory whose files, and the directory itself, can be made immutable and writable again.

    The WAL index files (``*-shm``) stay writable: SQLite maps them into memory, and a write to a
    mapped page of an immutable file raises SIGBUS, which kills the process (seen here on ext4).
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def paths(self) -> list[str]:
        files = [str(path) for path in self.directory.rglob("*") if not path.name.endswith("-shm")]
        return [str(self.directory), *files]

    def freeze(self) -> None:
        subprocess.run(["chattr", "+i", *self.paths()], check=True)

    def thaw(self) -> None:
        subprocess.run(["chattr", "-i", *self.paths()], check=True)


@pytest.fixture
def immutable_directory(tmp_path: Path) -> Iterator[ImmutableDirectory]:
    require_root()
    directory = ImmutableDirectory(tmp_path / "data")
    directory.directory.mkdir()
    try:
        yield directory
    finally:
        directory.thaw()


def file_digests(directory: Path) -> dict[str, str]:
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(directory.iterdir())
        if path.is_file()
    }


def owner_headers(org_id: str) -> dict[str, str]:
    token = issue_token(DEVELOPMENT_JWT_SECRET, org_id, "owner", admin=True)
    return {"Authorization": f"Bearer {token}"}


def start_process(name: str, data_dir: Path, kafka_bootstrap: str) -> subprocess.CompletedProcess[str]:
    """Start one installed entry point on ``data_dir`` and wait until it exits (it must not keep running)."""
    executable = Path(sys.executable).parent / name
    environment = {
        **os.environ,
        "SPM_DATA_DIR": str(data_dir),
        "SPM_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "SPM_HTTP_PORT": str(free_port()),
        "SPM_DATABASE_URL": "",
        "PYTHONUNBUFFERED": "1",
    }
    return subprocess.run(
        [str(executable)], env=environment, cwd=data_dir.parent, capture_output=True, text=True,
        timeout=START_TIMEOUT_SECONDS,
    )


@pytest.mark.kafka
@pytest.mark.parametrize("process_name", DATA_DIR_PROCESSES)
def test_start_on_read_only_data_dir(
    process_name: str, writable_and_read_only_views: tuple[Path, Path], kafka_bootstrap: str
) -> None:
    """Each process exits at once with one line naming the directory and the fix, without a traceback."""
    _, read_only = writable_and_read_only_views

    result = start_process(process_name, read_only / "data", kafka_bootstrap)

    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    last_line = result.stderr.strip().splitlines()[-1]
    assert str(read_only.resolve()) in last_line
    assert "SPM_DATA_DIR" in last_line
    assert "read-only" in last_line.lower()
    assert "mount it writable" in last_line


@pytest.mark.parametrize("suffix", ["", "-wal"], ids=["database", "write-ahead-log"])
def test_read_only_database_file_stops_start(tmp_path: Path, suffix: str) -> None:
    """A writable directory holding a database file that cannot be written stops the service before it serves."""
    require_root()
    settings = GoalsSettings(data_dir=tmp_path, jwt_secret=DEVELOPMENT_JWT_SECRET)
    path = tmp_path / f"{GOALS_EVENT_STORE_FILE}{suffix}"
    path.write_bytes(b"")
    subprocess.run(["chattr", "+i", str(path)], check=True)
    try:
        with pytest.raises(DataDirectoryError) as raised:
            create_goals_app(settings)
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)

    assert raised.value.code == 1
    assert str(raised.value) == (
        f"the database file {path.resolve()} is read-only; make it writable, or set SPM_DATA_DIR to a writable directory"
    )


def test_data_dir_that_is_a_file_stops_processor(tmp_path: Path, postgres_url_factory) -> None:  # type: ignore[no-untyped-def]
    """A worker whose read model is on PostgreSQL still keeps faust's state under SPM_DATA_DIR, so it checks it too."""
    data_file = tmp_path / "data"
    data_file.write_text("not a directory")
    settings = GoalsSettings(data_dir=data_file, database_url=postgres_url_factory(), jwt_secret=DEVELOPMENT_JWT_SECRET)

    with pytest.raises(DataDirectoryError) as raised:
        create_collaborator_worker(settings)

    assert str(raised.value) == (
        f"the data directory {data_file.resolve()} (SPM_DATA_DIR) is a file, not a directory; set SPM_DATA_DIR to a directory"
    )


@pytest.mark.kafka
def test_goals_store_untouched_by_read_only_start(
    writable_and_read_only_views: tuple[Path, Path], kafka_bootstrap: str
) -> None:
    """An API started on a read-only mount of an existing store changes no byte, and the store serves again once writable."""
    writable, read_only = writable_and_read_only_views
    settings = GoalsSettings(data_dir=writable, jwt_secret=DEVELOPMENT_JWT_SECRET)
    headers = owner_headers("org-read-only-start")
    with TestClient(create_goals_app(settings), headers=headers) as goals:
        created = goals.post("/goals", json=goal_body(1), headers={"Idempotency-Key": str(uuid.uuid4())})
        assert created.status_code == 201, created.text
    before = file_digests(writable)

    result = start_process("spm-goals-api", read_only, kafka_bootstrap)

    assert result.returncode == 1, result.stderr[-2000:]
    assert "is read-only" in result.stderr
    assert file_digests(writable) == before
    assert integrity(writable / GOALS_EVENT_STORE_FILE) == "ok"
    with TestClient(create_goals_app(settings), headers=headers) as goals:
        listed = goals.get("/goals")
        assert listed.status_code == 200, listed.text
        assert [goal["goal_id"] for goal in listed.json()] == [created.json()["goal_id"]]
        again = goals.post("/goals", json=goal_body(2), headers={"Idempotency-Key": str(uuid.uuid4())})
        assert again.status_code == 201, again.text


def assert_read_only_response(response: Any, directory: Path) -> None:
    assert response.status_code == 503, response.text
    detail = response.json()["detail"]
    assert f"the data directory {directory.resolve()} is read-only" in detail
    assert response.headers["Retry-After"].isdigit()


def test_goals_data_dir_turns_read_only(immutable_directory: ImmutableDirectory) -> None:
    """Commands get 503 naming the directory, the store stays intact, and a retried key applies once afterwards."""
    settings = GoalsSettings(data_dir=immutable_directory.directory, jwt_secret=DEVELOPMENT_JWT_SECRET)
    event_store = settings.data_dir / GOALS_EVENT_STORE_FILE
    with TestClient(create_goals_app(settings), raise_server_exceptions=False, headers=owner_headers("org-read-only")) as goals:
        accepted = []
        for number in range(3):
            response = goals.post("/goals", json=goal_body(number), headers={"Idempotency-Key": str(uuid.uuid4())})
            assert response.status_code == 201, response.text
            accepted.append(response.json()["goal_id"])

        immutable_directory.freeze()
        failed_key = str(uuid.uuid4())
        assert_read_only_response(
            goals.post("/goals", json=goal_body(99), headers={"Idempotency-Key": failed_key}), settings.data_dir
        )
        # Appending to an existing goal writes to the same store as a new goal, through another route.
        new_key_result = {"title": "Ship the read-only check", "metric": "number", "start_value": 0, "target_value": 1}
        assert_read_only_response(
            goals.post(f"/goals/{accepted[0]}/key-results", json=new_key_result, headers={"Idempotency-Key": str(uuid.uuid4())}),
            settings.data_dir,
        )
        read = goals.get(f"/goals/{accepted[0]}")
        assert read.status_code == 200, read.text
        immutable_directory.thaw()

        assert integrity(event_store) == "ok"
        assert set(stored_versions(event_store)) == set(accepted)
        retried = goals.post("/goals", json=goal_body(99), headers={"Idempotency-Key": failed_key})
        assert retried.status_code == 201, retried.text
        repeated = goals.post("/goals", json=goal_body(99), headers={"Idempotency-Key": failed_key})
        assert repeated.json()["goal_id"] == retried.json()["goal_id"]

    assert integrity(event_store) == "ok"
    assert set(stored_versions(event_store)) == set(accepted) | {retried.json()["goal_id"]}


def test_social_data_dir_turns_read_only(immutable_directory: ImmutableDirectory) -> None:
    """Social commands get 503 naming the directory and succeed again once it is writable."""
    settings = SocialSettings(data_dir=immutable_directory.directory, jwt_secret=DEVELOPMENT_JWT_SECRET)
    token = issue_token(DEVELOPMENT_JWT_SECRET, "org-read-only", "member")
    with TestClient(create_social_app(settings), raise_server_exceptions=False, headers={"Authorization": f"Bearer {token}"}) as social:
        first = social.post("/communities", json={"name": "Before", "description": "written before"})
        assert first.status_code == 201, first.text

        immutable_directory.freeze()
        assert_read_only_response(social.post("/communities", json={"name": "During", "description": "x"}), settings.data_dir)
        immutable_directory.thaw()

        after = social.post("/communities", json={"name": "After", "description": "written after"})
        assert after.status_code == 201, after.text
        listed = social.get("/communities", params={"limit": 100})
        assert listed.status_code == 200, listed.text

    names = {community["name"] for community in listed.json()["communities"]}
    assert names == {"Before", "After"}
