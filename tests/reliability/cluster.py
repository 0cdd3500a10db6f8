"""A three-node Kafka cluster in KRaft mode on 127.0.0.1, for the fault tests that kill one broker.

Every node is a combined broker and controller with a static quorum (``controller.quorum.voters``),
so any two of the three keep both the metadata quorum and the in-sync replicas (replication factor
3, ``min.insync.replicas`` 2) alive. The nodes run from the same Maven Central jars as
``spm_local.kafka.LocalBroker``.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from spm_events.registry import TOPICS
from spm_local.kafka import ensure_kafka_jars, java_command, new_cluster_id, wait_until_ready
from spm_local.ports import free_port

logger = logging.getLogger(__name__)

REPLICATION_FACTOR = 3
MIN_INSYNC_REPLICAS = 2


@dataclass
class ClusterNode:
    node_id: int
    state_dir: Path
    port: int
    controller_port: int
    process: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def properties_file(self) -> Path:
        return self.state_dir / "server.properties"

    @property
    def log_path(self) -> Path:
        return self.state_dir / "broker.log"

    def write_properties(self, voters: str) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        lines = {
            "process.roles": "broker,controller",
            "node.id": str(self.node_id),
            "controller.quorum.voters": voters,
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.state_dir / "logs"),
            "num.partitions": "3",
            "default.replication.factor": str(REPLICATION_FACTOR),
            "min.insync.replicas": str(MIN_INSYNC_REPLICAS),
            "offsets.topic.replication.factor": str(REPLICATION_FACTOR),
            "offsets.topic.num.partitions": "3",
            "transaction.state.log.replication.factor": str(REPLICATION_FACTOR),
            "transaction.state.log.min.isr": str(MIN_INSYNC_REPLICAS),
            "share.coordinator.state.topic.replication.factor": str(REPLICATION_FACTOR),
            "share.coordinator.state.topic.min.isr": str(MIN_INSYNC_REPLICAS),
            "group.initial.rebalance.delay.ms": "0",
            # A replica that stops fetching leaves the ISR after this long, so a killed broker does not
            # hold acks=all writes for the default 30 s.
            "replica.lag.time.max.ms": "10000",
            "auto.create.topics.enable": "true",
        }
        self.properties_file.write_text("".join(f"{key}={value}\n" for key, value in lines.items()))

    def format(self, libs_dir: Path, cluster_id: str) -> None:
        subprocess.run(
            java_command(libs_dir, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(self.properties_file)),
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def launch(self, libs_dir: Path) -> None:
        with open(self.log_path, "ab") as log_file:
            self.process = subprocess.Popen(
                java_command(libs_dir, "kafka.Kafka", str(self.properties_file)),
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """End the broker's JVM with SIGKILL, as a crash or a power loss would, and reap it."""
        if not self.is_running():
            return
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self, timeout: float = 30.0) -> None:
        if not self.is_running():
            return
        assert self.process is not None
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()


