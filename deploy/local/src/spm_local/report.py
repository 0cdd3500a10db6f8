"""The demo's closing report, read back through the query APIs."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime

import httpx

from spm_local.okr_csv import OkrRow
from spm_local.people import Person
from spm_local.simulation import SentCheckIn

# The dataset rounds final_progress to at most four decimal places (4 of 6 hires is 0.6667).
PROGRESS_TOLERANCE = 0.5e-4


@dataclass
class OutcomeCheck:
    ref: str
    published: float
    reported: float

    @property
    def matches(self) -> bool:
        return abs(self.published - self.reported) <= PROGRESS_TOLERANCE


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    outcome_checks: list[OutcomeCheck] = field(default_factory=list)
    latencies_seconds: list[float] = field(default_factory=list)

    @property
    def mismatches(self) -> list[OutcomeCheck]:
        return [check for check in self.outcome_checks if not check.matches]

    def add(self, line: str = "") -> None:
        self.lines.append(line)

    def text(self) -> str:
        return "\n".join(self.lines)


def _percent(progress: float | None) -> str:
    return "   -  " if progress is None else f"{progress * 100:5.0f}%"


def add_alignment_tree(report: Report, goals: list[dict], rows: list[OkrRow]) -> None:
    rows_by_ref = {row.ref: row for row in rows}
    children: dict[str | None, list[dict]] = {}
    for goal in goals:
        children.setdefault(goal.get("parent_goal_id"), []).append(goal)
    report.add("Alignment tree at the end of the quarter (progress; published outcome where the dataset gives one)")

    def walk(goal: dict, depth: int) -> None:
        indent = "  " * depth
        report.add(f"{indent}{_percent(goal['progress'])}  {goal['external_ref']}  {goal['title']}")
        for key_result in goal["key_results"]:
            row = rows_by_ref.get(key_result.get("external_ref") or "")
            published = ""
            if row is not None and row.final_progress is not None:
                check = OutcomeCheck(row.ref, row.final_progress, key_result["progress"])
                report.outcome_checks.append(check)
                published = f"   published {row.final_progress * 100:.0f}% {'ok' if check.matches else 'MISMATCH'}"
            report.add(f"{indent}    {_percent(key_result['progress'])}  {key_result['title'][:70]}{published}")
        for child in sorted(children.get(goal["goal_id"], []), key=lambda item: item["external_ref"] or ""):
            walk(child, depth + 1)

    for root in sorted(children.get(None, []), key=lambda item: item["external_ref"] or ""):
        walk(root, 0)
    matched = sum(check.matches for check in report.outcome_checks)
    report.add(f"Key results equal to their published outcome: {matched} of {len(report.outcome_checks)}")


def add_top_collaborators(report: Report, top: dict, names: dict[str, Person]) -> None:
    report.add("")
    report.add(f"Top collaborators (28-day window ending {top['as_of']})")
    for rank, entry in enumerate(top["people"], start=1):
        person = names.get(entry["person_id"])
        label = f"{person.display_name} ({person.team})" if person else entry["person_id"]
        parts = ", ".join(
            f"{component['name']} {component['value']:g}x{component['weight']:g}" for component in entry["components"]
        )
        report.add(f"  {rank}. {label}: {entry['score']:g}  [{parts}]")


def add_person_activity(report: Report, person: Person, feed: list[dict], inbox: dict) -> None:
    report.add("")
    report.add(f"Last ten feed items of {person.display_name} ({person.team})")
    for item in feed[:10]:
        report.add(f"  {item['occurred_at'][:16]}  {item['kind']:<18} {item['summary'][:90]}")
    report.add(f"Unread notifications of {person.display_name}: {inbox['unread_count']}")
    for item in [entry for entry in inbox["items"] if not entry["read"]][:10]:
        report.add(f"  {item['occurred_at'][:16]}  {item['message'][:100]}")


def fetch_whole_feed(client: httpx.Client, token: str) -> list[dict]:
    items: list[dict] = []
    cursor = None
    while True:
        params = {"limit": 100} | ({"before": cursor} if cursor else {})
        page = client.get("/feed", params=params, headers={"Authorization": f"Bearer {token}"})
        page.raise_for_status()
        body = page.json()
        items += body["items"]
        cursor = body.get("next_cursor")
        if not cursor:
            return items


def feed_latencies(check_ins: list[SentCheckIn], feeds_by_follower: dict[str, list[dict]], follower_of: dict[str, str]) -> list[float]:
    """Seconds from each check-in's 201 to the moment its item was written to a follower's feed."""
    indexed: dict[tuple[str, str, datetime], float] = {}
    for items in feeds_by_follower.values():
        for item in items:
            if item["kind"] != "check_in_recorded" or not item.get("key_result_id"):
                continue
            key = (item["goal_id"], item["key_result_id"], datetime.fromisoformat(item["occurred_at"]))
            indexed_at = datetime.fromisoformat(item["indexed_at"]).timestamp()
            indexed[key] = min(indexed_at, indexed.get(key, indexed_at))
    latencies = []
    for check_in in check_ins:
        if check_in.goal_id not in follower_of:
            continue
        key = (check_in.goal_id, check_in.key_result_id, check_in.occurred_at)
        if key in indexed:
            latencies.append(max(0.0, indexed[key] - check_in.acknowledged_at))
    return latencies


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def latency_summary(latencies: list[float]) -> str:
    if not latencies:
        return "no check-in reached a follower's feed"
    return (
        f"check-in 201 -> follower's feed over {len(latencies)} check-ins: "
        f"median {statistics.median(latencies) * 1000:.0f} ms, p99 {percentile(latencies, 0.99) * 1000:.0f} ms"
    )
