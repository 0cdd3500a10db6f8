"""Creates the registry's topics on a broker, so producers and consumers never race auto-creation."""

from __future__ import annotations

import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from spm_events.registry import TOPICS

logger = logging.getLogger(__name__)


async def ensure_topics(bootstrap: str, replication_factor: int = 1) -> None:
    """Create every registry topic that does not exist yet; existing topics are left as they are."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(name=topic.name, num_partitions=topic.partitions, replication_factor=replication_factor)
            for topic in TOPICS.values()
            if topic.name not in existing
        ]
        if missing:
            await admin.create_topics(missing)
            logger.info("created topics %s", ", ".join(topic.name for topic in missing))
    finally:
        await admin.close()
