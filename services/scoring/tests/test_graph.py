"""Degree and betweenness of the collaboration graph, exact and sampled."""

from __future__ import annotations

import pytest
from scoring_dataset import quarter_history

from spm_events.registry import EVENT_TYPES, parse_payload
from spm_scoring.collaboration import build_network
from spm_scoring.facts import fact_from_envelope
from spm_scoring.graph import CollaborationGraph
from spm_scoring.history import OrgHistory
from spm_scoring.ties import window_activity
from spm_scoring.windows import day_window

EXACT = 10_000


def history_of(org_id: str, seed: int) -> OrgHistory:
    facts = []
    for envelope in quarter_history(org_id, seed):
        if envelope.type in EVENT_TYPES:
            fact = fact_from_envelope(envelope, parse_payload(envelope), envelope.time)
            if fact is not None:
                facts.append(fact)
    return OrgHistory(org_id, facts)


def test_middle_of_a_path_brokers_every_pair() -> None:
    graph = CollaborationGraph([("a", "b"), ("b", "c")])

    assert graph.betweenness(EXACT) == {"a": 0.0, "b": 1.0, "c": 0.0}
    assert (graph.degree("b"), graph.max_degree()) == (2, 2)


def test_star_centre_and_split_paths() -> None:
    star = CollaborationGraph([("hub", leaf) for leaf in "abcd"])
    square = CollaborationGraph([("a", "b"), ("b", "c"), ("c", "d"), ("d", "a")])

    assert star.betweenness(EXACT)["hub"] == 1.0
    # a and c are joined by two shortest paths, through b and through d, so each carries half.
    assert square.betweenness(EXACT) == pytest.approx({"a": 1 / 6, "b": 1 / 6, "c": 1 / 6, "d": 1 / 6})


def test_self_loops_and_small_graphs_have_no_brokerage() -> None:
    graph = CollaborationGraph([("a", "a"), ("a", "b")])

    assert graph.nodes == ("a", "b")
    assert graph.betweenness(EXACT) == {"a": 0.0, "b": 0.0}


def test_enough_pivots_give_the_exact_value() -> None:
    graph = CollaborationGraph([("a", "b"), ("b", "c"), ("c", "d"), ("b", "e")])

    assert graph.betweenness(5) == graph.betweenness(EXACT)
    assert graph.betweenness(2) == graph.betweenness(2)
    assert graph.betweenness(2) != graph.betweenness(EXACT)


@pytest.mark.parametrize("seed", [2020, 7, 11])
@pytest.mark.parametrize("days", [28, 90])
def test_sampled_brokerage_error_on_demo_data(seed: int, days: int) -> None:
    history = history_of(f"org-graph-{seed}", seed)
    assert history.latest_time is not None
    network = build_network(window_activity(history, day_window(days, history.latest_time), 0.5), {}, EXACT)
    exact = network.graph.betweenness(EXACT)
    sampled = network.graph.betweenness(32)

    exact_top, sampled_top = max(exact.values()), max(sampled.values())
    value_error = max(abs(exact[node] / exact_top - sampled[node] / sampled_top) for node in exact)
    five_brokers = {node for node, _ in sorted(exact.items(), key=lambda item: -item[1])[:5]}
    five_sampled = {node for node, _ in sorted(sampled.items(), key=lambda item: -item[1])[:5]}

    # Measured: 0.09 to 0.17 for 32 pivots on these 46- and 47-person graphs (docs/scoring.md).
    assert len(exact) >= 46
    assert value_error <= 0.2
    assert len(five_brokers & five_sampled) >= 4
