"""The command-line tools a new user meets first: spm-token and spm-import."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import jwt

from spm_events.settings import DEVELOPMENT_JWT_SECRET
from spm_local.paths import OKR_DATASET_DIR

BIN_DIR = Path(sys.executable).parent


def test_token_command_names_org_and_person() -> None:
    output = subprocess.run(
        [str(BIN_DIR / "spm-token"), "--org", "sourcegraph", "--person", "person-7", "--hours", "1"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    claims = jwt.decode(output, DEVELOPMENT_JWT_SECRET, algorithms=["HS256"])
    assert claims["org"] == "sourcegraph"
    assert claims["sub"] == "person-7"
    assert claims["exp"] - claims["iat"] == 3600


def test_import_rejects_malformed_file_before_sending(tmp_path: Path) -> None:
    lines = (OKR_DATASET_DIR / "okrs.csv").read_text(encoding="utf-8").splitlines()
    lines[10] = lines[10].replace(",number,0,10,", ",number,0,Infinity,")  # SAL-1.KR1
    malformed = tmp_path / "okrs.csv"
    malformed.write_text("\n".join(lines) + "\n", encoding="utf-8")
    # A listening socket that never accepts: any request the importer sent would show up as a
    # queued connection, so an empty queue proves nothing was sent.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.setblocking(False)
        port = listener.getsockname()[1]
        result = subprocess.run(
            [str(BIN_DIR / "spm-import"), str(malformed), "--people", str(OKR_DATASET_DIR / "people.csv"),
             "--goals-url", f"http://127.0.0.1:{port}", "--org", "sourcegraph", "--token", "unused"],
            capture_output=True, text=True, timeout=60,
        )
        try:
            listener.accept()
            connection_attempted = True
        except BlockingIOError:
            connection_attempted = False
    assert result.returncode == 2
    assert "line 11: target_value 'Infinity' is not a finite number" in result.stderr
    assert "nothing was imported" in result.stderr
    assert not connection_attempted
