"""The goals application on a real event store, run once on SQLite files and once on PostgreSQL."""

from __future__ import annotations

import threading
import uuid
from datetime import date, datetime, timezone
from typing import Iterator

import pytest
from eventsourcing.persistence import IntegrityError
from sqlalchemy import Engine, text

from spm_events.database import create_database_engine
from spm_goals.application import (
    GoalsApplication,
    NewKeyResult,
    NewObjective,
    ObjectiveConflictError,
    ObjectiveNotFoundError,
)
from spm_goals.objective import Objective, Period
from spm_goals.settings import EVENT_STORE_FILE, READ_DATABASE_FILE, GoalsSettings

Q1 = Period("FY21-Q1", date(2020, 2, 1), date(2020, 4, 30))
PLANNED_AT = datetime(2020, 1, 20, 9, 0, tzinfo=timezone.utc)
IN_Q1 = datetime(2020, 3, 2, 9, 30, tzinfo=timezone.utc)


class Store:
    """Opens applications on one event store and read database, and closes them all at the end."""

    def __init__(self, settings: GoalsSettings) -> None:
        self.settings = settings
        self.engine: Engine = create_database_engine(settings.sqlalchemy_url(READ_DATABASE_FILE))
        self.opened: list[GoalsApplication] = []

    def open(self) -> GoalsApplication:
        application = GoalsApplication(env=self.settings.event_store_env(EVENT_STORE_FILE), index_engine=self.engine)
        self.opened.append(application)
        return application

    def close(self) -> None:
        for application in self.opened:
            application.close()
        self.engine.dispose()


@pytest.fixture
def store(backend_settings: GoalsSettings) -> Iterator[Store]:
    opened = Store(backend_settings)
    yield opened
    opened.close()


def new_objective(title: str = "Grow ARR", external_ref: str | None = None) -> NewObjective:
    return NewObjective(
        title=title,
        team="Executive",
        period=Q1,
        owner_id="owner-1",
        parent_goal_id=None,
        contributing_teams=("Sales", "Marketing"),
        external_ref=external_ref,
        occurred_at=PLANNED_AT,
    )


def new_key_result(external_ref: str | None = None) -> NewKeyResult:
    return NewKeyResult(
        title="Run campaigns", metric="number", start_value=0, target_value=10, external_ref=external_ref, occurred_at=PLANNED_AT
    )


def record(goals: GoalsApplication, org_id: str, goal_id: uuid.UUID, key_result_id: uuid.UUID, value: float) -> None:
    goals.record_check_in(org_id, goal_id, key_result_id, "actor-2", value=value, comment="", occurred_at=IN_Q1)


def test_objective_survives_reopening(store: Store) -> None:
    writer = store.open()
    objective, created = writer.create_objective("acme", "actor-1", new_objective(external_ref="CEO-1"))
    _, key_result, _ = writer.add_key_result("acme", objective.id, "actor-1", new_key_result("KR1"))
    record(writer, "acme", objective.id, key_result.key_result_id, 7)

    reloaded = store.open().get_objective("acme", objective.id)
    assert created
    assert reloaded.version == 3
    assert reloaded.org_id == "acme"
    assert reloaded.contributing_teams == ("Sales", "Marketing")
    assert reloaded.period == Q1
    assert reloaded.created_at == PLANNED_AT
    assert reloaded.external_ref == "CEO-1"
    (reloaded_key_result,) = reloaded.key_results.values()
    assert reloaded_key_result.key_result_id == key_result.key_result_id
    assert reloaded_key_result.current_value == 7
    (check_in,) = reloaded_key_result.check_ins
    assert check_in.occurred_at == IN_Q1
    assert check_in.actor_id == "actor-2"
    assert reloaded.progress == pytest.approx(0.7)


def test_notification_log_lists_events_in_order(store: Store) -> None:
    goals = store.open()
    objective, _ = goals.create_objective("acme", "actor-1", new_objective())
    _, key_result, _ = goals.add_key_result("acme", objective.id, "actor-1", new_key_result())
    record(goals, "acme", objective.id, key_result.key_result_id, 3)

    notifications = goals.read_notifications(0, 10)
    events = [goals.mapper.to_domain_event(notification) for notification in notifications]
    assert [type(event).__name__ for event in events] == ["ObjectiveCreated", "KeyResultAdded", "CheckInRecorded"]
    assert [event.originator_version for event in events] == [1, 2, 3]
    assert goals.max_notification_id() == notifications[-1].id
    assert goals.read_notifications(notifications[0].id, 10) == notifications[1:]


def test_listing_keeps_orgs_apart(store: Store) -> None:
    goals = store.open()
    ours = [goals.create_objective("acme", "a", new_objective(title))[0].id for title in ("B", "A")]
    goals.create_objective("globex", "a", new_objective("Foreign"))
    listed = store.open().list_objectives("acme")
    assert [objective.title for objective in listed] == ["A", "B"]
    assert {objective.id for objective in listed} == set(ours)
    assert [objective.title for objective in goals.list_objectives("globex")] == ["Foreign"]
    assert goals.list_objectives("initech") == []


