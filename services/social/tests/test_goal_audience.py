"""The stored audience facts of goals: order independence, idempotence, and the SQL twin of can_see."""

from collections.abc import Callable

import pytest
from sqlalchemy import select

from spm_events.auth import Principal
from spm_events.envelope import Envelope
from spm_events.visibility import GoalAudience
from spm_social.readmodel import SocialReadModel
from spm_social.views import SocialViews

ApplyEnvelopes = Callable[..., None]


def audience(read_model: SocialReadModel, org_id: str, goal_id: str = "goal-1") -> GoalAudience | None:
    return SocialViews(read_model).audience_of(org_id, goal_id)


def goal_people_rows(read_model: SocialReadModel, org_id: str) -> list[tuple[str, str]]:
    people = read_model.tables.goal_people
    with read_model.engine.connect() as connection:
        return sorted(
            connection.execute(select(people.c.person_id, people.c.role).where(people.c.org_id == org_id)).all()
        )


def test_goal_created_stores_whole_audience(
    read_model: SocialReadModel, apply_envelopes: ApplyEnvelopes, events, org_id: str
) -> None:
    apply_envelopes(
        events.goal_created(
            "goal-1",
            "owner-1",
            visibility="team",
            co_owner_ids=("co-owner-1", "co-owner-2"),
            team="growth",
            contributing_teams=("platform", "growth"),
        ),
        events.collaborator_tagged("goal-1", "collaborator-1", "owner-1"),
        events.collaborator_tagged("goal-1", "collaborator-2", "co-owner-1"),
    )

    assert audience(read_model, org_id) == GoalAudience(
        visibility="team",
        owner_id="owner-1",
        co_owner_ids=frozenset({"co-owner-1", "co-owner-2"}),
        teams=frozenset({"growth", "platform"}),
        collaborator_ids=frozenset({"collaborator-1", "collaborator-2"}),
    )


def test_goal_created_without_visibility_is_organisation_wide(
    read_model: SocialReadModel, apply_envelopes: ApplyEnvelopes, events, org_id: str
) -> None:
    apply_envelopes(events.goal_created("goal-1", "owner-1"))

    found = audience(read_model, org_id)
    assert found is not None
    assert found.visibility == "organisation"


def test_audience_is_unknown_until_goal_created(
    read_model: SocialReadModel, apply_envelopes: ApplyEnvelopes, events, org_id: str
) -> None:
    created = events.goal_created("goal-1", "owner-1", visibility="private")
    opened = events.goal_visibility_changed("goal-1", "organisation", "private", "owner-1")
    owners_changed = events.goal_owners_changed("goal-1", "owner-2")
    apply_envelopes(opened, owners_changed, events.collaborator_tagged("goal-1", "collaborator-1", "owner-1"))

    assert audience(read_model, org_id) is None

    apply_envelopes(created)

    assert audience(read_model, org_id) == GoalAudience(
        visibility="organisation",
        owner_id="owner-2",
        teams=frozenset({"growth"}),
        collaborator_ids=frozenset({"collaborator-1"}),
    )


@pytest.mark.parametrize("order", ["by version", "reversed"])
def test_highest_version_wins_for_visibility_and_owners(
    read_model: SocialReadModel, apply_envelopes: ApplyEnvelopes, events, org_id: str, order: str
) -> None:
    envelopes = [
        events.goal_created("goal-1", "owner-1", visibility="organisation", co_owner_ids=("co-owner-1",)),
        events.goal_visibility_changed("goal-1", "private", "organisation", "owner-1"),
        events.goal_owners_changed("goal-1", "owner-2", ("co-owner-2", "co-owner-3")),
        events.goal_visibility_changed("goal-1", "team", "private", "owner-2"),
        events.goal_owners_changed("goal-1", "owner-2", ("co-owner-3",)),
    ]

    apply_envelopes(*(envelopes if order == "by version" else reversed(envelopes)))

    assert audience(read_model, org_id) == GoalAudience(
        visibility="team", owner_id="owner-2", co_owner_ids=frozenset({"co-owner-3"}), teams=frozenset({"growth"})
    )
    assert goal_people_rows(read_model, org_id) == [("co-owner-3", "co_owner"), ("owner-2", "owner")]


