"""A plain, slow reference of scoring model v2, computed straight from a list of envelopes.

It shares no code with spm_scoring: it reads the envelopes' JSON data, walks lists again and
again, and computes betweenness by counting shortest paths between every pair of people. The
stream processor must agree with it. Only the model's settings (weights, half-saturation counts,
decay, minimum group size) are read from the model object.
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import date, datetime, timedelta, timezone

from spm_events.envelope import Envelope

DAY = timedelta(days=1)
WEEK = timedelta(days=7)
OUTCOMES = {"achieved": 1.0, "partially": 0.5, "missed": 0.0}
SCORED_TYPES = {
    "GoalCreated", "GoalOwnersChanged", "GoalVisibilityChanged", "GoalStatusChanged", "KeyResultAdded",
    "CheckInRecorded", "CollaboratorTagged", "TagAccepted", "TagDeclined", "CollaboratorLeft",
    "CollaboratorUntagged", "CommentPosted", "CommentDeleted", "KudosGiven", "ReactionAdded", "ReactionRemoved",
}


class Event:
    def __init__(self, envelope: Envelope) -> None:
        self.name = envelope.type.split(".")[2]
        self.data = envelope.data
        self.actor = envelope.actorid
        self.time = envelope.time.astimezone(timezone.utc)
        self.version = envelope.aggregateversion
        self.id = envelope.id

    def key(self) -> tuple:
        return (self.time, self.version, self.id)

    def version_key(self) -> tuple:
        return (self.version, self.time, self.id)


class Window:
    def __init__(self, start: datetime, end: datetime, includes_start: bool) -> None:
        self.start, self.end, self.includes_start = start, end, includes_start

    def contains(self, moment: datetime) -> bool:
        if moment > self.end:
            return False
        return moment >= self.start if self.includes_start else moment > self.start


def weighted(values: dict[str, float | None], weights: dict[str, float]) -> tuple[float | None, dict[str, float]]:
    """Return the score and each component's value (0 where it does not apply)."""
    total = sum(weights.values())
    applicable = sum(weights[name] for name, value in values.items() if value is not None)
    shown = {name: (value if value is not None else 0.0) for name, value in values.items()}
    if applicable == 0:
        return None, shown
    score = sum(shown[name] * weights[name] * total / applicable for name in values)
    return round(score, 2), shown


def saturated(count: float, half: float) -> float:
    return count / (count + half) if count > 0 else 0.0


