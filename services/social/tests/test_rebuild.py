"""Rebuilding the social read model from the topics into empty stores gives the live state, row for row.

A run of mixed goal and social events goes through the real broker into a live read model, in
publishing order. A second projection then reads the test's messages back from the topics, one
partition after another, so spm.social.v1 comes before spm.goals.v1, into an empty store.
Every table in the live database is compared, all rows of the test's organisation (or all rows of a
table without an org column), except wall-clock columns. The only tables left out are those
``NOT_REBUILT`` lists, which the API writes and no topic feeds.
"""

import asyncio
import uuid
from collections.abc import Callable, Iterator
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from fastapi.testclient import TestClient
from sqlalchemy import Engine, inspect, select

from spm_events.database import create_database_engine
from spm_events.envelope import Envelope, decode_envelope
from spm_events.people import person_id_for
from spm_events.readmodel import KafkaPosition, Outcome
from spm_events.registry import GOALS_TOPIC, SOCIAL_TOPIC, new_envelope
from spm_events.schemas import (
    CheckInRecordedV1,
    CollaboratorLeftV1,
    CollaboratorTaggedV1,
    CollaboratorUntaggedV1,
    CommentDeletedV1,
    CommentEditedV1,
    CommentPostedV1,
    CommunityCreatedV1,
    CommunityDescribedV1,
    CommunityFollowedV1,
    CommunityGoalLinkedV1,
    CommunityGoalUnlinkedV1,
    CommunityMemberInvitedV1,
    CommunityMemberJoinedV1,
    CommunityMemberLeftV1,
    CommunityUnfollowedV1,
    GoalCreatedV1,
    GoalFollowedV1,
    GoalOwnersChangedV1,
    GoalUnfollowedV1,
    GoalVisibilityChangedV1,
    KeyResultAddedV1,
    KudosGivenV1,
    Payload,
    PeriodV1,
    PersonFollowedV1,
    PersonUnfollowedV1,
    ReactionAddedV1,
    ReactionRemovedV1,
    TagAcceptedV1,
    TagDeclinedV1,
)
from spm_social.api import create_app
from spm_social.domain import graph_id_for
from spm_social.fanout import DEFAULT_READ_TIME_THRESHOLD, as_utc
from spm_social.projection import FeedProjection
from spm_social.readmodel import SocialReadModel, open_read_model
from spm_social.settings import READ_MODEL_FILE, SocialSettings

pytestmark = pytest.mark.kafka

TOPICS = (SOCIAL_TOPIC.name, GOALS_TOPIC.name)
# indexed_at: when an item reached a feed; updated_at: when a consumer position was recorded;
# recorded_at: when a dead letter was stored.
WALL_CLOCK_COLUMNS = {"indexed_at", "updated_at", "recorded_at"}
# Tables in the social database that no topic feeds, so a rebuild from the topics leaves them alone.
NOT_REBUILT = {
    # The people directory and its teams: written only by admins through POST /people/batch and
    # POST /teams/batch, because personal details never travel in events.
    "people",
    "teams",
    # Per-person request counters of the API's rate limit, by wall-clock window.
    "rate_limit_windows",
    # How far the relay has published the event store: command-side bookkeeping.
    "relay_positions",
    # The event store itself, which shares the database on PostgreSQL (SQLite keeps it in its own file).
    "socialapplication_events",
}
# Tables the mixed run leaves empty on purpose: no message of the run is invalid.
EMPTY_AFTER_RUN = {"dead_letters"}
READ_SECONDS = 60.0
ReadModelFactory = Callable[[int], SocialReadModel]


@pytest.fixture(params=["sqlite", "postgres"])
def empty_read_models(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ReadModelFactory]:
    """Return a function that opens an empty read model with a given threshold, on SQLite or PostgreSQL."""
    engines: list[Engine] = []

    def open_empty(threshold: int) -> SocialReadModel:
        if request.param == "postgres":
            settings = social_settings(tmp_path, request.getfixturevalue("postgres_url_factory")())
        else:
            settings = social_settings(tmp_path / f"store-{len(engines)}", None)
        engines.append(create_database_engine(settings.sqlalchemy_url(READ_MODEL_FILE)))
        return open_read_model(engines[-1], read_time_threshold=threshold)

    yield open_empty
    for engine in engines:
        engine.dispose()


