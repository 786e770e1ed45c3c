"""The warehouse seam: what the jobs read from the models, whichever engine built them, and
what the engine's place of the models allows. The engine (SEEDTEST_ENGINE) is chosen in one
place, `current()`; the jobs ask the warehouse what it can do, never which engine it is."""

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

    def last_activity_apart(self, schema: str, since: dt.date) -> list[tuple[str, float]] | None:
        """For the returners' mark, when the models live apart from weekly_kpi: (user_id,
        last activity as epoch seconds) of the users of `user_last_activity` last active from
        about the start of `since`, in one query; None where the mark joins the model in
        place (beside weekly_kpi)."""
        ...

    @property
    def beside_weekly_kpi(self) -> bool:
        """The models live in the application's PostgreSQL, beside weekly_kpi: the P/S step
        can check the inputs' anchor there, mark the returners, run the post-write tests
        and read the churn champion, and a run can catch up from the models' run registry."""
        ...

    def dry_run_schema(self, schema: str) -> str:
        """Where a dry run of the project's `schema` builds its models."""
        ...

    @property
    def marks_dry_run(self) -> bool:
        """A dry run builds marked relations beside the real ones (dbt/dry_run.py)."""
        ...

    def begin_dry_run(self, params: ConnectionParams, schema: str, models: Sequence[str]) -> None:
        """Before a dry run: its place made ready, a killed dry run's leftovers (only its own)
        gone; `models` are the incremental models it starts from."""
        ...

    def end_dry_run(self, params: ConnectionParams, schema: str) -> None:
        """After a dry run: what it built is dropped (only its own)."""
        ...


def current() -> Warehouse:
    """The warehouse of the engine SEEDTEST_ENGINE chooses (the only place that asks)."""
    return SparkWarehouse() if engine.is_spark() else PostgresWarehouse()
