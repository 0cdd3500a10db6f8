"""A steady stream of commands through the real HTTP APIs, for fault tests to run while they break things.

Each round creates a goal, adds a key result, records check-ins, follows the goal, tags a
collaborator and comments. Goals commands carry an Idempotency-Key and are retried with the same
key after a connection error or a 5xx, so a retry against a restarted API returns the first result.
Follows and tags are idempotent by nature (a repeat answers 200 and writes nothing), so they are
retried the same way. A comment is retried only when the connection was never made, because the
social API takes no Idempotency-Key and a retried comment after a lost response would be a second
comment. Every command's final answer is recorded, so the tests know exactly what was accepted.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import httpx

from spm_events.auth import issue_token
from spm_events.people import person_id_for

HANDLES = ("ana", "ben", "cai", "dee", "eli", "fox")


@dataclass
class Command:
    kind: str
    service: str
    path: str
    body: dict[str, Any]
    actor: str
    idempotency_key: str | None = None
    status: int | None = None
    response: Any = None
    attempts: int = 0
    # True when a response was lost and the command was not retried, so whether it was stored is unknown.
    outcome_unknown: bool = False
    # True when the connection broke after the request was sent, as when the API dies mid-request.
    interrupted: bool = False

    @property
    def accepted(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass(eq=False)
class Workload(threading.Thread):
    """Sends rounds of commands from a thread at about ``rounds_per_second`` until stopped."""

    urls: dict[str, str]
    org_id: str
    jwt_secret: str
    rounds_per_second: float = 2.0
    check_ins_per_round: int = 3
    retry_for_seconds: float = 120.0
    commands: list[Command] = field(default_factory=list)
    error: BaseException | None = None

    def __post_init__(self) -> None:
        threading.Thread.__init__(self, daemon=True, name=f"workload-{self.org_id}")
        self.stop_requested = threading.Event()
        self.people = [person_id_for(self.org_id, handle) for handle in HANDLES]
        self.tokens = {person: issue_token(self.jwt_secret, self.org_id, person) for person in self.people}
        self.admin_token = issue_token(self.jwt_secret, self.org_id, "workload-admin", admin=True)
        self.rounds = 0
        # The service a request is being sent to right now, or None; fault tests kill an API while it is set.
        self.in_flight: str | None = None
        self.lock = threading.Lock()
        self.client = httpx.Client(timeout=30)

    # --- running ---

    def register_people(self) -> None:
        """Put the workload's people in the social directory, which tags require."""
        body = {"people": [
            {"handle": handle, "display_name": handle.title(), "email": f"{handle}@example.com", "team": "Reliability"}
            for handle in HANDLES
        ]}
        response = self.client.post(
            f"{self.urls['social']}/people/batch", json=body, headers={"Authorization": f"Bearer {self.admin_token}"}
        )
        response.raise_for_status()

    def run(self) -> None:
        try:
            while not self.stop_requested.is_set():
                started = time.monotonic()
                self.run_round(self.rounds)
                self.rounds += 1
                remaining = 1 / self.rounds_per_second - (time.monotonic() - started)
                if remaining > 0:
                    self.stop_requested.wait(remaining)
        except BaseException as error:  # noqa: BLE001 - handed to the test thread by stop()
            self.error = error
        finally:
            self.client.close()

    def stop(self, timeout: float = 180.0) -> None:
        """Stop after the current round and re-raise any error the thread met."""
        self.stop_requested.set()
        self.join(timeout)
        assert not self.is_alive(), f"the workload did not finish its round within {timeout:.0f}s"
        if self.error is not None:
            raise self.error

    def run_round(self, number: int) -> None:
        owner = self.people[number % len(self.people)]
        follower = self.people[(number + 1) % len(self.people)]
        collaborator = self.people[(number + 2) % len(self.people)]
        today = date.today()
        goal = self.send("create_goal", "goals", "/goals", owner, {
            "title": f"Reliability goal {number}",
            "team": "Reliability",
            "period": {"name": "run", "start": str(today - timedelta(days=30)), "end": str(today + timedelta(days=60))},
        })
        if not goal.accepted:
            raise AssertionError(f"creating a goal failed with {goal.status}: {goal.response}")
        goal_id = goal.response["goal_id"]
        key_result = self.send("add_key_result", "goals", f"/goals/{goal_id}/key-results", owner, {
            "title": "Ship it", "metric": "number", "start_value": 0, "target_value": 100,
        })
        if not key_result.accepted:
            raise AssertionError(f"adding a key result failed with {key_result.status}: {key_result.response}")
        key_result_id = key_result.response["key_result_id"]
        for index in range(self.check_ins_per_round):
            self.send("check_in", "goals", f"/goals/{goal_id}/key-results/{key_result_id}/check-ins", owner, {
                "value": 10 * (index + 1), "comment": f"step {index}", "confidence": 0.8,
            })
        # Social answers 404 until its processor has applied GoalCreated; send() waits that out.
        self.send("follow", "social", f"/goals/{goal_id}/followers", follower, {})
        self.send("tag", "social", f"/goals/{goal_id}/collaborators", owner, {"person_id": collaborator})
        self.send("comment", "social", f"/goals/{goal_id}/comments", follower, {"body": f"comment on round {number}"})

    # --- one command ---

    def send(self, kind: str, service: str, path: str, actor: str, body: dict[str, Any]) -> Command:
        key = str(uuid.uuid4()) if service == "goals" else None
        command = Command(kind, service, path, body, actor, idempotency_key=key)
        with self.lock:
            self.commands.append(command)
        headers = {"Authorization": f"Bearer {self.tokens[actor]}"}
        if key is not None:
            headers["Idempotency-Key"] = key
        retry_safe = kind != "comment"
        deadline = time.monotonic() + self.retry_for_seconds
        delay = 0.1
        while True:
            command.attempts += 1
            self.in_flight = service
            response: httpx.Response | None = None
            try:
                response = self.client.post(f"{self.urls[service]}{path}", json=body, headers=headers)
            except httpx.ConnectError:
                pass  # the request never reached the API, so sending it again is safe for every command
            except httpx.TransportError as error:
                command.interrupted = True
                if not retry_safe:
                    command.outcome_unknown = True
                    command.response = repr(error)
                    return command
            finally:
                self.in_flight = None
            if response is not None:
                command.status = response.status_code
                command.response = _json_or_text(response)
                waiting_for_goal = service == "social" and response.status_code == 404
                if response.status_code < 500 and not waiting_for_goal:
                    return command
            if time.monotonic() > deadline:
                return command
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    # --- results ---

    def accepted(self, kind: str | None = None) -> list[Command]:
        with self.lock:
            return [command for command in self.commands if command.accepted and (kind is None or command.kind == kind)]

    def failed(self) -> list[Command]:
        with self.lock:
            return [command for command in self.commands if not command.accepted and not command.outcome_unknown]


def _json_or_text(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text
