"""E-mail delivery: a real social API process stores the addresses, aiosmtpd on 127.0.0.1 receives the mail.

The dispatcher runs in the test's process with a settable clock, so digest times in each
person's time zone are checked by moving the clock.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import random
import signal
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from email.message import Message
from pathlib import Path
from typing import Iterator

import httpx
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import inspect, select, text

from spm_events.auth import issue_token
from spm_events.people import person_id_for
from spm_events.settings import DEVELOPMENT_JWT_SECRET
from spm_notifications.delivery.email import DELIVERY_IDS_HEADER, PeopleDirectoryClient
from spm_notifications.dispatcher import Dispatcher, DispatcherConfig
from spm_notifications.preferences import PreferenceStore, Preferences, QuietHours, parse_local_time
from spm_notifications.rules import GOAL_FOLLOWED, notification_message
from notify_delivery_support import SettableClock, free_port

OWNER, ACTOR = "owner", "alex"
SMTP_FROM = "SPM <notifications@spm.test>"


class RecordingHandler:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope) -> str:  # type: ignore[no-untyped-def]  # noqa: N802 - aiosmtpd's hook name
        with self.lock:
            self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Controller, RecordingHandler]]:
    handler = RecordingHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, handler
    controller.stop()


@pytest.fixture(scope="module")
def social_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Run ``spm-social-api`` on SQLite in its own data directory and return its base URL."""
    data_dir = tmp_path_factory.mktemp("social")
    port = free_port()
    env = {**os.environ, "SPM_DATA_DIR": str(data_dir), "SPM_HTTP_PORT": str(port), "SPM_JWT_SECRET": DEVELOPMENT_JWT_SECRET}
    env.pop("SPM_DATABASE_URL", None)
    log_path = data_dir / "social-api.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "spm-social-api")], env=env, stdout=log_file, stderr=subprocess.STDOUT
        )
    base_url = f"http://127.0.0.1:{port}"
    deadline = datetime.now() + timedelta(seconds=60)
    try:
        while True:
            assert process.poll() is None, log_path.read_text()
            try:
                if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert datetime.now() < deadline, "the social API did not answer /healthz within 60 s"
            threading.Event().wait(0.2)
        yield base_url
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def add_people(base_url: str, org_id: str, people: dict[str, str | None], team: str = "platform") -> dict[str, str]:
    """Write handle -> address into the org's people directory and return handle -> person id."""
    admin = issue_token(DEVELOPMENT_JWT_SECRET, org_id, "directory-admin", admin=True)
    rows = [
        {"handle": handle, "display_name": handle.title(), "email": address or f"{handle}@example.com", "team": team}
        for handle, address in people.items()
    ]
    response = httpx.post(f"{base_url}/people/batch", json={"people": rows}, headers={"Authorization": f"Bearer {admin}"})
    assert response.status_code == 200, response.text
    for handle, address in people.items():
        if address is None:
            deactivated = httpx.post(
                f"{base_url}/people/{handle}/deactivate", headers={"Authorization": f"Bearer {admin}"}
            )
            assert deactivated.status_code == 200, deactivated.text
    return {handle: person_id_for(org_id, handle) for handle in people}


@pytest.fixture
def dispatch(store, smtp, social_api):  # type: ignore[no-untyped-def]
    controller, _ = smtp

    def build(clock: SettableClock, digest_local_hour: int = 8, smtp_port: int | None = None) -> Dispatcher:
        config = DispatcherConfig(
            smtp_host="127.0.0.1", smtp_port=smtp_port or controller.port, smtp_from=SMTP_FROM, smtp_timeout_seconds=10,
            digest_local_hour=digest_local_hour, max_attempts=3,
        )
        directory = PeopleDirectoryClient(social_api, DEVELOPMENT_JWT_SECRET, 10.0)
        return Dispatcher(store.engine, store.tables, config, directory, clock=clock, rng=random.Random(3))

    return build


def delivery_ids(message: Message) -> list[str]:
    return [part.strip() for part in str(message[DELIVERY_IDS_HEADER]).split(",")]


def run_round(dispatcher: Dispatcher) -> int:
    async def round_trip() -> int:
        async with httpx.AsyncClient() as http:
            return await dispatcher.run_once(http)

    return asyncio.run(round_trip())


def set_preferences(store, org_id: str, person_id: str, **fields) -> None:  # type: ignore[no-untyped-def]
    with store.engine.begin() as connection:
        PreferenceStore(store.tables).save(connection, org_id, person_id, Preferences(**fields), datetime.now(timezone.utc))


def tag_on_goals(store, events, person_id: str, count: int) -> None:  # type: ignore[no-untyped-def]
    for index in range(count):
        goal_id = f"goal-{index}"
        store.apply(events.goal_created(goal_id, OWNER, title=f"Goal {index}"), events.tagged(goal_id, person_id, ACTOR, 10 + index))


