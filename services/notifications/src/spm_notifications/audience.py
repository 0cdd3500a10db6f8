"""Goal audiences: the facts recorded from goal and social events, and the SQL condition inbox queries filter on.

The read-time condition is ``spm_events.visibility.GoalAudience.can_see`` written in SQL, so a
page query drops items about goals the reader cannot see before it applies its limit.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Connection, and_, delete, exists, or_, select, true

from spm_events.auth import Principal
from spm_events.visibility import DEFAULT_VISIBILITY

from spm_notifications.rules import PRIVATE, OwnersChange, VisibilityChange
from spm_notifications.tables import (
    CO_OWNER_ROLE,
    COLLABORATOR_ROLE,
    OWNER_ROLE,
    InboxTables,
    insert_ignoring_duplicates,
    upsert,
)

ORGANISATION = "organisation"
TEAM = "team"


@dataclass(frozen=True)
class AudienceHistory:
    """Everything recorded about one goal's audience, as the notification rules take it."""

    owners_changes: list[OwnersChange]
    visibility_changes: list[VisibilityChange]
    collaborator_ids: frozenset[str]

    @property
    def was_ever_private(self) -> bool:
        return any(change.visibility == PRIVATE for change in self.visibility_changes)


class GoalAudiences:
    """Records audience facts in the connection's transaction and reads them back."""

    def __init__(self, tables: InboxTables) -> None:
        self.tables = tables

    def record_teams(self, connection: Connection, org_id: str, goal_id: str, teams: set[str]) -> None:
        rows = [{"org_id": org_id, "goal_id": goal_id, "team": team} for team in sorted(teams)]
        insert_ignoring_duplicates(connection, self.tables.goal_teams, rows)

    def record_visibility(
        self, connection: Connection, org_id: str, goal_id: str, version: int, visibility: str | None,
        occurred_at: datetime | None = None,
    ) -> None:
        """Keep the visibility a goal event carried, then make the current visibility the highest version's."""
        changes = self.tables.goal_visibility_changes
        row = {"org_id": org_id, "goal_id": goal_id, "aggregate_version": version,
               "visibility": visibility or DEFAULT_VISIBILITY, "occurred_at": occurred_at}
        insert_ignoring_duplicates(connection, changes, [row])
        latest = connection.execute(
            select(changes.c.visibility, changes.c.aggregate_version)
            .where(changes.c.org_id == org_id, changes.c.goal_id == goal_id)
            .order_by(changes.c.aggregate_version.desc())
            .limit(1)
        ).one()
        upsert(connection, self.tables.goal_audiences, {
            "org_id": org_id, "goal_id": goal_id,
            "visibility": latest.visibility, "aggregate_version": latest.aggregate_version,
        })

    def record_owners(
        self, connection: Connection, org_id: str, goal_id: str, version: int, owner_id: str, co_owner_ids: tuple[str, ...],
        occurred_at: datetime | None = None,
    ) -> None:
        """Keep the owner set a goal event carried, then make the current owners the highest version's."""
        changes, people = self.tables.goal_owner_changes, self.tables.goal_people
        roles = {person_id: CO_OWNER_ROLE for person_id in co_owner_ids} | {owner_id: OWNER_ROLE}
        insert_ignoring_duplicates(connection, changes, [
            {"org_id": org_id, "goal_id": goal_id, "aggregate_version": version, "person_id": person_id, "role": role,
             "occurred_at": occurred_at}
            for person_id, role in sorted(roles.items())
        ])
        latest_version = (
            select(changes.c.aggregate_version)
            .where(changes.c.org_id == org_id, changes.c.goal_id == goal_id)
            .order_by(changes.c.aggregate_version.desc())
            .limit(1)
            .scalar_subquery()
        )
        current = connection.execute(
            select(changes.c.person_id, changes.c.role).where(
                changes.c.org_id == org_id, changes.c.goal_id == goal_id, changes.c.aggregate_version == latest_version
            )
        ).all()
        connection.execute(
            delete(people).where(
                people.c.org_id == org_id, people.c.goal_id == goal_id, people.c.role.in_((OWNER_ROLE, CO_OWNER_ROLE))
            )
        )
        insert_ignoring_duplicates(connection, people, [
            {"org_id": org_id, "goal_id": goal_id, "person_id": row.person_id, "role": row.role} for row in current
        ])

    def set_collaborator(
        self, connection: Connection, org_id: str, goal_id: str, person_id: str, is_collaborator: bool
    ) -> None:
        """Make the person a collaborator of the goal now, or no longer one (declined, left or untagged)."""
        people = self.tables.goal_people
        if is_collaborator:
            row = {"org_id": org_id, "goal_id": goal_id, "person_id": person_id, "role": COLLABORATOR_ROLE}
            insert_ignoring_duplicates(connection, people, [row])
            return
        connection.execute(
            delete(people).where(
                people.c.org_id == org_id, people.c.goal_id == goal_id,
                people.c.person_id == person_id, people.c.role == COLLABORATOR_ROLE,
            )
        )

    def history(self, connection: Connection, org_id: str, goal_id: str) -> AudienceHistory:
        """Load every owner set and visibility the goal's events carried, and its collaborators now."""
        people = self.tables.goal_people
        collaborator_ids = connection.execute(
            select(people.c.person_id).where(
                people.c.org_id == org_id, people.c.goal_id == goal_id, people.c.role == COLLABORATOR_ROLE
            )
        ).scalars()
        return AudienceHistory(
            owners_changes=self._owners_changes(connection, org_id, goal_id),
            visibility_changes=self._visibility_changes(connection, org_id, goal_id),
            collaborator_ids=frozenset(collaborator_ids),
        )

    def _owners_changes(self, connection: Connection, org_id: str, goal_id: str) -> list[OwnersChange]:
        owner_changes = self.tables.goal_owner_changes
        rows = connection.execute(
            select(owner_changes).where(owner_changes.c.org_id == org_id, owner_changes.c.goal_id == goal_id)
        )
        owner_by_version: dict[int, str] = {}
        co_owners_by_version: dict[int, set[str]] = defaultdict(set)
        time_by_version: dict[int, datetime | None] = {}
        for row in rows:
            time_by_version[row.aggregate_version] = row.occurred_at
            if row.role == OWNER_ROLE:
                owner_by_version[row.aggregate_version] = row.person_id
            else:
                co_owners_by_version[row.aggregate_version].add(row.person_id)
        return [
            OwnersChange(version, owner_id, frozenset(co_owners_by_version[version]), time_by_version[version])
            for version, owner_id in owner_by_version.items()
        ]

    def _visibility_changes(self, connection: Connection, org_id: str, goal_id: str) -> list[VisibilityChange]:
        changes = self.tables.goal_visibility_changes
        rows = connection.execute(
            select(changes.c.aggregate_version, changes.c.visibility, changes.c.occurred_at).where(
                changes.c.org_id == org_id, changes.c.goal_id == goal_id
            )
        )
        return [VisibilityChange(row.aggregate_version, row.visibility, row.occurred_at) for row in rows]

