"""Storage faults: a full disk under the SQLite event stores, and PostgreSQL restarted under load.

Each full-disk test puts a service's data directory on a small tmpfs it mounts itself, fills the tmpfs with a
ballast file, and requires that a command then gets 503 with a message naming the full disk, that
the store passes ``PRAGMA integrity_check`` and still contains every accepted event, and that commands
succeed again once the ballast is deleted. Mounting needs root; elsewhere the tests are skipped.

The PostgreSQL test runs the service processes on a server of its own, stops it under load, and
requires 503 answers while it is down, a retried command applied once, and a clean checker after.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient

from checker import CHECKED_TOPICS, check, collect_read_models, collect_truth, consume_topics
from stack import Stack, poll
from workload import Command, Workload

from spm_events.auth import issue_token
from spm_events.settings import DEVELOPMENT_JWT_SECRET
from spm_goals.api import create_app as create_goals_app
from spm_goals.settings import EVENT_STORE_FILE as GOALS_EVENT_STORE_FILE
from spm_goals.settings import GoalsSettings
from spm_local.postgres import LocalPostgres
from spm_social.api import create_app as create_social_app
from spm_social.settings import EVENT_STORE_FILE as SOCIAL_EVENT_STORE_FILE
from spm_social.settings import SocialSettings

pytestmark = pytest.mark.reliability

TMPFS_SIZE = "4m"
PERIOD = {"name": "Q1", "start": "2020-01-01", "end": "2020-03-31"}


class SmallDisk:
    """A tmpfs of a few MiB mounted on a new directory, and a ballast file that fills it."""

    def __init__(self, mount_point: Path) -> None:
        self.mount_point = mount_point
        self.ballast = mount_point / "ballast"

    def fill(self) -> None:
        """Write zeros into the ballast file until the file system reports ENOSPC."""
        block = b"\0" * 4096
        # Unbuffered, so no buffered rest is left to fail on close.
        with open(self.ballast, "ab", buffering=0) as ballast:
            while True:
                try:
                    ballast.write(block)
                except OSError as error:
                    if error.errno != errno.ENOSPC:
                        raise
                    return

    def free(self) -> None:
        self.ballast.unlink()


@pytest.fixture
def small_disk() -> Iterator[SmallDisk]:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount_point = Path(tempfile.mkdtemp(prefix="spm-full-disk-"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(mount_point)], check=True)
    try:
        yield SmallDisk(mount_point)
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)
        mount_point.rmdir()


def integrity(database: Path) -> str:
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        return connection.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        connection.close()


def stored_versions(database: Path) -> dict[str, int]:
    """Return the highest stored version of every aggregate, by a plain SQL read of the event store."""
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        rows = connection.execute("SELECT originator_id, MAX(originator_version) FROM stored_events GROUP BY originator_id")
        return {str(uuid.UUID(str(originator_id))): version for originator_id, version in rows}
    finally:
        connection.close()


def assert_storage_unavailable(response: Any) -> None:
    assert response.status_code == 503, response.text
    assert "disk that holds the database is full" in response.json()["detail"]
    assert response.headers["Retry-After"].isdigit()


def goal_body(number: int) -> dict[str, Any]:
    return {"title": f"Goal {number} " + "x" * 300, "team": "Reliability", "period": PERIOD, "occurred_at": "2020-01-02T00:00:00Z"}


def test_goals_full_disk(small_disk: SmallDisk) -> None:
    settings = GoalsSettings(data_dir=small_disk.mount_point / "goals", jwt_secret=DEVELOPMENT_JWT_SECRET)
    event_store = settings.data_dir / GOALS_EVENT_STORE_FILE
    token = issue_token(DEVELOPMENT_JWT_SECRET, "org-full-disk", "owner", admin=True)
    accepted: dict[str, int] = {}
    with TestClient(create_goals_app(settings), raise_server_exceptions=False, headers={"Authorization": f"Bearer {token}"}) as goals:
        for number in range(5):
            response = goals.post("/goals", json=goal_body(number), headers={"Idempotency-Key": str(uuid.uuid4())})
            assert response.status_code == 201, response.text
            accepted[response.json()["goal_id"]] = int(response.headers["ETag"].strip('"W/'))
        first_goal = next(iter(accepted))

        small_disk.fill()
        failed_key = str(uuid.uuid4())
        assert_storage_unavailable(goals.post("/goals", json=goal_body(99), headers={"Idempotency-Key": failed_key}))
        # Appending to an existing goal needs a new page of the file too.
        new_key_result = {"title": "y" * 300, "metric": "number", "start_value": 0, "target_value": 1}
        assert_storage_unavailable(goals.post(f"/goals/{first_goal}/key-results", json=new_key_result,
                                              headers={"Idempotency-Key": str(uuid.uuid4())}))

        assert integrity(event_store) == "ok"
        versions = stored_versions(event_store)
        for goal_id, version in accepted.items():
            assert versions.get(goal_id, 0) >= version, f"accepted goal {goal_id} version {version} lost"

        small_disk.free()
        retried = goals.post("/goals", json=goal_body(99), headers={"Idempotency-Key": failed_key})
        assert retried.status_code == 201, retried.text
        again = goals.post("/goals", json=goal_body(99), headers={"Idempotency-Key": failed_key})
        assert again.json()["goal_id"] == retried.json()["goal_id"]
        added = goals.post(f"/goals/{first_goal}/key-results", json=new_key_result, headers={"Idempotency-Key": str(uuid.uuid4())})
        assert added.status_code == 201, added.text
        listed = goals.get("/goals")
        assert listed.status_code == 200, listed.text
        assert len(listed.json()) == len(accepted) + 1

    assert integrity(event_store) == "ok"
    assert set(stored_versions(event_store)) == set(accepted) | {retried.json()["goal_id"]}


def test_social_full_disk(small_disk: SmallDisk) -> None:
    settings = SocialSettings(data_dir=small_disk.mount_point / "social", jwt_secret=DEVELOPMENT_JWT_SECRET)
    event_store = settings.data_dir / SOCIAL_EVENT_STORE_FILE
    token = issue_token(DEVELOPMENT_JWT_SECRET, "org-full-disk", "member")
    accepted: list[str] = []
    with TestClient(create_social_app(settings), raise_server_exceptions=False, headers={"Authorization": f"Bearer {token}"}) as social:
        for number in range(5):
            response = social.post("/communities", json={"name": f"Community {number}", "description": "z" * 900})
            assert response.status_code == 201, response.text
            accepted.append(response.json()["community_id"])

        small_disk.fill()
        assert_storage_unavailable(social.post("/communities", json={"name": "After the disk filled", "description": "z" * 2000}))
        assert integrity(event_store) == "ok"

        small_disk.free()
        response = social.post("/communities", json={"name": "After the disk emptied", "description": "z" * 900})
        assert response.status_code == 201, response.text
        listed = social.get("/communities", params={"limit": 100})
        assert listed.status_code == 200, listed.text
        names = {community["name"] for community in listed.json()["communities"]}

    assert integrity(event_store) == "ok"
    assert names == {f"Community {number}" for number in range(5)} | {"After the disk emptied"}
    assert len(accepted) == 5


# --- PostgreSQL restarted under load ------------------------------------------------------------

# How long the PostgreSQL server stays down while commands keep arriving.
POSTGRES_DOWN_SECONDS = 10.0


@pytest.fixture
def own_postgres() -> Iterator[LocalPostgres]:
    """A PostgreSQL server of this test alone, since the test stops it."""
    # Not under pytest's temporary directory: the server runs as the 'postgres' user, which must reach it.
    state_dir = Path(tempfile.mkdtemp(prefix="spm-reliability-postgres-"))
    server = LocalPostgres(state_dir).start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(state_dir, ignore_errors=True)


def test_postgres_restart_under_load(own_postgres: LocalPostgres, kafka_bootstrap: str, tmp_path: Path) -> None:
    org_id = f"org-postgres-{uuid.uuid4().hex[:8]}"
    database_urls = {service: own_postgres.create_database(f"spm_{service}") for service in ("goals", "social", "scoring", "notifications")}
    stack = Stack(state_dir=tmp_path / "stack", kafka_bootstrap=kafka_bootstrap, jwt_secret=DEVELOPMENT_JWT_SECRET,
                  run_id=uuid.uuid4().hex[:8], database_urls=database_urls)
    stack.start()
    try:
        stack.wait_until_healthy()
        urls = {service: stack.url(service) for service in ("goals", "social")}
        workload = Workload(urls=urls, org_id=org_id, jwt_secret=DEVELOPMENT_JWT_SECRET)
        workload.register_people()
        workload.start()
        poll(lambda: workload.rounds >= 2 or workload.error is not None, 120, "the workload finished two rounds")
        # Sends each command once, so every answer given while the server is down is seen.
        prober = Workload(urls=urls, org_id=org_id, jwt_secret=DEVELOPMENT_JWT_SECRET, retry_for_seconds=0.0)

        own_postgres.stop()
        stopped = time.monotonic()
        while_down: list[Command] = []
        while time.monotonic() - stopped < POSTGRES_DOWN_SECONDS:
            while_down.append(prober.send("create_goal", "goals", "/goals", prober.people[0], {
                "title": f"Sent while PostgreSQL is down {len(while_down)}", "team": "Reliability",
                "period": {"name": "run", "start": "2020-01-01", "end": "2020-03-31"}, "occurred_at": "2020-01-02T00:00:00Z",
            }))
            time.sleep(0.5)
        own_postgres.start()
        restarted = time.monotonic()

        statuses = {command.status for command in while_down}
        assert statuses == {503}, f"answers while PostgreSQL was down: {statuses}: {describe(while_down)}"
        for command in while_down:
            assert "database is not reachable" in command.response["detail"], command.response

        # A rejected command sent again with its Idempotency-Key is applied once.
        retried = [send_again(prober, command) for command in while_down[:3]]
        assert [command.status for command in retried] == [201, 201, 201], describe(retried)
        workload.stop()
        # Relays retry database errors and take their advisory lock again on a new session, so no
        # process exits and no supervisor restart is needed.
        poll(stack.relays_caught_up, 240, "the relays published every stored event")
        stack.wait_until_caught_up()
        caught_up_seconds = time.monotonic() - restarted
        stack.check_running()
        locked_databases = {name for name, _ in advisory_locks(own_postgres)}
        assert {"spm_goals", "spm_social"} <= locked_databases, f"relay locks held after the restart: {locked_databases}"
        print(f"PostgreSQL down {POSTGRES_DOWN_SECONDS:.0f}s: {len(while_down)} commands answered 503; "
              f"server back -> every processor caught up in {caught_up_seconds:.1f}s")

        assert workload.failed() == [], describe(workload.failed())
        truth = collect_truth(stack.event_store("goals"), stack.event_store("social"), org_id)
        stored_goals = {event.aggregate_id for event in truth if event.store == "goals"}
        accepted_goals = {command.response["goal_id"] for command in workload.accepted("create_goal") + retried}
        assert stored_goals == accepted_goals
        records = consume_topics(stack.kafka_bootstrap, CHECKED_TOPICS, org_id, stack.start_offsets)
        check(truth, records, collect_read_models(stack.read_model_locations(), org_id)).assert_clean()
    finally:
        stack.stop()


def advisory_locks(server: LocalPostgres) -> list[tuple[str, int]]:
    """Return (database, key) of every advisory lock held on ``server``; each active relay holds one."""
    query = ("SELECT d.datname, l.objid FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
             "WHERE l.locktype = 'advisory' AND l.granted")
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:{server.port}/postgres") as connection:
        return [(name, key) for name, key in connection.execute(query)]


def send_again(workload: Workload, command: Command) -> Command:
    """Send a goals command once more with its own Idempotency-Key and record the answer in a new Command."""
    headers = {"Authorization": f"Bearer {workload.tokens[command.actor]}", "Idempotency-Key": str(command.idempotency_key)}
    response = httpx.post(f"{workload.urls[command.service]}{command.path}", json=command.body, headers=headers, timeout=30)
    return Command(command.kind, command.service, command.path, command.body, command.actor, command.idempotency_key,
                   status=response.status_code, response=response.json(), attempts=1)


def describe(commands: list[Command]) -> str:
    return "; ".join(f"{command.kind} {command.path}: {command.status} {command.response}" for command in commands[:5])