@dataclass
class LocalCluster:
    """Three combined broker and controller nodes in one directory; ``stop`` ends every node."""

    state_dir: Path
    size: int = 3
    nodes: list[ClusterNode] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.libs_dir = ensure_kafka_jars()
        self.nodes = [
            ClusterNode(node_id, self.state_dir / f"node{node_id}", free_port(), free_port())
            for node_id in range(1, self.size + 1)
        ]

    @property
    def bootstrap(self) -> str:
        return ",".join(node.bootstrap for node in self.nodes)

    def node(self, node_id: int) -> ClusterNode:
        return next(node for node in self.nodes if node.node_id == node_id)

    def start(self, timeout: float = 120.0) -> LocalCluster:
        voters = ",".join(f"{node.node_id}@127.0.0.1:{node.controller_port}" for node in self.nodes)
        cluster_id = new_cluster_id()
        for node in self.nodes:
            node.write_properties(voters)
            node.format(self.libs_dir, cluster_id)
        # Every node must be launched before any can be ready: a controller waits for a quorum majority.
        for node in self.nodes:
            node.launch(self.libs_dir)
        try:
            for node in self.nodes:
                wait_until_ready(node.bootstrap, node.process, timeout)
            self.wait_until_brokers_registered(self.size, timeout)
        except BaseException:
            self.stop()
            raise
        logger.info("Kafka cluster of %s nodes ready at %s", self.size, self.bootstrap)
        return self

    def kill(self, node_id: int) -> None:
        self.node(node_id).kill()

    def restart(self, node_id: int, timeout: float = 120.0) -> None:
        """Start a killed node again on its own log directory and ports, and wait until it responds."""
        node = self.node(node_id)
        node.launch(self.libs_dir)
        wait_until_ready(node.bootstrap, node.process, timeout)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def wait_until_brokers_registered(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            registered = asyncio.run(_registered_broker_ids(self.bootstrap))
            if len(registered) >= count:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"only brokers {sorted(registered)} of {count} registered within {timeout:.0f}s")
            time.sleep(0.5)

    def create_topics(self) -> None:
        """Create every registry topic with replication factor 3 and ``min.insync.replicas`` 2."""
        asyncio.run(_create_replicated_topics(self.bootstrap))

    def topic_settings(self, timeout: float = 30.0) -> dict[str, tuple[int, str]]:
        """Return each registry topic's (replication factor, min.insync.replicas) as the cluster reports them.

        A broker that has not applied the topics' metadata yet reports no configs for them, so this
        retries until every topic is described or ``timeout`` passes.
        """
        deadline = time.monotonic() + timeout
        while True:
            settings = asyncio.run(_topic_settings(self.bootstrap))
            if None not in settings.values() or time.monotonic() > deadline:
                return settings
            time.sleep(0.5)

    def wait_until_fully_replicated(self, topics: tuple[str, ...], timeout: float = 120.0) -> float:
        """Wait until every partition of ``topics`` has all its replicas in sync; return the seconds it took."""
        started = time.monotonic()
        while True:
            under_replicated = asyncio.run(_under_replicated_partitions(self.bootstrap, topics))
            if not under_replicated:
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"partitions still under-replicated after {timeout:.0f}s: {under_replicated}")
            time.sleep(0.5)


async def _registered_broker_ids(bootstrap: str) -> set[int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        await admin.start()
        cluster = await admin.describe_cluster()
        return {broker["node_id"] for broker in cluster["brokers"]}
    except Exception:  # noqa: BLE001 - any failure means "not registered yet"; the caller retries until its deadline
        return set()
    finally:
        await admin.close()


async def _create_replicated_topics(bootstrap: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(
                name=topic.name,
                num_partitions=topic.partitions,
                replication_factor=REPLICATION_FACTOR,
                topic_configs={"min.insync.replicas": str(MIN_INSYNC_REPLICAS)},
            )
            for topic in TOPICS.values()
            if topic.name not in existing
        ]
        if missing:
            await admin.create_topics(missing)
    finally:
        await admin.close()


async def _topic_settings(bootstrap: str) -> dict[str, tuple[int, str] | None]:
    names = [topic.name for topic in TOPICS.values()]
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(names)
        configs = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name) for name in names])
    finally:
        await admin.close()
    replication = {topic["topic"]: len(topic["partitions"][0]["replicas"]) for topic in described if topic["partitions"]}
    min_insync = {}
    for response in configs:
        for resource in response.resources:
            # Each resource is (error code, error message, type, name, [config entries]); an entry starts (name, value, ...).
            name, entries = resource[3], resource[4]
            values = [entry[1] for entry in entries if entry[0] == "min.insync.replicas"]
            if values:
                min_insync[name] = values[0]
    return {
        name: (replication[name], min_insync[name]) if name in replication and name in min_insync else None
        for name in names
    }


async def _under_replicated_partitions(bootstrap: str, topics: tuple[str, ...]) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        await admin.start()
        described = await admin.describe_topics(list(topics))
    except Exception as error:  # noqa: BLE001 - a broker still electing leaders counts as "not yet"
        return [f"metadata unavailable: {error!r}"]
    finally:
        await admin.close()
    return [
        f"{topic['topic']}/{partition['partition']} isr={partition['isr']}"
        for topic in described
        for partition in topic["partitions"]
        if len(partition["isr"]) < len(partition["replicas"])
    ]
