"""Unit tests of the goal graph's tag consent, comments, reactions and kudos, without any storage."""

from datetime import datetime, timedelta, timezone

import pytest

from spm_social.domain import GoalSocialGraph
from spm_social.graph_rules import (
    ActionNotAllowedError,
    CommentNotFoundError,
    GraphConflictError,
    SocialGraphError,
)
from spm_social.graph_state import Reaction
from spm_social.mentions import mentioned_handles

TAGGED_AT = datetime(2021, 2, 1, 9, 0, tzinfo=timezone.utc)
LATER = TAGGED_AT + timedelta(hours=1)


def new_graph() -> GoalSocialGraph:
    graph = GoalSocialGraph(org_id="acme", goal_id="goal-1")
    graph.collect_events()
    return graph


def tagged_graph(state_changes: tuple[str, ...] = ()) -> GoalSocialGraph:
    """Return a graph where owner-1 tagged person-2, followed by person-2's ``state_changes``."""
    graph = new_graph()
    graph.tag_collaborator("person-2", tagged_by="owner-1", occurred_at=TAGGED_AT)
    for change in state_changes:
        getattr(graph, change)("person-2", LATER)
    graph.collect_events()
    return graph


def event_names(graph: GoalSocialGraph) -> list[str]:
    return [type(domain_event).__name__ for domain_event in graph.collect_events()]


def test_accept_records_tag_accepted() -> None:
    graph = tagged_graph()

    assert graph.accept_tag("person-2", LATER) is True

    [accepted] = graph.collect_events()
    assert isinstance(accepted, GoalSocialGraph.TagAccepted)
    assert accepted.collaborator_id == "person-2"
    assert accepted.actor_id == "person-2"
    assert graph.tags["person-2"].state == "accepted"
    assert graph.collaborators == {"person-2": "owner-1"}


def test_tag_keeps_who_tagged_and_when() -> None:
    graph = tagged_graph(("accept_tag",))

    history = graph.tags["person-2"].history

    assert [(change.state, change.actor_id, change.occurred_at) for change in history] == [
        ("pending", "owner-1", TAGGED_AT),
        ("accepted", "person-2", LATER),
    ]


@pytest.mark.parametrize(
    ("earlier_changes", "command", "expected_state"),
    [
        ((), "accept_tag", "accepted"),
        ((), "decline_tag", "declined"),
        (("accept_tag",), "leave", "left"),
    ],
)
def test_consent_changes_move_the_tag(earlier_changes: tuple[str, ...], command: str, expected_state: str) -> None:
    graph = tagged_graph(earlier_changes)

    assert getattr(graph, command)("person-2", LATER) is True
    assert graph.tags["person-2"].state == expected_state


@pytest.mark.parametrize(
    ("earlier_changes", "command"),
    [
        (("accept_tag",), "accept_tag"),
        (("decline_tag",), "decline_tag"),
        (("accept_tag", "leave"), "leave"),
    ],
)
def test_repeated_consent_change_records_nothing(earlier_changes: tuple[str, ...], command: str) -> None:
    graph = tagged_graph(earlier_changes)

    assert getattr(graph, command)("person-2", LATER) is False
    assert event_names(graph) == []


@pytest.mark.parametrize(
    ("earlier_changes", "command", "message"),
    [
        (("decline_tag",), "accept_tag", "is declined"),
        (("accept_tag", "leave"), "accept_tag", "is left"),
        (("accept_tag",), "decline_tag", "leave the goal instead"),
        ((), "leave", "decline it instead"),
        (("decline_tag",), "leave", "nothing to leave"),
    ],
)
def test_consent_change_out_of_order_is_a_conflict(
    earlier_changes: tuple[str, ...], command: str, message: str
) -> None:
    graph = tagged_graph(earlier_changes)

    with pytest.raises(GraphConflictError, match=message):
        getattr(graph, command)("person-2", LATER)

    assert event_names(graph) == []


def test_accept_without_tag_is_conflict() -> None:
    graph = new_graph()

    with pytest.raises(GraphConflictError, match="not tagged"):
        graph.accept_tag("person-2", LATER)


