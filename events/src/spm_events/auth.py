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
_bearer = HTTPBearer(auto_error=False, description="A JWT with the claims `org` and `sub` (the person id)")


@dataclass(frozen=True)
class Principal:
    org_id: str
    person_id: str


def issue_token(secret: str, org_id: str, person_id: str, ttl: timedelta = timedelta(hours=12)) -> str:
    """Sign a token naming one person of one organisation."""
    now = datetime.now(timezone.utc)
    claims = {"org": org_id, "sub": person_id, "iat": now, "exp": now + ttl}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


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
        return Principal(org_id=org_id, person_id=person_id)

    return current_principal


def main() -> None:
    """Print a development token for one person (the ``spm-token`` command)."""
    import argparse

    from spm_events.settings import ServiceSettings

    parser = argparse.ArgumentParser(description="Print a bearer token signed with SPM_JWT_SECRET.")
    parser.add_argument("--org", required=True, help="organisation id, for example 'sourcegraph'")
    parser.add_argument("--person", required=True, help="person id the token acts as")
    parser.add_argument("--hours", type=float, default=12.0, help="lifetime of the token, in hours")
    arguments = parser.parse_args()
    secret = ServiceSettings().jwt_secret.get_secret_value()
    print(issue_token(secret, arguments.org, arguments.person, timedelta(hours=arguments.hours)))
