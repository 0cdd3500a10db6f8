"""Helpers of the delivery tests: a local webhook receiver, a settable clock, free ports, the API as a process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

import httpx


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SettableClock:
    """A clock the test moves by hand, so schedules are checked without sleeping."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class ReceivedRequest:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class WebhookReceiver:
    """An HTTP server on 127.0.0.1 that records every POST and responds with programmable status codes.

    ``statuses`` is consumed one per request; when it is empty every request gets ``default_status``.
    ``delay_seconds`` delays each response, to make a batch of deliveries take a while.
    """

    default_status: int = 200
    statuses: list[int] = field(default_factory=list)
    delay_seconds: float = 0.0
    received: list[ReceivedRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the name http.server dispatches to
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with receiver.lock:
                    receiver.received.append(ReceivedRequest(self.path, dict(self.headers.items()), body))
                    status = receiver.statuses.pop(0) if receiver.statuses else receiver.default_status
                if receiver.delay_seconds:
                    threading.Event().wait(receiver.delay_seconds)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the signature http.server defines
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def delivery_ids(self) -> list[str]:
        with self.lock:
            return [request.headers["X-SPM-Delivery-Id"] for request in self.received]


def _child_environment(settings: dict[str, str]) -> dict[str, str]:
    """Return this process's environment with ``settings``, on SQLite unless they name SPM_DATABASE_URL."""
    environment = {name: value for name, value in os.environ.items() if name != "SPM_DATABASE_URL"}
    return {**environment, **settings}


class ApiProcess:
    """``spm-notifications-api`` as a child process on a free port."""

    def __init__(self, data_dir: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.data_dir = data_dir
        self.log_path = data_dir / f"api-{self.port}.log"
        self.env = _child_environment({"SPM_DATA_DIR": str(data_dir), "SPM_HTTP_PORT": str(self.port), **env})
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, poll: Callable[..., object]) -> ApiProcess:
        with open(self.log_path, "ab") as log_file:
            self.process = subprocess.Popen(
                [str(Path(sys.executable).parent / "spm-notifications-api")],
                env=self.env, stdout=log_file, stderr=subprocess.STDOUT,
            )

        def healthy() -> bool:
            assert self.process is not None and self.process.poll() is None, self.log_path.read_text()
            try:
                return httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        poll(healthy, 60.0, "the notifications API answers /healthz")
        return self

    def stop(self) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


class DispatcherProcess:
    """``spm-notifications-dispatcher`` as a child process."""

    def __init__(self, data_dir: Path, env: dict[str, str]) -> None:
        self.data_dir = data_dir
        self.log_path = data_dir / "dispatcher.log"
        self.env = _child_environment({"SPM_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1", **env})
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> DispatcherProcess:
        with open(self.log_path, "ab") as log_file:
            self.process = subprocess.Popen(
                [str(Path(sys.executable).parent / "spm-notifications-dispatcher")],
                cwd=self.data_dir, env=self.env, stdout=log_file, stderr=subprocess.STDOUT,
            )
        return self

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def check_running(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(
                f"dispatcher exited with code {self.process.returncode}:\n{self.log_path.read_text()[-3000:]}"
            )