def social_settings(data_dir: Path, database_url: str | None) -> SocialSettings:
    data_dir.mkdir(parents=True, exist_ok=True)
    return SocialSettings(data_dir=data_dir, database_url=database_url, kafka_bootstrap="127.0.0.1:1")


def create_api_tables(read_model: SocialReadModel, tmp_path: Path) -> None:
    """Start and stop the API on the read model's database, so every table the service creates exists there."""
    url = read_model.engine.url
    if url.get_backend_name() == "sqlite":
        settings = social_settings(Path(str(url.database)).parent, None)
    else:
        settings = social_settings(tmp_path, url.render_as_string(hide_password=False))
    with TestClient(create_app(settings)):
        pass


class MixedRun:
    """A day of work in one organisation, as the goals and social relays would publish it."""

    def __init__(self, org_id: str) -> None:
        self.org_id = org_id
        self.versions: dict[str, int] = {}
        self.community_id = str(uuid.uuid4())
        self.other_community_id = str(uuid.uuid4())

    def person(self, handle: str) -> str:
        return person_id_for(self.org_id, handle)

    def wrap(self, payload: Payload, subject: str, actor: str, day: int, hour: int = 9) -> Envelope:
        self.versions[subject] = self.versions.get(subject, 0) + 1
        return new_envelope(
            payload,
            subject=subject,
            org_id=self.org_id,
            actor_id=self.person(actor),
            aggregate_version=self.versions[subject],
            time=datetime(2021, 2, day, hour, tzinfo=timezone.utc),
        )

    def goal(self, payload: Payload, actor: str, day: int, hour: int = 9) -> Envelope:
        return self.wrap(payload, payload.goal_id, actor, day, hour)  # type: ignore[attr-defined]

    def graph(self, payload: Payload, actor: str, day: int, hour: int = 9) -> Envelope:
        graph_id = str(graph_id_for(self.org_id, payload.goal_id))  # type: ignore[attr-defined]
        return self.wrap(payload, graph_id, actor, day, hour)

    def community(self, payload: Payload, actor: str, day: int, hour: int = 9) -> Envelope:
        return self.wrap(payload, payload.community_id, actor, day, hour)  # type: ignore[attr-defined]

    def people(self, payload: Payload, actor: str, day: int, hour: int = 9) -> Envelope:
        return self.wrap(payload, f"people/{payload.person_id}", actor, day, hour)  # type: ignore[attr-defined]

    def created(
        self, goal_id: str, owner: str, visibility: str = "organisation", co_owners: tuple[str, ...] = ()
    ) -> Envelope:
        payload = GoalCreatedV1(
            goal_id=goal_id,
            title=f"Title of {goal_id}",
            owner_id=self.person(owner),
            team="growth",
            period=PeriodV1(name="FY21-Q1", start=date(2021, 1, 1), end=date(2021, 3, 31)),
            visibility=visibility,
            co_owner_ids=tuple(self.person(handle) for handle in co_owners),
        )
        return self.goal(payload, owner, day=1)

    def key_result(self, goal_id: str, owner: str) -> Envelope:
        payload = KeyResultAddedV1(
            goal_id=goal_id,
            key_result_id=f"{goal_id}-kr",
            title="Signed customers",
            metric="number",
            start_value=0,
            target_value=9,
        )
        return self.goal(payload, owner, day=1, hour=10)

    def check_in(self, goal_id: str, actor: str, day: int, hour: int = 12) -> Envelope:
        payload = CheckInRecordedV1(
            goal_id=goal_id,
            key_result_id=f"{goal_id}-kr",
            check_in_id=f"{goal_id}-check-in-{day}-{hour}",
            value=3,
            progress=0.3,
        )
        return self.goal(payload, actor, day, hour)

    def follow(self, goal_id: str, handle: str, day: int, hour: int = 9) -> Envelope:
        return self.graph(GoalFollowedV1(goal_id=goal_id, follower_id=self.person(handle)), handle, day, hour)

    def unfollow(self, goal_id: str, handle: str, day: int, hour: int = 9) -> Envelope:
        return self.graph(GoalUnfollowedV1(goal_id=goal_id, follower_id=self.person(handle)), handle, day, hour)

    def tag(self, goal_id: str, handle: str, by: str, day: int) -> Envelope:
        return self.graph(CollaboratorTaggedV1(goal_id=goal_id, collaborator_id=self.person(handle)), by, day)

    def react(self, target_kind: str, target_id: str, handle: str, day: int, added: bool = True) -> Envelope:
        schema = ReactionAddedV1 if added else ReactionRemovedV1
        payload = schema(goal_id="goal-a", target_kind=target_kind, target_id=target_id, reaction="like")
        return self.graph(payload, handle, day, hour=16)

    def join(self, community_id: str, handle: str, day: int) -> Envelope:
        payload = CommunityMemberJoinedV1(community_id=community_id, member_id=self.person(handle))
        return self.community(payload, handle, day)

    def follow_person(self, person: str, handle: str, day: int, follows: bool = True) -> Envelope:
        schema = PersonFollowedV1 if follows else PersonUnfollowedV1
        return self.people(schema(person_id=self.person(person), follower_id=self.person(handle)), handle, day)

    def events(self) -> list[Envelope]:
        """Return the run in publishing order: both topics mixed, and goal-c's social events before goal-c."""
        c, k = self.community_id, self.other_community_id
        p = self.person
        check_in_a = "goal-a-check-in-3-12"
        envelopes = [
            self.created("goal-a", "ana", co_owners=("ben",)),
            self.key_result("goal-a", "ana"),
            self.community(CommunityCreatedV1(community_id=c, name="Sales guild", owner_id=p("cleo")), "cleo", day=1),
            self.community(CommunityCreatedV1(community_id=k, name="Platform", owner_id=p("dev")), "dev", day=1),
            # Social events of goal-c before its creation reaches the topic.
            self.follow("goal-c", "eve", day=2),
            self.tag("goal-c", "fay", by="gus", day=2),
        ]
        envelopes += [
            self.follow("goal-a", handle, day=2, hour=hour)
            for hour, handle in enumerate(("eve", "fay", "hal", "ivy", "jon"), 9)
        ]
        envelopes += [
            self.tag("goal-a", "kim", by="ana", day=2),
            self.tag("goal-a", "lea", by="ana", day=2),
            self.tag("goal-a", "max", by="ben", day=2),
            self.join(c, "eve", day=2),
            self.join(c, "nia", day=2),
            self.join(c, "oli", day=2),
            self.community(CommunityFollowedV1(community_id=c, follower_id=p("pat")), "pat", day=2),
            self.community(CommunityMemberInvitedV1(community_id=c, invitee_id=p("uma")), "eve", day=2, hour=11),
            self.community(CommunityGoalLinkedV1(community_id=c, goal_id="goal-a"), "cleo", day=2, hour=12),
            self.community(CommunityGoalLinkedV1(community_id=k, goal_id="goal-b"), "dev", day=2, hour=12),
            self.follow_person("ana", "quin", day=2),
            self.follow_person("ana", "rae", day=2),
            self.follow_person("ana", "sol", day=2),
            self.check_in("goal-a", "ana", day=3),
            self.created("goal-b", "dev", visibility="private"),
            self.key_result("goal-b", "dev"),
            self.check_in("goal-b", "dev", day=3),
            self.graph(TagAcceptedV1(goal_id="goal-a", collaborator_id=p("kim")), "kim", day=3, hour=13),
            self.graph(TagDeclinedV1(goal_id="goal-a", collaborator_id=p("lea")), "lea", day=3, hour=13),
            self.graph(
                CommentPostedV1(goal_id="goal-a", comment_id="comment-1", body="On it", mentioned_ids=(p("ana"),)),
                "eve",
                day=3,
                hour=14,
            ),
            self.graph(
                CommentPostedV1(goal_id="goal-a", comment_id="comment-2", check_in_id=check_in_a, body="Typo"),
                "fay",
                day=3,
                hour=15,
            ),
            self.react("check_in", check_in_a, "hal", day=3),
            self.react("comment", "comment-1", "ivy", day=3),
            self.react("goal", "goal-a", "jon", day=3),
            self.graph(
                KudosGivenV1(goal_id="goal-a", kudos_id="kudos-1", receiver_id=p("kim"), message="Thanks"),
                "ana",
                day=3,
                hour=17,
            ),
            self.created("goal-c", "gus"),
            self.key_result("goal-c", "gus"),
            self.check_in("goal-c", "gus", day=3),
            # Day 4: people leave, texts change, owners and visibility move.
            self.unfollow("goal-a", "hal", day=4),
            self.graph(CollaboratorLeftV1(goal_id="goal-a", collaborator_id=p("max")), "max", day=4),
            self.graph(CollaboratorUntaggedV1(goal_id="goal-c", collaborator_id=p("fay")), "gus", day=4),
            self.graph(CommentEditedV1(goal_id="goal-a", comment_id="comment-1", body="Done Friday"), "eve", day=4),
            self.graph(CommentDeletedV1(goal_id="goal-a", comment_id="comment-2"), "fay", day=4),
            self.react("check_in", check_in_a, "hal", day=4, added=False),
            self.community(CommunityMemberLeftV1(community_id=c, member_id=p("oli")), "oli", day=4),
            self.community(CommunityUnfollowedV1(community_id=c, follower_id=p("pat")), "pat", day=4),
            self.community(CommunityDescribedV1(community_id=c, name="Sales and success guild"), "cleo", day=4),
            self.follow_person("ana", "rae", day=4, follows=False),
            self.goal(GoalOwnersChangedV1(goal_id="goal-a", owner_id=p("ben"), co_owner_ids=(p("tom"),)), "ana", day=4),
            self.goal(
                GoalVisibilityChangedV1(goal_id="goal-b", visibility="organisation", previous_visibility="private"),
                "dev",
                day=4,
            ),
            self.community(CommunityGoalUnlinkedV1(community_id=c, goal_id="goal-a"), "cleo", day=4, hour=12),
            self.check_in("goal-a", "ben", day=5),
            self.check_in("goal-b", "dev", day=5),
            self.follow("goal-a", "hal", day=5, hour=10),
        ]
        return envelopes


