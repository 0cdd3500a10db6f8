"""The checker itself, fed deliberately broken inputs, so that a clean report from a fault test means something."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from checker import (
    ReadModelSnapshot,
    StoredEvent,
    TopicRecord,
    check,
    replay_differences,
)

from spm_events.envelope import event_id_for
from spm_events.registry import GOALS_TOPIC, SOCIAL_TOPIC

pytestmark = pytest.mark.reliability

ORG = "checker-org"
GOAL = "goal-1"
SOCIAL_AGGREGATE = "social-goal-1"
CHECK_IN = "spm.goals.CheckInRecorded.v1"
FOLLOWED = "spm.social.GoalFollowed.v1"


def stored(topic: str, aggregate_id: str, version: int, event_type: str) -> StoredEvent:
    store = "goals" if topic == GOALS_TOPIC.name else "social"
    return StoredEvent(store, version, event_id_for(ORG, aggregate_id, version), event_type, topic, aggregate_id, version, ORG)


def on_topic(event: StoredEvent, offset: int, partition: int = 0) -> TopicRecord:
    return TopicRecord(event.topic, partition, offset, event.event_id, event.aggregate_id, event.version, ORG)


@pytest.fixture
def consistent() -> tuple[list[StoredEvent], list[TopicRecord], ReadModelSnapshot]:
    """Two check-ins and a follow, published once each and applied once by every processor."""
    truth = [
        stored(GOALS_TOPIC.name, GOAL, 1, "spm.goals.GoalCreated.v1"),
        stored(GOALS_TOPIC.name, GOAL, 3, CHECK_IN),
        stored(GOALS_TOPIC.name, GOAL, 4, CHECK_IN),
        stored(SOCIAL_TOPIC.name, SOCIAL_AGGREGATE, 2, FOLLOWED),
    ]
    records = [on_topic(event, offset) for offset, event in enumerate(truth)]
    goals_ids = {event.event_id for event in truth if event.topic == GOALS_TOPIC.name}
    social_ids = {event.event_id for event in truth if event.topic == SOCIAL_TOPIC.name}
    check_ins = [event.event_id for event in truth if event.event_type == CHECK_IN]
    snapshot = ReadModelSnapshot(
        applied={
            "goals": set(social_ids),
            "social": goals_ids | social_ids,
            "scoring": goals_ids | social_ids,
            "notifications": goals_ids | social_ids,
        },
        dead_lettered={"goals": 0, "social": 0, "scoring": 0, "notifications": 0},
        feed_items=[(event_id, reader) for event_id in check_ins for reader in ("owner", "follower")],
        feed_activities=list(check_ins),
        audience_changes=list(social_ids),
        notifications=[(event_id, "follower") for event_id in check_ins],
        score_check_ins=list(check_ins),
        score_interactions=[(truth[3].event_id, "follower", "follow")],
    )
    return truth, records, snapshot


def test_consistent_inputs_are_clean(consistent) -> None:  # type: ignore[no-untyped-def]
    report = check(*consistent)
    report.assert_clean()
    assert report.stored == 4
    assert report.republished == 0


def test_republished_batch_is_allowed(consistent) -> None:  # type: ignore[no-untyped-def]
    truth, records, snapshot = consistent
    again = [on_topic(event, 10 + index) for index, event in enumerate(truth[:3])]
    report = check(truth, records + again, snapshot)
    report.assert_clean()
    assert report.republished == 3


def test_event_missing_from_topic_is_lost(consistent) -> None:  # type: ignore[no-untyped-def]
    truth, records, snapshot = consistent
    report = check(truth, records[1:], snapshot)
    assert len(report.lost) == 1
    assert truth[0].event_id in report.lost[0]
    assert "is not on spm.goals.v1" in report.lost[0]


def test_event_not_applied_by_processor_is_lost(consistent) -> None:  # type: ignore[no-untyped-def]
    truth, records, snapshot = consistent
    snapshot.applied["notifications"].discard(truth[1].event_id)
    report = check(truth, records, snapshot)
    assert report.lost == [
        f"goals event {truth[1].event_id} (aggregate {GOAL} version 3) was not applied by the notifications processor"
    ]


def test_deleted_feed_activity_is_lost(consistent) -> None:  # type: ignore[no-untyped-def]
    truth, records, snapshot = consistent
    snapshot.feed_activities.remove(truth[2].event_id)
    report = check(truth, records, snapshot)
    assert len(report.lost) == 1
    assert "has no social feed activity" in report.lost[0]


def test_deleted_score_fact_is_lost(consistent) -> None:  # type: ignore[no-untyped-def]
    truth, records, snapshot = consistent
    snapshot.score_check_ins.remove(truth[1].event_id)
    report = check(truth, records, snapshot)
    assert len(report.lost) == 1
    assert "has no scoring check-in fact" in report.lost[0]


def test_doubled_notification_is_duplicated(consistent) -> None:  # type: ignore[no-untyped-def]
    truth, records, snapshot = consistent
    snapshot.notifications.append((truth[1].event_id, "follower"))
    report = check(truth, records, snapshot)
    assert report.lost == []
    assert report.duplicated == [f"notification (event, recipient) ('{truth[1].event_id}', 'follower') written 2 times"]


def test_doubled_feed_item_is_duplicated(consistent) -> None:  # type: ignore[no-untyped-def]
    truth, records, snapshot = consistent
    snapshot.feed_items.append((truth[2].event_id, "owner"))
    report = check(truth, records, snapshot)
    assert len(report.duplicated) == 1
    assert "feed item (event, reader)" in report.duplicated[0]


def test_doubled_score_fact_is_duplicated(consistent) -> None:  # type: ignore[no-untyped-def]
    truth, records, snapshot = consistent
    snapshot.score_check_ins.append(truth[2].event_id)
    report = check(truth, records, snapshot)
    assert len(report.duplicated) == 1
    assert "score check-in fact" in report.duplicated[0]


def test_dead_letter_counts_as_lost(consistent) -> None:  # type: ignore[no-untyped-def]
    truth, records, snapshot = consistent
    snapshot.dead_lettered["scoring"] = 2
    report = check(truth, records, snapshot)
    assert report.lost == ["the scoring processor dead-lettered 2 messages"]


def test_versions_swapped_on_topic_are_out_of_order(consistent) -> None:  # type: ignore[no-untyped-def]
    truth, _, snapshot = consistent
    swapped = [on_topic(truth[0], 0), on_topic(truth[2], 1), on_topic(truth[1], 2), on_topic(truth[3], 3)]
    report = check(truth, swapped, snapshot)
    assert report.out_of_order == [f"spm.goals.v1 aggregate {GOAL} versions in offset order: [1, 4, 3]"]


def test_aggregate_split_over_partitions_is_out_of_order(consistent) -> None:  # type: ignore[no-untyped-def]
    truth, records, snapshot = consistent
    records[2] = on_topic(truth[2], 2, partition=1)
    report = check(truth, records, snapshot)
    assert len(report.out_of_order) == 1
    assert "spread over partitions [0, 1]" in report.out_of_order[0]


def test_topic_message_without_stored_event_is_reported(consistent) -> None:  # type: ignore[no-untyped-def]
    truth, records, snapshot = consistent
    report = check(truth[1:], records, snapshot)
    assert len(report.lost) == 1
    assert "matches no stored event" in report.lost[0]


def test_summary_names_every_finding(consistent) -> None:  # type: ignore[no-untyped-def]
    truth, records, snapshot = consistent
    snapshot.notifications.append((truth[1].event_id, "follower"))
    report = check(truth, records[1:], snapshot)
    with pytest.raises(AssertionError) as failure:
        report.assert_clean()
    assert "1 lost, 1 duplicated, 0 out of order" in str(failure.value)
    assert "notification (event, recipient)" in str(failure.value)


def write_feed(path: Path, rows: list[tuple[str, str, str, str]]) -> str:
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE feed_items (org_id TEXT, person_id TEXT, event_id TEXT, indexed_at TEXT)")
        connection.execute("CREATE TABLE consumer_positions (consumer TEXT, topic TEXT, partition INT, offset INT)")
        connection.executemany("INSERT INTO feed_items VALUES (?, ?, ?, ?)", rows)
        connection.execute("INSERT INTO consumer_positions VALUES ('c', 't', 0, 5)")
    return str(path)


def test_replay_equal_except_wall_clock(tmp_path: Path) -> None:
    live = write_feed(tmp_path / "live.db", [(ORG, "ana", "e1", "2026-01-01"), (ORG, "ben", "e1", "2026-01-01")])
    replayed = write_feed(tmp_path / "replay.db", [(ORG, "ben", "e1", "2026-02-02"), (ORG, "ana", "e1", "2026-02-02")])
    assert replay_differences(live, replayed, ORG) == []


def test_replay_finds_deleted_feed_row(tmp_path: Path) -> None:
    live = write_feed(tmp_path / "live.db", [(ORG, "ana", "e1", "x"), (ORG, "ben", "e1", "x")])
    replayed = write_feed(tmp_path / "replay.db", [(ORG, "ana", "e1", "x")])
    differences = replay_differences(live, replayed, ORG)
    assert len(differences) == 1
    assert differences[0].startswith("feed_items: 1 rows only live")


def test_replay_finds_doubled_row(tmp_path: Path) -> None:
    live = write_feed(tmp_path / "live.db", [(ORG, "ana", "e1", "x"), (ORG, "ana", "e1", "x")])
    replayed = write_feed(tmp_path / "replay.db", [(ORG, "ana", "e1", "x")])
    assert replay_differences(live, replayed, ORG) == [
        "feed_items: 1 rows only live (e.g. [('checker-org', 'ana', 'e1')]), 0 rows only replayed (e.g. [])"
    ]


def test_replay_ignores_other_orgs(tmp_path: Path) -> None:
    live = write_feed(tmp_path / "live.db", [(ORG, "ana", "e1", "x"), ("other-org", "zed", "e9", "x")])
    replayed = write_feed(tmp_path / "replay.db", [(ORG, "ana", "e1", "x")])
    assert replay_differences(live, replayed, ORG) == []
