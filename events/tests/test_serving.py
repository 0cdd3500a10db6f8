"""Every service's API process serves, then exits with status 0 when asked to stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from spm_local.ports import free_port

DEADLINE_SECONDS = 60
API_SCRIPTS = ("spm-goals-api", "spm-social-api", "spm-scoring-api", "spm-notifications-api")


@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("script", API_SCRIPTS)
def test_api_stops_with_status_zero(tmp_path: Path, script: str, signal_number: int) -> None:
    port = free_port()
    log_path = tmp_path / f"{script}.log"
    environment = {**os.environ, "SPM_DATA_DIR": str(tmp_path / "data"), "SPM_HTTP_PORT": str(port)}
    environment.pop("SPM_DATABASE_URL", None)
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen([str(Path(sys.executable).parent / script)], env=environment, stdout=log_file, stderr=log_file)
    try:
        deadline = time.monotonic() + DEADLINE_SECONDS
        while True:
            assert process.poll() is None, log_path.read_text(errors="replace")
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, f"{script} did not answer in time"
                time.sleep(0.1)
        assert response.status_code == 200
    finally:
        process.send_signal(signal_number)
        try:
            exit_code = process.wait(timeout=DEADLINE_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            raise

    assert exit_code == 0, log_path.read_text(errors="replace")
