"""The visibility rule and the token claims it reads."""

from datetime import datetime, timedelta, timezone
from typing import Annotated

import jwt
import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from spm_events.auth import Principal, issue_token, principal_dependency
from spm_events.visibility import GoalAudience

SECRET = "visibility-test-secret-of-32-bytes!!"

AUDIENCE = GoalAudience(
    visibility="private",
    owner_id="owner",
    co_owner_ids=frozenset({"co-owner"}),
    teams=frozenset({"Sales", "Marketing"}),
    collaborator_ids=frozenset({"helper"}),
)


def reader(person_id: str, *teams: str, admin: bool = False) -> Principal:
    return Principal(org_id="acme", person_id=person_id, teams=frozenset(teams), is_admin=admin)


@pytest.mark.parametrize(
    ("visibility", "who", "sees"),
    [
        ("organisation", reader("stranger"), True),
        ("team", reader("stranger"), False),
        ("team", reader("seller", "Sales"), True),
        ("team", reader("marketer", "Marketing", "Design"), True),
        ("team", reader("engineer", "Engineering"), False),
        ("team", reader("helper"), True),
        ("private", reader("seller", "Sales"), False),
        ("private", reader("owner"), True),
        ("private", reader("co-owner"), True),
        ("private", reader("helper"), True),
        ("private", reader("admin", admin=True), True),
        ("private", reader("stranger"), False),
    ],
)
def test_who_sees_a_goal(visibility: str, who: Principal, sees: bool) -> None:
    audience = GoalAudience(
        visibility=visibility,
        owner_id=AUDIENCE.owner_id,
        co_owner_ids=AUDIENCE.co_owner_ids,
        teams=AUDIENCE.teams,
        collaborator_ids=AUDIENCE.collaborator_ids,
    )
    assert audience.can_see(who) is sees


@pytest.fixture
def client() -> TestClient:
    app = FastAPI()
    current_principal = principal_dependency(SECRET)

    @app.get("/me")
    def me(principal: Annotated[Principal, Depends(current_principal)]) -> dict[str, object]:
        return {"teams": sorted(principal.teams), "admin": principal.is_admin}

    return TestClient(app)


def test_token_carries_teams_and_admin_role(client: TestClient) -> None:
    token = issue_token(SECRET, "acme", "p-1", teams=("Sales", "Design"), admin=True)
    response = client.get("/me", headers={"Authorization": f"Bearer {token}"})
    assert response.json() == {"teams": ["Design", "Sales"], "admin": True}


def test_token_without_teams_claim_has_no_teams(client: TestClient) -> None:
    now = datetime.now(timezone.utc)
    token = jwt.encode({"org": "acme", "sub": "p-1", "exp": now + timedelta(minutes=5)}, SECRET, algorithm="HS256")
    response = client.get("/me", headers={"Authorization": f"Bearer {token}"})
    assert response.json() == {"teams": [], "admin": False}


@pytest.mark.parametrize(
    "extra_claims",
    [{"teams": "Sales"}, {"teams": [""]}, {"teams": ["x" * 201]}, {"teams": [f"t{n}" for n in range(51)]},
     {"teams": [3]}, {"roles": "admin"}, {"roles": [None]}],
    ids=["teams-not-list", "empty-team", "long-team", "too-many-teams", "team-not-string", "roles-not-list", "role-not-string"],
)
def test_malformed_team_or_role_claims_are_unauthorized(client: TestClient, extra_claims: dict[str, object]) -> None:
    now = datetime.now(timezone.utc)
    claims = {"org": "acme", "sub": "p-1", "exp": now + timedelta(minutes=5), **extra_claims}
    token = jwt.encode(claims, SECRET, algorithm="HS256")
    response = client.get("/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


def test_unknown_roles_grant_nothing(client: TestClient) -> None:
    now = datetime.now(timezone.utc)
    claims = {"org": "acme", "sub": "p-1", "exp": now + timedelta(minutes=5), "roles": ["manager", "Admin"]}
    token = jwt.encode(claims, SECRET, algorithm="HS256")
    response = client.get("/me", headers={"Authorization": f"Bearer {token}"})
    assert response.json() == {"teams": [], "admin": False}
