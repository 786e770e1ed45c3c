"""The PostgreSQL reader of the models (the default engine): dbt's results read from the
application's database, each read one set-based query."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import psycopg
from psycopg import sql

from ..db.connection import ConnectionParams, connect
from ..db.failures import database_step
from ..dbt import dry_run
from .scoring_inputs import ScoringInput, read_prior_means, read_scoring_inputs

_WINDOW_COUNTS = """
        select
            (select count(*) from {aggregated}
             where activity_date between %(since)s and %(anchor)s),
            count(*) filter (where invalid_reason in ('no_user', 'no_topic', 'no_time')),
            count(*) filter (where invalid_reason in ('topic_too_long', 'user_id_too_long'))
        from {windowed}
        where not is_valid
            and (activity_date is null or activity_date between %(since)s and %(anchor)s)
        """


class PostgresWarehouse:
    """The models on the application's PostgreSQL (the Warehouse of the default engine)."""

    def read_scoring(
        self, conn: psycopg.Connection, schema: str, *, inputs: str, abilities: str | None
    ) -> tuple[list[ScoringInput], Sequence[float] | None]:
        """The scoring inputs and, when `abilities` is given, the prior means, on `conn`;
        the read transaction is ended before the caller goes on."""
        with database_step("reading the scoring inputs"):
            rows = read_scoring_inputs(conn, schema, inputs)
            means = None if abilities is None else read_prior_means(conn, schema, abilities)
            conn.rollback()
        return rows, means

    def window_counts(
        self, params: ConnectionParams, schema: str, since: dt.date, anchor: dt.date
    ) -> tuple[int, int, int]:
        query = sql.SQL(_WINDOW_COUNTS).format(  # a dry run's relations (dbt/dry_run.py)
            aggregated=sql.Identifier(schema, dry_run.relation("int_topic_daily__aggregated")),
            windowed=sql.Identifier(schema, dry_run.relation("int_attempts__windowed")),
        )
        with database_step("the window report"), connect(params) as conn:
            row = conn.execute(query, {"since": since, "anchor": anchor}).fetchone()
        assert row is not None
        return int(row[0]), int(row[1]), int(row[2])

    def table_exists(self, params: ConnectionParams, schema: str, table: str) -> bool:
        with database_step(f"looking for {table}"), connect(params) as conn:
            row = conn.execute(
                "select to_regclass(%s) is not null",
                (sql.Identifier(schema, table).as_string(conn),),
            ).fetchone()
        return bool(row and row[0])

    def last_activity_apart(self, schema: str, since: dt.date) -> None:
        """None: the returners' mark joins user_last_activity in place."""

    beside_weekly_kpi = True
    marks_dry_run = True  # marked dry_run__<model> relations in the project's own schema

    def dry_run_schema(self, schema: str) -> str:
        return schema

    def begin_dry_run(self, params: ConnectionParams, schema: str, models: Sequence[str]) -> None:
        dry_run.prepare(params, schema, [*models, *dry_run.REGISTRIES])

    def end_dry_run(self, params: ConnectionParams, schema: str) -> None:
        dry_run.drop(params, schema)
