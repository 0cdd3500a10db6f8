"""The alignment tree: goals nested under their parent goals, with progress rolled up from the leaves.

Roll-up progress of a goal is the mean of its own progress and its children's roll-up progress,
each counting once: ``(own + sum(children's roll-up)) / (1 + number of children)``. A leaf's roll-up
is its own progress. Over-achievement is kept, as in the goal's own progress.

A goal sits under its parent goal only. The goals and key results it also supports are listed on
its node, so no progress counts twice in a roll-up. The tree contains only the goals the reader may
see, so a goal whose parent is hidden from the reader is a root of the reader's tree.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any, Iterable

from spm_goals.objective import Objective
from spm_goals.views import supports_view


def alignment_tree(objectives: Iterable[Objective], root_id: uuid.UUID | None = None) -> list[dict[str, Any]]:
    """Return the org's goals as trees: every goal without a (known) parent is a root, or only ``root_id``'s subtree."""
    by_id = {objective.id: objective for objective in objectives}
    children: dict[uuid.UUID, list[Objective]] = defaultdict(list)
    for objective in by_id.values():
        if objective.parent_goal_id in by_id:
            children[objective.parent_goal_id].append(objective)
    if root_id is not None:
        roots = [by_id[root_id]]
    else:
        roots = [objective for objective in by_id.values() if objective.parent_goal_id not in by_id]
    return [_node(root, children, visited=set()) for root in roots]


def _node(objective: Objective, children: dict[uuid.UUID, list[Objective]], visited: set[uuid.UUID]) -> dict[str, Any]:
    # A goal already on this path would start a cycle. Alignment rejects cycles, but concurrent
    # writes could still create one, so such a goal is left out and the tree stays finite.
    visited = visited | {objective.id}
    child_nodes = [_node(child, children, visited) for child in children[objective.id] if child.id not in visited]
    own = objective.progress
    # Dividing before adding keeps the mean of finite values finite, however large they are.
    count = 1 + len(child_nodes)
    rollup = own / count + sum(child["rollup_progress"] / count for child in child_nodes)
    return {
        "goal_id": str(objective.id),
        "title": objective.title,
        "team": objective.team,
        "external_ref": objective.external_ref,
        "status": objective.status,
        "level": objective.level,
        "visibility": objective.visibility,
        "supports": supports_view(objective),
        "progress": own,
        "rollup_progress": rollup,
        "children": child_nodes,
    }
