"""The Objective aggregate on its own: progress, guards and event-time rules."""

from __future__ import annotations

import math
import uuid
from datetime import date, datetime, timedelta, timezone

import pytest

from spm_goals.objective import (
    KeyResult,
    KeyResultNotFoundError,
    Objective,
    ObjectiveError,
    Period,
    goal_id_for,
    key_result_id_for,
)

Q1 = Period("FY21-Q1", date(2020, 2, 1), date(2020, 4, 30))
BEFORE_Q1 = datetime(2020, 1, 20, 9, 0, tzinfo=timezone.utc)
IN_Q1 = datetime(2020, 3, 2, 9, 30, tzinfo=timezone.utc)


def new_objective(external_ref: str | None = "CEO-1", org_id: str = "acme", period: Period = Q1) -> Objective:
    return Objective.create(
        org_id=org_id,
        owner_id="owner-1",
        team="Executive",
        contributing_teams=("Sales", "Marketing"),
        period=period,
        parent_goal_id=None,
        title="Grow ARR consistently",
        external_ref=external_ref,
        occurred_at=BEFORE_Q1,
        actor_id="actor-1",
    )


def add_key_result(objective: Objective, start: float = 0.0, target: float = 10.0, external_ref: str | None = None) -> KeyResult:
    return objective.add_key_result(
        title="Run campaigns",
        metric="number",
        start_value=start,
        target_value=target,
        external_ref=external_ref,
        occurred_at=BEFORE_Q1,
        actor_id="actor-1",
    )


def check_in(objective: Objective, key_result: KeyResult, value: float, occurred_at: datetime = IN_Q1) -> None:
    objective.record_check_in(
        key_result_id=key_result.key_result_id, value=value, comment="", occurred_at=occurred_at, actor_id="actor-2"
    )


def test_progress_is_share_of_distance_covered() -> None:
    objective = new_objective()
    key_result = add_key_result(objective, start=0, target=10)
    check_in(objective, key_result, 5)
    assert key_result.progress == 0.5


def test_progress_works_for_decreasing_metric() -> None:
    objective = new_objective()
    key_result = add_key_result(objective, start=20, target=5)
    check_in(objective, key_result, 10)
    assert key_result.progress == pytest.approx(2 / 3)


def test_progress_keeps_over_achievement() -> None:
    objective = new_objective()
    key_result = add_key_result(objective, start=0, target=10)
    check_in(objective, key_result, 122)
    assert key_result.progress == pytest.approx(12.2)


def test_progress_behind_start_counts_as_zero() -> None:
    objective = new_objective()
    key_result = add_key_result(objective, start=20, target=5)
    check_in(objective, key_result, 30)
    assert key_result.progress == 0.0


def test_progress_before_any_check_in_is_zero() -> None:
    objective = new_objective()
    key_result = add_key_result(objective, start=3, target=10)
    assert key_result.current_value == 3
    assert key_result.progress == 0.0
    assert objective.progress == 0.0


def test_objective_progress_is_uncapped_mean() -> None:
    objective = new_objective()
    over = add_key_result(objective, start=0, target=10)
    lagging = add_key_result(objective, start=0, target=10)
    check_in(objective, over, 15)
    check_in(objective, lagging, 2)
    assert objective.progress == pytest.approx((1.5 + 0.2) / 2)


def test_objective_without_key_results_has_zero_progress() -> None:
    assert new_objective().progress == 0.0


def test_current_value_follows_event_time() -> None:
    objective = new_objective()
    key_result = add_key_result(objective)
    check_in(objective, key_result, 8, occurred_at=IN_Q1)
    check_in(objective, key_result, 3, occurred_at=IN_Q1 - timedelta(days=10))
    assert key_result.current_value == 8
    assert key_result.latest_check_in is not None
    assert key_result.latest_check_in.occurred_at == IN_Q1
    assert len(key_result.check_ins) == 2


