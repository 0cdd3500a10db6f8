"""Model v2 collaboration components for people, goals and teams, from one window's activity."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from spm_scoring.components import ComponentResult, Evidence, saturate
from spm_scoring.facts import Fact, FactKind
from spm_scoring.graph import CollaborationGraph
from spm_scoring.history import GoalView
from spm_scoring.model import ScoringModelV2
from spm_scoring.ties import CreditKind, WindowActivity


@dataclass
class Network:
    """The window's graph with what the components need about it, computed once per window."""

    activity: WindowActivity
    graph: CollaborationGraph
    brokerage: dict[str, float]
    max_brokerage: float
    first_fact: dict[frozenset[str], Fact]
    outgoing: dict[str, set[str]]
    incoming: dict[str, set[str]]
    first_directed_fact: dict[tuple[str, str], Fact]
    home_teams: dict[str, str]


def build_network(activity: WindowActivity, home_teams: dict[str, str], pivots: int) -> Network:
    first_fact: dict[frozenset[str], Fact] = {}
    first_directed_fact: dict[tuple[str, str], Fact] = {}
    outgoing: dict[str, set[str]] = defaultdict(set)
    incoming: dict[str, set[str]] = defaultdict(set)
    for tie in activity.ties:
        if tie.source == tie.target:
            continue
        pair = frozenset((tie.source, tie.target))
        if pair not in first_fact or tie.fact.order_key < first_fact[pair].order_key:
            first_fact[pair] = tie.fact
        directed = (tie.source, tie.target)
        if directed not in first_directed_fact or tie.fact.order_key < first_directed_fact[directed].order_key:
            first_directed_fact[directed] = tie.fact
        outgoing[tie.source].add(tie.target)
        incoming[tie.target].add(tie.source)
    graph = CollaborationGraph(tuple(pair) for pair in first_fact)  # type: ignore[misc]
    brokerage = graph.betweenness(pivots)
    return Network(
        activity=activity,
        graph=graph,
        brokerage=brokerage,
        max_brokerage=max(brokerage.values(), default=0.0),
        first_fact=first_fact,
        outgoing=outgoing,
        incoming=incoming,
        first_directed_fact=first_directed_fact,
        home_teams=home_teams,
    )


def person_collaboration(network: Network, person_id: str, model: ScoringModelV2) -> list[ComponentResult]:
    half = model.half_saturation
    graph = network.graph
    neighbours = graph.neighbours.get(person_id, ())
    tie_evidence = [Evidence(network.first_fact[frozenset((person_id, other))], 1.0) for other in neighbours]
    credits = [credit for credit in network.activity.credits if credit.person_id == person_id]

    def credited(kind: CreditKind, name: str, half_count: float) -> ComponentResult:
        mine = [credit for credit in credits if credit.kind is kind]
        raw = sum(credit.weight for credit in mine)
        evidence = tuple(Evidence(credit.fact, credit.weight) for credit in mine)
        return ComponentResult(name, saturate(raw, half_count), raw, evidence)

    accepted = {}
    for span in network.activity.accepted_tags:
        if span.person_id == person_id and span.goal_id not in accepted:
            accepted[span.goal_id] = span.accepted
    graph_is_empty = not graph.neighbours
    max_degree = graph.max_degree()
    degree_value = None if graph_is_empty else len(neighbours) / max_degree
    brokerage_value = None
    if not graph_is_empty:
        own = network.brokerage.get(person_id, 0.0)
        brokerage_value = own / network.max_brokerage if network.max_brokerage > 0 else 0.0
    return [
        ComponentResult(
            "distinct_collaborators", saturate(len(neighbours), half.distinct_collaborators), float(len(neighbours)),
            tuple(tie_evidence),
        ),
        ComponentResult(
            "accepted_tags", saturate(len(accepted), half.accepted_tags), float(len(accepted)),
            tuple(Evidence(fact, 1.0) for fact in accepted.values()),
        ),
        credited(CreditKind.HELP, "help_on_others_goals", half.help_on_others_goals),
        credited(CreditKind.KUDOS_RECEIVED, "kudos_received", half.kudos_received),
        credited(CreditKind.KUDOS_GIVEN, "kudos_given", half.kudos_given),
        _cross_team_share(network, person_id, neighbours),
        _reciprocity(network, person_id),
        ComponentResult("degree", degree_value, float(len(neighbours)), tuple(tie_evidence)),
        ComponentResult(
            "brokerage", brokerage_value, network.brokerage.get(person_id, 0.0) if not graph_is_empty else None,
            tuple(tie_evidence) if brokerage_value else (),
        ),
    ]


def _cross_team_share(network: Network, person_id: str, neighbours: tuple[str, ...]) -> ComponentResult:
    own_team = network.home_teams.get(person_id)
    known = [other for other in neighbours if other in network.home_teams]
    if own_team is None or not known:
        return ComponentResult("cross_team_share", None)
    crossing = [other for other in known if network.home_teams[other] != own_team]
    evidence = tuple(Evidence(network.first_fact[frozenset((person_id, other))], 1 / len(known)) for other in crossing)
    return ComponentResult("cross_team_share", len(crossing) / len(known), float(len(crossing)), evidence)


