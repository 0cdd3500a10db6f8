"""The relay and worker scripts as real processes: they start and exit cleanly on SIGTERM and SIGINT.

The API scripts of every service are checked in events/tests/test_serving.py.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

DEADLINE_SECONDS = 30


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_script(name: str, tmp_path: Path, **environment: str) -> tuple[subprocess.Popen[bytes], Path]:
    log_path = tmp_path / f"{name}.log"
    env = {**os.environ, "SPM_DATA_DIR": str(tmp_path / "data"), **environment}
    env.pop("SPM_DATABASE_URL", None)
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen([str(Path(sys.executable).parent / name)], env=env, stdout=log_file, stderr=log_file)
    return process, log_path


def wait_for_log_line(process: subprocess.Popen[bytes], log_path: Path, text: str) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while text not in log_path.read_text(errors="replace"):
        assert process.poll() is None, f"process exited early:\n{log_path.read_text(errors='replace')}"
        assert time.monotonic() < deadline, f"{text!r} not logged in time:\n{log_path.read_text(errors='replace')}"
        time.sleep(0.1)


def stop_and_wait(process: subprocess.Popen[bytes], signal_number: int) -> int:
    process.send_signal(signal_number)
    try:
        return process.wait(timeout=DEADLINE_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        raise


@pytest.mark.kafka
@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGINT])
def test_relay_process_stops_cleanly(tmp_path: Path, kafka_bootstrap: str, signal_number: int) -> None:
    process, log_path = start_script("spm-goals-relay", tmp_path, SPM_KAFKA_BOOTSTRAP=kafka_bootstrap)
    try:
        wait_for_log_line(process, log_path, "resuming after notification_id=0")
    finally:
        exit_code = stop_and_wait(process, signal_number)
    assert exit_code == 0, log_path.read_text(errors="replace")
    assert "relay=goals stopped" in log_path.read_text(errors="replace")