def test_events_store_event_time_in_utc_and_actor() -> None:
    objective = new_objective()
    key_result = add_key_result(objective)
    local_time = datetime(2020, 3, 2, 11, 30, tzinfo=timezone(timedelta(hours=2)))
    check_in(objective, key_result, 4, occurred_at=local_time)
    created, added, recorded = objective.collect_events()
    assert type(created).__name__ == "ObjectiveCreated"
    assert type(added).__name__ == "KeyResultAdded"
    assert type(recorded).__name__ == "CheckInRecorded"
    assert created.occurred_at == BEFORE_Q1
    assert created.actor_id == "actor-1"
    assert recorded.occurred_at == datetime(2020, 3, 2, 9, 30, tzinfo=timezone.utc)
    assert recorded.occurred_at.utcoffset() == timedelta(0)
    assert recorded.actor_id == "actor-2"


def test_goal_id_derived_from_ref() -> None:
    assert new_objective("CEO-1").id == goal_id_for("acme", "CEO-1")
    assert new_objective("CEO-1").id == new_objective("CEO-1").id
    assert new_objective("CEO-1", org_id="other").id != new_objective("CEO-1").id
    assert new_objective(None).id != new_objective(None).id


def test_key_result_id_derived_from_ref() -> None:
    objective = new_objective()
    key_result = add_key_result(objective, external_ref="CEO-1.KR1")
    assert key_result.key_result_id == key_result_id_for(objective.id, "CEO-1.KR1")
    assert objective.key_result_with_ref("CEO-1.KR1") is key_result
    assert add_key_result(objective).key_result_id != add_key_result(objective).key_result_id


def test_duplicate_key_result_ref_is_rejected() -> None:
    objective = new_objective()
    add_key_result(objective, external_ref="KR1")
    with pytest.raises(ObjectiveError) as raised:
        add_key_result(objective, external_ref="KR1")
    assert raised.value.field_name == "external_ref"


def test_target_equal_to_start_is_rejected() -> None:
    objective = new_objective()
    with pytest.raises(ObjectiveError) as raised:
        add_key_result(objective, start=5, target=5)
    assert raised.value.field_name == "target_value"
    assert objective.key_results == {}
    assert objective.version == 1


@pytest.mark.parametrize("bad_value", [math.nan, math.inf, -math.inf])
def test_non_finite_check_in_value_is_rejected(bad_value: float) -> None:
    objective = new_objective()
    key_result = add_key_result(objective)
    with pytest.raises(ObjectiveError) as raised:
        check_in(objective, key_result, bad_value)
    assert raised.value.field_name == "value"
    assert key_result.check_ins == []
    assert objective.version == 2


@pytest.mark.parametrize("field_name", ["start_value", "target_value"])
def test_non_finite_key_result_bound_is_rejected(field_name: str) -> None:
    objective = new_objective()
    bounds = {"start": 0.0, "target": 10.0}
    bounds["start" if field_name == "start_value" else "target"] = math.inf
    with pytest.raises(ObjectiveError) as raised:
        add_key_result(objective, **bounds)
    assert raised.value.field_name == field_name


def test_unknown_metric_is_rejected() -> None:
    objective = new_objective()
    with pytest.raises(ObjectiveError) as raised:
        objective.add_key_result(
            title="t", metric="vibes", start_value=0, target_value=1, external_ref=None,
            occurred_at=BEFORE_Q1, actor_id="actor-1",
        )
    assert raised.value.field_name == "metric"


def test_future_event_time_is_rejected_for_every_command() -> None:
    tomorrow = datetime.now(timezone.utc) + timedelta(days=1)
    with pytest.raises(ObjectiveError) as raised:
        Objective.create(
            org_id="acme", owner_id="o", team="t", contributing_teams=(), period=Q1, parent_goal_id=None,
            title="t", external_ref=None, occurred_at=tomorrow, actor_id="a",
        )
    assert raised.value.field_name == "occurred_at"

    objective = new_objective()
    with pytest.raises(ObjectiveError) as raised:
        objective.add_key_result(
            title="t", metric="number", start_value=0, target_value=1, external_ref=None,
            occurred_at=tomorrow, actor_id="a",
        )
    assert raised.value.field_name == "occurred_at"

    this_year = Period("now", date.today() - timedelta(days=30), date.today() + timedelta(days=30))
    current = new_objective(period=this_year)
    key_result = add_key_result(current)
    with pytest.raises(ObjectiveError) as raised:
        check_in(current, key_result, 1, occurred_at=tomorrow)
    assert raised.value.field_name == "occurred_at"
    assert key_result.check_ins == []


