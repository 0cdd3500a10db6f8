"""The social API's OpenAPI document lists the error responses its routes send.

The fuzz tests in tests/fuzz check every response against the document. These checks pin the
responses that a fuzzer reaches rarely or never: the 429 of the rate limit and the 503 of a failed
database, both with a Retry-After header, and the 403 of the admin-only directory routes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from spm_social.api import create_app
from spm_social.settings import SocialSettings

METHODS = ("get", "post", "put", "patch", "delete")
ADMIN_ONLY_ROUTES = [("post", "/people/batch"), ("post", "/people/{handle}/deactivate"), ("post", "/teams/batch")]


@pytest.fixture(scope="module")
def openapi(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    data_dir: Path = tmp_path_factory.mktemp("openapi")
    settings = SocialSettings(data_dir=data_dir, database_url=None, kafka_bootstrap="127.0.0.1:1")
    with TestClient(create_app(settings)) as client:
        return client.get("/openapi.json").json()


def operations(openapi: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, path_item in openapi["paths"].items()
        for method, operation in path_item.items()
        if method in METHODS
    ]


def test_commands_document_429_with_retry_after(openapi: dict[str, Any]) -> None:
    # Every command but the admin-only directory writes counts against the rate limit.
    commands = [
        (method, path, operation)
        for method, path, operation in operations(openapi)
        if method != "get" and (method, path) not in ADMIN_ONLY_ROUTES
    ]
    assert len(commands) > 20

    for method, path, operation in commands:
        response = operation["responses"].get("429")
        assert response is not None, f"{method.upper()} {path} does not document 429"
        assert "Retry-After" in response.get("headers", {}), f"{method.upper()} {path} 429 lacks Retry-After"
        assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorOut"}


def test_goal_routes_document_404(openapi: dict[str, Any]) -> None:
    goal_routes = [(method, path, operation) for method, path, operation in operations(openapi) if path.startswith("/goals/{goal_id}")]
    assert len(goal_routes) > 15

    for method, path, operation in goal_routes:
        assert "404" in operation["responses"], f"{method.upper()} {path} does not document 404"


@pytest.mark.parametrize(("method", "path"), ADMIN_ONLY_ROUTES)
def test_admin_routes_document_403(openapi: dict[str, Any], method: str, path: str) -> None:
    responses = openapi["paths"][path][method]["responses"]

    assert "403" in responses
    assert "admin" in responses["403"]["description"]


def test_queries_document_no_429(openapi: dict[str, Any]) -> None:
    queries = [(path, operation) for method, path, operation in operations(openapi) if method == "get"]

    for path, operation in queries:
        assert "429" not in operation["responses"], f"GET {path} is not rate limited but documents 429"


def test_error_body_schema_has_string_detail(openapi: dict[str, Any]) -> None:
    schema = openapi["components"]["schemas"]["ErrorOut"]

    assert schema["required"] == ["detail"]
    assert schema["properties"]["detail"]["type"] == "string"


def test_routes_document_503_with_retry_after(openapi: dict[str, Any]) -> None:
    # The app maps a database that cannot be written or reached to 503 on every route that uses it.
    database_routes = [(method, path, operation) for method, path, operation in operations(openapi) if path != "/healthz"]
    assert len(database_routes) > 30

    for method, path, operation in database_routes:
        response = operation["responses"].get("503")
        assert response is not None, f"{method.upper()} {path} does not document 503"
        assert "Retry-After" in response.get("headers", {}), f"{method.upper()} {path} 503 lacks Retry-After"
