"""Fixtures of the fault-injection tests: service stacks on the session's broker, and the checker's inputs.

Every test here is marked ``reliability``. The CI-sized selection runs by default, with a 30-second
soak; SPM_SOAK_SECONDS sets a longer one.
"""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path
from typing import Callable, Iterator

import pytest

RELIABILITY_DIR = str(Path(__file__).resolve().parent)
# --import-mode=importlib does not put the test folder on sys.path, and the tests import checker,
# stack and workload from it.
if RELIABILITY_DIR not in sys.path:
    sys.path.insert(0, RELIABILITY_DIR)

from stack import Stack  # noqa: E402

from spm_events.settings import DEVELOPMENT_JWT_SECRET  # noqa: E402


@pytest.fixture
def stack_factory(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Stack]]:
    """Return a callable that starts a stack of service processes; every stack is stopped at teardown."""
    started: list[Stack] = []

    def start_stack(
        database_urls: dict[str, str] | None = None, extra_env: dict[str, dict[str, str]] | None = None
    ) -> Stack:
        run_id = uuid.uuid4().hex[:8]
        stack = Stack(
            state_dir=tmp_path_factory.mktemp(f"stack-{run_id}"),
            kafka_bootstrap=kafka_bootstrap,
            jwt_secret=DEVELOPMENT_JWT_SECRET,
            run_id=run_id,
            database_urls=dict(database_urls or {}),
        )
        started.append(stack)
        stack.start(extra_env)
        stack.wait_until_healthy()
        return stack

    yield start_stack
    for stack in started:
        stack.stop()


# The soak's length in `make test`; a long soak sets SPM_SOAK_SECONDS, e.g. SPM_SOAK_SECONDS=1800.
CI_SOAK_SECONDS = 30.0


@pytest.fixture
def soak_seconds() -> float:
    """Return SPM_SOAK_SECONDS as a number, or the CI-sized length when it is unset."""
    value = os.environ.get("SPM_SOAK_SECONDS")
    return float(value) if value else CI_SOAK_SECONDS
