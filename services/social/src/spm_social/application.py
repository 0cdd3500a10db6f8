"""Use cases of the social service: load a goal's social graph, change it, save its new events."""

from __future__ import annotations

import logging
import random
import threading
import time
from datetime import datetime
from typing import Callable, Mapping, Protocol

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError

from spm_events.auth import Principal
from spm_events.database import retry_creation_race
from spm_events.visibility import GoalAudience
from spm_social.directory_lookup import PeopleLookup
from spm_social.domain import GoalSocialGraph, graph_id_for
from spm_social.goal_interactions import GoalInteractions
from spm_social.network_commands import CommunityCommands, PersonFollowCommands

logger = logging.getLogger(__name__)

# Requests in one process that change the same graph take the same lock, so they never conflict.
# Two API replicas still can: both load version N, and the second save fails with a version
# conflict. That save is retried on the fresh state up to MAX_SAVE_ATTEMPTS times, then gets 409.
GRAPH_LOCK_STRIPES = 64
MAX_SAVE_ATTEMPTS = 5


class GoalAudiences(Protocol):
    def audience_of(self, org_id: str, goal_id: str) -> GoalAudience | None: ...


class GoalNotFoundError(LookupError):
    """Raised for a goal the service has not seen created in the organisation, or that the actor may not see.

    Both cases raise the same error, so no response distinguishes a hidden goal from a missing one.
    """

    def __init__(self, org_id: str, goal_id: str) -> None:
        super().__init__(f"goal {goal_id!r} not found")
        self.org_id = org_id
        self.goal_id = goal_id


class ConcurrentChangeError(RuntimeError):
    """Raised when a graph kept changing under a command for every save attempt."""


class SocialApplication(GoalInteractions, CommunityCommands, PersonFollowCommands, Application):
    # The relay reads up to this many notifications per call; eventsourcing rejects larger selections.
    log_section_size = 500

    def __init__(
        self, goal_audiences: GoalAudiences, env: Mapping[str, str] | None = None, people: PeopleLookup | None = None
    ) -> None:
        # The API and the relay create the event store's tables at the same start-up.
        retry_creation_race(lambda: super(SocialApplication, self).__init__(env=dict(env or {})), "the social event store")
        self.goal_audiences = goal_audiences
        # Commands that name a person check the people directory; a relay-only application needs none.
        self.people = people
        self._graph_locks = [threading.Lock() for _ in range(GRAPH_LOCK_STRIPES)]

    def follow_goal(self, actor: Principal, goal_id: str, occurred_at: datetime) -> bool:
        """Make the actor follow a goal they may see; return False if they already followed it."""
        self._check_goal_is_visible(actor, goal_id)
        return self._change_graph(actor.org_id, goal_id, lambda graph: graph.follow(actor.person_id, occurred_at))

    def unfollow_goal(self, actor: Principal, goal_id: str, occurred_at: datetime) -> bool:
        """Make the actor stop following a goal they may see; return False if they did not follow it."""
        self._check_goal_is_visible(actor, goal_id)
        return self._change_graph(actor.org_id, goal_id, lambda graph: graph.unfollow(actor.person_id, occurred_at))

    def tag_collaborator(self, actor: Principal, goal_id: str, collaborator_id: str, occurred_at: datetime) -> bool:
        """Tag an active person of the directory on a goal the actor may see; return False while their tag is open."""
        self._check_goal_is_visible(actor, goal_id)
        if collaborator_id != actor.person_id:  # the graph rejects tagging yourself with its own message
            self._check_person_is_active(actor.org_id, collaborator_id, "person_id")
        return self._change_graph(
            actor.org_id, goal_id, lambda graph: graph.tag_collaborator(collaborator_id, actor.person_id, occurred_at)
        )

    def get_followers(self, reader: Principal, goal_id: str) -> list[str]:
        """Return the follower ids of a goal the reader may see, sorted."""
        self._check_goal_is_visible(reader, goal_id)
        graph = self._load_graph(reader.org_id, goal_id)
        return sorted(graph.followers) if graph else []

    def get_tagger(self, org_id: str, goal_id: str, collaborator_id: str) -> str | None:
        """Return who tagged ``collaborator_id`` on the goal, or None if the person is not tagged."""
        graph = self._load_graph(org_id, goal_id)
        return graph.collaborators.get(collaborator_id) if graph else None

    def max_notification_id(self) -> int:
        return self.recorder.max_notification_id() or 0

    def _change_graph(self, org_id: str, goal_id: str, change: Callable[[GoalSocialGraph], bool]) -> bool:
        graph_id = graph_id_for(org_id, goal_id)
        with self._graph_locks[graph_id.int % GRAPH_LOCK_STRIPES]:
            for attempt in range(1, MAX_SAVE_ATTEMPTS + 1):
                graph = self._load_graph(org_id, goal_id) or GoalSocialGraph(org_id=org_id, goal_id=goal_id)
                if not change(graph):
                    return False
                try:
                    self.save(graph)
                except IntegrityError:
                    logger.warning(
                        "graph changed by another process org_id=%s goal_id=%s attempt=%s", org_id, goal_id, attempt
                    )
                    time.sleep(random.uniform(0.005, 0.02) * attempt)
                    continue
                logger.info(
                    "graph saved org_id=%s goal_id=%s graph_id=%s version=%s", org_id, goal_id, graph_id, graph.version
                )
                return True
        raise ConcurrentChangeError(f"goal {goal_id!r} kept changing during {MAX_SAVE_ATTEMPTS} attempts")

    def _load_graph(self, org_id: str, goal_id: str) -> GoalSocialGraph | None:
        try:
            return self.repository.get(graph_id_for(org_id, goal_id))
        except AggregateNotFoundError:
            return None

    def _check_goal_is_visible(self, principal: Principal, goal_id: str) -> GoalAudience:
        # NOTE: the audience comes from the read model, so a change the worker has not applied yet
        # (a goal turned private moments ago) does not stop a command until it is applied.
        audience = self.goal_audiences.audience_of(principal.org_id, goal_id)
        if audience is None or not audience.can_see(principal):
            logger.debug(
                "goal not visible org_id=%s goal_id=%s person_id=%s known=%s",
                principal.org_id, goal_id, principal.person_id, audience is not None,
            )
            raise GoalNotFoundError(principal.org_id, goal_id)
        return audience