def test_reapplied_audience_events_change_nothing(
    read_model: SocialReadModel, apply_envelopes: ApplyEnvelopes, events, org_id: str
) -> None:
    envelopes = [
        events.goal_created("goal-1", "owner-1", visibility="team", co_owner_ids=("co-owner-1",)),
        events.goal_owners_changed("goal-1", "owner-1", ("co-owner-2",)),
        events.goal_visibility_changed("goal-1", "private", "team", "owner-1"),
        events.collaborator_tagged("goal-1", "collaborator-1", "owner-1"),
    ]
    apply_envelopes(*envelopes)
    audience_before = audience(read_model, org_id)
    rows_before = goal_people_rows(read_model, org_id)

    # Straight through the projection, past the processed-event check, as a replay would apply them.
    apply_envelopes(*envelopes)

    assert audience(read_model, org_id) == audience_before
    assert goal_people_rows(read_model, org_id) == rows_before


def test_collaborator_stays_after_owners_change(
    read_model: SocialReadModel, apply_envelopes: ApplyEnvelopes, events, org_id: str
) -> None:
    apply_envelopes(
        events.goal_created("goal-1", "owner-1", visibility="private"),
        events.collaborator_tagged("goal-1", "owner-2", "owner-1"),
        events.goal_owners_changed("goal-1", "owner-2"),
        events.goal_owners_changed("goal-1", "owner-3"),
    )

    found = audience(read_model, org_id)
    assert found is not None
    assert found.owner_id == "owner-3"
    assert found.collaborator_ids == frozenset({"owner-2"})


def test_other_org_keeps_own_audience(
    read_model: SocialReadModel, apply_envelopes: ApplyEnvelopes, events, org_id: str
) -> None:
    other_org = type(events)(f"{org_id}-other")
    apply_envelopes(
        events.goal_created("goal-1", "owner-1", visibility="private"),
        other_org.goal_created("goal-1", "owner-9", visibility="organisation"),
        other_org.collaborator_tagged("goal-1", "collaborator-9", "owner-9"),
    )

    assert audience(read_model, org_id) == GoalAudience(
        visibility="private", owner_id="owner-1", teams=frozenset({"growth"})
    )
    assert audience(read_model, f"{org_id}-other") == GoalAudience(
        visibility="organisation",
        owner_id="owner-9",
        teams=frozenset({"growth"}),
        collaborator_ids=frozenset({"collaborator-9"}),
    )


READER_SHAPES = {
    "owner": ("owner-1", (), False),
    "co-owner": ("co-owner-1", (), False),
    "collaborator": ("collaborator-1", ("sales",), False),
    "goal's team": ("member-1", ("growth",), False),
    "contributing team": ("member-2", ("platform",), False),
    "two teams, one matching": ("member-3", ("sales", "platform"), False),
    "another team": ("member-4", ("sales",), False),
    "no teams": ("member-5", (), False),
    "admin without teams": ("admin-1", (), True),
}


@pytest.mark.parametrize("visibility", ["organisation", "team", "private"])
def test_feed_filter_agrees_with_can_see(
    read_model: SocialReadModel, apply_envelopes: ApplyEnvelopes, events, org_id: str, visibility: str
) -> None:
    envelopes: list[Envelope] = [
        events.goal_created(
            "goal-1",
            "owner-1",
            visibility=visibility,
            co_owner_ids=("co-owner-1",),
            team="growth",
            contributing_teams=("platform",),
            day=1,
        ),
        events.collaborator_tagged("goal-1", "collaborator-1", "owner-1", day=2),
    ]
    envelopes += [events.goal_followed("goal-1", person_id, day=2) for person_id, _, _ in READER_SHAPES.values()]
    envelopes.append(events.check_in_recorded("goal-1", "kr-1", "owner-1", day=3))
    apply_envelopes(*envelopes)
    views = SocialViews(read_model)
    goal_audience = views.audience_of(org_id, "goal-1")
    assert goal_audience is not None

    disagreements = {}
    for name, (person_id, teams, is_admin) in READER_SHAPES.items():
        reader = Principal(org_id, person_id, teams=frozenset(teams), is_admin=is_admin)
        in_feed = bool(views.feed_page(reader, 100, None).items)
        if in_feed != goal_audience.can_see(reader):
            disagreements[name] = {"feed": in_feed, "can_see": goal_audience.can_see(reader)}

    assert disagreements == {}
