"""The consistency checker every fault test ends with.

The event stores are the source of truth. The checker compares them, by event id, with the topics
and with every read model, and reports:

- lost: an event in a store but missing from its topic, or missing from a processor that
  subscribes to that topic (neither applied nor dead-lettered);
- duplicated: one event's effect written twice in a read model (a feed item per event and reader,
  a notification per event and recipient, a score fact per event). The same event id twice on a
  topic is allowed, because relays publish at least once, and is only counted;
- out_of_order: an aggregate whose versions on its topic, kept at their first occurrence, do not
  increase.

``replay_differences`` compares a read model rebuilt from the topics with the live one.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy import MetaData, Table, create_engine, select
from sqlalchemy.engine import Engine

from spm_events.envelope import Envelope
from spm_events.registry import GOALS_TOPIC, SOCIAL_TOPIC, event_type_for
from spm_local.suite import topic_end_offsets

CHECKED_TOPICS = (GOALS_TOPIC.name, SOCIAL_TOPIC.name)

# Which topics each processor consumes, and the consumer name its read model records under.
PROCESSOR_TOPICS: dict[str, tuple[str, ...]] = {
    "goals": (SOCIAL_TOPIC.name,),
    "social": (GOALS_TOPIC.name, SOCIAL_TOPIC.name),
    "scoring": (GOALS_TOPIC.name, SOCIAL_TOPIC.name),
    "notifications": (GOALS_TOPIC.name, SOCIAL_TOPIC.name),
}

# Columns whose value depends on when or in which order rows were written, not on the events.
WALL_CLOCK_COLUMNS = frozenset({
    "indexed_at", "created_at", "updated_at", "recorded_at", "read_at", "sequence", "computed_at", "published_at",
})
# Bookkeeping that names offsets or consumers rather than facts; its content differs between runs by design.
BOOKKEEPING_TABLES = frozenset({"consumer_positions", "processed_events", "dead_letters", "relay_positions"})


@dataclass(frozen=True)
class StoredEvent:
    """One published event as the store holds it: the envelope the relay builds from it."""

    store: str
    notification_id: int
    event_id: str
    event_type: str
    topic: str
    aggregate_id: str
    version: int
    org_id: str
    data: Mapping[str, object] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class TopicRecord:
    topic: str
    partition: int
    offset: int
    event_id: str
    aggregate_id: str
    version: int
    org_id: str


@dataclass
class ReadModelSnapshot:
    """What the read models hold for one org, keyed the way duplicates are judged."""

    # consumer service -> event ids it applied (processed_events) or dead-lettered
    applied: dict[str, set[str]] = field(default_factory=dict)
    dead_lettered: dict[str, int] = field(default_factory=dict)
    feed_items: list[tuple[str, str]] = field(default_factory=list)  # (event id, reader)
    feed_activities: list[str] = field(default_factory=list)  # event ids of feed-worthy events
    audience_changes: list[str] = field(default_factory=list)  # event ids of follows, tags, joins
    notifications: list[tuple[str, str]] = field(default_factory=list)  # (event id, recipient)
    score_check_ins: list[str] = field(default_factory=list)  # event ids
    score_facts: list[str] = field(default_factory=list)  # event ids of the versioned scoring model's facts
    score_interactions: list[tuple[str, str, str]] = field(default_factory=list)  # (event id, person, kind)


@dataclass
class CheckReport:
    stored: int
    on_topic: int
    republished: int
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    out_of_order: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.lost or self.duplicated or self.out_of_order)

    def summary(self, limit: int = 20) -> str:
        lines = [
            f"{self.stored} stored events, {self.on_topic} topic messages ({self.republished} republished): "
            f"{len(self.lost)} lost, {len(self.duplicated)} duplicated, {len(self.out_of_order)} out of order"
        ]
        for title, findings in (("lost", self.lost), ("duplicated", self.duplicated), ("out of order", self.out_of_order)):
            for finding in findings[:limit]:
                lines.append(f"  {title}: {finding}")
            if len(findings) > limit:
                lines.append(f"  ... and {len(findings) - limit} more {title}")
        return "\n".join(lines)

    def assert_clean(self) -> None:
        assert self.clean, "the checker found inconsistencies:\n" + self.summary()


# --- the truth: the event stores -------------------------------------------------------------


def _event_store_env(location: str, sqlite_file: str) -> dict[str, str]:
    """Return eventsourcing settings for a SQLite event store file or a PostgreSQL URL."""
    from spm_events.settings import ServiceSettings  # noqa: PLC0415

    if location.startswith("postgresql"):
        return ServiceSettings(database_url=location).event_store_env(sqlite_file)
    path = Path(location)
    return ServiceSettings(data_dir=path.parent).event_store_env(path.name)


def _read_all(read_notifications, store: str, org_id: str | None, batch_size: int = 200) -> list[StoredEvent]:  # type: ignore[no-untyped-def]
    events = []
    position = 0
    while True:
        batch = read_notifications(position, batch_size)
        if not batch:
            return events
        for notification_id, envelope in batch:
            if envelope is not None and (org_id is None or envelope.orgid == org_id):
                events.append(_stored_event(store, notification_id, envelope))
        position = batch[-1][0]


def _stored_event(store: str, notification_id: int, envelope: Envelope) -> StoredEvent:
    return StoredEvent(
        store=store,
        notification_id=notification_id,
        event_id=envelope.id,
        event_type=envelope.type,
        topic=event_type_for(envelope.type).topic.name,
        aggregate_id=envelope.subject,
        version=envelope.aggregateversion,
        org_id=envelope.orgid,
        data=envelope.data,
    )


def collect_truth(goals_store: str, social_store: str, org_id: str | None = None) -> list[StoredEvent]:
    """Read every published event of the goals and social event stores.

    Each store is a SQLite event store file or a ``postgresql+psycopg://`` URL. The events are mapped
    by the relays' own readers, so internal events that are never published (recorded
    Idempotency-Keys, a social graph's start) are left out exactly as the relays leave them out.
    """
    from spm_goals.application import GoalsApplication  # noqa: PLC0415
    from spm_goals.relay import notification_reader as goals_reader  # noqa: PLC0415
    from spm_goals.settings import EVENT_STORE_FILE as GOALS_FILE  # noqa: PLC0415
    from spm_social.application import SocialApplication  # noqa: PLC0415
    from spm_social.relay import notification_reader as social_reader  # noqa: PLC0415
    from spm_social.settings import EVENT_STORE_FILE as SOCIAL_FILE  # noqa: PLC0415

    # The goals application keeps a goal index; an in-memory database keeps it out of the checked stores.
    index_engine = create_engine("sqlite://")
    goals = GoalsApplication(env=_event_store_env(goals_store, GOALS_FILE), index_engine=index_engine)
    try:
        truth = _read_all(goals_reader(goals), "goals", org_id)
    finally:
        goals.close()
        index_engine.dispose()
    social = SocialApplication(goal_audiences=None, env=_event_store_env(social_store, SOCIAL_FILE))  # type: ignore[arg-type]
    try:
        truth += _read_all(social_reader(social), "social", org_id)
    finally:
        social.close()
    return truth


# --- the topics -------------------------------------------------------------------------------


async def _consume(
    bootstrap: str, topics: Iterable[str], org_id: str, start_offsets: Mapping[tuple[str, int], int] | None
) -> list[TopicRecord]:
    end_offsets = {
        TopicPartition(topic, partition): offset
        for (topic, partition), offset in (await topic_end_offsets(bootstrap, tuple(topics))).items()
    }
    partitions = sorted(end_offsets)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    await consumer.start()
    records: list[TopicRecord] = []
    try:
        consumer.assign(partitions)
        for partition in partitions:
            start = (start_offsets or {}).get((partition.topic, partition.partition), 0)
            consumer.seek(partition, start)
        pending = {tp for tp in partitions if await consumer.position(tp) < end_offsets[tp]}
        while pending:
            batches = await consumer.getmany(*pending, timeout_ms=2000, max_records=5000)
            for tp, messages in batches.items():
                for message in messages:
                    record = _topic_record(message.topic, message.partition, message.offset, message.value)
                    if record is not None and record.org_id == org_id:
                        records.append(record)
            pending = {tp for tp in pending if await consumer.position(tp) < end_offsets[tp]}
    finally:
        await consumer.stop()
    return records


def _topic_record(topic: str, partition: int, offset: int, value: bytes | None) -> TopicRecord | None:
    try:
        document = json.loads(value or b"")
    except ValueError:
        return None
    if not isinstance(document, dict) or "id" not in document:
        return None
    return TopicRecord(
        topic=topic,
        partition=partition,
        offset=offset,
        event_id=str(document["id"]),
        aggregate_id=str(document.get("subject")),
        version=int(document.get("aggregateversion") or 0),
        org_id=str(document.get("orgid")),
    )


def consume_topics(
    bootstrap: str,
    topics: Iterable[str],
    org_id: str,
    start_offsets: Mapping[tuple[str, int], int] | None = None,
) -> list[TopicRecord]:
    """Read every message of ``topics`` for ``org_id``, from ``start_offsets`` (default 0) to the current end."""
    return asyncio.run(_consume(bootstrap, tuple(topics), org_id, start_offsets))


# --- the read models --------------------------------------------------------------------------


def _engine(location: str) -> Engine:
    if location.startswith(("postgresql", "sqlite")):
        return create_engine(location)
    return create_engine(f"sqlite:///{Path(location).resolve()}")


def _table(engine: Engine, name: str) -> Table | None:
    metadata = MetaData()
    try:
        return Table(name, metadata, autoload_with=engine)
    except Exception:  # noqa: BLE001 - a table the read model has not created yet holds nothing
        return None


def _rows(engine: Engine, table_name: str, columns: tuple[str, ...], org_id: str) -> list[tuple]:
    table = _table(engine, table_name)
    if table is None:
        return []
    statement = select(*(table.c[name] for name in columns))
    if "org_id" in table.c:
        statement = statement.where(table.c.org_id == org_id)
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(statement)]


def _applied_event_ids(engine: Engine, consumer: str) -> set[str]:
    table = _table(engine, "processed_events")
    if table is None:
        return set()
    with engine.connect() as connection:
        rows = connection.execute(select(table.c.event_id).where(table.c.consumer == consumer))
        return {row.event_id for row in rows}


def _dead_letter_count(engine: Engine, consumer: str) -> int:
    table = _table(engine, "dead_letters")
    if table is None:
        return 0
    with engine.connect() as connection:
        return len(connection.execute(select(table.c.offset).where(table.c.consumer == consumer)).all())


@dataclass(frozen=True)
class ReadModelLocation:
    """Where one processor's read model lives and the consumer name it records positions under."""

    service: str
    database: str  # a SQLite file path or an SQLAlchemy URL
    consumer: str


