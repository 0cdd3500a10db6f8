"""Reads the scoring read model and computes scores with the formula, always within one org."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, exists, select, union_all
from sqlalchemy.engine import Connection

from spm_scoring import formula
from spm_scoring.activities import Interaction, InteractionKind, as_utc
from spm_scoring.formula import CheckIn, Score
from spm_scoring.tables import ScoringTables


@dataclass(frozen=True)
class PersonScores:
    as_of: datetime
    performance: Score
    collaboration: Score


@dataclass(frozen=True)
class RankedScore:
    person_id: str
    collaboration: Score


class ScoreQueries:
    def __init__(self, engine: Engine, tables: ScoringTables) -> None:
        self.engine = engine
        self.tables = tables

    def latest_event_time(self, org_id: str) -> datetime | None:
        """Return the latest event time seen for the org, the default ``as_of`` of every query."""
        table = self.tables.org_clock
        with self.engine.connect() as connection:
            moment = connection.execute(
                select(table.c.latest_event_time).where(table.c.org_id == org_id)
            ).scalar()
        return None if moment is None else as_utc(moment)

    def is_known_person(self, org_id: str, person_id: str) -> bool:
        """Return whether any row of the org names the person."""
        tables = self.tables
        mentions = [
            (tables.goals, tables.goals.c.owner_id),
            (tables.check_ins, tables.check_ins.c.actor_id),
            (tables.interactions, tables.interactions.c.person_id),
            (tables.interactions, tables.interactions.c.other_person_id),
            (tables.pending_activities, tables.pending_activities.c.actor_id),
            (tables.pending_activities, tables.pending_activities.c.target_id),
        ]
        probes = [
            select(exists().where(table.c.org_id == org_id, column == person_id).label("found"))
            for table, column in mentions
        ]
        with self.engine.connect() as connection:
            return any(connection.execute(union_all(*probes)).scalars())

    def person_scores(self, org_id: str, person_id: str, as_of: datetime) -> PersonScores:
        as_of = as_utc(as_of)
        with self.engine.connect() as connection:
            performance = self._performance(connection, org_id, person_id, as_of)
            interactions = self._interactions_in_window(connection, org_id, as_of, person_id)
        collaboration = formula.collaboration(person_id, interactions, as_of)
        return PersonScores(as_of=as_of, performance=performance, collaboration=collaboration)

    def top_collaborators(self, org_id: str, as_of: datetime, limit: int) -> list[RankedScore]:
        """Rank the people credited in the window by collaboration score, highest first, ties by person id."""
        as_of = as_utc(as_of)
        # NOTE: loads the org's whole window into memory; an aggregate query would scale further.
        with self.engine.connect() as connection:
            interactions = self._interactions_in_window(connection, org_id, as_of, person_id=None)
        by_person: dict[str, list[Interaction]] = defaultdict(list)
        for interaction in interactions:
            by_person[interaction.person_id].append(interaction)
        ranked = [
            RankedScore(person_id, formula.collaboration(person_id, person_interactions, as_of))
            for person_id, person_interactions in by_person.items()
        ]
        ranked.sort(key=lambda entry: (-(entry.collaboration.score or 0.0), entry.person_id))
        return ranked[:limit]

    def _performance(self, connection: Connection, org_id: str, person_id: str, as_of: datetime) -> Score:
        goals, key_results, check_ins = self.tables.goals, self.tables.key_results, self.tables.check_ins
        owned_goal_ids = select(goals.c.goal_id).where(
            goals.c.org_id == org_id, goals.c.owner_id == person_id, goals.c.created_at <= as_of
        )
        owns_goals = connection.execute(select(exists(owned_goal_ids))).scalar()
        owned_key_result_ids = select(key_results.c.key_result_id).where(
            key_results.c.org_id == org_id,
            key_results.c.goal_id.in_(owned_goal_ids),
            key_results.c.added_at <= as_of,
        )
        key_result_ids = connection.execute(owned_key_result_ids).scalars().all()
        rows = connection.execute(
            select(
                check_ins.c.key_result_id,
                check_ins.c.progress,
                check_ins.c.occurred_at,
                check_ins.c.aggregate_version,
                check_ins.c.event_id,
            ).where(
                check_ins.c.org_id == org_id,
                check_ins.c.key_result_id.in_(owned_key_result_ids),
                check_ins.c.occurred_at <= as_of,
            )
        ).all()
        recorded = [
            CheckIn(row.key_result_id, row.progress, as_utc(row.occurred_at), row.aggregate_version, row.event_id)
            for row in rows
        ]
        return formula.performance(bool(owns_goals), key_result_ids, recorded, as_of)

    def _interactions_in_window(
        self, connection: Connection, org_id: str, as_of: datetime, person_id: str | None
    ) -> list[Interaction]:
        table = self.tables.interactions
        query = select(table).where(
            table.c.org_id == org_id,
            table.c.occurred_at > as_of - formula.WINDOW,
            table.c.occurred_at <= as_of,
        )
        if person_id is not None:
            query = query.where(table.c.person_id == person_id)
        return [
            Interaction(
                org_id=row.org_id,
                event_id=row.event_id,
                person_id=row.person_id,
                kind=InteractionKind(row.kind),
                other_person_id=row.other_person_id,
                goal_id=row.goal_id,
                goal_team=row.goal_team,
                weight=row.weight,
                occurred_at=as_utc(row.occurred_at),
            )
            for row in connection.execute(query)
        ]
