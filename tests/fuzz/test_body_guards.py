"""Oversized, deeply nested and malformed bodies against every service's API process over real HTTP.

Each service runs as its own ``spm-<service>-api`` process (uvicorn) on a free port of 127.0.0.1,
on SQLite files in a temporary directory. Every bad body must get a 4xx, and the process's
resident memory (VmRSS in /proc/<pid>/status) may grow by at most ``MAX_RSS_GROWTH_BYTES`` while
it rejects ``ROUNDS`` rounds of all of them, including request bodies of 8 MiB.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fuzz_apps import JWT_SECRET, auth_headers, openapi_document

# Large enough that 100,000 levels of nesting reach the depth check instead of the size limit.
MAX_BODY_BYTES = 1024 * 1024
MAX_JSON_DEPTH = 32
ROUNDS = 5
# Each round sends two bodies of 8 MiB, so a server that kept them would grow by 80 MiB over the rounds.
MAX_RSS_GROWTH_BYTES = 24 * 1024 * 1024
HUGE_BODY_BYTES = 8 * 1024 * 1024
CHUNK_BYTES = 64 * 1024
START_TIMEOUT_SECONDS = 60.0
RESPONSE_TIMEOUT_SECONDS = 30.0
SERVICES = ("goals", "social", "scoring", "notifications")


@dataclass(frozen=True)
class BadBody:
    name: str
    body: bytes
    content_type: str | None = "application/json"
    chunked: bool = False
    expected_status: int | None = None  # None accepts any 4xx


BAD_BODIES = [
    BadBody("over the limit with Content-Length", b'{"title": "' + b"x" * MAX_BODY_BYTES + b'"}', expected_status=413),
    BadBody("8 MiB with Content-Length", b"[" * HUGE_BODY_BYTES, expected_status=413),
    BadBody("8 MiB chunked without Content-Length", b" " * HUGE_BODY_BYTES, chunked=True, expected_status=413),
    BadBody("100,000 levels of arrays", b"[" * 100_000 + b"]" * 100_000, expected_status=422),
    BadBody("100,000 levels of objects", b'{"a":' * 100_000, expected_status=422),
    BadBody("100,000 levels chunked", b"[" * 100_000, chunked=True, expected_status=422),
    BadBody("invalid UTF-8", b'{"title": "\xff\xfe"}', expected_status=422),
    BadBody("truncated JSON", b'{"title": "Grow', expected_status=422),
    BadBody("JSON null", b"null"),
    BadBody("text/plain content type", b'{"title": "x"}', content_type="text/plain"),
    BadBody("form content type", b"title=x&team=y", content_type="application/x-www-form-urlencoded"),
    BadBody("no content type", b'{"title": "x"}', content_type=None),
]


def free_port() -> int:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        return listener.getsockname()[1]


def resident_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024  # the kernel reports kB
    raise AssertionError(f"no VmRSS line in /proc/{pid}/status")


def body_operation(service_name: str) -> str:
    """Return "METHOD /path" of the service's first POST, PUT or PATCH operation with a JSON body and no path parameter."""
    for path, path_item in openapi_document(service_name)["paths"].items():
        for method in ("post", "put", "patch"):
            operation = path_item.get(method)
            if operation and "application/json" in operation.get("requestBody", {}).get("content", {}) and "{" not in path:
                return f"{method.upper()} {path}"
    raise AssertionError(f"{service_name} has no operation with a JSON body and no path parameter")


