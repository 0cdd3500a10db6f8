"""Goal audiences: the facts from goal and social events that decide who may see a goal, and the checks on them.

The facts are stored normalised (``goal_visibility``, ``goal_people``, ``goal_teams``) so that a
command can load one goal's ``GoalAudience`` and a feed page can apply the same rule in SQL. The
rule itself is ``spm_events.visibility.GoalAudience.can_see``, and ``visible_goal`` is its SQL twin.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import ColumnElement, Connection, Table, delete, exists, or_, select, true, update

from spm_events.auth import Principal
from spm_events.visibility import DEFAULT_VISIBILITY, GoalAudience
from spm_social.readmodel import (
    CO_OWNER,
    COLLABORATOR,
    OWNER,
    SocialTables,
    insert_ignoring_duplicates,
    insert_many_ignoring_duplicates,
)


def record_goal_created(
    connection: Connection,
    tables: SocialTables,
    org_id: str,
    goal_id: str,
    *,
    visibility: str | None,
    owner_id: str,
    co_owner_ids: Iterable[str],
    teams: Iterable[str],
    aggregate_version: int,
) -> None:
    """Store the audience facts of a GoalCreated, keeping later visibility or owners already applied."""
    _ensure_goal_row(connection, tables, org_id, goal_id)
    access = tables.goal_visibility
    connection.execute(update(access).where(*_goal_key(access, org_id, goal_id)).values(created=True))
    record_visibility(connection, tables, org_id, goal_id, visibility or DEFAULT_VISIBILITY, aggregate_version)
    record_owners(connection, tables, org_id, goal_id, owner_id, co_owner_ids, aggregate_version)
    team_rows = [{"org_id": org_id, "goal_id": goal_id, "team": team} for team in sorted(set(teams))]
    insert_many_ignoring_duplicates(connection, tables.goal_teams, team_rows)


def record_visibility(
    connection: Connection, tables: SocialTables, org_id: str, goal_id: str, visibility: str, aggregate_version: int
) -> None:
    """Store the goal's visibility unless a fact of a higher or equal aggregate version is stored."""
    _ensure_goal_row(connection, tables, org_id, goal_id)
    access = tables.goal_visibility
    connection.execute(
        update(access)
        .where(*_goal_key(access, org_id, goal_id), access.c.visibility_version < aggregate_version)
        .values(visibility=visibility, visibility_version=aggregate_version)
    )


def record_owners(
    connection: Connection,
    tables: SocialTables,
    org_id: str,
    goal_id: str,
    owner_id: str,
    co_owner_ids: Iterable[str],
    aggregate_version: int,
) -> None:
    """Replace the goal's owner and co-owners unless a fact of a higher or equal aggregate version is stored."""
    _ensure_goal_row(connection, tables, org_id, goal_id)
    access = tables.goal_visibility
    replaced = connection.execute(
        update(access)
        .where(*_goal_key(access, org_id, goal_id), access.c.owners_version < aggregate_version)
        .values(owners_version=aggregate_version)
    )
    if replaced.rowcount == 0:
        return
    people = tables.goal_people
    connection.execute(
        delete(people).where(*_goal_key(people, org_id, goal_id), people.c.role.in_((OWNER, CO_OWNER)))
    )
    rows = [{"org_id": org_id, "goal_id": goal_id, "person_id": owner_id, "role": OWNER}]
    rows += [
        {"org_id": org_id, "goal_id": goal_id, "person_id": person_id, "role": CO_OWNER}
        for person_id in sorted(set(co_owner_ids))
    ]
    insert_many_ignoring_duplicates(connection, people, rows)


def record_collaborator(
    connection: Connection, tables: SocialTables, org_id: str, goal_id: str, person_id: str, is_insider: bool
) -> None:
    """Add or remove a collaborator among the goal's insiders.

    ``is_insider`` comes from all the person's tag changes of the goal (tagged until declined,
    left or untagged), so the result does not depend on the order in which they arrived.
    """
    people = tables.goal_people
    if is_insider:
        insert_ignoring_duplicates(
            connection, people, {"org_id": org_id, "goal_id": goal_id, "person_id": person_id, "role": COLLABORATOR}
        )
        return
    connection.execute(
        delete(people).where(
            *_goal_key(people, org_id, goal_id), people.c.person_id == person_id, people.c.role == COLLABORATOR
        )
    )


