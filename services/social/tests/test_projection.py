from collections.abc import Callable

from sqlalchemy import func, select

from spm_events.auth import Principal
from spm_events.envelope import encode_envelope
from spm_events.readmodel import KafkaPosition, Outcome
from spm_social.projection import FeedProjection
from spm_social.readmodel import SocialReadModel
from spm_social.views import SocialViews

ApplyEnvelopes = Callable[..., None]


def feed_kinds(read_model: SocialReadModel, org_id: str, person_id: str) -> list[str]:
    items = read_model.tables.feed_items
    with read_model.engine.connect() as connection:
        rows = connection.execute(
            select(items.c.kind)
            .where(items.c.org_id == org_id, items.c.person_id == person_id)
            .order_by(items.c.occurred_at, items.c.kind)
        )
        return list(rows.scalars())


def count_rows(read_model: SocialReadModel, table_name: str, org_id: str) -> int:
    table = getattr(read_model.tables, table_name)
    with read_model.engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(table).where(table.c.org_id == org_id)).scalar()


def test_goal_created_gives_owner_an_item(
    read_model: SocialReadModel, apply_envelopes: ApplyEnvelopes, events, org_id: str
) -> None:
    apply_envelopes(events.goal_created("goal-1", "owner-1", title="Ship the mobile app"))

    assert feed_kinds(read_model, org_id, "owner-1") == ["goal_created"]
    [item] = SocialViews(read_model).feed_page(Principal(org_id, "owner-1"), 10, None).items
    assert item["goal_title"] == "Ship the mobile app"
    assert item["summary"] == "Goal created: Ship the mobile app"
    assert item["actor_id"] == "owner-1"
    assert item["source"] == "owner"
    assert count_rows(read_model, "known_goals", org_id) == 1


def test_check_in_reaches_current_audience_only(
    read_model: SocialReadModel, apply_envelopes: ApplyEnvelopes, events, org_id: str
) -> None:
    apply_envelopes(
        events.goal_created("goal-1", "owner-1", day=4),
        events.key_result_added("goal-1", "kr-1", "owner-1", day=5),
        events.goal_followed("goal-1", "follower-1", day=6),
        events.goal_followed("goal-1", "follower-2", day=6),
        events.collaborator_tagged("goal-1", "collaborator-1", "owner-1", day=6),
        events.goal_unfollowed("goal-1", "follower-2", day=7),
        events.check_in_recorded("goal-1", "kr-1", "owner-1", progress=0.42, day=8),
    )

    assert feed_kinds(read_model, org_id, "follower-1")[-1] == "check_in_recorded"
    assert feed_kinds(read_model, org_id, "collaborator-1")[-1] == "check_in_recorded"
    assert feed_kinds(read_model, org_id, "owner-1")[-1] == "check_in_recorded"
    assert "check_in_recorded" not in feed_kinds(read_model, org_id, "follower-2")
    assert feed_kinds(read_model, org_id, "bystander") == []
    follower_page = SocialViews(read_model).feed_page(Principal(org_id, "follower-1"), 10, None, ["check_in_recorded"])
    [check_in] = follower_page.items
    assert check_in["summary"] == "Check-in on 'Weekly active users': progress 42%"
    assert check_in["source"] == "followed_goal"


def test_key_result_reaches_followers_of_that_moment(
    read_model: SocialReadModel, apply_envelopes: ApplyEnvelopes, events, org_id: str
) -> None:
    apply_envelopes(
        events.goal_created("goal-1", "owner-1", day=4),
        events.key_result_added("goal-1", "kr-1", "owner-1", day=5),
        events.goal_followed("goal-1", "late-follower", day=6),
    )

    assert feed_kinds(read_model, org_id, "owner-1") == ["goal_created", "key_result_added", "goal_followed"]
    assert feed_kinds(read_model, org_id, "late-follower") == []


def test_follow_tells_owner_but_not_follower(
    read_model: SocialReadModel, apply_envelopes: ApplyEnvelopes, events, org_id: str
) -> None:
    apply_envelopes(
        events.goal_created("goal-1", "owner-1", day=4), events.goal_followed("goal-1", "follower-1", day=5)
    )

    assert feed_kinds(read_model, org_id, "owner-1") == ["goal_created", "goal_followed"]
    assert feed_kinds(read_model, org_id, "follower-1") == []


def test_owner_following_own_goal_gets_no_item(
    read_model: SocialReadModel, apply_envelopes: ApplyEnvelopes, events, org_id: str
) -> None:
    apply_envelopes(events.goal_created("goal-1", "owner-1"), events.goal_followed("goal-1", "owner-1"))

    assert feed_kinds(read_model, org_id, "owner-1") == ["goal_created"]


