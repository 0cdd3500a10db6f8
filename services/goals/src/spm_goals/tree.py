"""The alignment tree: goals nested under their parent goals, with progress rolled up from the leaves.

Roll-up progress of a goal is the mean of its own progress and its children's roll-up progress,
each counting once: ``(own + sum(children's roll-up)) / (1 + number of children)``. A leaf's roll-up
is its own progress. Over-achievement is kept, as in the goal's own progress.

A goal sits under its parent goal only. The goals and key results it also supports are listed on
its node, so no progress counts twice in a roll-up. The tree contains only the goals the reader may
see, so a goal whose parent is hidden from the reader is a root of the reader's tree.
"""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from typing import Any, Iterable

from spm_goals.objective import Objective
from spm_goals.views import LinkFilter, supports_view


# Deeper alignment chains are refused (see GoalsApplication.check_parent). The tree still stops
# here, because moving a deep subtree under a deep parent is not checked.
MAX_TREE_DEPTH = 64


def alignment_tree(objectives: Iterable[Objective], root_id: uuid.UUID | None = None) -> list[dict[str, Any]]:
    """Return the goals as trees: each goal without a parent among them is a root, or only ``root_id``'s subtree.

    Goals caught in a cycle (only concurrent alignments can make one) have no such root, so the
    first of them, by id, becomes a root too and none disappears.
    """
    by_id = {objective.id: objective for objective in objectives}
    children: dict[uuid.UUID, list[Objective]] = defaultdict(list)
    for objective in by_id.values():
        if objective.parent_goal_id in by_id:
            children[objective.parent_goal_id].append(objective)
    shows = by_id.__contains__
    if root_id is not None:
        return [_node(by_id[root_id], children, shows, visited=set(), placed=set())]
    placed: set[uuid.UUID] = set()
    trees = [
        _node(root, children, shows, visited=set(), placed=placed)
        for root in by_id.values()
        if root.parent_goal_id not in by_id
    ]
    for objective in sorted(by_id.values(), key=lambda goal: str(goal.id)):
        if objective.id not in placed:
            trees.append(_node(objective, children, shows, visited=set(), placed=placed))
    return trees


def _node(
    objective: Objective,
    children: dict[uuid.UUID, list[Objective]],
    shows: LinkFilter,
    visited: set[uuid.UUID],
    placed: set[uuid.UUID],
) -> dict[str, Any]:
    # A goal already on this path would start a cycle, so it is left out and the tree stays finite.
    visited = visited | {objective.id}
    placed.add(objective.id)
    below = [] if len(visited) >= MAX_TREE_DEPTH else children[objective.id]
    child_nodes = [_node(child, children, shows, visited, placed) for child in below if child.id not in visited]
    own = objective.progress
    # Dividing before adding keeps the mean of finite values finite, however large they are.
    count = 1 + len(child_nodes)
    # fsum is exact, so the result does not depend on the order of the children.
    rollup = math.fsum([own / count, *(child["rollup_progress"] / count for child in child_nodes)])
    return {
        "goal_id": str(objective.id),
        "title": objective.title,
        "team": objective.team,
        "external_ref": objective.external_ref,
        "status": objective.status,
        "level": objective.level,
        "visibility": objective.visibility,
        "supports": supports_view(objective, shows),
        "progress": own,
        "rollup_progress": rollup,
        "children": child_nodes,
    }