def test_immediate_mail(store, events, org_id, smtp, social_api, dispatch) -> None:  # type: ignore[no-untyped-def]
    _, handler = smtp
    people = add_people(social_api, org_id, {"fay": "fay.mail@example.com"})
    set_preferences(store, org_id, people["fay"], email_digest="immediate")
    tag_on_goals(store, events, people["fay"], 1)
    clock = SettableClock(datetime(2026, 6, 10, 12, 0, tzinfo=timezone.utc))

    run_round(dispatch(clock))

    assert len(handler.messages) == 1
    message = handler.messages[0]
    assert message["To"] == "fay.mail@example.com"
    assert message["From"] == SMTP_FROM
    assert message["Subject"] == 'You were tagged on "Goal 0"'
    assert len(delivery_ids(message)) == 1


def test_daily_digest_in_time_zone(store, events, org_id, smtp, social_api, dispatch) -> None:  # type: ignore[no-untyped-def]
    _, handler = smtp
    people = add_people(social_api, org_id, {"kenji": "kenji@example.com"})
    set_preferences(store, org_id, people["kenji"], email_digest="daily", time_zone="Asia/Tokyo")
    tag_on_goals(store, events, people["kenji"], 3)
    # 00:30 UTC is 09:30 in Tokyo: the digest waits for 08:00 Tokyo the next day, 23:00 UTC.
    clock = SettableClock(datetime(2026, 6, 10, 0, 30, tzinfo=timezone.utc))
    dispatcher = dispatch(clock)

    run_round(dispatcher)
    clock.now = datetime(2026, 6, 10, 22, 59, tzinfo=timezone.utc)
    run_round(dispatcher)
    assert handler.messages == []

    clock.now = datetime(2026, 6, 10, 23, 0, tzinfo=timezone.utc)
    run_round(dispatcher)
    run_round(dispatcher)

    assert len(handler.messages) == 1
    digest = handler.messages[0]
    assert digest["Subject"] == "Your daily digest: 3 notifications"
    body = digest.get_content()
    for index in range(3):
        assert f'You were tagged on "Goal {index}"' in body
    assert len(set(delivery_ids(digest))) == 3


def test_weekly_digest_waits_for_monday(store, events, org_id, smtp, social_api, dispatch) -> None:  # type: ignore[no-untyped-def]
    _, handler = smtp
    people = add_people(social_api, org_id, {"wanda": "wanda@example.com"})
    set_preferences(store, org_id, people["wanda"], email_digest="weekly", time_zone="America/New_York")
    tag_on_goals(store, events, people["wanda"], 2)
    # Wednesday 10 June 2026. The next Monday 08:00 in New York (UTC-4) is 15 June 12:00 UTC.
    clock = SettableClock(datetime(2026, 6, 10, 15, 0, tzinfo=timezone.utc))
    dispatcher = dispatch(clock)

    run_round(dispatcher)
    clock.now = datetime(2026, 6, 15, 11, 59, tzinfo=timezone.utc)
    run_round(dispatcher)
    assert handler.messages == []

    clock.now = datetime(2026, 6, 15, 12, 0, tzinfo=timezone.utc)
    run_round(dispatcher)
    assert [message["Subject"] for message in handler.messages] == ["Your weekly digest: 2 notifications"]


def test_digest_waits_out_quiet_hours(store, events, org_id, smtp, social_api, dispatch) -> None:  # type: ignore[no-untyped-def]
    _, handler = smtp
    people = add_people(social_api, org_id, {"quinn": "quinn@example.com"})
    set_preferences(
        store, org_id, people["quinn"], email_digest="daily", time_zone="Europe/Berlin",
        quiet_hours=QuietHours(parse_local_time("07:30"), parse_local_time("09:15")),
    )
    tag_on_goals(store, events, people["quinn"], 1)
    # The digest is due at 08:00 Berlin (06:00 UTC), inside quiet hours that end at 09:15 Berlin (07:15 UTC).
    clock = SettableClock(datetime(2026, 6, 10, 12, 0, tzinfo=timezone.utc))
    dispatcher = dispatch(clock)

    run_round(dispatcher)
    clock.now = datetime(2026, 6, 11, 6, 0, tzinfo=timezone.utc)
    run_round(dispatcher)
    clock.now = datetime(2026, 6, 11, 7, 14, tzinfo=timezone.utc)
    run_round(dispatcher)
    assert handler.messages == []

    clock.now = datetime(2026, 6, 11, 7, 15, tzinfo=timezone.utc)
    run_round(dispatcher)
    assert len(handler.messages) == 1


def test_email_switch_off_sends_nothing(store, events, org_id, smtp, social_api, dispatch) -> None:  # type: ignore[no-untyped-def]
    _, handler = smtp
    people = add_people(social_api, org_id, {"otis": "otis@example.com"})
    set_preferences(store, org_id, people["otis"], email_digest="immediate", switches={("tagged", "email"): False})
    tag_on_goals(store, events, people["otis"], 1)

    run_round(dispatch(SettableClock(datetime(2026, 6, 10, 12, 0, tzinfo=timezone.utc))))

    assert handler.messages == []


