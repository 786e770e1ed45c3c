"""Copies of the application tables in a Spark database, as a platform's ingestion keeps them.

For the Spark equivalence test and the Spark benchmark: each table is read from PostgreSQL
in one streamed query, written as JSON lines into a directory the Spark driver can read (on
a cluster: a path shared with the Thrift server), and replaced in Spark by one
`create table ... using parquet as select` over a temporary view of that file with the
table's own schema. It only needs a way to run a Spark SQL statement, so the same code
loads through an in-process SparkSession and through a Thrift server. Timestamps travel as
microseconds since the epoch (exact, no time zone on the way), dates as ISO text.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
MICROSECOND = dt.timedelta(microseconds=1)
FETCH_ROWS = 10_000

# The application tables (schema public) as the Spark database holds them:
# name: (PostgreSQL query, Spark schema).
APPLICATION_TABLES: dict[str, tuple[str, str]] = {
    "exam_results": (
        "select id::text, session_id, user_id, result_json::text, created_at, updated_at"
        " from public.exam_results",
        "id string, session_id string, user_id string, result_json string,"
        " created_at timestamp, updated_at timestamp",
    ),
    "attempt": (
        "select id, student_id::text, item_id, topic_id, correct, response_time_ms, hint_used,"
        " completed_at, session_id from public.attempt",
        "id bigint, student_id string, item_id bigint, topic_id string, correct boolean,"
        " response_time_ms int, hint_used boolean, completed_at timestamp, session_id string",
    ),
    "session": (
        "select id, user_id, started_at, ended_at from public.session",
        "id string, user_id string, started_at timestamp, ended_at timestamp",
    ),
    "student_topic_theta": (
        "select user_id, topic_id, theta, se, updated_at from public.student_topic_theta",
        "user_id string, topic_id string, theta double, se double, updated_at timestamp",
    ),
    "mirt_ability": (
        "select user_id, theta, se, fitted_at, version from public.mirt_ability",
        "user_id string, theta double, se double, fitted_at timestamp, version string",
    ),
    "ability_estimates": (
        "select user_id, mean, sd, fitted_at from public.ability_estimates",
        "user_id string, mean double, sd double, fitted_at timestamp",
    ),
    "interest_goal": (
        "select user_id, topic_id, target_level::float8, priority, created_at"
        " from public.interest_goal",
        "user_id string, topic_id string, target_level double, priority smallint,"
        " created_at timestamp",
    ),
    "weekly_kpi": (
        "select user_id, week_start, kpis::text, created_at, updated_at from public.weekly_kpi",
        "user_id string, week_start date, kpis string, created_at timestamp, updated_at timestamp",
    ),
}


def _columns(schema: str) -> list[tuple[str, str]]:
    """`a string, b timestamp` as [(a, string), (b, timestamp)]."""
    columns = []
    for part in schema.split(","):
        name, kind = part.split()
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
            raise ValueError(f"bad column name {name!r}")
        columns.append((name, kind.lower()))
    return columns


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return (value - EPOCH) // MICROSECOND
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def load_table(
    pg: psycopg.Connection,
    run_sql: Callable[[str], Any],
    directory: Path,
    database: str,
    table: str,
    query: str,
    schema: str,
) -> int:
    """Replace `database`.`table` in Spark with the rows of the PostgreSQL `query` (its columns
    in the order of `schema`, a Spark DDL column list). Returns the rows copied."""
    columns = _columns(schema)
    names = [name for name, _ in columns]
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{table}.json"
    count = 0
    with (
        path.open("w", encoding="utf-8") as out,
        pg.transaction(),
        pg.cursor(name=f"spark_load_{table}") as cur,
    ):
        cur.itersize = FETCH_ROWS
        cur.execute(query)
        for row in cur:
            record = {name: _json_value(value) for name, value in zip(names, row, strict=True)}
            out.write(json.dumps(record, separators=(",", ":")) + "\n")
            count += 1
    view_columns = ", ".join(
        f"{name} {'bigint' if kind == 'timestamp' else 'string' if kind == 'date' else kind}"
        for name, kind in columns
    )
    select = ", ".join(
        f"timestamp_micros({name}) as {name}"
        if kind == "timestamp"
        else f"cast({name} as date) as {name}"
        if kind == "date"
        else name
        for name, kind in columns
    )
    view = f"seedtest_load_{table}"
    run_sql(
        f"create or replace temporary view {view} ({view_columns})"
        f" using json options (path '{path.resolve()}')"
    )
    run_sql(f"drop table if exists {database}.{table}")
    run_sql(f"create table {database}.{table} using parquet as select {select} from {view}")
    run_sql(f"drop view if exists {view}")
    return count


def load_tables(
    pg: psycopg.Connection,
    run_sql: Callable[[str], Any],
    directory: Path,
    database: str,
    tables: Mapping[str, tuple[str, str]],
) -> dict[str, int]:
    """load_table for each of `tables` (name: (PostgreSQL query, Spark schema)), after
    creating the database if needed. Returns the rows copied per table."""
    run_sql(f"create database if not exists {database}")
    return {
        table: load_table(pg, run_sql, directory, database, table, query, schema)
        for table, (query, schema) in tables.items()
    }