def test_naive_event_time_is_rejected() -> None:
    objective = new_objective()
    key_result = add_key_result(objective)
    with pytest.raises(ObjectiveError) as raised:
        check_in(objective, key_result, 1, occurred_at=datetime(2020, 3, 2, 9, 30))
    assert raised.value.field_name == "occurred_at"


@pytest.mark.parametrize(
    "occurred_at",
    [
        datetime(2020, 2, 1, 0, 0, tzinfo=timezone.utc),
        datetime(2020, 4, 30, 23, 59, 59, 999000, tzinfo=timezone.utc),
        datetime(2020, 5, 1, 1, 0, tzinfo=timezone(timedelta(hours=2))),
    ],
)
def test_check_in_on_period_edges_is_accepted(occurred_at: datetime) -> None:
    objective = new_objective()
    key_result = add_key_result(objective)
    check_in(objective, key_result, 1, occurred_at=occurred_at)
    assert len(key_result.check_ins) == 1


@pytest.mark.parametrize(
    "occurred_at",
    [
        datetime(2020, 1, 31, 23, 59, 59, 999999, tzinfo=timezone.utc),
        datetime(2020, 4, 30, 23, 59, 59, 999500, tzinfo=timezone.utc),
        datetime(2020, 5, 1, 0, 0, tzinfo=timezone.utc),
        datetime(2020, 2, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))),
    ],
)
def test_check_in_outside_period_is_rejected(occurred_at: datetime) -> None:
    objective = new_objective()
    key_result = add_key_result(objective)
    with pytest.raises(ObjectiveError) as raised:
        check_in(objective, key_result, 1, occurred_at=occurred_at)
    assert raised.value.field_name == "occurred_at"
    assert "outside the goal's period" in str(raised.value)
    assert key_result.check_ins == []


def test_check_in_on_unknown_key_result_is_rejected() -> None:
    objective = new_objective()
    with pytest.raises(KeyResultNotFoundError):
        objective.record_check_in(
            key_result_id=uuid.uuid4(), value=1, comment="", occurred_at=IN_Q1, actor_id="a"
        )
    assert objective.version == 1


def test_period_ending_before_start_is_rejected() -> None:
    with pytest.raises(ObjectiveError) as raised:
        new_objective(period=Period("bad", date(2020, 4, 30), date(2020, 2, 1)))
    assert raised.value.field_name == "period"


def test_unmeasurable_key_result_range_is_rejected() -> None:
    objective = new_objective()
    with pytest.raises(ObjectiveError) as raised:
        add_key_result(objective, start=-1e308, target=1e308)
    assert raised.value.field_name == "target_value"
    assert objective.key_results == {}


def test_unmeasurable_check_in_value_is_rejected() -> None:
    objective = new_objective()
    key_result = add_key_result(objective, start=0, target=5e-324)
    with pytest.raises(ObjectiveError) as raised:
        check_in(objective, key_result, 1e300)
    assert raised.value.field_name == "value"
    assert key_result.check_ins == []


def test_objective_progress_of_huge_values_stays_finite() -> None:
    objective = new_objective()
    first = add_key_result(objective, start=0, target=1e-300)
    second = add_key_result(objective, start=0, target=1e-300)
    check_in(objective, first, 1e8)
    check_in(objective, second, 1e8)
    assert math.isfinite(first.progress)
    assert math.isfinite(objective.progress)
    assert objective.progress == pytest.approx(1e308)
