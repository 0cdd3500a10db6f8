from datetime import datetime, timedelta, timezone
from typing import Callable

import pytest

from spm_social.domain import GoalSocialGraph, SocialGraphError, graph_id_for

PAST = datetime(2021, 2, 1, 12, 0, tzinfo=timezone.utc)


def new_graph() -> GoalSocialGraph:
    graph = GoalSocialGraph(org_id="acme", goal_id="goal-1")
    graph.collect_events()
    return graph


def event_names(graph: GoalSocialGraph) -> list[str]:
    return [type(domain_event).__name__ for domain_event in graph.collect_events()]


def test_graph_id_is_one_per_goal_and_org() -> None:
    graph = GoalSocialGraph(org_id="acme", goal_id="goal-1")

    assert graph.id == graph_id_for("acme", "goal-1")
    assert graph_id_for("acme", "goal-1") != graph_id_for("other-org", "goal-1")
    assert graph_id_for("acme", "goal-1") != graph_id_for("acme", "goal-2")


def test_follow_records_event_with_event_time_and_actor() -> None:
    graph = new_graph()

    assert graph.follow("person-1", PAST) is True

    [followed] = graph.collect_events()
    assert isinstance(followed, GoalSocialGraph.GoalFollowed)
    assert followed.follower_id == "person-1"
    assert followed.actor_id == "person-1"
    assert followed.occurred_at == PAST
    assert followed.org_id == "acme"
    assert followed.goal_id == "goal-1"
    assert graph.followers == {"person-1"}


def test_second_follow_records_nothing() -> None:
    graph = new_graph()
    graph.follow("person-1", PAST)
    graph.collect_events()

    assert graph.follow("person-1", PAST) is False
    assert event_names(graph) == []


def test_unfollow_removes_follower() -> None:
    graph = new_graph()
    graph.follow("person-1", PAST)
    graph.collect_events()

    assert graph.unfollow("person-1", PAST) is True
    assert event_names(graph) == ["GoalUnfollowed"]
    assert graph.followers == set()


def test_unfollow_of_non_follower_records_nothing() -> None:
    graph = new_graph()

    assert graph.unfollow("person-1", PAST) is False
    assert event_names(graph) == []


def test_tag_records_collaborator_and_tagger() -> None:
    graph = new_graph()

    assert graph.tag_collaborator("person-2", tagged_by="person-1", occurred_at=PAST) is True

    [tagged] = graph.collect_events()
    assert isinstance(tagged, GoalSocialGraph.CollaboratorTagged)
    assert tagged.collaborator_id == "person-2"
    assert tagged.actor_id == "person-1"
    assert graph.collaborators == {"person-2": "person-1"}


def test_second_tag_keeps_first_tagger() -> None:
    graph = new_graph()
    graph.tag_collaborator("person-2", tagged_by="person-1", occurred_at=PAST)
    graph.collect_events()

    assert graph.tag_collaborator("person-2", tagged_by="person-3", occurred_at=PAST) is False
    assert event_names(graph) == []
    assert graph.collaborators == {"person-2": "person-1"}


def test_tagging_yourself_is_rejected() -> None:
    graph = new_graph()

    with pytest.raises(SocialGraphError, match="cannot tag yourself") as raised:
        graph.tag_collaborator("person-1", tagged_by="person-1", occurred_at=PAST)

    assert raised.value.field == "person_id"
    assert event_names(graph) == []


@pytest.mark.parametrize(
    "occurred_at",
    # Built when the test runs, because a suite can take longer than any fixed margin into the future.
    [lambda: datetime.now(timezone.utc) + timedelta(minutes=5), lambda: datetime(2021, 2, 1, 12, 0)],
    ids=["future", "naive"],
)
def test_invalid_event_time_is_rejected(occurred_at: Callable[[], datetime]) -> None:
    graph = new_graph()

    with pytest.raises(SocialGraphError) as raised:
        graph.follow("person-1", occurred_at())

    assert raised.value.field == "occurred_at"
    assert event_names(graph) == []


def test_event_time_is_stored_in_utc() -> None:
    graph = new_graph()
    in_berlin = datetime(2021, 2, 1, 13, 0, tzinfo=timezone(timedelta(hours=1)))

    graph.follow("person-1", in_berlin)

    [followed] = graph.collect_events()
    assert followed.occurred_at == PAST
    assert followed.occurred_at.tzinfo == timezone.utc
