"""The goals worker against the real broker: a person tagged in social may read a private goal until untagged."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import pytest
from aiokafka import AIOKafkaProducer
from fastapi.testclient import TestClient

from spm_events.envelope import encode_envelope
from spm_events.registry import SOCIAL_TOPIC, new_envelope
from spm_events.schemas import CollaboratorTaggedV1, CollaboratorUntaggedV1, Payload
from spm_events.topics import ensure_topics
from spm_goals.api import create_app
from spm_goals.settings import GoalsSettings

pytestmark = pytest.mark.kafka

# The worker starts from offset 0 of the shared social topic, behind every earlier test's events.
CATCH_UP_SECONDS = 180.0

PRIVATE_GOAL = {
    "title": "Reorganise the sales regions", "team": "Sales", "visibility": "private", "owner_id": "owner-1",
    "period": {"name": "FY21-Q1", "start": "2020-02-01", "end": "2020-04-30"}, "occurred_at": "2020-01-20",
}


def publish_tag_event(bootstrap: str, org_id: str, payload: Payload, subject: str, version: int) -> None:
    """Publish one tag event of the social graph ``subject``, keyed by it as the social relay does."""
    envelope = new_envelope(
        payload, subject=subject, org_id=org_id, actor_id="owner-1", aggregate_version=version,
        time=datetime(2020, 2, 2 + version, tzinfo=timezone.utc),
    )

    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(SOCIAL_TOPIC.name, key=envelope.subject.encode(), value=encode_envelope(envelope))
        finally:
            await producer.stop()

    asyncio.run(send())


def start_worker(data_dir: Path, bootstrap: str) -> subprocess.Popen[bytes]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("SPM_")}
    env |= {
        "SPM_DATA_DIR": str(data_dir),
        "SPM_KAFKA_BOOTSTRAP": bootstrap,
        "SPM_PROCESSOR_ID": f"spm-goals-test-{uuid.uuid4().hex[:12]}",
    }
    with open(data_dir / "worker.log", "ab") as log:
        executable = str(Path(sys.executable).parent / "spm-goals-worker")
        return subprocess.Popen([executable], env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_until(condition: Callable[[], bool], worker: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + CATCH_UP_SECONDS
    while not condition():
        if worker.poll() is not None:
            pytest.fail(f"worker exited with {worker.returncode}:\n{log_path.read_text(errors='replace')[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"collaborator not applied within {CATCH_UP_SECONDS}s:\n{log_path.read_text(errors='replace')[-3000:]}")
        time.sleep(0.2)


def test_collaborator_sees_private_goal_from_tag_until_untag(
    tmp_path: Path, kafka_bootstrap: str, auth_header: Callable[..., dict[str, str]]
) -> None:
    asyncio.run(ensure_topics(kafka_bootstrap))
    org_id = f"org-{uuid.uuid4().hex[:8]}"
    settings = GoalsSettings(data_dir=tmp_path, database_url=None, kafka_bootstrap=kafka_bootstrap)
    owner = auth_header(org_id, "owner-1")
    helper = auth_header(org_id, "helper-1", teams=("Engineering",))
    bystander = auth_header(org_id, "bystander-1", teams=("Engineering",))

    with TestClient(create_app(settings)) as client:
        goal_id = client.post("/goals", json=PRIVATE_GOAL, headers=owner).json()["goal_id"]
        assert client.get(f"/goals/{goal_id}", headers=helper).status_code == 404

        graph_id = f"social-{uuid.uuid4()}"
        publish_tag_event(kafka_bootstrap, org_id, CollaboratorTaggedV1(goal_id=goal_id, collaborator_id="helper-1"), graph_id, 1)
        worker = start_worker(tmp_path, kafka_bootstrap)
        try:
            wait_until(lambda: client.get(f"/goals/{goal_id}", headers=helper).status_code == 200, worker, tmp_path / "worker.log")
            listed = [goal["goal_id"] for goal in client.get("/goals", headers=helper).json()]
            publish_tag_event(kafka_bootstrap, org_id, CollaboratorUntaggedV1(goal_id=goal_id, collaborator_id="helper-1"), graph_id, 2)
            wait_until(lambda: client.get(f"/goals/{goal_id}", headers=helper).status_code == 404, worker, tmp_path / "worker.log")
        finally:
            worker.send_signal(signal.SIGTERM)
            exit_code = worker.wait(timeout=30)

        assert exit_code == 0
        assert listed == [goal_id]
        assert client.get(f"/goals/{goal_id}", headers=bystander).status_code == 404