def collect_read_models(locations: Iterable[ReadModelLocation], org_id: str) -> ReadModelSnapshot:
    """Read the effects of ``org_id``'s events from each processor's database."""
    snapshot = ReadModelSnapshot()
    for location in locations:
        engine = _engine(location.database)
        try:
            snapshot.applied[location.service] = _applied_event_ids(engine, location.consumer)
            snapshot.dead_lettered[location.service] = _dead_letter_count(engine, location.consumer)
            if location.service == "social":
                snapshot.feed_items = _rows(engine, "feed_items", ("event_id", "person_id"), org_id)
                snapshot.feed_activities = [row[0] for row in _rows(engine, "feed_activities", ("event_id",), org_id)]
                snapshot.audience_changes = [row[0] for row in _rows(engine, "audience_changes", ("event_id",), org_id)]
            elif location.service == "notifications":
                snapshot.notifications = _rows(engine, "inbox", ("event_id", "recipient_id"), org_id)
            elif location.service == "scoring":
                snapshot.score_check_ins = [row[0] for row in _rows(engine, "check_ins", ("event_id",), org_id)]
                snapshot.score_facts = [row[0] for row in _rows(engine, "score_facts", ("event_id",), org_id)]
                snapshot.score_interactions = _rows(engine, "interactions", ("event_id", "person_id", "kind"), org_id)
        finally:
            engine.dispose()
    return snapshot


