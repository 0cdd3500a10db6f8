"""The API console script as a real process: it serves, and SIGTERM stops it cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_api_process_serves_and_stops_cleanly(tmp_path: Path, poll) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    env = {**os.environ, "SPM_DATA_DIR": str(tmp_path), "SPM_HTTP_PORT": str(port)}
    env.pop("SPM_DATABASE_URL", None)
    with open(tmp_path / "api.log", "wb") as log_file:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "spm-notifications-api")], env=env, stdout=log_file, stderr=subprocess.STDOUT
        )
    try:

        def healthy() -> bool:
            assert process.poll() is None, (tmp_path / "api.log").read_text()
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).json() == {"status": "ok"}
            except httpx.TransportError:
                return False

        poll(healthy, 30.0, "the API answers /healthz")
        positions = httpx.get(f"http://127.0.0.1:{port}/internal/positions", timeout=5).json()
        assert positions == {"consumer": "spm-notifications", "positions": []}
    finally:
        process.send_signal(signal.SIGTERM)
        return_code = process.wait(timeout=30)
    assert return_code == 0
