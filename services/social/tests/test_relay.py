import asyncio
from collections.abc import Callable
from datetime import datetime, timezone

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from spm_events.auth import Principal
from spm_events.database import create_database_engine
from spm_events.envelope import Envelope, decode_envelope
from spm_events.registry import SOCIAL_TOPIC, TOPICS
from spm_events.relay import Relay, RelayLockHeldError, RelayPositions, create_idempotent_producer, single_active_relay
from spm_events.topics import ensure_topics
from spm_social.application import SocialApplication
from spm_social.directory_lookup import PeopleLookup
from spm_social.domain import graph_id_for
from spm_social.people import PeopleDirectory
from spm_social.readmodel import SocialReadModel
from spm_social.relay import RELAY_NAME, notification_reader
from spm_social.settings import EVENT_STORE_FILE, READ_MODEL_FILE, SocialSettings
from spm_social.views import SocialViews

FOLLOWED_AT = datetime(2021, 2, 1, 9, 0, tzinfo=timezone.utc)
TAGGED_AT = datetime(2021, 2, 2, 9, 0, tzinfo=timezone.utc)
UNFOLLOWED_AT = datetime(2021, 2, 3, 9, 0, tzinfo=timezone.utc)


async def start_consumer_at_end(bootstrap: str, topic: str) -> AIOKafkaConsumer:
    """Start a group-less consumer positioned after the last message of every partition of ``topic``."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        # ensure_topics created the topic with the registry's partition count.
        partitions = [TopicPartition(topic, partition) for partition in range(TOPICS[topic].partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for partition in partitions:
            await consumer.position(partition)
    except BaseException:
        await consumer.stop()
        raise
    return consumer


async def read_subject(
    consumer: AIOKafkaConsumer, subject: str, expected: int, timeout: float = 30.0
) -> list[Envelope]:
    """Read until ``expected`` envelopes of ``subject`` arrived or ``timeout`` seconds passed."""
    found: list[Envelope] = []
    deadline = asyncio.get_running_loop().time() + timeout
    while len(found) < expected and asyncio.get_running_loop().time() < deadline:
        batches = await consumer.getmany(timeout_ms=500)
        for messages in batches.values():
            envelopes = [decode_envelope(message.value) for message in messages]
            found.extend(envelope for envelope in envelopes if envelope.subject == subject)
    return found


@pytest.fixture
def social(settings: SocialSettings, read_model: SocialReadModel) -> SocialApplication:
    application = SocialApplication(
        goal_audiences=SocialViews(read_model),
        env=settings.event_store_env(EVENT_STORE_FILE),
        people=PeopleLookup(read_model.engine, PeopleDirectory(read_model.engine).table),
    )
    yield application
    application.close()


def test_relay_publishes_follow_tag_unfollow_in_order(
    kafka_bootstrap: str,
    social: SocialApplication,
    read_model: SocialReadModel,
    add_known_goal: Callable[..., str],
    add_people: Callable[..., list[str]],
    org_id: str,
) -> None:
    goal_id = add_known_goal(owner_id="owner-1")
    [person_2] = add_people("person-2")
    social.follow_goal(Principal(org_id, "person-1"), goal_id, FOLLOWED_AT)
    social.tag_collaborator(Principal(org_id, "person-1"), goal_id, person_2, TAGGED_AT)
    social.unfollow_goal(Principal(org_id, "person-1"), goal_id, UNFOLLOWED_AT)
    positions = RelayPositions(read_model.engine)
    subject = str(graph_id_for(org_id, goal_id))

    async def publish() -> tuple[int, list[Envelope]]:
        await ensure_topics(kafka_bootstrap)
        consumer = await start_consumer_at_end(kafka_bootstrap, SOCIAL_TOPIC.name)
        producer = create_idempotent_producer(kafka_bootstrap)
        await producer.start()
        try:
            relay = Relay(RELAY_NAME, notification_reader(social), positions, producer)
            reached = await relay.publish_next_batch(positions.read(RELAY_NAME))
            return reached, await read_subject(consumer, subject, expected=3)
        finally:
            await producer.stop()
            await consumer.stop()

    reached, published = asyncio.run(publish())

    assert reached == social.max_notification_id()
    assert positions.read(RELAY_NAME) == reached
    assert [envelope.type for envelope in published] == [
        "spm.social.GoalFollowed.v1",
        "spm.social.CollaboratorTagged.v1",
        "spm.social.GoalUnfollowed.v1",
    ]
    assert [envelope.aggregateversion for envelope in published] == [2, 3, 4]
    assert [envelope.time for envelope in published] == [FOLLOWED_AT, TAGGED_AT, UNFOLLOWED_AT]
    assert [envelope.actorid for envelope in published] == ["person-1", "person-1", "person-1"]
    assert {envelope.orgid for envelope in published} == {org_id}
    assert published[1].data == {"goal_id": goal_id, "collaborator_id": person_2}


def test_second_relay_on_same_store_is_refused(sqlite_settings: SocialSettings) -> None:
    engine = create_database_engine(sqlite_settings.sqlalchemy_url(READ_MODEL_FILE))

    with single_active_relay(engine, RELAY_NAME, sqlite_settings.data_dir):
        with pytest.raises(RelayLockHeldError):
            with single_active_relay(engine, RELAY_NAME, sqlite_settings.data_dir):
                pass

    engine.dispose()
