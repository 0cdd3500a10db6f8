"""Run the four services' APIs, relays and workers as separate processes under honcho.

Each service gets a free port and its own data directory. The Procfile written for a run has the
same process layout as docker-compose.yml and the Kubernetes Deployments.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from spm_events.registry import GOALS_TOPIC, SOCIAL_TOPIC
from spm_local.ports import free_port

logger = logging.getLogger(__name__)

# (service, process kinds): an API per service, a relay per command service, a worker per processor.
PROCESS_LAYOUT = {
    "goals": ("api", "relay", "worker"),
    "social": ("api", "relay", "worker"),
    "scoring": ("api", "worker"),
    "notifications": ("api", "worker", "dispatcher"),
}
COMMAND_SERVICES = ("goals", "social")
PROCESSOR_TOPICS = {
    "goals": (SOCIAL_TOPIC.name,),
    "social": (GOALS_TOPIC.name, SOCIAL_TOPIC.name),
    "scoring": (GOALS_TOPIC.name, SOCIAL_TOPIC.name),
    "notifications": (GOALS_TOPIC.name, SOCIAL_TOPIC.name),
}


@dataclass
class Suite:
    state_dir: Path
    kafka_bootstrap: str
    jwt_secret: str
    database_urls: dict[str, str] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    process: subprocess.Popen | None = None
    # Each run's workers form their own consumer groups, so two suites on one broker never split partitions.
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def procfile(self) -> str:
        bin_dir = Path(sys.executable).parent
        lines = []
        for service, kinds in PROCESS_LAYOUT.items():
            settings = {
                "SPM_DATA_DIR": str(self.state_dir / service),
                "SPM_KAFKA_BOOTSTRAP": self.kafka_bootstrap,
                "SPM_HTTP_PORT": str(self.ports[service]),
                "SPM_JWT_SECRET": self.jwt_secret,
                "SPM_PROCESSOR_ID": f"spm-{service}-{self.run_id}",
            }
            if service in self.database_urls:
                settings["SPM_DATABASE_URL"] = self.database_urls[service]
            if service == "notifications":
                # The dispatcher reads e-mail addresses from the social API's people directory.
                settings["SPM_SOCIAL_API_URL"] = self.url("social")
            assignments = " ".join(f"{name}={shlex.quote(value)}" for name, value in settings.items())
            for kind in kinds:
                lines.append(f"{service}-{kind}: {assignments} exec {bin_dir / f'spm-{service}-{kind}'}")
        return "\n".join(lines) + "\n"

    def start(self) -> Suite:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.ports = {service: free_port() for service in PROCESS_LAYOUT}
        procfile = self.state_dir / "Procfile"
        procfile.write_text(self.procfile())
        log_file = open(self.state_dir / "suite.log", "ab")
        honcho = Path(sys.executable).parent / "honcho"
        # honcho runs in its own session so that stopping the suite is one signal to it; it then
        # ends every child it started.
        self.process = subprocess.Popen(
            [str(honcho), "start", "-f", str(procfile), "--no-prefix"],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        log_file.close()
        for service, port in self.ports.items():
            logger.info("%s API on http://127.0.0.1:%s", service, port)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def check_running(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"the suite stopped (honcho exit code {self.process.returncode}); see {self.state_dir / 'suite.log'}")

    def wait_until_healthy(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        pending = set(self.ports)
        with httpx.Client(timeout=2) as client:
            while pending:
                self.check_running()
                for service in sorted(pending):
                    try:
                        if client.get(f"{self.url(service)}/healthz").status_code == 200:
                            pending.discard(service)
                    except httpx.TransportError:
                        pass
                if pending and time.monotonic() > deadline:
                    raise TimeoutError(f"services not healthy after {timeout:.0f}s: {', '.join(sorted(pending))}")
                if pending:
                    time.sleep(0.3)

    def relays_caught_up(self, client: httpx.Client) -> bool:
        for service in COMMAND_SERVICES:
            status = client.get(f"{self.url(service)}/internal/relay").json()
            if status["published_position"] < status["max_notification_id"]:
                return False
        return True

    def processors_caught_up(self, client: httpx.Client, end_offsets: dict[tuple[str, int], int]) -> bool:
        for service, topics in PROCESSOR_TOPICS.items():
            status = client.get(f"{self.url(service)}/internal/positions").json()
            applied = {(row["topic"], row["partition"]): row["offset"] for row in status["positions"]}
            for (topic, partition), end_offset in end_offsets.items():
                if topic in topics and end_offset > 0 and applied.get((topic, partition), -1) < end_offset - 1:
                    return False
        return True

    def wait_until_caught_up(self, timeout: float = 300.0) -> dict[tuple[str, int], int]:
        """Wait until relays published everything stored and every processor applied every published event."""
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=5) as client:
            while not self.relays_caught_up(client):
                self.check_running()
                if time.monotonic() > deadline:
                    raise TimeoutError("relays did not publish every stored event in time")
                time.sleep(0.2)
            end_offsets = asyncio.run(topic_end_offsets(self.kafka_bootstrap, (GOALS_TOPIC.name, SOCIAL_TOPIC.name)))
            while not self.processors_caught_up(client, end_offsets):
                self.check_running()
                if time.monotonic() > deadline:
                    raise TimeoutError("processors did not apply every published event in time")
                time.sleep(0.2)
        return end_offsets


async def topic_end_offsets(bootstrap: str, topics: tuple[str, ...]) -> dict[tuple[str, int], int]:
    """Return the end offset of every partition of ``topics``; a topic without partitions raises."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(list(topics))
    finally:
        await admin.close()
    partitions = []
    for topic in described:
        if not topic["partitions"]:
            raise RuntimeError(f"topic {topic['topic']} has no partitions on the broker; was it created?")
        partitions += [TopicPartition(topic["topic"], partition["partition"]) for partition in topic["partitions"]]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        offsets = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    return {(partition.topic, partition.partition): offset for partition, offset in offsets.items()}