@dataclass(frozen=True)
class ApiProcess:
    process: subprocess.Popen[bytes]
    port: int

    def send(self, request_line: str, bad: BadBody) -> tuple[int, bytes]:
        """Send one request on a new connection and return the status code and body of the response."""
        headers = [request_line, f"Host: 127.0.0.1:{self.port}", "Connection: close"]
        headers += [f"{name}: {value}" for name, value in auth_headers().items()]
        if bad.content_type is not None:
            headers.append(f"Content-Type: {bad.content_type}")
        headers.append("Transfer-Encoding: chunked" if bad.chunked else f"Content-Length: {len(bad.body)}")
        with socket.create_connection(("127.0.0.1", self.port), timeout=RESPONSE_TIMEOUT_SECONDS) as connection:
            connection.sendall(("\r\n".join(headers) + "\r\n\r\n").encode("latin-1"))
            try:
                self._send_body(connection, bad)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server responded and closed before the whole body arrived, which a limit may do
            return _read_response(connection)

    @staticmethod
    def _send_body(connection: socket.socket, bad: BadBody) -> None:
        if not bad.chunked:
            connection.sendall(bad.body)
            return
        for start in range(0, len(bad.body), CHUNK_BYTES):
            chunk = bad.body[start : start + CHUNK_BYTES]
            connection.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        connection.sendall(b"0\r\n\r\n")


def _read_response(connection: socket.socket) -> tuple[int, bytes]:
    received = b""
    while True:
        try:
            data = connection.recv(65536)
        except ConnectionResetError:
            break
        if not data:
            break
        received += data
    assert received, "the server closed the connection without a response"
    head, _, body = received.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    return int(status_line.split()[1]), body


def wait_until_healthy(api: ApiProcess) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while True:
        assert api.process.poll() is None, f"the API process exited with status {api.process.returncode}"
        try:
            with socket.create_connection(("127.0.0.1", api.port), timeout=1) as connection:
                connection.sendall(f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{api.port}\r\nConnection: close\r\n\r\n".encode())
                if _read_response(connection)[0] == 200:
                    return
        except OSError:
            pass
        assert time.monotonic() < deadline, f"the API did not answer /healthz within {START_TIMEOUT_SECONDS} seconds"
        time.sleep(0.1)


@pytest.fixture(params=SERVICES)
def api_process(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, ApiProcess]]:
    service_name = request.param
    port = free_port()
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("SPM_")
    } | {
        "SPM_DATA_DIR": str(tmp_path),
        "SPM_HTTP_HOST": "127.0.0.1",
        "SPM_HTTP_PORT": str(port),
        "SPM_JWT_SECRET": JWT_SECRET,
        "SPM_MAX_BODY_BYTES": str(MAX_BODY_BYTES),
        "SPM_MAX_JSON_DEPTH": str(MAX_JSON_DEPTH),
        "SPM_KAFKA_BOOTSTRAP": "127.0.0.1:1",
        "SPM_LOG_LEVEL": "WARNING",
    }
    command = [str(Path(sys.executable).with_name(f"spm-{service_name}-api"))]
    process = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    api = ApiProcess(process, port)
    try:
        wait_until_healthy(api)
        yield service_name, api
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()


def test_bad_bodies_get_4xx_in_bounded_memory(api_process: tuple[str, ApiProcess]) -> None:
    service_name, api = api_process
    method, path = body_operation(service_name).split(" ", 1)
    request_line = f"{method} {path} HTTP/1.1"
    # One round first, so imports and caches that the first requests fill count as the baseline.
    for bad in BAD_BODIES:
        api.send(request_line, bad)
    before = resident_bytes(api.process.pid)
    status, body = api.send(request_line, BAD_BODIES[3])
    [error] = json.loads(body)["detail"]
    assert error["loc"] == ["body"], body
    assert f"limit of {MAX_JSON_DEPTH} levels" in error["msg"]

    failures = []
    for _ in range(ROUNDS):
        for bad in BAD_BODIES:
            status, body = api.send(request_line, bad)
            expected = bad.expected_status
            if (expected is None and not 400 <= status < 500) or (expected is not None and status != expected):
                failures.append(f"{bad.name}: {status} {body[:200]!r}, expected {expected or '4xx'}")
    after = resident_bytes(api.process.pid)

    assert not failures, f"{method} {path} of {service_name}:\n" + "\n".join(sorted(set(failures)))
    growth = after - before
    assert growth <= MAX_RSS_GROWTH_BYTES, f"resident memory grew by {growth / 2**20:.1f} MiB from {before / 2**20:.1f} MiB"