def test_goal_index_is_rebuilt_after_loss(store: Store) -> None:
    goals = store.open()
    goals.create_objective("acme", "a", new_objective("Kept"))
    assert len(goals.list_objectives("acme")) == 1
    with store.engine.begin() as connection:
        connection.execute(text("DELETE FROM goal_index"))
    goals.create_objective("acme", "a", new_objective("Later"))
    assert [objective.title for objective in goals.list_objectives("acme")] == ["Kept", "Later"]


def test_other_org_cannot_load_goal(store: Store) -> None:
    goals = store.open()
    objective, _ = goals.create_objective("acme", "a", new_objective())
    with pytest.raises(ObjectiveNotFoundError):
        goals.get_objective("globex", objective.id)
    with pytest.raises(ObjectiveNotFoundError):
        goals.add_key_result("globex", objective.id, "a", new_key_result())
    assert goals.get_objective("acme", objective.id).version == 1


def test_repeated_external_refs_store_nothing(store: Store) -> None:
    goals = store.open()
    first, created = goals.create_objective("acme", "a", new_objective(external_ref="CEO-1"))
    goals.add_key_result("acme", first.id, "a", new_key_result("KR1"))
    written = goals.max_notification_id()

    again, created_again = store.open().create_objective("acme", "a", new_objective(external_ref="CEO-1"))
    _, _, added_again = goals.add_key_result("acme", first.id, "a", new_key_result("KR1"))
    assert created and not created_again
    assert again.id == first.id
    assert not added_again
    assert goals.max_notification_id() == written


def test_stale_save_raises_integrity_error(store: Store) -> None:
    goals = store.open()
    objective, _ = goals.create_objective("acme", "a", new_objective())
    _, key_result, _ = goals.add_key_result("acme", objective.id, "a", new_key_result())
    stale = goals.get_objective("acme", objective.id)
    record(store.open(), "acme", objective.id, key_result.key_result_id, 1)

    stale.record_check_in(key_result_id=key_result.key_result_id, value=2, comment="", occurred_at=IN_Q1, actor_id="a")
    with pytest.raises(IntegrityError):
        goals.save(stale)
    assert goals.get_objective("acme", objective.id).version == 3


def test_one_conflict_is_retried(store: Store) -> None:
    goals = store.open()
    competitor = store.open()
    objective, _ = goals.create_objective("acme", "a", new_objective())
    _, key_result, _ = goals.add_key_result("acme", objective.id, "a", new_key_result())
    attempts = 0

    def record_after_one_competing_write(loaded: Objective) -> None:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            record(competitor, "acme", objective.id, key_result.key_result_id, 1)
        loaded.record_check_in(key_result_id=key_result.key_result_id, value=2, comment="", occurred_at=IN_Q1, actor_id="a")

    saved, _ = goals.update_objective("acme", objective.id, record_after_one_competing_write)
    assert attempts == 2
    assert saved.version == 4
    assert [check_in.value for check_in in goals.get_objective("acme", objective.id).key_results[key_result.key_result_id].check_ins] == [1, 2]


def test_second_conflict_raises_conflict_error(store: Store) -> None:
    goals = store.open()
    competitor = store.open()
    objective, _ = goals.create_objective("acme", "a", new_objective())
    _, key_result, _ = goals.add_key_result("acme", objective.id, "a", new_key_result())

    def record_after_competing_write(loaded: Objective) -> None:
        record(competitor, "acme", objective.id, key_result.key_result_id, 1)
        loaded.record_check_in(key_result_id=key_result.key_result_id, value=2, comment="", occurred_at=IN_Q1, actor_id="a")

    with pytest.raises(ObjectiveConflictError):
        goals.update_objective("acme", objective.id, record_after_competing_write)
    stored = goals.get_objective("acme", objective.id)
    assert stored.version == 4
    assert [check_in.value for check_in in stored.key_results[key_result.key_result_id].check_ins] == [1, 1]


@pytest.mark.postgres
def test_concurrent_starts_create_tables_once(postgres_url_factory) -> None:  # type: ignore[no-untyped-def]
    """Processes that start together on a new PostgreSQL database all open the event store."""
    settings = GoalsSettings(database_url=postgres_url_factory())
    engine = create_database_engine(settings.database_url)  # type: ignore[arg-type]
    starters = 6
    barrier = threading.Barrier(starters)
    failures: list[BaseException] = []
    opened: list[GoalsApplication] = []

    def start() -> None:
        barrier.wait()
        try:
            opened.append(GoalsApplication(env=settings.event_store_env(EVENT_STORE_FILE), index_engine=engine))
        except BaseException as error:  # noqa: BLE001 - collected for the assertion below
            failures.append(error)

    threads = [threading.Thread(target=start) for _ in range(starters)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert failures == []
    assert len(opened) == starters
    for application in opened:
        application.close()
    engine.dispose()