def test_inactive_person_is_dead_lettered(store, events, org_id, smtp, social_api, dispatch) -> None:  # type: ignore[no-untyped-def]
    _, handler = smtp
    people = add_people(social_api, org_id, {"gone": None})
    set_preferences(store, org_id, people["gone"], email_digest="immediate")
    tag_on_goals(store, events, people["gone"], 1)

    run_round(dispatch(SettableClock(datetime(2026, 6, 10, 12, 0, tzinfo=timezone.utc))))

    deliveries = store.tables.inbox.metadata.tables["deliveries"]
    with store.engine.connect() as connection:
        rows = connection.execute(select(deliveries.c.status, deliveries.c.last_error)).all()
    assert handler.messages == []
    assert [row.status for row in rows] == ["dead"]
    assert "no active person" in rows[0].last_error


def test_smtp_down_is_retried(store, events, org_id, social_api, dispatch) -> None:  # type: ignore[no-untyped-def]
    people = add_people(social_api, org_id, {"ria": "ria@example.com"})
    set_preferences(store, org_id, people["ria"], email_digest="immediate")
    tag_on_goals(store, events, people["ria"], 1)
    clock = SettableClock(datetime(2026, 6, 10, 12, 0, tzinfo=timezone.utc))
    port = free_port()
    dispatcher = dispatch(clock, smtp_port=port)

    # Nothing listens on the port yet, so the first attempt fails to connect.
    run_round(dispatcher)
    handler = RecordingHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        clock.advance(minutes=5)
        run_round(dispatcher)
    finally:
        controller.stop()

    assert len(handler.messages) == 1
    attempts = store.tables.inbox.metadata.tables["delivery_attempts"]
    with store.engine.connect() as connection:
        errors = connection.execute(select(attempts.c.error).order_by(attempts.c.attempt)).scalars().all()
    assert errors[0].startswith("SMTP send failed")
    assert errors[1] is None


def test_address_never_stored(store, events, org_id, smtp, social_api, dispatch) -> None:  # type: ignore[no-untyped-def]
    _, handler = smtp
    address = "private.address.4711@example.com"
    people = add_people(social_api, org_id, {"pia": address})
    set_preferences(store, org_id, people["pia"], email_digest="immediate")
    tag_on_goals(store, events, people["pia"], 1)

    run_round(dispatch(SettableClock(datetime(2026, 6, 10, 12, 0, tzinfo=timezone.utc))))

    assert handler.messages[0]["To"] == address
    with store.engine.connect() as connection:
        for table_name in inspect(connection).get_table_names():
            for row in connection.execute(text(f'SELECT * FROM "{table_name}"')):
                assert "4711" not in repr(tuple(row)), f"the address is stored in table {table_name}"


def test_digest_groups_burst_of_follows(store, events, org_id, smtp, social_api, dispatch) -> None:  # type: ignore[no-untyped-def]
    _, handler = smtp
    people = add_people(social_api, org_id, {"olga": "olga@example.com"})
    set_preferences(store, org_id, people["olga"], email_digest="daily")
    store.apply(events.goal_created("goal-popular", people["olga"], title="Popular"))
    for index, follower in enumerate(("finn", "fred", "fiona")):
        store.apply(events.followed("goal-popular", follower, 10 + index))
    clock = SettableClock(datetime(2026, 6, 10, 12, 0, tzinfo=timezone.utc))
    dispatcher = dispatch(clock)

    run_round(dispatcher)
    clock.advance(days=1)
    run_round(dispatcher)

    assert len(handler.messages) == 1
    digest = handler.messages[0]
    lines = [line for line in digest.get_content().splitlines() if line.startswith("- ")]
    assert len(lines) == 1
    assert lines[0].startswith(f"- {notification_message(GOAL_FOLLOWED, 'Popular', 3)} (")
    assert len(delivery_ids(digest)) == 3
    assert digest["Subject"] == "Your daily digest: 3 notifications"


def test_team_goal_mails_its_team_only(store, events, org_id, smtp, social_api, dispatch) -> None:  # type: ignore[no-untyped-def]
    _, handler = smtp
    members = add_people(social_api, org_id, {"tess": "tess@example.com"}, team="platform")
    outsiders = add_people(social_api, org_id, {"omar": "omar@example.com"}, team="sales")
    for person_id in (members["tess"], outsiders["omar"]):
        set_preferences(store, org_id, person_id, email_digest="immediate")
    store.apply(
        events.goal_created("goal-team", OWNER, title="Team only", visibility="team", team="platform"),
        events.followed("goal-team", members["tess"], 1),
        events.followed("goal-team", outsiders["omar"], 2),
        events.check_in("goal-team", OWNER, 3),
    )

    run_round(dispatch(SettableClock(datetime(2026, 6, 10, 12, 0, tzinfo=timezone.utc))))

    recipients = [message["To"] for message in handler.messages]
    assert recipients == ["tess@example.com"]
    deliveries = store.tables.inbox.metadata.tables["deliveries"]
    with store.engine.connect() as connection:
        statuses = dict(connection.execute(select(deliveries.c.recipient_id, deliveries.c.status)).all())
    assert statuses[outsiders["omar"]] == "dropped"
