"""The undirected collaboration graph of a window: degree and betweenness (brokerage).

Betweenness uses the algorithm of U. Brandes, "A faster algorithm for betweenness centrality"
(Journal of Mathematical Sociology, 2001) on the unweighted graph. A graph with more people than
``pivots`` gets the pivot estimate of U. Brandes and C. Pich, "Centrality estimation in large
networks" (2007): shortest paths are counted from ``pivots`` source people only and the sums
scaled by n / pivots. The pivots are the people whose ids come first in SHA-256 order rather than
a random draw, so the estimate is the same on every run and replay.
"""

from __future__ import annotations

import hashlib
from collections import deque
from typing import Iterable


class CollaborationGraph:
    def __init__(self, edges: Iterable[tuple[str, str]]) -> None:
        adjacency: dict[str, set[str]] = {}
        for first, second in edges:
            if first == second:
                continue
            adjacency.setdefault(first, set()).add(second)
            adjacency.setdefault(second, set()).add(first)
        self.neighbours: dict[str, tuple[str, ...]] = {node: tuple(sorted(adjacency[node])) for node in sorted(adjacency)}

    @property
    def nodes(self) -> tuple[str, ...]:
        return tuple(self.neighbours)

    def degree(self, node: str) -> int:
        return len(self.neighbours.get(node, ()))

    def max_degree(self) -> int:
        return max((len(neighbours) for neighbours in self.neighbours.values()), default=0)

    def betweenness(self, pivots: int) -> dict[str, float]:
        """Return each node's betweenness, normalised by (n - 1)(n - 2) / 2, the pairs a node can sit between."""
        nodes = self.nodes
        count = len(nodes)
        scores = dict.fromkeys(nodes, 0.0)
        if count < 3:
            return scores
        # TODO: measure the sampled estimate's error on graphs larger than the demo's 47 people, where it first applies.
        sources = nodes if count <= pivots else sorted(nodes, key=_pivot_order)[:pivots]
        for source in sources:
            self._accumulate_dependencies(source, scores)
        # Each unordered pair is counted from both ends in an undirected graph, hence the 2.
        scale = (count / len(sources)) / 2 / ((count - 1) * (count - 2) / 2)
        return {node: score * scale for node, score in scores.items()}

    def _accumulate_dependencies(self, source: str, scores: dict[str, float]) -> None:
        order: list[str] = []
        predecessors: dict[str, list[str]] = {source: []}
        path_counts = {source: 1.0}
        distance = {source: 0}
        queue = deque([source])
        while queue:
            node = queue.popleft()
            order.append(node)
            for neighbour in self.neighbours[node]:
                if neighbour not in distance:
                    distance[neighbour] = distance[node] + 1
                    path_counts[neighbour] = 0.0
                    predecessors[neighbour] = []
                    queue.append(neighbour)
                if distance[neighbour] == distance[node] + 1:
                    path_counts[neighbour] += path_counts[node]
                    predecessors[neighbour].append(node)
        dependency = dict.fromkeys(order, 0.0)
        for node in reversed(order):
            for predecessor in predecessors[node]:
                dependency[predecessor] += path_counts[predecessor] / path_counts[node] * (1 + dependency[node])
            if node != source:
                scores[node] += dependency[node]


def _pivot_order(node: str) -> str:
    return hashlib.sha256(node.encode("utf-8")).hexdigest()
