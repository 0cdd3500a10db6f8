"""Access rules of the goals API: which readers may see a goal, and which may change it.

Seeing follows the shared rule of ``spm_events.visibility``. Only the owner, the co-owners and org
admins may change the goal itself (key results, owners, visibility, alignment, lifecycle). Anyone
who may see a goal may record a check-in on it, because that is how colleagues help.
"""

from __future__ import annotations

from sqlalchemy import Engine

from spm_events.auth import Principal
from spm_events.database import create_tables
from spm_events.visibility import GoalAudience
from spm_goals.collaborators import CollaboratorTable
from spm_goals.objective import Objective


class PermissionDeniedError(PermissionError):
    """Raised when a person who may see a goal requests a change that only its owners may make."""


class GoalAccess:
    """Visibility and management checks, with collaborators read from the goals read database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.collaborators = CollaboratorTable()
        create_tables(self.collaborators.metadata, engine)

    def audience(self, objective: Objective) -> GoalAudience:
        return GoalAudience(
            visibility=objective.visibility,
            owner_id=objective.owner_id,
            co_owner_ids=frozenset(objective.co_owner_ids),
            teams=frozenset((objective.team, *objective.contributing_teams)),
            collaborator_ids=self.collaborators.collaborators_of(self.engine, objective.org_id, str(objective.id)),
        )

    def can_see(self, objective: Objective, reader: Principal) -> bool:
        if reader.is_admin or objective.visibility == "organisation" or objective.is_manager(reader.person_id):
            # These cases need no collaborator lookup, which saves a query on most reads.
            return True
        return self.audience(objective).can_see(reader)

    def can_manage(self, objective: Objective, reader: Principal) -> bool:
        return reader.is_admin or objective.is_manager(reader.person_id)

    def check_can_manage(self, objective: Objective, reader: Principal, action: str) -> None:
        if not self.can_manage(objective, reader):
            raise PermissionDeniedError(
                f"only the owner, a co-owner or an org admin can {action} goal {objective.id}; "
                "ask one of them, or ask to be made a co-owner"
            )
