"""The committed OpenAPI document matches the app, and documents every endpoint's responses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spm_goals.openapi import openapi_document, openapi_json

COMMITTED = Path(__file__).resolve().parents[3] / "docs" / "openapi" / "goals.json"
REGENERATE = "regenerate it with: .venv/bin/python -m spm_goals.openapi > docs/openapi/goals.json"


def test_committed_openapi_matches_app() -> None:
    assert COMMITTED.read_text() == openapi_json(), f"{COMMITTED} differs from the app's schema; {REGENERATE}"


def operations() -> list[tuple[str, str, dict[str, object]]]:
    document = openapi_document()
    return [
        (method, path, operation)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    ]


@pytest.mark.parametrize(("method", "path", "operation"), operations(), ids=lambda value: value if isinstance(value, str) else "")
def test_every_operation_documents_responses(method: str, path: str, operation: dict[str, object]) -> None:
    responses = operation["responses"]
    assert isinstance(responses, dict)
    success = next(code for code in responses if code.startswith("2"))
    assert "$ref" in json.dumps(responses[success]), f"{method} {path} has no response model"
    if not path.startswith(("/healthz", "/internal")):
        assert "401" in responses
    if operation.get("parameters") or operation.get("requestBody"):
        assert "422" in responses
    if method == "post" and path != "/goals":
        assert {"404", "409", "412"} <= set(responses)


def test_request_bodies_have_examples() -> None:
    schemas = openapi_document()["components"]["schemas"]
    for name in ("CreateGoalBody", "AddKeyResultBody", "RecordCheckInBody", "CloseGoalBody", "AlignGoalBody"):
        assert schemas[name]["examples"], name
