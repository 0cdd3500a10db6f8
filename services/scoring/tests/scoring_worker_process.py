"""The scoring worker as a subprocess on the real broker, and how tests feed it and wait for it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterable

import pytest
from aiokafka import AIOKafkaProducer
from fastapi.testclient import TestClient

from spm_events.envelope import Envelope, encode_envelope
from spm_events.registry import event_type_for
from spm_scoring.settings import ScoringSettings

WORKER_COMMAND = Path(sys.executable).parent / "spm-scoring-worker"
# Each worker catches up on everything already on the shared topics first, so this grows with them.
CATCH_UP_SECONDS = 300.0

Offsets = dict[tuple[str, int], int]


class WorkerProcess:
    """One ``spm-scoring-worker`` subprocess with its own data directory and consumer group."""

    def __init__(self, data_dir: Path, bootstrap: str, processor_id: str, publish_scores: bool = True) -> None:
        self.settings = ScoringSettings(
            data_dir=data_dir, kafka_bootstrap=bootstrap, processor_id=processor_id, publish_scores=publish_scores
        )
        self.log_path = data_dir / "worker.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> WorkerProcess:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        environment = {name: value for name, value in os.environ.items() if not name.startswith("SPM_")}
        environment |= {
            "SPM_DATA_DIR": str(self.settings.data_dir),
            "SPM_KAFKA_BOOTSTRAP": self.settings.kafka_bootstrap,
            "SPM_PROCESSOR_ID": self.settings.processor_id,
            "SPM_PUBLISH_SCORES": "true" if self.settings.publish_scores else "false",
        }
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen([str(WORKER_COMMAND)], env=environment, stdout=log, stderr=subprocess.STDOUT)
        return self

    def stop(self) -> int:
        """Send SIGTERM and return the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


def publish(bootstrap: str, envelopes: Iterable[Envelope]) -> Offsets:
    """Publish envelopes to their registry topics, keyed by subject, and return the last offset per partition."""

    async def send_all() -> Offsets:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
        await producer.start()
        last: Offsets = {}
        try:
            for envelope in envelopes:
                topic = event_type_for(envelope.type).topic.name
                metadata = await producer.send_and_wait(topic, key=envelope.subject.encode(), value=encode_envelope(envelope))
                partition = (metadata.topic, metadata.partition)
                last[partition] = max(last.get(partition, -1), metadata.offset)
        finally:
            await producer.stop()
        return last

    return asyncio.run(send_all())


def wait_until_applied(client: TestClient, worker: WorkerProcess, published: Offsets) -> None:
    """Poll /internal/positions until the worker has applied every published offset."""
    deadline = time.monotonic() + CATCH_UP_SECONDS
    applied: Offsets = {}
    while time.monotonic() < deadline:
        body = client.get("/internal/positions").json()
        applied = {(entry["topic"], entry["partition"]): entry["offset"] for entry in body["positions"]}
        if all(applied.get(partition, -1) >= offset for partition, offset in published.items()):
            return
        if worker.process is not None and worker.process.poll() is not None:
            pytest.fail(f"worker exited with {worker.process.returncode}:\n{worker.log_tail()}")
        time.sleep(0.2)
    pytest.fail(f"worker applied {applied}, not yet {published}, after {CATCH_UP_SECONDS}s:\n{worker.log_tail()}")