class ReferenceScorer:
    def __init__(self, envelopes: list[Envelope], model) -> None:  # type: ignore[no-untyped-def]
        self.model = model
        self.all_times = [envelope.time for envelope in envelopes]
        self.events = sorted((Event(envelope) for envelope in envelopes if envelope.type.split(".")[2] in SCORED_TYPES), key=Event.key)

    # Facts about goals

    def of(self, name: str, goal: str | None = None) -> list[Event]:
        return [event for event in self.events if event.name == name and (goal is None or event.data["goal_id"] == goal)]

    def created(self, goal: str) -> Event | None:
        found = self.of("GoalCreated", goal)
        return found[0] if found else None

    def goal_ids(self, as_of: datetime) -> list[str]:
        return sorted({event.data["goal_id"] for event in self.of("GoalCreated") if event.time <= as_of})

    def owners(self, goal: str, moment: datetime) -> tuple[str, set[str]]:
        candidates = [event for event in self.of("GoalCreated", goal) + self.of("GoalOwnersChanged", goal) if event.time <= moment]
        chosen = max(candidates, key=Event.version_key) if candidates else self.created(goal)
        assert chosen is not None
        return chosen.data["owner_id"], {chosen.data["owner_id"], *chosen.data.get("co_owner_ids", [])}

    def status_events(self, goal: str) -> list[Event]:
        return sorted(self.of("GoalCreated", goal) + self.of("GoalStatusChanged", goal), key=Event.version_key)

    def status(self, goal: str, as_of: datetime) -> tuple[str, Event]:
        candidates = [event for event in self.status_events(goal) if event.time <= as_of]
        last = candidates[-1]
        return (last.data.get("status") or "active"), last

    def closing(self, goal: str, as_of: datetime) -> Event | None:
        closing = None
        for event in self.status_events(goal):
            if event.time > as_of:
                continue
            status = event.data.get("status") or "active"
            if status == "closed":
                closing = event
            elif status != "archived":
                closing = None
        return closing

    def period(self, goal: str) -> tuple[datetime, datetime]:
        period = self.created(goal).data["period"]  # type: ignore[union-attr]
        start = datetime.combine(date.fromisoformat(period["start"]), datetime.min.time(), tzinfo=timezone.utc)
        end = datetime.combine(date.fromisoformat(period["end"]) + DAY, datetime.min.time(), tzinfo=timezone.utc)
        return start, end

    def team(self, goal: str) -> str:
        return self.created(goal).data["team"]  # type: ignore[union-attr]

    # Windows

    def window(self, label: str, as_of: datetime | None) -> Window:
        end = as_of or max(self.all_times)
        if label.endswith("d"):
            return Window(end - int(label[:-1]) * DAY, end, False)
        name = label.split(":", 1)[1]
        periods = [self.created(goal).data["period"] for goal in self.goal_ids(datetime.max.replace(tzinfo=timezone.utc))]  # type: ignore[union-attr]
        starts = [date.fromisoformat(period["start"]) for period in periods if period["name"] == name]
        ends = [date.fromisoformat(period["end"]) for period in periods if period["name"] == name]
        start = datetime.combine(min(starts), datetime.min.time(), tzinfo=timezone.utc)
        period_end = datetime.combine(max(ends) + DAY, datetime.min.time(), tzinfo=timezone.utc) - timedelta(microseconds=1)
        return Window(start, min(end, period_end), True)

    # Performance

    def performance(self, goals: list[str], window: Window) -> tuple[float | None, dict[str, float]]:
        as_of = window.end
        worked_on = [goal for goal in goals if self.status(goal, as_of)[0] not in ("draft", "archived")]
        values = {
            "pace": self.pace(worked_on, as_of),
            "cadence": self.cadence(worked_on, window),
        }
        closed = []
        for goal in goals:
            closing = self.closing(goal, as_of)
            if closing is not None and closing.data.get("outcome") in OUTCOMES and window.contains(closing.time):
                closed.append((goal, closing))
        pairs = []
        for goal, closing in closed:
            outcome = OUTCOMES[closing.data["outcome"]]
            for check_in in self.of("CheckInRecorded", goal):
                if check_in.data.get("confidence") is not None and check_in.time <= closing.time:
                    pairs.append((check_in.data["confidence"], outcome))
        values["confidence_calibration"] = (
            sum(1 - (confidence - outcome) ** 2 for confidence, outcome in pairs) / len(pairs) if pairs else None
        )
        values["goals_achieved"] = (
            sum(OUTCOMES[closing.data["outcome"]] for _goal, closing in closed) / len(closed) if closed else None
        )
        return weighted(values, self.model.performance.weights())

    def pace(self, goals: list[str], as_of: datetime) -> float | None:
        total_weight = total = 0.0
        for goal in goals:
            start, end = self.period(goal)
            expected = min(1.0, max(0.0, (min(as_of, end) - start) / (end - start)))
            if expected <= 0:
                continue
            for key_result in self.of("KeyResultAdded", goal):
                if key_result.time > as_of:
                    continue
                check_ins = [
                    event for event in self.of("CheckInRecorded", goal)
                    if event.data["key_result_id"] == key_result.data["key_result_id"] and event.time <= as_of
                ]
                progress = max(0.0, max(check_ins, key=Event.key).data["progress"]) if check_ins else 0.0
                weight = key_result.data.get("weight", 1.0)
                total_weight += weight
                total += weight * min(1.0, progress / expected)
        return total / total_weight if total_weight else None

    def cadence(self, goals: list[str], window: Window) -> float | None:
        count = math.ceil((window.end - window.start) / WEEK) if window.end > window.start else 0
        weeks = []
        for index in range(count):
            upper = window.end - index * WEEK
            lower = max(window.start, upper - WEEK)
            weeks.append(Window(lower, upper, window.includes_start and lower == window.start))
        shares = []
        for goal in goals:
            status, status_event = self.status(goal, window.end)
            closing = self.closing(goal, window.end)
            live_until = None
            if closing is not None:
                live_until = closing.time
            elif status == "archived":
                live_until = status_event.time
            created = self.created(goal).time  # type: ignore[union-attr]
            expected = [week for week in weeks if created <= week.end and (live_until is None or live_until > week.start)]
            if not expected:
                continue
            check_ins = [event for event in self.of("CheckInRecorded", goal) if window.contains(event.time)]
            covered = sum(1 for week in expected if any(week.contains(event.time) for event in check_ins))
            shares.append(covered / len(expected))
        return sum(shares) / len(shares) if shares else None

    # Collaboration

    def activity(self, window: Window) -> tuple[Counter, Counter, Counter, dict[str, set[str]], set[tuple[str, str]], dict[str, set[str]]]:
        """Return help, kudos given and received, accepted-tag goals per person, directed ties and helpers per goal.

        It also fills ``self.comments_on`` and ``self.kudos_on``: the counted weight of comments and
        kudos per goal, and ``self.accepted_on``: the people with an accepted tag per goal.
        """
        self.comments_on: Counter = Counter()
        self.kudos_on: Counter = Counter()
        self.accepted_on: dict[str, set[str]] = {}
        as_of = window.end
        existing = set(self.goal_ids(as_of))
        decay = self.model.repeat_decay
        help_, given, received = Counter(), Counter(), Counter()
        accepted: dict[str, set[str]] = {}
        ties: set[tuple[str, str]] = set()
        helpers: dict[str, set[str]] = {}
        for event in self.of("CheckInRecorded"):
            goal = event.data["goal_id"]
            if window.contains(event.time) and goal in existing:
                _owner, owners = self.owners(goal, event.time)
                if event.actor not in owners:
                    help_[event.actor] += 1
                    helpers.setdefault(goal, set()).add(event.actor)
                    ties |= {(event.actor, owner) for owner in owners}
        repeats: Counter = Counter()
        for event in self.of("CommentPosted"):
            goal = event.data["goal_id"]
            deleted = any(
                deletion.data["comment_id"] == event.data["comment_id"] and deletion.time <= as_of
                for deletion in self.of("CommentDeleted", goal)
            )
            if not window.contains(event.time) or goal not in existing or deleted:
                continue
            owner, owners = self.owners(goal, event.time)
            if event.actor in owners:
                continue
            repeats[(event.actor, owner)] += 1
            help_[event.actor] += decay ** (repeats[(event.actor, owner)] - 1)
            self.comments_on[goal] += decay ** (repeats[(event.actor, owner)] - 1)
            helpers.setdefault(goal, set()).add(event.actor)
            ties |= {(event.actor, owner) for owner in owners}
        repeats = Counter()
        for event in self.of("ReactionAdded"):
            goal = event.data["goal_id"]
            same = ("goal_id", "target_kind", "target_id", "reaction")
            removed = any(
                removal.actor == event.actor and all(removal.data[name] == event.data[name] for name in same)
                and removal.key() > event.key() and removal.time <= as_of
                for removal in self.of("ReactionRemoved", goal)
            )
            if not window.contains(event.time) or goal not in existing or removed:
                continue
            owner, owners = self.owners(goal, event.time)
            if event.actor in owners:
                continue
            repeats[(event.actor, owner)] += 1
            help_[event.actor] += decay ** (repeats[(event.actor, owner)] - 1)
            helpers.setdefault(goal, set()).add(event.actor)
            ties |= {(event.actor, owner) for owner in owners}
        repeats = Counter()
        for event in self.of("KudosGiven"):
            receiver = event.data["receiver_id"]
            if event.actor == receiver or not window.contains(event.time) or event.data["goal_id"] not in existing:
                continue
            repeats[(event.actor, receiver)] += 1
            weight = decay ** (repeats[(event.actor, receiver)] - 1)
            given[event.actor] += weight
            received[receiver] += weight
            self.kudos_on[event.data["goal_id"]] += weight
            ties.add((event.actor, receiver))
        for goal, person, tagger, accepted_at, ended_at in self.accepted_spans():
            if goal not in existing or not tagger or tagger == person:
                continue
            if accepted_at <= window.end and (ended_at is None or ended_at > window.start):
                accepted.setdefault(person, set()).add(goal)
                self.accepted_on.setdefault(goal, set()).add(person)
                helpers.setdefault(goal, set()).add(person)
                ties |= {(tagger, person), (person, tagger)}
        return help_, given, received, accepted, ties, helpers

    def accepted_spans(self) -> list[tuple[str, str, str, datetime, datetime | None]]:
        names = ("CollaboratorTagged", "TagAccepted", "TagDeclined", "CollaboratorLeft", "CollaboratorUntagged")
        pairs = sorted({(event.data["goal_id"], event.data["collaborator_id"]) for event in self.events if event.name in names})
        spans = []
        for goal, person in pairs:
            history = sorted(
                (event for event in self.events if event.name in names and event.data["goal_id"] == goal and event.data["collaborator_id"] == person),
                key=Event.version_key,
            )
            tagger, accepted_at = None, None
            for event in history:
                if event.name == "CollaboratorTagged":
                    if accepted_at is None:
                        tagger = event.actor
                elif event.name == "TagAccepted":
                    if accepted_at is None:
                        accepted_at = event.time
                elif accepted_at is not None:
                    spans.append((goal, person, tagger or "", accepted_at, event.time))
                    tagger, accepted_at = None, None
                else:
                    tagger = None
            if accepted_at is not None:
                spans.append((goal, person, tagger or "", accepted_at, None))
        return spans

    def home_teams(self, as_of: datetime) -> dict[str, str]:
        goals = self.goal_ids(as_of)
        owned: dict[str, Counter] = {}
        for goal in goals:
            for owner in self.owners(goal, as_of)[1]:
                owned.setdefault(owner, Counter())[self.team(goal)] += 1
        checked: dict[str, Counter] = {}
        for event in self.of("CheckInRecorded"):
            if event.data["goal_id"] in goals and event.time <= as_of:
                checked.setdefault(event.actor, Counter())[self.team(event.data["goal_id"])] += 1
        teams = {}
        for person in set(owned) | set(checked):
            counts = owned.get(person) or checked[person]
            best = max(counts.values())
            teams[person] = sorted(team for team, count in counts.items() if count == best)[0]
        return teams

    # Graph

    @staticmethod
    def betweenness(neighbours: dict[str, set[str]]) -> dict[str, float]:
        """Count, for every pair of people, the share of their shortest paths through each other person."""
        nodes = sorted(neighbours)
        count = len(nodes)

        def paths_from(source: str) -> tuple[dict[str, int], dict[str, int]]:
            distance, paths, frontier = {source: 0}, {source: 1}, [source]
            while frontier:
                following = []
                for node in frontier:
                    for other in sorted(neighbours[node]):
                        if other not in distance:
                            distance[other] = distance[node] + 1
                            paths[other] = 0
                            following.append(other)
                        if distance[other] == distance[node] + 1:
                            paths[other] += paths[node]
                frontier = following
            return distance, paths

        shortest = {node: paths_from(node) for node in nodes}
        scores = dict.fromkeys(nodes, 0.0)
        if count < 3:
            return scores
        for first_index, first in enumerate(nodes):
            for second in nodes[first_index + 1:]:
                distance_first, paths_first = shortest[first]
                if second not in distance_first:
                    continue
                for middle in nodes:
                    if middle in (first, second) or middle not in distance_first:
                        continue
                    distance_middle, paths_middle = shortest[middle]
                    if second in distance_middle and distance_first[middle] + distance_middle[second] == distance_first[second]:
                        scores[middle] += paths_first[middle] * paths_middle[second] / paths_first[second]
        return {node: score / ((count - 1) * (count - 2) / 2) for node, score in scores.items()}

    # Scores

    def people(self) -> list[str]:
        people = set()
        for event in self.events:
            people.add(event.actor)
            for field in ("owner_id", "collaborator_id", "receiver_id"):
                if field in event.data:
                    people.add(event.data[field])
            people.update(event.data.get("co_owner_ids", []))
        return sorted(people)

    def score_people(self, label: str, as_of: datetime | None = None) -> dict[str, dict]:
        """Return, per person, (score, component values) for performance and collaboration."""
        window = self.window(label, as_of)
        end = window.end
        help_, given, received, accepted, ties, _helpers = self.activity(window)
        teams = self.home_teams(end)
        neighbours: dict[str, set[str]] = {}
        for source, target in ties:
            if source != target:
                neighbours.setdefault(source, set()).add(target)
                neighbours.setdefault(target, set()).add(source)
        betweenness = self.betweenness(neighbours)
        top_betweenness = max(betweenness.values(), default=0.0)
        top_degree = max((len(others) for others in neighbours.values()), default=0)
        half = self.model.half_saturation
        results = {}

        for person in self.people():
            mine = neighbours.get(person, set())
            owned = [goal for goal in self.goal_ids(end) if person in self.owners(goal, end)[1]]
            known = [other for other in mine if other in teams]
            outgoing = {target for source, target in ties if source == person and target != person}
            incoming = {source for source, target in ties if target == person and source != person}

            values = {
                "distinct_collaborators": saturated(len(mine), half.distinct_collaborators),
                "accepted_tags": saturated(len(accepted.get(person, ())), half.accepted_tags),
                "help_on_others_goals": saturated(help_[person], half.help_on_others_goals),
                "kudos_received": saturated(received[person], half.kudos_received),
                "kudos_given": saturated(given[person], half.kudos_given),
                "cross_team_share": (
                    sum(1 for other in known if teams[other] != teams[person]) / len(known)
                    if person in teams and known else None
                ),
                "reciprocity": len(outgoing & incoming) / len(outgoing | incoming) if outgoing | incoming else None,
                "degree": len(mine) / top_degree if neighbours else None,
                "brokerage": None,
            }
            if neighbours:
                values["brokerage"] = betweenness.get(person, 0.0) / top_betweenness if top_betweenness > 0 else 0.0

            results[person] = {
                "performance": self.performance(owned, window),
                "collaboration": weighted(values, self.model.collaboration.weights()),
            }
        return results

    def graph(self, ties: set[tuple[str, str]]) -> dict[str, set[str]]:
        neighbours: dict[str, set[str]] = {}
        for source, target in ties:
            if source != target:
                neighbours.setdefault(source, set()).add(target)
                neighbours.setdefault(target, set()).add(source)
        return neighbours

    def score_goals(self, label: str, as_of: datetime | None = None) -> dict[str, dict]:
        window = self.window(label, as_of)
        _help, _given, _received, _accepted, _ties, helpers = self.activity(window)
        teams = self.home_teams(window.end)
        half = self.model.half_saturation
        results = {}
        for goal in self.goal_ids(window.end):
            contributors = helpers.get(goal, set())
            known = [person for person in contributors if person in teams]
            values = {
                "contributors": saturated(len(contributors), half.contributors),
                "accepted_tags": saturated(len(self.accepted_on.get(goal, ())), half.accepted_tags),
                "comments": saturated(self.comments_on[goal], half.comments),
                "kudos": saturated(self.kudos_on[goal], half.kudos),
                "cross_team_contributors": (
                    sum(1 for person in known if teams[person] != self.team(goal)) / len(known) if known else None
                ),
            }
            results[goal] = {
                "performance": self.performance([goal], window),
                "collaboration": weighted(values, self.model.goal_collaboration.weights()),
            }
        return results

    def score_teams(self, label: str, as_of: datetime | None = None) -> dict[str, dict]:
        window = self.window(label, as_of)
        end = window.end
        _help, _given, _received, _accepted, ties, _helpers = self.activity(window)
        teams = self.home_teams(end)
        neighbours = self.graph(ties)
        betweenness = self.betweenness(neighbours)
        top_betweenness = max(betweenness.values(), default=0.0)
        top_degree = max((len(others) for others in neighbours.values()), default=0)
        edges = {frozenset(pair) for pair in ties if pair[0] != pair[1]}
        goals = self.goal_ids(end)
        names = {self.team(goal) for goal in goals}
        names |= {team for goal in goals for team in self.created(goal).data.get("contributing_teams", [])}  # type: ignore[union-attr]
        names |= set(teams.values())

        results = {}
        for team in sorted(names):
            members = {person for person, home in teams.items() if home == team}
            collaboration = None

            if len(members) >= self.model.min_group_size:
                incident = [edge for edge in edges if edge & members]
                crossing = [edge for edge in incident if not edge <= members]
                internal = [edge for edge in incident if edge <= members]

                values = {
                    "mean_degree": (
                        sum(len(neighbours.get(member, ())) / top_degree for member in members) / len(members) if neighbours else None
                    ),
                    "mean_brokerage": (
                        (sum(betweenness.get(member, 0.0) for member in members) / len(members) / top_betweenness if top_betweenness > 0 else 0.0)
                        if neighbours else None
                    ),
                    "cross_team_share": len(crossing) / len(incident) if incident else None,
                    "internal_density": len(internal) / (len(members) * (len(members) - 1) / 2),
                }
                collaboration = weighted(values, self.model.team_network.weights())
            results[team] = {
                "members": len(members),
                "performance": self.performance([goal for goal in goals if self.team(goal) == team], window),
                "collaboration": collaboration,
            }
        return results
