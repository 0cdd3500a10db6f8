"""The guards every service API shares: token claims, body limits and error responses."""


from datetime import datetime, timedelta
from typing import Annotated

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel, ConfigDict

from spm_events.auth import Principal, issue_token, principal_dependency
from spm_events.http import BodyLimitMiddleware, add_common_error_handlers, has_control_character_escape, has_unpaired_surrogate_escape

SECRET = "a-test-secret-that-is-long-enough-for-hs256"


class CheckIn(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    value: float
    comment: str = ""


def build_app() -> FastAPI:
    app = FastAPI()
    app.add_middleware(BodyLimitMiddleware, max_bytes=2048, max_depth=8)
    add_common_error_handlers(app)
    current_principal = principal_dependency(SECRET)

    @app.post("/check-ins")
    def record(body: CheckIn, principal: Annotated[Principal, Depends(current_principal)]) -> dict[str, object]:
        return {"org": principal.org_id, "person": principal.person_id, "value": body.value}

    @app.get("/days-after/{days}")
    def days_after(days: int) -> dict[str, str]:
        return {"date": (datetime(2020, 1, 1) + timedelta(days=days)).isoformat()}

    return app


@pytest.fixture
def client() -> TestClient:
    return TestClient(build_app())


def bearer(org: str, person: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(SECRET, org, person)}"}


def test_valid_token_names_org_and_person(client: TestClient) -> None:
    response = client.post("/check-ins", json={"value": 3}, headers=bearer("acme", "0b6f8a7e-1f5e-4d43"))
    assert response.status_code == 200
    assert response.json() == {"org": "acme", "person": "0b6f8a7e-1f5e-4d43", "value": 3.0}


@pytest.mark.parametrize(
    ("org", "person"),
    [("acme", "p" * 101), ("a" * 101, "p-1"), ("acme/x", "p-1"), ("acme", " p"), ("acme", "p\u0000"), ("", "p-1")],
    ids=["long-person", "long-org", "slash-in-org", "leading-space", "nul", "empty-org"],
)
def test_unsafe_claims_are_unauthorized(client: TestClient, org: str, person: str) -> None:
    response = client.post("/check-ins", json={"value": 3}, headers=bearer(org, person))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_missing_token_is_unauthorized(client: TestClient) -> None:
    assert client.post("/check-ins", json={"value": 3}).status_code == 401


@pytest.mark.parametrize(
    "raw_body",
    [
        b'{"value": NaN}',
        b'{"value": Infinity}',
        b'{"value": 1, "comment": "\\ud800"}',
        b'{"value": 1, "extra": 2}',
        b'{"value": 1, "comment": "a\\u0000b"}',
    ],
    ids=["nan", "infinity", "lone-surrogate", "unknown-field", "nul-character"],
)
def test_invalid_bodies_get_422_without_echo(client: TestClient, raw_body: bytes) -> None:
    headers = bearer("acme", "p-1") | {"Content-Type": "application/json"}
    response = client.post("/check-ins", content=raw_body, headers=headers)
    assert response.status_code == 422
    assert all("input" not in item for item in response.json()["detail"])


def test_body_over_limit_gets_413(client: TestClient) -> None:
    response = client.post("/check-ins", json={"value": 1, "comment": "x" * 4096}, headers=bearer("acme", "p-1"))
    assert response.status_code == 413


@pytest.mark.parametrize("content_type", ["application/json", "Application/JSON"])
def test_deep_json_gets_422(client: TestClient, content_type: str) -> None:
    deep = b"[" * 50 + b"]" * 50
    headers = bearer("acme", "p-1") | {"Content-Type": content_type}
    response = client.post("/check-ins", content=deep, headers=headers)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body"]
    assert "nested deeper" in error["msg"]


@pytest.mark.parametrize(
    ("raw_body", "content_type"),
    [(b'{"value": 1, "comment": "\xff"}', "application/json"), (b"\xfe\xff{}", None), (b'{"value": "\xc3"}', "application/merge-patch+json")],
    ids=["invalid-byte", "no-content-type", "truncated-sequence"],
)
def test_body_not_utf8_gets_422(client: TestClient, raw_body: bytes, content_type: str | None) -> None:
    headers = bearer("acme", "p-1") | ({"Content-Type": content_type} if content_type else {})
    response = client.post("/check-ins", content=raw_body, headers=headers)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["type"] == "json_invalid"
    assert error["loc"] == ["body"]
    assert "not valid UTF-8" in error["msg"]


def test_non_json_body_skips_json_checks(client: TestClient) -> None:
    headers = bearer("acme", "p-1") | {"Content-Type": "text/plain"}
    response = client.post("/check-ins", content=b"[" * 50 + b"\xff", headers=headers)
    # The route's own validation rejects it, because the route takes only JSON.
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "model_attributes_type"


def test_openapi_documents_413_and_422() -> None:
    document = build_app().openapi()
    write = document["paths"]["/check-ins"]["post"]["responses"]
    read = document["paths"]["/days-after/{days}"]["get"]["responses"]
    assert "Request body larger than SPM_MAX_BODY_BYTES" in write["413"]["description"]
    assert "422" in write
    assert "413" not in read


def test_overflow_gets_422(client: TestClient) -> None:
    response = client.get("/days-after/9999999")
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert "outside the supported range" in error["msg"]


@pytest.mark.parametrize(
    ("raw", "unpaired"),
    [
        (rb'{"c": "\ud800"}', True),
        (rb'{"c": "\udc00"}', True),
        (rb'{"c": "\ud83d\ude00"}', False),
        (rb'{"c": "\ud83d x \ude00"}', True),
        (rb'{"c": "\\ud800"}', False),
        (rb'{"c": "plain"}', False),
    ],
    ids=["lone-high", "lone-low", "pair", "split-pair", "escaped-backslash", "plain"],
)
def test_surrogate_escape_detection(raw: bytes, unpaired: bool) -> None:
    assert has_unpaired_surrogate_escape(raw) is unpaired


@pytest.mark.parametrize(
    ("raw", "rejected"),
    [
        (rb'{"c": "\u0000"}', True),
        (rb'{"c": "\u001B[31m"}', True),
        (rb'{"c": "\u000b"}', True),
        (rb'{"c": "tab\u0009 newline\u000a return\u000D"}', False),
        (rb'{"c": "\\u0000"}', False),
        (rb'{"c": "\u0020"}', False),
    ],
    ids=["nul", "escape", "vertical-tab", "whitespace", "escaped-backslash", "space"],
)
def test_control_character_escape_detection(raw: bytes, rejected: bool) -> None:
    assert has_control_character_escape(raw) is rejected
