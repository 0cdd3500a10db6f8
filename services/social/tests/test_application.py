from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import pytest

from spm_events.auth import Principal
from spm_social.application import GoalNotFoundError, SocialApplication
from spm_social.directory_lookup import PeopleLookup
from spm_social.people import PeopleDirectory
from spm_social.readmodel import SocialReadModel
from spm_social.settings import EVENT_STORE_FILE, SocialSettings
from spm_social.views import SocialViews

OCCURRED_AT = datetime(2021, 2, 1, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def social(settings: SocialSettings, read_model: SocialReadModel) -> Iterator[SocialApplication]:
    application = SocialApplication(
        goal_audiences=SocialViews(read_model), env=settings.event_store_env(EVENT_STORE_FILE)
    )
    yield application
    application.close()


def test_concurrent_follows_all_count(
    social: SocialApplication, add_known_goal: Callable[..., str], org_id: str
) -> None:
    goal_id = add_known_goal()
    people = [f"person-{index}" for index in range(8)]

    with ThreadPoolExecutor(max_workers=len(people)) as pool:
        recorded = list(
            pool.map(lambda person: social.follow_goal(Principal(org_id, person), goal_id, OCCURRED_AT), people)
        )

    assert recorded == [True] * len(people)
    assert social.get_followers(Principal(org_id, "reader"), goal_id) == sorted(people)
    # One start event plus one event per follower.
    assert len(social.notification_log.select(start=1, limit=100)) == 1 + len(people)


def test_follows_through_two_instances_all_count(
    settings: SocialSettings, read_model: SocialReadModel, add_known_goal: Callable[..., str], org_id: str
) -> None:
    goal_id = add_known_goal()
    instances = [
        SocialApplication(goal_audiences=SocialViews(read_model), env=settings.event_store_env(EVENT_STORE_FILE))
        for _ in range(2)
    ]
    people = [f"person-{index}" for index in range(8)]

    def follow(index: int) -> bool:
        return instances[index % 2].follow_goal(Principal(org_id, people[index]), goal_id, OCCURRED_AT)

    try:
        with ThreadPoolExecutor(max_workers=len(people)) as pool:
            recorded = list(pool.map(follow, range(len(people))))
        followers = instances[0].get_followers(Principal(org_id, "reader"), goal_id)
    finally:
        for instance in instances:
            instance.close()

    assert recorded == [True] * len(people)
    assert followers == sorted(people)


def test_graph_survives_a_new_application_instance(
    settings: SocialSettings,
    read_model: SocialReadModel,
    add_known_goal: Callable[..., str],
    add_people: Callable[..., list[str]],
    org_id: str,
) -> None:
    goal_id = add_known_goal()
    [person_2] = add_people("person-2")
    people = PeopleLookup(read_model.engine, PeopleDirectory(read_model.engine).table)
    first = SocialApplication(
        goal_audiences=SocialViews(read_model), env=settings.event_store_env(EVENT_STORE_FILE), people=people
    )
    first.follow_goal(Principal(org_id, "person-1"), goal_id, OCCURRED_AT)
    first.tag_collaborator(Principal(org_id, "person-1"), goal_id, person_2, OCCURRED_AT)
    first.close()

    second = SocialApplication(goal_audiences=SocialViews(read_model), env=settings.event_store_env(EVENT_STORE_FILE))
    try:
        assert second.get_followers(Principal(org_id, "person-1"), goal_id) == ["person-1"]
        assert second.get_tagger(org_id, goal_id, person_2) == "person-1"
        assert second.follow_goal(Principal(org_id, "person-1"), goal_id, OCCURRED_AT) is False
    finally:
        second.close()


def test_command_on_unknown_goal_raises_not_found(social: SocialApplication, org_id: str) -> None:
    with pytest.raises(GoalNotFoundError):
        social.follow_goal(Principal(org_id, "person-1"), "goal-never-created", OCCURRED_AT)

    assert social.max_notification_id() == 0
