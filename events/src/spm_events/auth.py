"""Bearer JWT authentication: every request names the organisation and the person acting."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Annotated, Callable

import jwt
from fastapi import Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

ALGORITHM = "HS256"
# Org and person ids travel in every envelope, which allows 100 characters. Orgs also take no "/",
# so "{org}/{ref}" keys (deterministic ids) of two organisations can never be equal.
ORG_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
PERSON_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,99}")
# Team names match the goals' ``team`` field, which allows 200 characters.
MAX_TEAM_NAME_LENGTH = 200
MAX_TEAMS_PER_TOKEN = 50
MAX_ROLES_PER_TOKEN = 50
ADMIN_ROLE = "admin"
_bearer = HTTPBearer(
    auto_error=False,
    description="A JWT with the claims `org`, `sub` (the person id), and optionally `teams` (the person's team "
    "names) and `roles` (`admin` sees and manages every goal of the org)",
)


@dataclass(frozen=True)
class Principal:
    """The person a request acts for: their organisation, id, teams, and whether they administer the org."""

    org_id: str
    person_id: str
    teams: frozenset[str] = frozenset()
    is_admin: bool = False


def issue_token(
    secret: str,
    org_id: str,
    person_id: str,
    ttl: timedelta = timedelta(hours=12),
    *,
    teams: tuple[str, ...] = (),
    admin: bool = False,
) -> str:
    """Sign a token naming one person of one organisation, with their teams and, for an admin, the admin role."""
    now = datetime.now(timezone.utc)
    claims = {"org": org_id, "sub": person_id, "iat": now, "exp": now + ttl, "teams": list(teams)}
    if admin:
        claims["roles"] = [ADMIN_ROLE]
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def _string_list_claim(claims: dict, name: str, max_items: int, max_length: int) -> frozenset[str] | None:
    """Return the claim as a set of strings, an empty set when absent, or None when it is malformed."""
    value = claims.get(name, [])
    if not isinstance(value, list) or len(value) > max_items:
        return None
    if not all(isinstance(item, str) and 0 < len(item) <= max_length for item in value):
        return None
    return frozenset(value)


def _unauthorized(reason: str) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail=f"{reason}; send 'Authorization: Bearer <token>' with a token from 'spm-token'",
        headers={"WWW-Authenticate": "Bearer"},
    )


def principal_dependency(secret: str) -> Callable[..., Principal]:
    """Build a FastAPI dependency that returns the request's principal or raises 401."""

    def current_principal(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        if credentials is None:
            raise _unauthorized("missing bearer token")
        try:
            claims = jwt.decode(
                credentials.credentials,
                secret,
                algorithms=[ALGORITHM],
                options={"require": ["exp", "sub", "org"]},
            )
        except jwt.ExpiredSignatureError:
            raise _unauthorized("expired bearer token") from None
        except jwt.InvalidTokenError:
            raise _unauthorized("invalid bearer token") from None
        org_id, person_id = claims.get("org"), claims.get("sub")
        if not isinstance(org_id, str) or not ORG_ID_PATTERN.fullmatch(org_id):
            raise _unauthorized("bearer token's 'org' claim is missing or not 1-100 letters, digits, '.', '_' or '-'")
        if not isinstance(person_id, str) or not PERSON_ID_PATTERN.fullmatch(person_id):
            raise _unauthorized("bearer token's 'sub' claim is missing or not 1-100 letters, digits, '.', '_', ':', '@' or '-'")
        teams = _string_list_claim(claims, "teams", MAX_TEAMS_PER_TOKEN, MAX_TEAM_NAME_LENGTH)
        if teams is None:
            raise _unauthorized(
                f"bearer token's 'teams' claim is not a list of at most {MAX_TEAMS_PER_TOKEN} team names "
                f"of 1-{MAX_TEAM_NAME_LENGTH} characters"
            )
        roles = _string_list_claim(claims, "roles", MAX_ROLES_PER_TOKEN, 100)
        if roles is None:
            raise _unauthorized(f"bearer token's 'roles' claim is not a list of at most {MAX_ROLES_PER_TOKEN} role names")
        # Roles this suite does not know grant nothing, so an identity provider may add its own.
        return Principal(org_id=org_id, person_id=person_id, teams=teams, is_admin=ADMIN_ROLE in roles)

    return current_principal


def main() -> None:
    """Print a development token for one person (the ``spm-token`` command)."""
    import argparse

    from spm_events.settings import ServiceSettings

    parser = argparse.ArgumentParser(description="Print a bearer token signed with SPM_JWT_SECRET.")
    parser.add_argument("--org", required=True, help="organisation id, for example 'sourcegraph'")
    parser.add_argument("--person", required=True, help="person id the token acts as")
    parser.add_argument("--hours", type=float, default=12.0, help="lifetime of the token, in hours")
    parser.add_argument("--team", action="append", default=[], help="a team the person belongs to (repeatable)")
    parser.add_argument("--admin", action="store_true", help="let the token see and manage every goal of the org")
    arguments = parser.parse_args()
    secret = ServiceSettings().jwt_secret.get_secret_value()
    token = issue_token(
        secret,
        arguments.org,
        arguments.person,
        timedelta(hours=arguments.hours),
        teams=tuple(arguments.team),
        admin=arguments.admin,
    )
    print(token)
