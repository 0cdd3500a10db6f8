"""Opens the scoring read model: one database holding the score tables and the consumed positions."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.exc import DatabaseError

from spm_events.database import create_database_engine
from spm_events.readmodel import PositionedReadModel
from spm_scoring.settings import ScoringSettings
from spm_scoring.tables import ScoringTables

READ_DATABASE_FILE = "scoring-read.db"


@dataclass(frozen=True)
class ScoringStore:
    engine: Engine
    tables: ScoringTables
    read_model: PositionedReadModel


def open_store(settings: ScoringSettings) -> ScoringStore:
    """Connect to the read model's database and create any missing table."""
    engine = create_database_engine(settings.sqlalchemy_url(READ_DATABASE_FILE))
    tables = ScoringTables()
    read_model = PositionedReadModel(engine, tables.metadata, settings.processor_id)
    try:
        read_model.create_tables()
    except DatabaseError:
        # The API and the worker start together. When both create a table at once, one of them
        # fails, and its second pass finds every table in place.
        read_model.create_tables()
    return ScoringStore(engine=engine, tables=tables, read_model=read_model)
