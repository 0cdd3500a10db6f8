"""The event contract: every registered type survives the trip to bytes and back unchanged."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from spm_events import EVENT_TYPES, TOPICS, decode_envelope, encode_envelope, new_envelope
from spm_events.envelope import InvalidEnvelopeError, event_id_for
from spm_events.registry import UnknownEventTypeError, event_type_for, parse_payload
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
    GoalAlignedV1,
    GoalCreatedV1,
    GoalFollowedV1,
    GoalOwnersChangedV1,
    GoalStatusChangedV1,
    GoalSupportAddedV1,
    GoalSupportRemovedV1,
    GoalUnfollowedV1,
    GoalVisibilityChangedV1,
    KeyResultAddedV1,
    KudosGivenV1,
    PeriodV1,
    PersonFollowedV1,
    PersonUnfollowedV1,
    ReactionAddedV1,
    ReactionRemovedV1,
    ScoreChangedV1,
    ScoreComponentV1,
    ScoreValueV1,
    TagAcceptedV1,
    TagDeclinedV1,
)

EVENT_TIME = datetime(2020, 3, 2, 9, 30, tzinfo=timezone.utc)
PERIOD = PeriodV1(name="FY21-Q1", start=date(2020, 2, 1), end=date(2020, 4, 30))

EXAMPLE_PAYLOADS = [
    GoalCreatedV1(goal_id="g-1", title="Grow ARR", owner_id="p-1", team="Sales", period=PERIOD,
                  contributing_teams=("Marketing",), parent_goal_id="g-0", external_ref="SAL-1"),
    KeyResultAddedV1(goal_id="g-1", key_result_id="kr-1", title="10 new logos", metric="number",
                     start_value=0, target_value=10, external_ref="SAL-1.KR1"),
    CheckInRecordedV1(goal_id="g-1", key_result_id="kr-1", check_in_id="c-1", value=4, progress=0.4,
                      comment="four signed"),
    GoalStatusChangedV1(goal_id="g-1", status="closed", previous_status="active", outcome="achieved"),
    GoalAlignedV1(goal_id="g-1", parent_goal_id="g-0"),
    GoalOwnersChangedV1(goal_id="g-1", owner_id="p-1", co_owner_ids=("p-4",)),
    GoalVisibilityChangedV1(goal_id="g-1", visibility="private", previous_visibility="organisation"),
    GoalSupportAddedV1(goal_id="g-1", supported_goal_id="g-5", supported_key_result_id="kr-2"),
    GoalSupportRemovedV1(goal_id="g-1", supported_goal_id="g-5"),
    GoalFollowedV1(goal_id="g-1", follower_id="p-2"),
    GoalUnfollowedV1(goal_id="g-1", follower_id="p-2"),
    CollaboratorTaggedV1(goal_id="g-1", collaborator_id="p-3"),
    TagAcceptedV1(goal_id="g-1", collaborator_id="p-3"),
    TagDeclinedV1(goal_id="g-1", collaborator_id="p-3"),
    CollaboratorLeftV1(goal_id="g-1", collaborator_id="p-3"),
    CollaboratorUntaggedV1(goal_id="g-1", collaborator_id="p-3"),
    CommentPostedV1(goal_id="g-1", comment_id="c-1", check_in_id="ci-1", body="Nice pace @devon", mentioned_ids=("p-4",)),
    CommentEditedV1(goal_id="g-1", comment_id="c-1", body="Nice pace", mentioned_ids=()),
    CommentDeletedV1(goal_id="g-1", comment_id="c-1"),
    ReactionAddedV1(goal_id="g-1", target_kind="check_in", target_id="ci-1", reaction="celebrate"),
    ReactionRemovedV1(goal_id="g-1", target_kind="check_in", target_id="ci-1", reaction="celebrate"),
    KudosGivenV1(goal_id="g-1", kudos_id="k-1", receiver_id="p-3", message="Thanks for the pipeline review"),
    PersonFollowedV1(person_id="p-3", follower_id="p-2"),
    PersonUnfollowedV1(person_id="p-3", follower_id="p-2"),
    CommunityCreatedV1(community_id="cm-1", name="Enterprise push", description="Sales and marketing", owner_id="p-1"),
    CommunityDescribedV1(community_id="cm-1", name="Enterprise push", description="Now with product"),
    CommunityMemberJoinedV1(community_id="cm-1", member_id="p-2"),
    CommunityMemberLeftV1(community_id="cm-1", member_id="p-2"),
    CommunityMemberInvitedV1(community_id="cm-1", invitee_id="p-5"),
    CommunityFollowedV1(community_id="cm-1", follower_id="p-6"),
    CommunityUnfollowedV1(community_id="cm-1", follower_id="p-6"),
    CommunityGoalLinkedV1(community_id="cm-1", goal_id="g-1"),
    CommunityGoalUnlinkedV1(community_id="cm-1", goal_id="g-1"),
    ScoreChangedV1(subject_kind="person", subject_id="p-3", model_id="v2", window="28d", as_of=EVENT_TIME,
                   scores=(ScoreValueV1(kind="collaboration", score=12.5, components=(
                       ScoreComponentV1(name="kudos_received", value=0.5, weight=25, contribution=12.5),)),)),
]


def test_examples_cover_every_registered_type() -> None:
    example_models = {type(payload) for payload in EXAMPLE_PAYLOADS}
    assert example_models == {event_type.model for event_type in EVENT_TYPES.values()}


@pytest.mark.parametrize("payload", EXAMPLE_PAYLOADS, ids=lambda payload: type(payload).__name__)
def test_envelope_round_trip(payload) -> None:  # type: ignore[no-untyped-def]
    envelope = new_envelope(payload, subject="g-1", org_id="acme", actor_id="p-1", aggregate_version=3, time=EVENT_TIME)

    decoded = decode_envelope(encode_envelope(envelope))

    assert decoded == envelope
    assert parse_payload(decoded) == payload
    assert decoded.time == EVENT_TIME
    assert decoded.specversion == "1.0"
    assert decoded.datacontenttype == "application/json"


def test_envelope_attributes_follow_registry() -> None:
    payload = EXAMPLE_PAYLOADS[0]
    envelope = new_envelope(payload, subject="g-1", org_id="acme", actor_id="p-1", aggregate_version=1, time=EVENT_TIME)
    assert envelope.type == "spm.goals.GoalCreated.v1"
    assert envelope.source == "/spm/goals"
    assert envelope.dataschema == "urn:spm:schema:goals.GoalCreated:1"
    assert event_type_for(envelope.type).topic.name == "spm.goals.v1"


def test_event_id_is_stable_per_org_aggregate_version() -> None:
    assert event_id_for("acme", "g-1", 2) == event_id_for("acme", "g-1", 2)
    assert event_id_for("acme", "g-1", 2) != event_id_for("acme", "g-1", 3)
    assert event_id_for("acme", "g-1", 2) != event_id_for("globex", "g-1", 2)


def test_time_is_normalised_to_utc() -> None:
    local_time = EVENT_TIME.astimezone(timezone(timedelta(hours=-7)))
    envelope = new_envelope(EXAMPLE_PAYLOADS[3], subject="s-1", org_id="acme", actor_id="p-2", aggregate_version=1, time=local_time)
    assert envelope.time.utcoffset() == timedelta(0)
    assert envelope.time == EVENT_TIME


@pytest.mark.parametrize(
    "raw",
    [b"", b"not json", b"{}", b'{"specversion": "0.3"}', b"\xff\xfe"],
    ids=["empty", "not-json", "empty-object", "wrong-version", "invalid-utf8"],
)
def test_invalid_bytes_are_rejected(raw: bytes) -> None:
    with pytest.raises(InvalidEnvelopeError):
        decode_envelope(raw)


def test_naive_time_is_rejected() -> None:
    envelope = new_envelope(EXAMPLE_PAYLOADS[3], subject="s-1", org_id="acme", actor_id="p-2", aggregate_version=1, time=EVENT_TIME)
    raw = encode_envelope(envelope).replace(b"+00:00", b"").replace(b"Z", b"")
    with pytest.raises(InvalidEnvelopeError):
        decode_envelope(raw)


def test_time_out_of_utc_range_is_rejected() -> None:
    envelope = new_envelope(EXAMPLE_PAYLOADS[3], subject="s-1", org_id="acme", actor_id="p-2", aggregate_version=1, time=EVENT_TIME)
    document = envelope.model_dump(mode="json")
    # Valid ISO 8601, but one hour before datetime.min once converted to UTC.
    document["time"] = "0001-01-01T00:00:00+01:00"
    with pytest.raises(InvalidEnvelopeError, match="time 0001-01-01T00:00:00\\+01:00 is out of range"):
        decode_envelope(json.dumps(document))


def test_unknown_type_is_reported() -> None:
    with pytest.raises(UnknownEventTypeError):
        event_type_for("spm.goals.GoalRenamed.v9")


def test_payloads_reject_non_finite_numbers() -> None:
    with pytest.raises(ValidationError):
        CheckInRecordedV1(goal_id="g", key_result_id="k", check_in_id="c", value=float("nan"), progress=0)


def test_payloads_ignore_unknown_fields() -> None:
    payload = GoalFollowedV1.model_validate({"goal_id": "g-1", "follower_id": "p-2", "added_later": True})
    assert payload == GoalFollowedV1(goal_id="g-1", follower_id="p-2")


def test_period_end_before_start_is_rejected() -> None:
    with pytest.raises(ValidationError):
        PeriodV1(name="bad", start=date(2020, 4, 30), end=date(2020, 2, 1))


def test_every_event_topic_is_registered() -> None:
    for event_type in EVENT_TYPES.values():
        assert TOPICS[event_type.topic.name] is event_type.topic
