"""``make demo``: the whole suite on a real broker, fed a real company's quarter of OKRs.

The demo starts a Kafka broker and the four services and imports the dataset through the goals
API. It then plays a seeded simulation of the quarter's follows, tags and check-ins through the
public APIs and waits until every read model has caught up. Last, it prints a report and stops
everything it started.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx

from spm_events.auth import issue_token
from spm_events.settings import DEVELOPMENT_JWT_SECRET
from spm_events.topics import ensure_topics
from spm_local.directory import upload_people
from spm_local.importer import import_rows
from spm_local.kafka import LocalBroker
from spm_local.okr_csv import OkrRow, read_okr_csv
from spm_local.paths import OKR_DATASET_DIR
from spm_local.people import Person, read_people
from spm_local.report import (
    Report,
    add_alignment_tree,
    add_person_activity,
    add_top_collaborators,
    feed_latencies,
    fetch_whole_feed,
    latency_summary,
)
from spm_local.simulation import QuarterSimulation, play
from spm_local.suite import Suite

logger = logging.getLogger("spm_local.demo")

ORG_ID = "sourcegraph"
IMPORTER_HANDLE = "ceo"


@dataclass
class DemoOptions:
    state_dir: Path
    dataset_dir: Path = OKR_DATASET_DIR
    kafka_bootstrap: str | None = None
    max_objectives: int | None = None
    org_id: str = ORG_ID


@dataclass
class DemoOutcome:
    report: Report
    events_published: int
    check_ins: int
    wall_seconds: float


def slice_rows(rows: list[OkrRow], max_objectives: int | None) -> list[OkrRow]:
    """Keep the first objectives in file order whose parents are kept, and their key results."""
    if max_objectives is None:
        return rows
    kept_objective_refs: set[str] = set()
    for row in rows:
        parent_kept = row.parent_ref is None or row.parent_ref in kept_objective_refs
        if row.kind == "objective" and len(kept_objective_refs) < max_objectives and parent_kept:
            kept_objective_refs.add(row.ref)
    return [
        row for row in rows
        if row.ref in kept_objective_refs or (row.kind == "key_result" and row.parent_ref in kept_objective_refs)
    ]


def _say(message: str) -> None:
    print(message, flush=True)


def run_demo(options: DemoOptions) -> DemoOutcome:
    started = time.monotonic()
    people = read_people(options.dataset_dir / "people.csv", options.org_id)
    rows = slice_rows(read_okr_csv(options.dataset_dir / "okrs.csv", {person.handle for person in people}), options.max_objectives)
    people_by_id = {person.person_id: person for person in people}
    importer = next(person for person in people if person.handle == IMPORTER_HANDLE)

    def token_for(person_id: str) -> str:
        team = people_by_id[person_id].team
        return issue_token(DEVELOPMENT_JWT_SECRET, options.org_id, person_id, teams=(team,))

    # The importer creates every goal on its owner's behalf, which takes an org admin's token.
    importer_token = issue_token(
        DEVELOPMENT_JWT_SECRET, options.org_id, importer.person_id, teams=(importer.team,), admin=True
    )

    with ExitStack() as stack:
        bootstrap = options.kafka_bootstrap
        if bootstrap is None:
            _say("Starting the Kafka broker (first run fetches its jars from Maven Central) ...")
            broker = LocalBroker(options.state_dir / "kafka")
            stack.callback(broker.stop)
            bootstrap = broker.start().bootstrap
        asyncio.run(ensure_topics(bootstrap))
        _say(f"Kafka broker ready at {bootstrap}")

        suite = Suite(options.state_dir / "services", bootstrap, DEVELOPMENT_JWT_SECRET)
        stack.callback(suite.stop)
        suite.start()
        for service, port in suite.ports.items():
            _say(f"  {service:<14} http://127.0.0.1:{port}")
        suite.wait_until_healthy()
        _say("All services healthy; importing the OKR set through the goals API ...")

        goals = stack.enter_context(httpx.Client(base_url=suite.url("goals"), timeout=30))
        social = stack.enter_context(httpx.Client(base_url=suite.url("social"), timeout=30))
        goals.headers["Authorization"] = f"Bearer {importer_token}"
        social.headers["Authorization"] = f"Bearer {importer_token}"
        # Tags, mentions and kudos name people of the directory, so it comes first.
        upload_people(social, people)
        social.headers.pop("Authorization")
        imported = import_rows(goals, rows, options.org_id)
        _say(f"Imported {len(imported.goal_ids)} objectives and {len(imported.key_result_ids)} key results")
        suite.wait_until_caught_up()

        simulation = QuarterSimulation(options.org_id, rows, people, imported)
        actions = simulation.plan()
        _say(f"Playing the quarter: {len(actions)} dated actions from February to April 2020 ...")
        goals.headers.pop("Authorization")
        played = play(actions, goals, social, token_for)
        end_offsets = suite.wait_until_caught_up()
        events_published = sum(end_offsets.values())
        _say(f"Every read model caught up: {events_published} events on spm.goals.v1 and spm.social.v1")

        report = build_report(suite, rows, people, people_by_id, imported.goal_ids, played, token_for)
        outcome = DemoOutcome(report, events_published, len(played.check_ins), time.monotonic() - started)
    return outcome


def build_report(suite, rows, people, people_by_id, goal_ids, played, token_for) -> Report:  # type: ignore[no-untyped-def]
    report = Report()
    any_person = people[0].person_id
    with httpx.Client(timeout=30) as client:
        headers = {"Authorization": f"Bearer {token_for(any_person)}"}
        goals = client.get(f"{suite.url('goals')}/goals", headers=headers).raise_for_status().json()
        add_alignment_tree(report, goals["goals"] if isinstance(goals, dict) else goals, rows)

        top = client.get(f"{suite.url('scoring')}/scores/collaboration/top", params={"limit": 5}, headers=headers)
        top = top.raise_for_status().json()
        add_top_collaborators(report, top, people_by_id)

        featured: Person = people_by_id.get(top["people"][0]["person_id"]) if top["people"] else people[0]
        social = httpx.Client(base_url=suite.url("social"), timeout=30)
        with social:
            featured_feed = fetch_whole_feed(social, token_for(featured.person_id))
            inbox = client.get(
                f"{suite.url('notifications')}/inbox", params={"limit": 100},
                headers={"Authorization": f"Bearer {token_for(featured.person_id)}"},
            ).raise_for_status().json()
            add_person_activity(report, featured, featured_feed, inbox)

            followers_by_goal = {}
            for goal_id in goal_ids.values():
                body = social.get(f"/goals/{goal_id}/followers", headers=headers).raise_for_status().json()
                if body["followers"]:
                    followers_by_goal[goal_id] = sorted(body["followers"])[0]
            feeds = {person_id: fetch_whole_feed(social, token_for(person_id)) for person_id in set(followers_by_goal.values())}
        report.latencies_seconds = feed_latencies(played.check_ins, feeds, followers_by_goal)
    return report


def _raise_keyboard_interrupt(signum, frame) -> None:  # type: ignore[no-untyped-def]
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the SPM demo on a real Kafka broker and print its report.")
    parser.add_argument("--state-dir", type=Path, default=Path("var/demo"), help="where this run keeps its data; emptied first")
    parser.add_argument("--kafka-bootstrap", help="use this running broker instead of starting one")
    parser.add_argument("--max-objectives", type=int, help="import only the first N objectives (a slice of the data)")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)

    import shutil

    shutil.rmtree(arguments.state_dir, ignore_errors=True)
    options = DemoOptions(arguments.state_dir.resolve(), kafka_bootstrap=arguments.kafka_bootstrap,
                          max_objectives=arguments.max_objectives)
    try:
        outcome = run_demo(options)
    except KeyboardInterrupt:
        _say("Interrupted; every process the demo started has been stopped.")
        raise SystemExit(130) from None
    _say("")
    _say(outcome.report.text())
    _say("")
    _say(f"Events published: {outcome.events_published}; check-ins played: {outcome.check_ins}")
    _say(latency_summary(outcome.report.latencies_seconds))
    _say(f"Demo wall time: {outcome.wall_seconds:.1f} s")
    if outcome.report.mismatches:
        refs = ", ".join(check.ref for check in outcome.report.mismatches)
        _say(f"FAILED: progress differs from the published outcome for {refs}")
        sys.exit(1)