def test_consent_before_the_tag_time_is_rejected() -> None:
    graph = tagged_graph()

    with pytest.raises(SocialGraphError) as raised:
        graph.accept_tag("person-2", TAGGED_AT - timedelta(minutes=1))

    assert raised.value.field == "occurred_at"
    assert event_names(graph) == []


def test_untag_ends_an_open_tag_once() -> None:
    graph = tagged_graph(("accept_tag",))

    assert graph.untag("person-2", actor_id="owner-1", occurred_at=LATER) is True
    assert graph.untag("person-2", actor_id="owner-1", occurred_at=LATER) is False

    assert event_names(graph) == ["CollaboratorUntagged"]
    assert graph.tags["person-2"].state == "untagged"
    assert graph.collaborators == {}


def test_tag_after_decline_starts_a_new_pending_tag() -> None:
    graph = tagged_graph(("decline_tag",))

    assert graph.tag_collaborator("person-2", tagged_by="owner-2", occurred_at=LATER) is True

    tag = graph.tags["person-2"]
    assert tag.state == "pending"
    assert tag.latest_tag.actor_id == "owner-2"
    assert [change.state for change in tag.history] == ["pending", "declined", "pending"]


def test_tag_while_pending_records_nothing() -> None:
    graph = tagged_graph()

    assert graph.tag_collaborator("person-2", tagged_by="owner-2", occurred_at=LATER) is False
    assert event_names(graph) == []


def test_comment_edit_keeps_every_text() -> None:
    graph = new_graph()
    graph.post_comment("comment-1", "person-1", "first @bo", ("bo-id",), None, TAGGED_AT)

    assert graph.edit_comment("comment-1", "person-1", "second", (), LATER) is True

    comment = graph.comments["comment-1"]
    assert [revision.body for revision in comment.revisions] == ["first @bo", "second"]
    assert [revision.mentioned_ids for revision in comment.revisions] == [("bo-id",), ()]
    assert comment.edited_at == LATER
    assert event_names(graph) == ["CommentPosted", "CommentEdited"]


def test_comment_edit_with_same_text_records_nothing() -> None:
    graph = new_graph()
    graph.post_comment("comment-1", "person-1", "same", (), None, TAGGED_AT)
    graph.collect_events()

    assert graph.edit_comment("comment-1", "person-1", "same", (), LATER) is False
    assert event_names(graph) == []


def test_comment_edit_by_another_person_is_not_allowed() -> None:
    graph = new_graph()
    graph.post_comment("comment-1", "person-1", "mine", (), None, TAGGED_AT)
    graph.collect_events()

    with pytest.raises(ActionNotAllowedError):
        graph.edit_comment("comment-1", "person-2", "changed", (), LATER)

    assert event_names(graph) == []


@pytest.mark.parametrize(("actor_id", "may_moderate"), [("person-1", False), ("owner-1", True)])
def test_comment_delete_by_author_or_moderator(actor_id: str, may_moderate: bool) -> None:
    graph = new_graph()
    graph.post_comment("comment-1", "person-1", "text", (), None, TAGGED_AT)
    graph.collect_events()

    assert graph.delete_comment("comment-1", actor_id, may_moderate, LATER) is True
    assert graph.delete_comment("comment-1", actor_id, may_moderate, LATER) is False

    assert event_names(graph) == ["CommentDeleted"]
    assert graph.comments["comment-1"].deleted_by == actor_id
    with pytest.raises(CommentNotFoundError):
        graph.live_comment("comment-1")


def test_comment_delete_by_other_person_is_not_allowed() -> None:
    graph = new_graph()
    graph.post_comment("comment-1", "person-1", "text", (), None, TAGGED_AT)
    graph.collect_events()

    with pytest.raises(ActionNotAllowedError):
        graph.delete_comment("comment-1", "person-2", False, LATER)

    assert event_names(graph) == []


@pytest.mark.parametrize(
    ("body", "mentions"),
    [("   ", ()), ("x" * 10_001, ()), ("many", tuple(f"id-{index}" for index in range(51)))],
    ids=["blank", "too-long", "too-many-mentions"],
)
def test_invalid_comment_is_rejected(body: str, mentions: tuple[str, ...]) -> None:
    graph = new_graph()

    with pytest.raises(SocialGraphError) as raised:
        graph.post_comment("comment-1", "person-1", body, mentions, None, TAGGED_AT)

    assert raised.value.field == "body"
    assert event_names(graph) == []


