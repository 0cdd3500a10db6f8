"""Per-person rate limits of social commands, counted in the social read database so every API replica shares them.

Each (organisation, person, action class) has one row with a fixed-window counter: the window's
start in Unix seconds and the number of requests in it. Windows follow the wall clock of the API
process, not event time, because the limit is about how fast requests arrive.
"""

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, status
from sqlalchemy import BigInteger, Column, Engine, Integer, MetaData, String, Table, case
from sqlalchemy.dialects import postgresql, sqlite

from spm_events.auth import Principal
from spm_events.database import create_tables

logger = logging.getLogger(__name__)

# The class every goal, comment, reaction and kudos command counts against.
SOCIAL_COMMANDS = "social_commands"


@dataclass(frozen=True)
class RateLimit:
    action_class: str
    max_requests: int
    window_seconds: int


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    request_count: int
    retry_after_seconds: int


def define_rate_limit_table(metadata: MetaData) -> Table:
    return Table(
        "rate_limit_windows",
        metadata,
        Column("org_id", String(100), primary_key=True),
        Column("person_id", String(100), primary_key=True),
        Column("action_class", String(50), primary_key=True),
        Column("window_start", BigInteger, nullable=False),
        Column("request_count", Integer, nullable=False),
    )


class RateLimiter:
    """Counts requests per person and action class in fixed windows, creating its table when missing."""

    def __init__(self, engine: Engine, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.clock = clock
        metadata = MetaData()
        self.table = define_rate_limit_table(metadata)
        create_tables(metadata, engine)

    def hit(self, org_id: str, person_id: str, limit: RateLimit) -> RateDecision:
        """Count one request and return whether it stays within ``limit``; a rejected request counts too."""
        now = self.clock()
        window_start = int(now // limit.window_seconds) * limit.window_seconds
        windows = self.table
        with self.engine.begin() as connection:
            dialect_insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
            statement = dialect_insert(windows).values(
                org_id=org_id,
                person_id=person_id,
                action_class=limit.action_class,
                window_start=window_start,
                request_count=1,
            )
            # A stored window at or after this one (another replica's clock may run ahead) keeps
            # counting; an older one starts again at 1. Both SET expressions read the old row.
            current_or_later = windows.c.window_start >= statement.excluded.window_start
            statement = statement.on_conflict_do_update(
                index_elements=["org_id", "person_id", "action_class"],
                set_={
                    "request_count": case((current_or_later, windows.c.request_count + 1), else_=1),
                    "window_start": case(
                        (current_or_later, windows.c.window_start), else_=statement.excluded.window_start
                    ),
                },
            ).returning(windows.c.request_count, windows.c.window_start)
            request_count, stored_window_start = connection.execute(statement).one()
        retry_after = max(1, math.ceil(stored_window_start + limit.window_seconds - now))
        return RateDecision(request_count <= limit.max_requests, request_count, retry_after)


def rate_limited_principal(
    limiter: RateLimiter, limit: RateLimit, current_principal: Callable[..., Principal]
) -> Callable[..., Principal]:
    """Build a dependency that returns the request's principal, or raises 429 with Retry-After over the limit."""

    def limited_principal(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        decision = limiter.hit(principal.org_id, principal.person_id, limit)
        if decision.allowed:
            return principal
        # Only the first rejection of a window is logged, so a flood of requests does not flood the log.
        if decision.request_count == limit.max_requests + 1:
            logger.info(
                "rate limit reached org_id=%s person_id=%s action_class=%s max_requests=%s window_seconds=%s",
                principal.org_id, principal.person_id, limit.action_class, limit.max_requests, limit.window_seconds,
            )
        raise HTTPException(
            status_code=status.HTTP_429_TOO_MANY_REQUESTS,
            detail=(
                f"rate limit of {limit.max_requests} {limit.action_class.replace('_', ' ')} per person per "
                f"{limit.window_seconds} seconds reached; retry after {decision.retry_after_seconds} seconds"
            ),
            headers={"Retry-After": str(decision.retry_after_seconds)},
        )

    return limited_principal
