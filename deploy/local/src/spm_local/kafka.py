"""A real single-node Apache Kafka broker in KRaft mode, run from its Maven Central jars.

The jars are resolved once by Maven into the cache (``deploy/kafka/pom.xml`` names the version)
and reused by every later run. Each broker gets its own log directory and free ports on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

from spm_local.paths import CACHE_DIR, KAFKA_POM
from spm_local.ports import free_port

logger = logging.getLogger(__name__)

KAFKA_LIBS_DIR = CACHE_DIR / "kafka" / "libs"
READY_TIMEOUT_SECONDS = 90.0


def ensure_kafka_jars() -> Path:
    """Resolve the broker's jars with Maven into the cache, unless a previous run already did."""
    marker = KAFKA_LIBS_DIR / ".complete"
    if marker.exists() and marker.read_text() == KAFKA_POM.read_text():
        return KAFKA_LIBS_DIR
    if shutil.which("mvn") is None:
        raise RuntimeError("Maven ('mvn') is not on PATH; install it (apt-get install maven) to fetch the Kafka broker")
    shutil.rmtree(KAFKA_LIBS_DIR, ignore_errors=True)
    KAFKA_LIBS_DIR.mkdir(parents=True)
    logger.info("fetching the Kafka broker jars from Maven Central into %s", KAFKA_LIBS_DIR)
    subprocess.run(
        [
            "mvn", "-q", "-B", "-f", str(KAFKA_POM), "dependency:copy-dependencies",
            f"-DoutputDirectory={KAFKA_LIBS_DIR}", "-DincludeScope=runtime",
        ],
        check=True,
    )
    marker.write_text(KAFKA_POM.read_text())
    return KAFKA_LIBS_DIR


def new_cluster_id() -> str:
    """Return 16 random bytes in URL-safe base64 without padding, not starting with '-', as KRaft requires."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


@dataclass
class BrokerConfig:
    state_dir: Path
    port: int
    controller_port: int

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def properties_file(self) -> Path:
        return self.state_dir / "server.properties"

    def write_properties(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        lines = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.state_dir / "logs"),
            "num.partitions": "3",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "3",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "true",
        }
        self.properties_file.write_text("".join(f"{key}={value}\n" for key, value in lines.items()))


def java_command(libs_dir: Path, main_class: str, *arguments: str) -> list[str]:
    return [
        "java", "-Xms256m", "-Xmx768m", "-XX:+UseG1GC", "-Djava.awt.headless=true",
        "-cp", f"{libs_dir}/*", main_class, *arguments,
    ]


def format_storage(config: BrokerConfig, libs_dir: Path) -> None:
    subprocess.run(
        java_command(
            libs_dir, "kafka.tools.StorageTool", "format", "-t", new_cluster_id(),
            "-c", str(config.properties_file), "--ignore-formatted",
        ),
        check=True,
        stdout=subprocess.DEVNULL,
    )


async def _metadata_answers(bootstrap: str) -> bool:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    try:
        await admin.start()
        await admin.list_topics()
        return True
    except Exception:  # noqa: BLE001 - any failure means "not ready yet"; the caller retries until its deadline
        return False
    finally:
        await admin.close()


def wait_until_ready(bootstrap: str, process: subprocess.Popen | None = None, timeout: float = READY_TIMEOUT_SECONDS) -> None:
    """Poll with a client's metadata call until the broker responds, the process exits, or the deadline passes."""
    deadline = time.monotonic() + timeout
    # Until the broker listens, every attempt makes aiokafka log a connection error; they are expected here.
    aiokafka_logger = logging.getLogger("aiokafka")
    previous_level = aiokafka_logger.level
    aiokafka_logger.setLevel(logging.CRITICAL)
    try:
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"Kafka broker exited with code {process.returncode} before it was ready")
            if asyncio.run(_metadata_answers(bootstrap)):
                return
            time.sleep(0.5)
    finally:
        aiokafka_logger.setLevel(previous_level)
    raise TimeoutError(f"Kafka broker at {bootstrap} did not respond to a metadata request within {timeout:.0f}s")


def existing_config(state_dir: Path) -> BrokerConfig | None:
    """Return the config of a broker already formatted in ``state_dir``, so a restart keeps its ports and cluster id."""
    properties_file = state_dir / "server.properties"
    if not properties_file.exists() or not (state_dir / "logs" / "meta.properties").exists():
        return None
    properties = dict(
        line.split("=", 1) for line in properties_file.read_text().splitlines() if "=" in line and not line.startswith("#")
    )
    port = int(properties["advertised.listeners"].rsplit(":", 1)[1])
    controller_port = int(properties["controller.quorum.voters"].rsplit(":", 1)[1])
    return BrokerConfig(state_dir=state_dir, port=port, controller_port=controller_port)


def prepare_broker(state_dir: Path, port: int | None = None) -> BrokerConfig:
    """Fetch the jars if needed, then reuse the broker formatted in ``state_dir`` or format a new one on free ports."""
    libs_dir = ensure_kafka_jars()
    config = existing_config(state_dir)
    if config is not None and (port is None or port == config.port):
        return config
    config = BrokerConfig(state_dir=state_dir, port=port or free_port(), controller_port=free_port())
    config.write_properties()
    format_storage(config, libs_dir)
    return config


def broker_command(config: BrokerConfig) -> list[str]:
    return java_command(KAFKA_LIBS_DIR, "kafka.Kafka", str(config.properties_file))


class LocalBroker:
    """A broker process owned by the caller; ``stop`` ends it and waits."""

    def __init__(self, state_dir: Path, port: int | None = None) -> None:
        self.config = prepare_broker(state_dir, port)
        self.log_path = state_dir / "broker.log"
        self.process: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return self.config.bootstrap

    def start(self) -> LocalBroker:
        log_file = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            broker_command(self.config), stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
        )
        log_file.close()
        try:
            wait_until_ready(self.bootstrap, self.process)
        except BaseException:
            self.stop()
            raise
        logger.info("Kafka broker ready at %s (log %s)", self.bootstrap, self.log_path)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def main() -> None:
    """Run one broker in the foreground (``spm-kafka``): fetch, format, exec; or only fetch with --fetch-only."""
    parser = argparse.ArgumentParser(description="Run a single-node Kafka broker on 127.0.0.1.")
    parser.add_argument("--state-dir", type=Path, default=Path("var/kafka"), help="log directory and config")
    parser.add_argument("--port", type=int, default=None, help="client port (default: a free one)")
    parser.add_argument("--fetch-only", action="store_true", help="only resolve the jars into the cache")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if arguments.fetch_only:
        ensure_kafka_jars()
        return
    config = prepare_broker(arguments.state_dir.resolve(), arguments.port)
    print(f"Kafka broker starting at {config.bootstrap}", flush=True)
    sys.stdout.flush()
    # exec, so the supervisor's signals reach the JVM directly.
    os.execvp("java", broker_command(config))


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    main()
