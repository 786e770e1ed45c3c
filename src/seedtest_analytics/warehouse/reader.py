"""The warehouse seam: what the jobs read from the models, whichever engine built them. The
engine (SEEDTEST_ENGINE) is chosen in one place, `current()`; the jobs never ask which."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Protocol

import psycopg

from .. import engine
from ..db.connection import ConnectionParams
from .postgres import PostgresWarehouse
from .scoring_inputs import ScoringInput
from .spark import SparkWarehouse


class Warehouse(Protocol):
    def read_scoring(
        self, conn: psycopg.Connection, schema: str, *, inputs: str, abilities: str | None
    ) -> tuple[list[ScoringInput], Sequence[float] | None]:
        """The rows of the scoring-input model, and the finite ability means of the ability
        model when `abilities` names it (the Bayesian prior)."""
        ...

    def window_counts(
        self, params: ConnectionParams, schema: str, since: dt.date, anchor: dt.date
    ) -> tuple[int, int, int]:
        """(user, topic, day) combinations with valid attempts in the window, attempts
        skipped for a null user, topic or time, and for a too long key."""
        ...

    def table_exists(self, params: ConnectionParams, schema: str, table: str) -> bool: ...

    def prepare_scratch(self, real: str, scratch: str, models: Sequence[str]) -> None:
        """A dry run's scratch copies of the incremental `models`, where the engine keeps
        them apart from the application's PostgreSQL."""
        ...

    def drop_scratch(self, scratch: str) -> None: ...


def current() -> Warehouse:
    """The reader of the engine SEEDTEST_ENGINE chooses."""
    return SparkWarehouse() if engine.is_spark() else PostgresWarehouse()
