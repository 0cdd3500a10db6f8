"""Schemathesis over every operation of every service: no 5xx, and every response as documented.

Each operation gets ``SPM_FUZZ_EXAMPLES`` generated requests (default 25) in the fuzzing phase,
plus the examples and coverage phases, which do not depend on that number. Requests go in-process
to the ASGI app, half of them with a person's token and half with an admin's. Generation is
derandomized, so a run in CI repeats the one before it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.types import ASGIApp

from fuzz_apps import ADMIN_ID, PERSON_ID, SEEDED_IDS, auth_headers, openapi_document

EXAMPLES = int(os.environ.get("SPM_FUZZ_EXAMPLES", "25"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Server-sent event streams, which never end on their own.
EVENT_STREAM_OPERATIONS = {"GET /inbox/stream"}
STREAM_READ_SECONDS = 0.2
CONFIG = schemathesis.Config.from_dict(
    {
        "generation": {
            # Invalid requests as well as valid ones, so error paths meet the same checks.
            "mode": "all",
            # The test sends a valid token itself; token checks have their own tests in events/tests.
            "with-security-parameters": False,
            "deterministic": True,
            "database": "none",
        },
        # Schemathesis reads an event stream until this many events arrive or the read times out.
        "max-stream-events": 1,
    }
)
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    # Many generated requests are rejected by design, and some bodies are large; neither is a test fault.
    suppress_health_check=list(HealthCheck),
)


def load_schema(service_name: str) -> schemathesis.BaseSchema:
    """Load a service's OpenAPI document and make generated paths name its seeded ids half of the time."""
    schema = schemathesis.openapi.from_dict(openapi_document(service_name), config=CONFIG)

    @schema.hook
    def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any]) -> st.SearchStrategy:
        if not path_parameters:
            return st.just(path_parameters)
        # Read at draw time, because the ids exist only once the session fixture has seeded the app.
        seeded = {name: value for name, value in SEEDED_IDS.get(service_name, {}).items() if name in path_parameters}
        if not seeded:
            return st.just(path_parameters)
        return st.sampled_from([path_parameters, path_parameters | seeded])

    @schema.hook
    def flatmap_headers(context: Any, headers: dict[str, Any] | None) -> st.SearchStrategy:
        tokens = st.sampled_from([auth_headers(PERSON_ID), auth_headers(ADMIN_ID, admin=True)])
        return tokens.map(lambda token: (headers or {}) | token)

    return schema


def call_and_validate(case: schemathesis.Case, app: ASGIApp) -> None:
    """Send the case with its token, or a person's token where the phase ran no hooks, and run the checks."""
    headers = {} if "Authorization" in (case.headers or {}) else auth_headers(PERSON_ID)
    # A stream with no notifications sends only keep-alive comments, which are no events, so the
    # read timeout ends it. What arrived until then is checked like any other response.
    transport_options = {"timeout": STREAM_READ_SECONDS} if case.operation.label in EVENT_STREAM_OPERATIONS else {}
    case.call_and_validate(app=app, headers=headers, checks=CHECKS, **transport_options)


goals_schema = load_schema("goals")
social_schema = load_schema("social")
scoring_schema = load_schema("scoring")
notifications_schema = load_schema("notifications")


@goals_schema.parametrize()
@FUZZ_SETTINGS
def test_goals_api(case: schemathesis.Case, service_apps: Callable[[str], ASGIApp]) -> None:
    call_and_validate(case, service_apps("goals"))


@social_schema.parametrize()
@FUZZ_SETTINGS
def test_social_api(case: schemathesis.Case, service_apps: Callable[[str], ASGIApp]) -> None:
    call_and_validate(case, service_apps("social"))


@scoring_schema.parametrize()
@FUZZ_SETTINGS
def test_scoring_api(case: schemathesis.Case, service_apps: Callable[[str], ASGIApp]) -> None:
    call_and_validate(case, service_apps("scoring"))


@notifications_schema.parametrize()
@FUZZ_SETTINGS
def test_notifications_api(case: schemathesis.Case, service_apps: Callable[[str], ASGIApp]) -> None:
    call_and_validate(case, service_apps("notifications"))
