"""The demo's flow end to end on a slice of the real dataset: real broker, real service processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from spm_events.auth import issue_token
from spm_events.settings import DEVELOPMENT_JWT_SECRET
from spm_local.demo import DemoOptions, run_demo, slice_rows
from spm_local.importer import import_rows
from spm_local.okr_csv import read_okr_csv
from spm_local.paths import OKR_DATASET_DIR
from spm_local.suite import Suite

SLICE_OBJECTIVES = 6


@pytest.fixture(scope="module")
def demo_outcome(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    options = DemoOptions(
        state_dir=tmp_path_factory.mktemp("demo"),
        kafka_bootstrap=kafka_bootstrap,
        max_objectives=SLICE_OBJECTIVES,
        org_id=f"demo-{os.getpid()}-{time.time_ns()}",
    )
    return run_demo(options)


def test_demo_progress_equals_published_outcomes(demo_outcome) -> None:  # type: ignore[no-untyped-def]
    sliced = slice_rows(read_okr_csv(OKR_DATASET_DIR / "okrs.csv"), SLICE_OBJECTIVES)
    published_refs = {row.ref for row in sliced if row.final_progress is not None}
    checks = demo_outcome.report.outcome_checks
    assert {check.ref for check in checks} == published_refs
    assert [check.ref for check in checks if not check.matches] == []


def test_demo_report_lists_top_collaborators_with_components(demo_outcome) -> None:  # type: ignore[no-untyped-def]
    text = demo_outcome.report.text()
    assert "Top collaborators" in text
    assert "distinct_collaborators" in text


def test_demo_check_ins_reach_followers_feeds(demo_outcome) -> None:  # type: ignore[no-untyped-def]
    assert demo_outcome.check_ins > 0
    assert len(demo_outcome.report.latencies_seconds) > demo_outcome.check_ins // 2


def test_demo_history_is_dated_in_the_quarter(demo_outcome) -> None:  # type: ignore[no-untyped-def]
    feed_lines = [line for line in demo_outcome.report.lines if line.startswith("  2020-")]
    assert feed_lines, "the featured person's feed shows no item dated in 2020"
    assert all("2020-02" <= line.strip()[:7] <= "2020-04" for line in feed_lines)


def _processes_mentioning(marker: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command_line = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            environment = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in command_line or marker.encode() in environment:
            found.append(f"{entry.name}: {command_line[:120]}")
    return found


def test_interrupted_demo_leaves_no_process(tmp_path: Path) -> None:
    state_dir = tmp_path / "interrupted-demo"
    demo = subprocess.Popen(
        [str(Path(sys.executable).parent / "spm-demo"), "--state-dir", str(state_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 240
    output = []
    assert demo.stdout is not None
    for line in demo.stdout:
        output.append(line)
        if "All services healthy" in line:
            break
        assert time.monotonic() < deadline, "".join(output)
    demo.send_signal(signal.SIGINT)
    remaining_output, _ = demo.communicate(timeout=90)
    assert demo.returncode == 130, "".join(output) + remaining_output
    deadline = time.monotonic() + 30
    while _processes_mentioning(str(state_dir)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _processes_mentioning(str(state_dir)) == []


def test_reimport_creates_nothing_twice(kafka_bootstrap: str, tmp_path: Path) -> None:
    suite = Suite(tmp_path / "services", kafka_bootstrap, DEVELOPMENT_JWT_SECRET).start()
    try:
        suite.wait_until_healthy()
        rows = read_okr_csv(OKR_DATASET_DIR / "okrs.csv")[:12]  # CEO-1 to SAL-2: every parent included
        token = issue_token(DEVELOPMENT_JWT_SECRET, "reimport-org", "importer", admin=True)
        with httpx.Client(base_url=suite.url("goals"), headers={"Authorization": f"Bearer {token}"}) as client:
            first = import_rows(client, rows, "reimport-org")
            second = import_rows(client, rows, "reimport-org")
            relay = client.get("/internal/relay").json()
        assert first.created > 0
        assert second.created == 0
        assert second.already_present == first.created
        assert first.goal_ids == second.goal_ids
        assert relay["max_notification_id"] == first.created
    finally:
        suite.stop()