# Effects every event of a type must leave, as (processor, description, ReadModelSnapshot field of
# event ids). Other effects depend on who follows or sees what at event time, so the replay
# comparison covers them.
REQUIRED_EFFECTS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "spm.goals.CheckInRecorded.v1": (
        ("social", "feed activity", "feed_activities"),
        ("scoring", "check-in fact", "score_check_ins"),
    ),
    "spm.social.GoalFollowed.v1": (("social", "audience change", "audience_changes"),),
    "spm.social.CollaboratorTagged.v1": (("social", "audience change", "audience_changes"),),
}


# --- the check --------------------------------------------------------------------------------


def check(
    truth: list[StoredEvent],
    topic_records: list[TopicRecord],
    read_models: ReadModelSnapshot,
    processor_topics: Mapping[str, tuple[str, ...]] = PROCESSOR_TOPICS,
) -> CheckReport:
    """Compare the stores with the topics and the read models; see the module docstring for the rules."""
    on_topic = Counter(record.event_id for record in topic_records)
    report = CheckReport(
        stored=len(truth),
        on_topic=len(topic_records),
        republished=sum(count - 1 for count in on_topic.values()),
    )

    effect_ids = {snapshot_field: set(getattr(read_models, snapshot_field))
                  for effects in REQUIRED_EFFECTS.values() for _, _, snapshot_field in effects}
    for event in truth:
        where = f"{event.store} event {event.event_id} (aggregate {event.aggregate_id} version {event.version})"
        if event.event_id not in on_topic:
            report.lost.append(f"{where} is not on {event.topic}")
        for service, topics in processor_topics.items():
            if event.topic not in topics or service not in read_models.applied:
                continue
            if event.event_id not in read_models.applied[service]:
                report.lost.append(f"{where} was not applied by the {service} processor")
        for service, description, snapshot_field in REQUIRED_EFFECTS.get(event.event_type, ()):
            if service in read_models.applied and event.event_id not in effect_ids[snapshot_field]:
                report.lost.append(f"{where} has no {service} {description}")

    stored_ids = {event.event_id for event in truth}
    for event_id, count in on_topic.items():
        if event_id not in stored_ids:
            report.lost.append(f"topic message {event_id} matches no stored event (a store lost it)")

    effects: list[tuple[str, Counter]] = [
        ("feed item (event, reader)", Counter(read_models.feed_items)),
        ("feed activity (event)", Counter(read_models.feed_activities)),
        ("audience change (event)", Counter(read_models.audience_changes)),
        ("notification (event, recipient)", Counter(read_models.notifications)),
        ("score check-in fact (event)", Counter(read_models.score_check_ins)),
        ("score fact (event)", Counter(read_models.score_facts)),
        ("score interaction fact (event, person, kind)", Counter(read_models.score_interactions)),
    ]
    for name, counts in effects:
        for key, count in sorted(counts.items()):
            if count > 1:
                report.duplicated.append(f"{name} {key} written {count} times")
    for service, count in read_models.dead_lettered.items():
        if count:
            report.lost.append(f"the {service} processor dead-lettered {count} messages")

    report.out_of_order = _out_of_order(topic_records)
    return report