def load_goal_audience(connection: Connection, tables: SocialTables, org_id: str, goal_id: str) -> GoalAudience | None:
    """Return the goal's current audience, or None while its GoalCreated has not been applied."""
    access = tables.goal_visibility
    row = connection.execute(
        select(access.c.visibility).where(*_goal_key(access, org_id, goal_id), access.c.created.is_(True))
    ).first()
    if row is None:
        return None
    people = tables.goal_people
    people_rows = connection.execute(
        select(people.c.person_id, people.c.role).where(*_goal_key(people, org_id, goal_id))
    ).all()
    teams = tables.goal_teams
    team_names = connection.execute(select(teams.c.team).where(*_goal_key(teams, org_id, goal_id))).scalars()
    by_role: dict[str, set[str]] = {OWNER: set(), CO_OWNER: set(), COLLABORATOR: set()}
    for person_id, role in people_rows:
        by_role[role].add(person_id)
    # GoalCreated always stores an owner, so the owner set has exactly one id once the goal is created.
    owner_id = min(by_role[OWNER], default="")
    return GoalAudience(
        visibility=row.visibility,
        owner_id=owner_id,
        co_owner_ids=frozenset(by_role[CO_OWNER]),
        teams=frozenset(team_names),
        collaborator_ids=frozenset(by_role[COLLABORATOR]),
    )


def visible_goal(
    tables: SocialTables, org_id_column: ColumnElement[str], goal_id_column: ColumnElement[str], reader: Principal
) -> ColumnElement[bool]:
    """Build a SQL condition that is true when ``reader`` may see the goal the two columns name.

    It mirrors ``GoalAudience.can_see`` and also hides a goal whose GoalCreated has not been applied.
    """
    return visible_goal_for(
        tables,
        org_id_column,
        goal_id_column,
        is_admin=reader.is_admin,
        person_id=reader.person_id,
        team_names=sorted(reader.teams) or None,
    )


def visible_goal_for(
    tables: SocialTables,
    org_id_column: ColumnElement[str],
    goal_id_column: ColumnElement[str],
    *,
    is_admin: bool,
    person_id: ColumnElement[str] | str,
    team_names: ColumnElement[object] | list[str] | None,
) -> ColumnElement[bool]:
    """Build the condition of ``visible_goal`` from the reader's parts, which may be bound parameters.

    A statement built from bound parameters is built once and reused for every reader of the same shape.
    """
    access = tables.goal_visibility
    people = tables.goal_people
    teams = tables.goal_teams
    if is_admin:
        may_see = true()
    else:
        is_insider = exists().where(
            people.c.org_id == access.c.org_id,
            people.c.goal_id == access.c.goal_id,
            people.c.person_id == person_id,
        )
        may_see = or_(access.c.visibility == "organisation", is_insider)
        if team_names is not None:
            shares_a_team = exists().where(
                teams.c.org_id == access.c.org_id,
                teams.c.goal_id == access.c.goal_id,
                teams.c.team.in_(team_names),
            )
            may_see = or_(may_see, (access.c.visibility == "team") & shares_a_team)
    return exists().where(
        access.c.org_id == org_id_column,
        access.c.goal_id == goal_id_column,
        access.c.created.is_(True),
        may_see,
    )


def _ensure_goal_row(connection: Connection, tables: SocialTables, org_id: str, goal_id: str) -> None:
    insert_ignoring_duplicates(
        connection,
        tables.goal_visibility,
        {
            "org_id": org_id,
            "goal_id": goal_id,
            "created": False,
            "visibility": None,
            "visibility_version": 0,
            "owners_version": 0,
        },
    )


def _goal_key(table: Table, org_id: str, goal_id: str) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    return (table.c.org_id == org_id, table.c.goal_id == goal_id)