def _reciprocity(network: Network, person_id: str) -> ComponentResult:
    outgoing, incoming = network.outgoing.get(person_id, set()), network.incoming.get(person_id, set())
    partners = outgoing | incoming
    if not partners:
        return ComponentResult("reciprocity", None)
    mutual = sorted(outgoing & incoming)
    evidence = []
    for other in mutual:
        evidence.append(Evidence(network.first_directed_fact[(person_id, other)], 0.5 / len(partners)))
        evidence.append(Evidence(network.first_directed_fact[(other, person_id)], 0.5 / len(partners)))
    return ComponentResult("reciprocity", len(mutual) / len(partners), float(len(mutual)), tuple(evidence))


def goal_collaboration(network: Network, goal: GoalView, model: ScoringModelV2) -> list[ComponentResult]:
    half = model.half_saturation
    helpers = network.activity.helpers_by_goal.get(goal.goal_id, [])
    contributor_facts: dict[str, Fact] = {}
    for person_id, fact, _weight in helpers:
        contributor_facts.setdefault(person_id, fact)
    accepted: dict[str, Fact] = {}
    for span in network.activity.accepted_tags:
        if span.goal_id == goal.goal_id:
            accepted.setdefault(span.person_id, span.accepted)
            contributor_facts.setdefault(span.person_id, span.accepted)
    comments = [(fact, weight) for _person, fact, weight in helpers if fact.kind is FactKind.COMMENT_POSTED]
    kudos = [
        credit for credit in network.activity.credits
        if credit.goal_id == goal.goal_id and credit.kind is CreditKind.KUDOS_RECEIVED
    ]
    comment_total = sum(weight for _fact, weight in comments)
    kudos_total = sum(credit.weight for credit in kudos)
    return [
        ComponentResult(
            "contributors", saturate(len(contributor_facts), half.contributors), float(len(contributor_facts)),
            tuple(Evidence(fact, 1.0) for fact in contributor_facts.values()),
        ),
        ComponentResult(
            "accepted_tags", saturate(len(accepted), half.accepted_tags), float(len(accepted)),
            tuple(Evidence(fact, 1.0) for fact in accepted.values()),
        ),
        ComponentResult(
            "comments", saturate(comment_total, half.comments), comment_total,
            tuple(Evidence(fact, weight) for fact, weight in comments),
        ),
        ComponentResult(
            "kudos", saturate(kudos_total, half.kudos), kudos_total,
            tuple(Evidence(credit.fact, credit.weight) for credit in kudos),
        ),
        _cross_team_contributors(network, goal, contributor_facts),
    ]


def _cross_team_contributors(network: Network, goal: GoalView, contributor_facts: dict[str, Fact]) -> ComponentResult:
    known = [person_id for person_id in contributor_facts if person_id in network.home_teams]
    if not known:
        return ComponentResult("cross_team_contributors", None)
    crossing = [person_id for person_id in known if network.home_teams[person_id] != goal.team]
    evidence = tuple(Evidence(contributor_facts[person_id], 1 / len(known)) for person_id in crossing)
    return ComponentResult("cross_team_contributors", len(crossing) / len(known), float(len(crossing)), evidence)


def team_network(network: Network, members: frozenset[str]) -> list[ComponentResult]:
    """Compute the team's network figure: its members' mean degree and brokerage, cross-team share and internal density."""
    graph = network.graph
    graph_is_empty = not graph.neighbours
    incident = {pair: fact for pair, fact in network.first_fact.items() if pair & members}
    internal = {pair: fact for pair, fact in incident.items() if pair <= members}
    crossing = {pair: fact for pair, fact in incident.items() if not pair <= members}
    member_evidence = tuple(Evidence(fact, 1.0) for fact in incident.values())
    mean_degree = mean_brokerage = None
    if not graph_is_empty:
        max_degree = graph.max_degree()
        mean_degree = sum(graph.degree(member) / max_degree for member in members) / len(members)
        if network.max_brokerage > 0:
            mean_brokerage = sum(network.brokerage.get(member, 0.0) for member in members) / len(members) / network.max_brokerage
        else:
            mean_brokerage = 0.0
    cross_share = len(crossing) / len(incident) if incident else None
    possible_pairs = len(members) * (len(members) - 1) / 2
    return [
        ComponentResult("mean_degree", mean_degree, None, member_evidence),
        ComponentResult("mean_brokerage", mean_brokerage, None, member_evidence if mean_brokerage else ()),
        ComponentResult(
            "cross_team_share", cross_share, float(len(crossing)), tuple(Evidence(fact, 1.0) for fact in crossing.values())
        ),
        ComponentResult(
            "internal_density", len(internal) / possible_pairs, float(len(internal)),
            tuple(Evidence(fact, 1.0) for fact in internal.values()),
        ),
    ]