def test_reaction_is_recorded_once_per_kind() -> None:
    graph = new_graph()
    like = Reaction("person-1", "goal", "goal-1", "like")

    assert graph.add_reaction(like, TAGGED_AT) is True
    assert graph.add_reaction(like, TAGGED_AT) is False
    assert graph.add_reaction(like._replace(reaction="celebrate"), TAGGED_AT) is True
    assert graph.remove_reaction(like, LATER) is True
    assert graph.remove_reaction(like, LATER) is False

    assert event_names(graph) == ["ReactionAdded", "ReactionAdded", "ReactionRemoved"]
    assert graph.reactions == {like._replace(reaction="celebrate")}


@pytest.mark.parametrize(
    ("reaction", "field"),
    [
        (Reaction("person-1", "goal", "goal-1", "dislike"), "reaction"),
        (Reaction("person-1", "goal", "goal-2", "like"), "target_id"),
        (Reaction("person-1", "comment", "comment-never-posted", "like"), "target_id"),
        (Reaction("person-1", "key_result", "kr-1", "like"), "target_kind"),
    ],
    ids=["unknown-kind", "other-goal", "unknown-comment", "unknown-target-kind"],
)
def test_invalid_reaction_is_rejected(reaction: Reaction, field: str) -> None:
    graph = new_graph()

    with pytest.raises(SocialGraphError) as raised:
        graph.add_reaction(reaction, TAGGED_AT)

    assert raised.value.field == field
    assert event_names(graph) == []


def test_kudos_once_per_giver_per_utc_day() -> None:
    graph = new_graph()
    graph.give_kudos("kudos-1", "person-1", "person-2", "great work", TAGGED_AT)
    graph.collect_events()

    with pytest.raises(GraphConflictError, match="2021-02-01"):
        graph.give_kudos("kudos-2", "person-1", "person-3", "again", LATER)
    graph.give_kudos("kudos-3", "person-1", "person-2", "next day", TAGGED_AT + timedelta(days=1))
    graph.give_kudos("kudos-4", "person-3", "person-2", "another giver", LATER)

    assert event_names(graph) == ["KudosGiven", "KudosGiven"]
    assert [kudos.kudos_id for kudos in graph.kudos] == ["kudos-1", "kudos-3", "kudos-4"]


def test_kudos_day_is_the_utc_day() -> None:
    graph = new_graph()
    late_evening_in_new_york = datetime(2021, 2, 1, 22, 0, tzinfo=timezone(timedelta(hours=-5)))

    graph.give_kudos("kudos-1", "person-1", "person-2", "thanks", late_evening_in_new_york)

    assert graph.kudos[0].day.isoformat() == "2021-02-02"


@pytest.mark.parametrize(
    ("receiver_id", "message", "field"),
    [("person-1", "self praise", "receiver_id"), ("person-2", "  ", "message"), ("person-2", "m" * 1001, "message")],
    ids=["yourself", "blank-message", "long-message"],
)
def test_invalid_kudos_is_rejected(receiver_id: str, message: str, field: str) -> None:
    graph = new_graph()

    with pytest.raises(SocialGraphError) as raised:
        graph.give_kudos("kudos-1", "person-1", receiver_id, message, TAGGED_AT)

    assert raised.value.field == field
    assert event_names(graph) == []


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("thanks @alice and @bob.smith!", ["alice", "bob.smith"]),
        ("@alice @alice @Alice", ["alice"]),
        ("ping @carol. and @dave-", ["carol", "dave"]),
        ("write to casey@example.com", []),
        ("(@erin)", ["erin"]),
        ("no mentions @ all", []),
        ("@" + "a" * 65, []),
    ],
    ids=["two", "repeated", "trailing-punctuation", "e-mail", "brackets", "bare-at", "over-64"],
)
def test_mentioned_handles(body: str, expected: list[str]) -> None:
    assert mentioned_handles(body) == expected
