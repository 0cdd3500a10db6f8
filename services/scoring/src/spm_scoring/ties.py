"""Credits per person and the ties of the collaboration graph, from the activity in one window.

Sources, all inside the window and on goals that exist at its end:
- a check-in by someone who does not own the goal at that moment: help credited to the actor,
  and a tie from the actor to each owner and co-owner;
- a comment (not deleted by the window's end) by a non-owner: help with diminishing weight, and
  the same ties;
- a reaction (to the goal, one of its check-ins or one of its comments, not removed by the
  window's end) by a non-owner: help with diminishing weight, and the same ties;
- kudos: given and received with diminishing weight, and a tie from giver to receiver;
- an accepted tag whose collaboration overlaps the window: an accepted tag for the collaborator,
  and ties both ways between tagger and collaborator, because both consented to it. The
  collaboration lasts from the acceptance to a decline, leave or untag.

Diminishing weight: the k-th kudos from one person to another in the window (k = 1, 2, ...) counts
``decay ** (k - 1)``, and so does the k-th comment by one person on goals owned by the same
owner, and the k-th reaction by one person on goals owned by the same owner. With the default
decay 0.5 one pair adds at most 2 per kind, however often it repeats. A person is never
credited for, or tied to, themselves.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from enum import Enum

from spm_scoring.facts import Fact
from spm_scoring.history import AcceptedTag, OrgHistory
from spm_scoring.windows import Window


class CreditKind(str, Enum):
    HELP = "help"
    KUDOS_GIVEN = "kudos_given"
    KUDOS_RECEIVED = "kudos_received"


@dataclass(frozen=True)
class Credit:
    person_id: str
    kind: CreditKind
    weight: float
    fact: Fact
    goal_id: str


@dataclass(frozen=True)
class Tie:
    """A directed tie: ``source`` did something for ``target``."""

    source: str
    target: str
    fact: Fact
    goal_id: str


@dataclass
class WindowActivity:
    credits: list[Credit] = field(default_factory=list)
    ties: list[Tie] = field(default_factory=list)
    accepted_tags: list[AcceptedTag] = field(default_factory=list)
    # Non-owners who helped on each goal, with the facts that show it, for the goal's own score.
    helpers_by_goal: dict[str, list[tuple[str, Fact, float]]] = field(default_factory=lambda: defaultdict(list))


def window_activity(history: OrgHistory, window: Window, decay: float) -> WindowActivity:
    activity = WindowActivity()
    as_of = window.end
    for check_in in history.check_ins:
        if not window.contains(check_in.occurred_at) or not history.goal_exists(check_in.goal_id, as_of):
            continue
        _credit_help(history, activity, check_in, 1.0)

    comment_counts: dict[tuple[str, str], int] = defaultdict(int)
    for comment in history.comments:
        if not window.contains(comment.occurred_at) or not history.goal_exists(comment.goal_id, as_of):
            continue
        if history.is_deleted_comment(comment, as_of):
            continue
        owner_id, owner_ids = history.owners_at(comment.goal_id or "", comment.occurred_at)
        if comment.actor_id in owner_ids:
            continue
        comment_counts[(comment.actor_id, owner_id)] += 1
        weight = decay ** (comment_counts[(comment.actor_id, owner_id)] - 1)
        _credit_help(history, activity, comment, weight)

    reaction_counts: dict[tuple[str, str], int] = defaultdict(int)
    for reaction in history.reactions:
        if not window.contains(reaction.occurred_at) or not history.goal_exists(reaction.goal_id, as_of):
            continue
        if history.is_removed_reaction(reaction, as_of):
            continue
        owner_id, owner_ids = history.owners_at(reaction.goal_id or "", reaction.occurred_at)
        if reaction.actor_id in owner_ids:
            continue
        reaction_counts[(reaction.actor_id, owner_id)] += 1
        weight = decay ** (reaction_counts[(reaction.actor_id, owner_id)] - 1)
        _credit_help(history, activity, reaction, weight)

    kudos_counts: dict[tuple[str, str], int] = defaultdict(int)
    for kudos in history.kudos:
        giver, receiver = kudos.actor_id, kudos.person_id or ""
        if giver == receiver or not window.contains(kudos.occurred_at):
            continue
        if not history.goal_exists(kudos.goal_id, as_of):
            continue
        kudos_counts[(giver, receiver)] += 1
        weight = decay ** (kudos_counts[(giver, receiver)] - 1)
        goal_id = kudos.goal_id or ""
        activity.credits.append(Credit(giver, CreditKind.KUDOS_GIVEN, weight, kudos, goal_id))
        activity.credits.append(Credit(receiver, CreditKind.KUDOS_RECEIVED, weight, kudos, goal_id))
        activity.ties.append(Tie(giver, receiver, kudos, goal_id))

    for span in history.accepted_tags:
        if not span.overlaps(window.start, window.end):
            continue
        # An acceptance without a known tagger, or of one's own tag, creates no tie and never counts.
        if not span.tagger_id or span.tagger_id == span.person_id or not history.goal_exists(span.goal_id, as_of):
            continue
        activity.accepted_tags.append(span)
        activity.ties.append(Tie(span.tagger_id, span.person_id, span.accepted, span.goal_id))
        activity.ties.append(Tie(span.person_id, span.tagger_id, span.accepted, span.goal_id))
    return activity


def _credit_help(history: OrgHistory, activity: WindowActivity, fact: Fact, weight: float) -> None:
    goal_id = fact.goal_id or ""
    _owner_id, owner_ids = history.owners_at(goal_id, fact.occurred_at)
    if fact.actor_id in owner_ids:
        return
    activity.credits.append(Credit(fact.actor_id, CreditKind.HELP, weight, fact, goal_id))
    activity.helpers_by_goal[goal_id].append((fact.actor_id, fact, weight))
    for owner_id in sorted(owner_ids):
        activity.ties.append(Tie(fact.actor_id, owner_id, fact, goal_id))