def test_tag_tells_tagged_person_and_owner(
    read_model: SocialReadModel, apply_envelopes: ApplyEnvelopes, events, org_id: str
) -> None:
    apply_envelopes(
        events.goal_created("goal-1", "owner-1", title="Cut costs", day=4),
        events.collaborator_tagged("goal-1", "collaborator-1", "tagger-1", day=5),
    )

    assert feed_kinds(read_model, org_id, "collaborator-1") == ["collaborator_tagged"]
    assert feed_kinds(read_model, org_id, "owner-1") == ["goal_created", "collaborator_tagged"]
    assert feed_kinds(read_model, org_id, "tagger-1") == []


def test_same_goal_id_in_two_orgs_stays_apart(
    read_model: SocialReadModel, apply_envelopes: ApplyEnvelopes, events, org_id: str
) -> None:
    other_org = type(events)(f"{org_id}-other")
    apply_envelopes(
        events.goal_created("goal-1", "owner-1", day=4),
        events.goal_followed("goal-1", "follower-1", day=5),
        other_org.goal_created("goal-1", "owner-2", day=4),
        other_org.goal_followed("goal-1", "follower-2", day=5),
        other_org.check_in_recorded("goal-1", "kr-1", "owner-2", day=6),
    )

    assert feed_kinds(read_model, org_id, "follower-1") == []
    assert feed_kinds(read_model, org_id, "owner-1") == ["goal_created", "goal_followed"]
    assert feed_kinds(read_model, f"{org_id}-other", "follower-2") == ["check_in_recorded"]


def test_redelivered_event_changes_nothing(read_model: SocialReadModel, events, org_id: str) -> None:
    projection = FeedProjection(read_model.tables)
    created = events.goal_created("goal-1", "owner-1")
    followed = events.goal_followed("goal-1", "follower-1")
    check_in = events.check_in_recorded("goal-1", "kr-1", "owner-1")
    messages = [("spm.goals.v1", 0, created), ("spm.social.v1", 0, followed), ("spm.goals.v1", 1, check_in)]
    for topic, offset, envelope in messages:
        outcome, _ = read_model.positioned.apply(KafkaPosition(topic, 0, offset), encode_envelope(envelope), projection)
        assert outcome is Outcome.APPLIED
    items_before = count_rows(read_model, "feed_items", org_id)

    # The relay may publish an event again, so it arrives at a new offset with the same event id.
    redelivery = KafkaPosition("spm.goals.v1", 0, 2)
    outcome, _ = read_model.positioned.apply(redelivery, encode_envelope(check_in), projection)

    assert outcome is Outcome.SEEN_EVENT
    assert count_rows(read_model, "feed_items", org_id) == items_before


def test_projection_run_twice_adds_no_duplicate_items(
    read_model: SocialReadModel, apply_envelopes: ApplyEnvelopes, events, org_id: str
) -> None:
    created = events.goal_created("goal-1", "owner-1")
    followed = events.goal_followed("goal-1", "follower-1")
    check_in = events.check_in_recorded("goal-1", "kr-1", "owner-1")
    apply_envelopes(created, followed, check_in)
    counts_before = {name: count_rows(read_model, name, org_id) for name in ("feed_items", "audience_changes")}

    apply_envelopes(created, followed, check_in)

    assert {name: count_rows(read_model, name, org_id) for name in counts_before} == counts_before


def test_payload_breaking_its_schema_is_dead_lettered(read_model: SocialReadModel, events, org_id: str) -> None:
    envelope = events.goal_followed("goal-1", "follower-1")
    broken = envelope.model_copy(update={"data": {"goal_id": "goal-1"}})
    position = KafkaPosition("spm.social.v1", 0, 0)

    outcome, reason = read_model.positioned.apply(
        position, encode_envelope(broken), FeedProjection(read_model.tables)
    )

    assert outcome is Outcome.DEAD_LETTERED
    assert "follower_id" in reason
    assert count_rows(read_model, "audience_changes", org_id) == 0


def test_unrelated_event_type_is_skipped(read_model: SocialReadModel, events, org_id: str) -> None:
    envelope = events.goal_followed("goal-1", "follower-1")
    unrelated = envelope.model_copy(update={"type": "spm.goals.GoalArchived.v1", "data": {"goal_id": "goal-1"}})
    position = KafkaPosition("spm.goals.v1", 0, 0)

    outcome, _ = read_model.positioned.apply(
        position, encode_envelope(unrelated), FeedProjection(read_model.tables)
    )

    assert outcome is Outcome.APPLIED
    assert count_rows(read_model, "audience_changes", org_id) == 0
    assert read_model.positioned.recorded_offsets()[("spm.goals.v1", 0)] == 0
