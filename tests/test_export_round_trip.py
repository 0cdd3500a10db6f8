"""Export an organisation to the goals and people CSVs, import them into an empty organisation, compare.

The goals and social APIs run in process (FastAPI's TestClient on each service's app factory) on
SQLite files or on PostgreSQL. Neither API talks to Kafka, so no broker is needed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from spm_events.auth import issue_token
from spm_events.people import person_id_for
from spm_goals.api import create_app as create_goals_app
from spm_goals.settings import GoalsSettings
from spm_local.directory import read_directory, upload_people
from spm_local.exporter import ExportError, export_csvs
from spm_local.importer import import_rows
from spm_local.okr_csv import read_okr_csv
from spm_local.paths import OKR_DATASET_DIR
from spm_local.people import read_people, write_people
from spm_social.api import create_app as create_social_app
from spm_social.settings import SocialSettings

PERIOD = {"name": "FY21-Q1", "start": "2020-02-01", "end": "2020-04-30"}


@dataclass
class Apis:
    goals: TestClient
    social: TestClient
    secret: str

    def act_as_admin_of(self, org_id: str) -> None:
        """Send every following request of both clients with an admin token of ``org_id``."""
        token = issue_token(self.secret, org_id, person_id_for(org_id, "ceo"), admin=True)
        for client in (self.goals, self.social):
            client.headers["Authorization"] = f"Bearer {token}"


@pytest.fixture(params=["sqlite", "postgres"])
def apis(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Apis]:
    goals_url = social_url = None
    if request.param == "postgres":
        url_factory = request.getfixturevalue("postgres_url_factory")
        goals_url, social_url = url_factory(), url_factory()
    goals_settings = GoalsSettings(data_dir=tmp_path / "goals", database_url=goals_url)
    social_settings = SocialSettings(data_dir=tmp_path / "social", database_url=social_url, kafka_bootstrap="127.0.0.1:1")
    for settings in (goals_settings, social_settings):
        settings.data_dir.mkdir()
    with (
        TestClient(create_goals_app(goals_settings)) as goals,
        TestClient(create_social_app(social_settings)) as social,
    ):
        yield Apis(goals, social, goals_settings.jwt_secret.get_secret_value())


def new_org() -> str:
    return f"org-{uuid.uuid4().hex[:12]}"


def import_files(apis: Apis, org_id: str, goals_csv: Path, people_csv: Path) -> None:
    """Do what spm-import --people --social-url does: the people into the directory, then the goals."""
    apis.act_as_admin_of(org_id)
    people = read_people(people_csv, org_id)
    upload_people(apis.social, people)
    import_rows(apis.goals, read_okr_csv(goals_csv, {person.handle for person in people}), org_id)


def export_files(apis: Apis, org_id: str, directory: Path) -> tuple[Path, Path]:
    apis.act_as_admin_of(org_id)
    goals_text, people_text = export_csvs(apis.goals, apis.social)
    directory.mkdir()
    goals_csv, people_csv = directory / "okrs.csv", directory / "people.csv"
    goals_csv.write_text(goals_text, encoding="utf-8")
    people_csv.write_text(people_text, encoding="utf-8")
    return goals_csv, people_csv


def post(client: TestClient, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    response = client.post(path, json=body)
    assert response.status_code in (200, 201), f"POST {path}: {response.status_code} {response.text}"
    return response.json()


class OrgGoals:
    """The goals of one organisation, read through the API, addressed by ref."""

    def __init__(self, client: TestClient) -> None:
        self.goals = client.get("/goals").json()
        self.by_ref = {goal["external_ref"] or goal["goal_id"]: goal for goal in self.goals}
        self.ref_of_goal = {goal["goal_id"]: ref for ref, goal in self.by_ref.items()}
        self.ref_of_key_result = {
            key_result["key_result_id"]: key_result["external_ref"] or key_result["key_result_id"]
            for goal in self.goals
            for key_result in goal["key_results"]
        }

    def goal_id(self, ref: str) -> str:
        return self.by_ref[ref]["goal_id"]

    def key_result_id(self, goal_ref: str, key_result_ref: str) -> str:
        key_results = self.by_ref[goal_ref]["key_results"]
        return next(kr["key_result_id"] for kr in key_results if (kr["external_ref"] or kr["key_result_id"]) == key_result_ref)

    def support_refs(self, links: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
        return [
            (self.ref_of_goal[link["goal_id"]], self.ref_of_key_result.get(link["key_result_id"]))
            for link in links
        ]


def comparable_goals(client: TestClient, org_id: str) -> dict[str, dict[str, Any]]:
    """Every goal by ref, with people as handles and goals and key results as refs instead of ids."""
    org = OrgGoals(client)
    handle_of = {person_id_for(org_id, person.handle): person.handle for person in read_people(OKR_DATASET_DIR / "people.csv", org_id)}
    comparable = {}
    for ref, goal in org.by_ref.items():
        comparable[ref] = {
            "title": goal["title"],
            "level": goal["level"],
            "visibility": goal["visibility"],
            "owner": handle_of[goal["owner_id"]],
            "co_owners": [handle_of[person_id] for person_id in goal["co_owner_ids"]],
            "team": goal["team"],
            "contributing_teams": goal["contributing_teams"],
            "period": goal["period"],
            "parent": org.ref_of_goal.get(goal["parent_goal_id"]),
            "supports": org.support_refs(goal["supports"]),
            "status": goal["status"],
            "outcome": goal["outcome"],
            "progress": goal["progress"],
            "key_results": [
                {key: key_result[key] for key in (
                    "title", "metric", "start_value", "target_value", "unit", "weight", "direction",
                    "current_value", "progress", "last_check_in_at",
                )} | {"ref": key_result["external_ref"] or key_result["key_result_id"]}
                for key_result in goal["key_results"]
            ],
        }
    return comparable


def comparable_tree(client: TestClient) -> list[dict[str, Any]]:
    """The alignment tree with ids replaced by refs and children sorted by ref."""
    org = OrgGoals(client)
    response = client.get("/goals/tree")
    assert response.status_code == 200

    def node(raw: dict[str, Any]) -> dict[str, Any]:
        children = sorted((node(child) for child in raw["children"]), key=lambda child: child["ref"])
        return {
            "ref": org.ref_of_goal[raw["goal_id"]],
            **{key: raw[key] for key in ("title", "team", "status", "level", "visibility", "progress", "rollup_progress")},
            "supports": org.support_refs(raw["supports"]),
            "children": children,
        }

    return sorted((node(root) for root in response.json()), key=lambda root: root["ref"])


def enrich(apis: Apis, org_id: str) -> None:
    """Give the imported dataset check-ins, a private and a team goal, support links and a closed and an archived goal."""
    goals = apis.goals
    org = OrgGoals(goals)

    def check_in(goal_ref: str, key_result_ref: str, value: float, occurred_at: str) -> None:
        goal_id = org.goal_id(goal_ref)
        path = f"/goals/{goal_id}/key-results/{org.key_result_id(goal_ref, key_result_ref)}/check-ins"
        post(goals, path, {"value": value, "occurred_at": occurred_at, "comment": "weekly update"})

    check_in("CEO-1", "CEO-1.KR1", 40, "2020-03-01T10:00:00+02:00")
    check_in("ENG-1", "ENG-1.KR1", 4, "2020-04-20T09:00:00Z")
    # Recorded later but measured earlier: the current value stays the one measured last.
    check_in("ENG-1", "ENG-1.KR1", 3, "2020-03-20T09:00:00Z")
    check_in("CMP-1", "CMP-1.KR4", 122, "2020-04-30T23:59:59Z")
    check_in("WEB-3", "WEB-3.KR1", 1 / 3, "2020-02-01T00:00:00Z")
    check_in("MKT-2", "MKT-2.KR2", 12, "2020-03-31T12:00:00Z")
    check_in("DIS-3", "DIS-3.KR2", 55.5, "2020-04-01T08:15:30.250000Z")

    private = post(goals, "/goals", {
        "title": "Confidential restructuring of the hiring pipeline",
        "team": "People Ops",
        "period": PERIOD,
        "owner_id": person_id_for(org_id, "head-of-people"),
        "co_owner_ids": [person_id_for(org_id, "people-ops-1")],
        "level": "person",
        "visibility": "private",
        "occurred_at": "2020-02-03T09:00:00Z",
    })
    private_kr = post(goals, f"/goals/{private['goal_id']}/key-results", {
        "title": "Hire recruiters", "metric": "number", "start_value": 0, "target_value": 3,
        "unit": "recruiters", "weight": 2.5, "occurred_at": "2020-02-03T09:00:00Z",
    })
    post(goals, f"/goals/{private['goal_id']}/key-results/{private_kr['key_result_id']}/check-ins",
         {"value": 2, "occurred_at": "2020-03-15T09:00:00Z"})
    post(goals, f"/goals/{private['goal_id']}/supports", {"goal_id": org.goal_id("PPL-1")})

    team_goal = post(goals, "/goals", {
        "title": "Search results render within 300 ms",
        "team": "Web",
        "contributing_teams": ["Core Services"],
        "period": PERIOD,
        "owner_id": person_id_for(org_id, "lead-web"),
        "level": "team",
        "visibility": "team",
        "parent_goal_id": org.goal_id("WEB-1"),
        "external_ref": "WEB-4",
        "occurred_at": "2020-02-05T09:00:00Z",
    })
    post(goals, f"/goals/{team_goal['goal_id']}/key-results", {
        "title": "p95 render time", "metric": "number", "start_value": 800, "target_value": 300,
        "unit": "ms", "weight": 3, "external_ref": "WEB-4.KR1", "occurred_at": "2020-02-05T09:00:00Z",
    })
    post(goals, f"/goals/{team_goal['goal_id']}/supports",
         {"goal_id": org.goal_id("CS-1"), "key_result_id": org.key_result_id("CS-1", "CS-1.KR2")})

    post(goals, "/goals", {
        "title": "Plan the next fiscal year", "team": "Executive", "period": PERIOD, "level": "company",
        "owner_id": person_id_for(org_id, "ceo"), "external_ref": "CEO-3", "status": "draft",
    })
    post(goals, f"/goals/{org.goal_id('MKT-2')}/close", {"outcome": "achieved", "occurred_at": "2020-05-01"})
    post(goals, f"/goals/{org.goal_id('DIS-3')}/close", {"outcome": "partially"})
    post(goals, f"/goals/{org.goal_id('DIS-3')}/archive")


def test_export_then_import_reproduces_goals(apis: Apis, tmp_path: Path) -> None:
    org_a, org_b = new_org(), new_org()
    import_files(apis, org_a, OKR_DATASET_DIR / "okrs.csv", OKR_DATASET_DIR / "people.csv")
    apis.act_as_admin_of(org_a)
    enrich(apis, org_a)

    goals_csv, people_csv = export_files(apis, org_a, tmp_path / "export-a")
    import_files(apis, org_b, goals_csv, people_csv)
    goals_csv_b, people_csv_b = export_files(apis, org_b, tmp_path / "export-b")

    apis.act_as_admin_of(org_a)
    goals_a, tree_a = comparable_goals(apis.goals, org_a), comparable_tree(apis.goals)
    apis.act_as_admin_of(org_b)
    goals_b, tree_b = comparable_goals(apis.goals, org_b), comparable_tree(apis.goals)
    assert len(goals_a) == 29 + 3
    assert goals_b == goals_a
    assert tree_b == tree_a
    assert goals_csv_b.read_bytes() == goals_csv.read_bytes()
    assert people_csv_b.read_bytes() == people_csv.read_bytes()


def test_export_writes_state_columns(apis: Apis, tmp_path: Path) -> None:
    org_a = new_org()
    import_files(apis, org_a, OKR_DATASET_DIR / "okrs.csv", OKR_DATASET_DIR / "people.csv")
    apis.act_as_admin_of(org_a)
    enrich(apis, org_a)

    goals_csv, _ = export_files(apis, org_a, tmp_path / "export")
    rows = {row.ref: row for row in read_okr_csv(goals_csv)}

    private = next(row for row in rows.values() if row.details.visibility == "private")
    assert uuid.UUID(private.ref)
    assert private.owner_handle == "head-of-people"
    assert private.details.co_owner_handles == ("people-ops-1",)
    assert private.details.supports == ("PPL-1",)
    assert rows["WEB-4"].details.supports == ("CS-1.KR2",)
    assert rows["WEB-4.KR1"].details.unit == "ms"
    assert rows["WEB-4.KR1"].details.weight == 3
    assert rows["ENG-1.KR1"].details.current_value == 4
    assert rows["WEB-3.KR1"].details.current_value == 1 / 3
    assert rows["CEO-1.KR1"].details.current_value_at.isoformat() == "2020-03-01T08:00:00+00:00"  # type: ignore[union-attr]
    assert rows["CEO-1.KR2"].details.current_value is None
    assert (rows["MKT-2"].details.status, rows["MKT-2"].details.outcome) == ("closed", "achieved")
    assert (rows["DIS-3"].details.status, rows["DIS-3"].details.outcome) == ("archived", "partially")
    assert rows["CEO-3"].details.status == "draft"
    assert rows["CEO-3"].details.level == "company"


def test_people_export_import_export_is_identical(apis: Apis, tmp_path: Path) -> None:
    org_a, org_b = new_org(), new_org()
    apis.act_as_admin_of(org_a)
    upload_people(apis.social, read_people(OKR_DATASET_DIR / "people.csv", org_a))
    assert apis.social.post("/people/people-ops-2/deactivate").status_code == 200
    exported_a = tmp_path / "people-a.csv"
    exported_a.write_text(write_people(read_directory(apis.social)), encoding="utf-8")

    apis.act_as_admin_of(org_b)
    upload_people(apis.social, read_people(exported_a, org_b))
    exported_b = write_people(read_directory(apis.social))

    assert exported_b == exported_a.read_text(encoding="utf-8")
    assert "people-ops-2,Blake Chen,people-ops-2@example.com,People Ops,head-of-people,false" in exported_b
    assert apis.social.get("/people/people-ops-2").json()["active"] is False


def test_export_needs_owners_in_directory(apis: Apis) -> None:
    org_id = new_org()
    apis.act_as_admin_of(org_id)
    import_rows(apis.goals, read_okr_csv(OKR_DATASET_DIR / "okrs.csv")[:4], org_id)

    with pytest.raises(ExportError) as raised:
        export_csvs(apis.goals, apis.social)

    assert "'CEO-1'" in str(raised.value)
    assert "import the people first" in str(raised.value)


def test_second_import_of_export_changes_nothing(apis: Apis, tmp_path: Path) -> None:
    org_a, org_b = new_org(), new_org()
    import_files(apis, org_a, OKR_DATASET_DIR / "okrs.csv", OKR_DATASET_DIR / "people.csv")
    apis.act_as_admin_of(org_a)
    enrich(apis, org_a)
    goals_csv, people_csv = export_files(apis, org_a, tmp_path / "export")
    import_files(apis, org_b, goals_csv, people_csv)
    before = apis.goals.get("/goals").json()

    import_files(apis, org_b, goals_csv, people_csv)

    assert apis.goals.get("/goals").json() == before