def visible_goal_condition(
    tables: InboxTables, reader: Principal, org_id: ColumnElement[str], goal_id: ColumnElement[str]
) -> ColumnElement[bool]:
    """Build a condition that is true where the goal in (``org_id``, ``goal_id``) is visible to ``reader`` now.

    Admins see every goal. Others see a goal they are an insider of (owner, co-owner or tagged
    collaborator), an organisation-wide goal, or a team goal of one of their teams. A goal whose
    visibility is not known yet is visible to its insiders only.
    """
    if reader.is_admin:
        return true()
    audiences, people, teams = tables.goal_audiences, tables.goal_people, tables.goal_teams
    same_goal_audience = and_(audiences.c.org_id == org_id, audiences.c.goal_id == goal_id)
    is_insider = exists().where(
        people.c.org_id == org_id, people.c.goal_id == goal_id, people.c.person_id == reader.person_id
    )
    open_to_organisation = exists().where(same_goal_audience, audiences.c.visibility == ORGANISATION)
    conditions = [is_insider, open_to_organisation]
    if reader.teams:
        open_to_team = exists().where(same_goal_audience, audiences.c.visibility == TEAM)
        in_goal_team = exists().where(
            teams.c.org_id == org_id, teams.c.goal_id == goal_id, teams.c.team.in_(sorted(reader.teams))
        )
        conditions.append(and_(open_to_team, in_goal_team))
    return or_(*conditions)
