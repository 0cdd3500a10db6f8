"""The goal visibility rule, applied alike by the goals API, feeds, notifications and scores.

A goal's visibility is ``organisation`` (everyone in its org), ``team`` (members of its owning or
contributing teams) or ``private``. Its owner, co-owners and tagged collaborators always see it,
and so does an org admin. Consumers learn the facts from GoalCreated, GoalOwnersChanged,
GoalVisibilityChanged and CollaboratorTagged events; a reader's teams come from their token.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from spm_events.auth import Principal

VISIBILITIES: tuple[str, ...] = ("organisation", "team", "private")
DEFAULT_VISIBILITY = "organisation"


@dataclass(frozen=True)
class GoalAudience:
    """The facts about one goal that decide who may see it."""

    visibility: str
    owner_id: str
    co_owner_ids: frozenset[str] = frozenset()
    teams: frozenset[str] = frozenset()
    collaborator_ids: frozenset[str] = field(default_factory=frozenset)

    def is_insider(self, person_id: str) -> bool:
        """True for the owner, a co-owner or a tagged collaborator: people who see the goal at every visibility."""
        return person_id == self.owner_id or person_id in self.co_owner_ids or person_id in self.collaborator_ids

    def can_see(self, reader: Principal) -> bool:
        if reader.is_admin or self.visibility == "organisation" or self.is_insider(reader.person_id):
            return True
        if self.visibility == "team":
            return not self.teams.isdisjoint(reader.teams)
        return False

