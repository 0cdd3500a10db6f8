"""The local broker restarts on its own state directory with the same ports and cluster."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from spm_local.kafka import LocalBroker


async def _create_topic(bootstrap: str, name: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name=name, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()


async def _topic_names(bootstrap: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return await admin.list_topics()
    finally:
        await admin.close()


def test_broker_restart_keeps_state(tmp_path: Path) -> None:
    first = LocalBroker(tmp_path / "kafka").start()
    try:
        asyncio.run(_create_topic(first.bootstrap, "restart-check"))
    finally:
        first.stop()

    second = LocalBroker(tmp_path / "kafka").start()
    try:
        assert second.bootstrap == first.bootstrap
        assert "restart-check" in asyncio.run(_topic_names(second.bootstrap))
    finally:
        second.stop()