async def _end_offsets(bootstrap: str) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [
            TopicPartition(topic.name, partition)
            for topic in (SOCIAL_TOPIC, GOALS_TOPIC)
            for partition in range(topic.partitions)
        ]
        return await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()


async def _read_between(
    bootstrap: str, start: dict[TopicPartition, int], end: dict[TopicPartition, int]
) -> dict[TopicPartition, list[tuple[int, bytes]]]:
    """Read every message from ``start`` up to ``end`` on each partition, in partition order."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        with_new_messages = [partition for partition in end if end[partition] > start[partition]]
        consumer.assign(with_new_messages)
        for partition in with_new_messages:
            consumer.seek(partition, start[partition])
        messages: dict[TopicPartition, list[tuple[int, bytes]]] = {partition: [] for partition in with_new_messages}
        deadline = asyncio.get_running_loop().time() + READ_SECONDS
        while any(not messages[p] or messages[p][-1][0] < end[p] - 1 for p in with_new_messages):
            if asyncio.get_running_loop().time() > deadline:
                pytest.fail("timed out reading the test's messages back from the topics")
            batches = await consumer.getmany(timeout_ms=500)
            for partition, records in batches.items():
                messages[partition] += [
                    (record.offset, record.value) for record in records if record.offset < end[partition]
                ]
        return messages
    finally:
        await consumer.stop()


def rebuild_from_topics(
    bootstrap: str, read_model: SocialReadModel, start: dict[TopicPartition, int], org_id: str
) -> int:
    """Apply the organisation's messages published since ``start`` to ``read_model``, one whole partition at a time."""
    end = asyncio.run(_end_offsets(bootstrap))
    messages = asyncio.run(_read_between(bootstrap, start, end))
    projection = FeedProjection(read_model.tables)
    applied = 0
    for partition in sorted(messages, key=lambda p: (TOPICS.index(p.topic), p.partition)):
        for offset, value in messages[partition]:
            if decode_envelope(value).orgid != org_id:
                continue
            position = KafkaPosition(partition.topic, partition.partition, offset)
            outcome, reason = read_model.positioned.apply(position, value, projection)
            assert reason is None
            assert outcome is Outcome.APPLIED
            applied += 1
    return applied