def _out_of_order(topic_records: list[TopicRecord]) -> list[str]:
    """Find aggregates whose first occurrences on a topic do not have increasing versions."""
    seen: set[str] = set()
    by_aggregate: dict[tuple[str, str], list[TopicRecord]] = defaultdict(list)
    for record in sorted(topic_records, key=lambda item: (item.topic, item.partition, item.offset)):
        if record.event_id in seen:
            continue
        seen.add(record.event_id)
        by_aggregate[(record.topic, record.aggregate_id)].append(record)
    findings = []
    for (topic, aggregate_id), records in sorted(by_aggregate.items()):
        partitions = {record.partition for record in records}
        if len(partitions) > 1:
            findings.append(f"{topic} aggregate {aggregate_id} spread over partitions {sorted(partitions)}")
            continue
        versions = [record.version for record in records]
        if any(later <= earlier for earlier, later in zip(versions, versions[1:])):
            findings.append(f"{topic} aggregate {aggregate_id} versions in offset order: {versions}")
    return findings


# --- replay from scratch -----------------------------------------------------------------------


def read_model_tables(location: str, org_id: str) -> dict[str, Counter]:
    """Return each org-scoped read-model table as a multiset of rows, without wall-clock columns."""
    engine = _engine(location)
    try:
        metadata = MetaData()
        metadata.reflect(bind=engine)
        tables: dict[str, Counter] = {}
        for name, table in sorted(metadata.tables.items()):
            if name in BOOKKEEPING_TABLES or "org_id" not in table.c:
                continue
            columns = [column for column in table.c if column.name not in WALL_CLOCK_COLUMNS]
            with engine.connect() as connection:
                rows = connection.execute(select(*columns).where(table.c.org_id == org_id))
                tables[name] = Counter(tuple(_comparable(value) for value in row) for row in rows)
        return tables
    finally:
        engine.dispose()


def _comparable(value: object) -> object:
    # SQLite returns naive datetimes and PostgreSQL aware ones; compare both as ISO text in UTC.
    if hasattr(value, "isoformat"):
        text = value.isoformat()  # type: ignore[union-attr]
        return text.removesuffix("+00:00")
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def replay_differences(
    live: str,
    replayed: str,
    org_id: str,
    ignore_tables: Iterable[str] = (),
    only_tables: Iterable[str] | None = None,
) -> list[str]:
    """List the differences between a live read model and one rebuilt from the topics into an empty database.

    Tables written by an API rather than by events (preferences, webhooks, the people directory)
    go in ``ignore_tables``; ``only_tables`` limits the comparison where an API shares the database.
    """
    ignored = set(ignore_tables)
    only = None if only_tables is None else set(only_tables)
    live_tables = read_model_tables(live, org_id)
    replayed_tables = read_model_tables(replayed, org_id)
    differences = []
    for name in sorted(set(live_tables) | set(replayed_tables)):
        if name in ignored or (only is not None and name not in only):
            continue
        live_rows = live_tables.get(name, Counter())
        replayed_rows = replayed_tables.get(name, Counter())
        if live_rows == replayed_rows:
            continue
        only_live = live_rows - replayed_rows
        only_replayed = replayed_rows - live_rows
        differences.append(
            f"{name}: {sum(only_live.values())} rows only live (e.g. {list(only_live)[:2]}), "
            f"{sum(only_replayed.values())} rows only replayed (e.g. {list(only_replayed)[:2]})"
        )
    return differences
