"""Fixtures of the fuzz tests: every service's app on SQLite files, built once per session."""

from __future__ import annotations

import ipaddress
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from spm_notifications.delivery import webhooks

# The test modules import fuzz_apps.py beside this file by module name.
FUZZ_DIR = str(Path(__file__).resolve().parent)
if FUZZ_DIR not in sys.path:
    sys.path.insert(0, FUZZ_DIR)

from fuzz_apps import SERVICES  # noqa: E402


def resolve_without_dns(host: str) -> list[str]:
    """Resolve an IP literal or ``localhost`` only, and reject every other host as unresolvable.

    ``POST /webhooks`` resolves the host of each generated URL, and the fuzz tests must not send
    DNS queries for made-up names to the machine's resolver.
    """
    if host == "localhost":
        return ["127.0.0.1"]
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        raise webhooks.WebhookTargetError(f"host {host!r} could not be resolved: the fuzz tests look up no host names") from None


@pytest.fixture(scope="session", autouse=True)
def no_dns_lookups() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(webhooks, "_resolve", resolve_without_dns)
        yield


@pytest.fixture(scope="session")
def fuzz_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def without_lifespan(app: ASGIApp) -> ASGIApp:
    """Wrap an app so a client's lifespan messages do not reach it.

    Schemathesis ends the lifespan of the app it calls after every test, and the services close
    their event stores when the lifespan ends. The session fixture runs the lifespan instead.
    """

    async def call(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return  # returning before the first message means "no lifespan support" to ASGI servers
        await app(scope, receive, send)

    return call


@pytest.fixture(scope="session")
def service_apps(fuzz_data_dir: Path) -> Iterator[Callable[[str], ASGIApp]]:
    """Return a function that builds a service's app on its own SQLite files once per session.

    The returned app ignores lifespan messages, because its own lifespan runs until the session ends.
    """
    with ExitStack() as clients:
        apps: dict[str, ASGIApp] = {}

        def app_of(service_name: str) -> ASGIApp:
            if service_name not in apps:
                app = SERVICES[service_name].build(fuzz_data_dir / service_name)
                client = clients.enter_context(TestClient(app))
                SERVICES[service_name].seed(client, fuzz_data_dir / service_name)
                apps[service_name] = without_lifespan(app)
            return apps[service_name]

        yield app_of