def table_rows(read_model: SocialReadModel, org_id: str) -> dict[str, list[tuple]]:
    """Return the rows of every table in the read model's database, without wall-clock columns, sorted.

    A table with an org_id column gives the organisation's rows only. Fails for a table that the
    read model does not define and NOT_REBUILT does not list, so a new table cannot escape the
    comparison.
    """
    defined = read_model.positioned.metadata.tables
    in_database = set(inspect(read_model.engine).get_table_names())
    unlisted = in_database - set(defined) - NOT_REBUILT
    assert not unlisted, f"tables neither compared nor listed in NOT_REBUILT: {sorted(unlisted)}"
    rows: dict[str, list[tuple]] = {}
    with read_model.engine.connect() as connection:
        for name, table in defined.items():
            columns = [column for column in table.c if column.name not in WALL_CLOCK_COLUMNS]
            query = select(*columns)
            if "org_id" in table.c:
                query = query.where(table.c.org_id == org_id)
            rows[name] = sorted(
                (
                    tuple(as_utc(value) if isinstance(value, datetime) else value for value in row)
                    for row in connection.execute(query)
                ),
                key=repr,
            )
    return rows


@pytest.mark.parametrize("threshold", [3, DEFAULT_READ_TIME_THRESHOLD], ids=["hybrid_threshold_3", "default_threshold"])
def test_rebuild_from_topics_equals_live_state(
    broker,
    kafka_bootstrap: str,
    empty_read_models: ReadModelFactory,
    org_id: str,
    threshold: int,
    tmp_path: Path,
) -> None:
    run = MixedRun(org_id)
    envelopes = run.events()
    start = asyncio.run(_end_offsets(kafka_bootstrap))
    live = empty_read_models(threshold)
    create_api_tables(live, tmp_path)
    assert broker.deliver(live, *envelopes) == [Outcome.APPLIED] * len(envelopes)

    rebuilt = empty_read_models(threshold)
    applied = rebuild_from_topics(kafka_bootstrap, rebuilt, start, org_id)

    assert applied == len(envelopes)
    live_rows = table_rows(live, org_id)
    rebuilt_rows = table_rows(rebuilt, org_id)
    assert set(rebuilt_rows) == set(live_rows)
    empty_tables = {name for name, table_rows_ in live_rows.items() if not table_rows_}
    assert empty_tables == EMPTY_AFTER_RUN, "the run must give every compared table rows"
    for name in live_rows:
        assert rebuilt_rows[name] == live_rows[name], f"table {name} differs after the rebuild"
    groups = live.tables.audience_groups
    with live.engine.connect() as connection:
        read_time_groups = connection.execute(
            select(groups.c.channel_kind, groups.c.source).where(
                groups.c.org_id == org_id, groups.c.read_time.is_(True)
            )
        ).all()
    # With a threshold of 3, the goal's followers, collaborators, the community's members and the
    # owner's followers all switch to read-time fan-out during the run.
    expected_read_time = 4 if threshold == 3 else 0
    assert len(read_time_groups) == expected_read_time
