"""The same nightly pipeline on PostgreSQL and on Spark gives the same results.

Two PostgreSQL databases get the same deterministic demo data (generate_demo: uuid and text
user ids, upper-case uuids, malformed rows, every optional table). One is the PostgreSQL
deployment: `seedtest-analytics run` with the default engine. The other is the application
database of a Spark deployment: its tables are copied into the Spark database `seedtest`
(as the platform's ingestion would), and `run` with SEEDTEST_ENGINE=spark builds the models on
Spark (parquet tables, days partitioned) and writes P/S into that PostgreSQL's weekly_kpi.

Spark is reached as SEEDTEST_SPARK_METHOD says (conftest.py): through a Spark Thrift Server
(scripts/test-spark.sh starts a standalone cluster for it) or in this process.

Both run the same anchors, incrementally (the last one with the dbt data tests, which must
pass on Spark too), with a calendar-day time zone (Asia/Seoul) that is
neither UTC nor the databases' session time zone, theta and the Bayesian P on. Between two
anchors a late change deletes every exam of one day inside the next run's window (that day's
features must disappear, on Spark its partition too) and corrects an exam of another day.
After each anchor, features_topic_daily, user_last_activity, the P/S step's input
inactive_user_scoring_inputs and churn_user_anchors (all rows, all columns but computed_at)
and weekly_kpi (every key of kpis) must be equal.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import math
import os
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from conftest import REPORT, SparkSQL, create_database, drop_database
from seedtest_analytics.db.connection import ConnectionParams
from seedtest_analytics.dbt.runner import environment
from seedtest_dev.spark_load import APPLICATION_TABLES, load_tables
from seedtest_dev.synthetic import generate_demo

pytestmark = pytest.mark.spark

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
END = dt.date(2025, 11, 20)
TIMEZONE = "Asia/Seoul"
USERS = int(os.environ.get("SEEDTEST_SPARK_TEST_USERS", "120"))
DAYS = 45
FIRST_ANCHORS = (END - dt.timedelta(days=8), END - dt.timedelta(days=7))
DELETED_DAY = END - dt.timedelta(days=9)  # computed by the first anchors, in the window of:
CORRECTED_DAY = END - dt.timedelta(days=10)
LATE_ANCHORS = (END - dt.timedelta(days=4), END)
FLOAT_TOLERANCE = 1e-9
SPARK_DATABASE = "seedtest"
DBT_SCHEMA = "analytics"

PIPELINE_ENV = {
    "ACTIVITY_TIMEZONE": TIMEZONE,
    "AGG_INCLUDE_THETA": "true",
    "METRICS_USE_BAYESIAN": "true",
    "SEEDTEST_DBT_SCHEMA": DBT_SCHEMA,
}

# The application tables as the Spark database holds them: (PostgreSQL query, Spark schema).
SOURCES = APPLICATION_TABLES

# Outputs compared, with their keys; run-time columns are left out.
MODELS = {
    "features_topic_daily": ("user_id", "topic_id", "date"),
    "user_last_activity": ("user_id",),
    "inactive_user_scoring_inputs": ("user_id",),
    "churn_user_anchors": ("anchor", "user_id"),
}
RUN_TIME_COLUMNS = {"computed_at"}


@dataclass
class Deployments:
    postgres: ConnectionParams  # models and weekly_kpi on PostgreSQL
    spark_app: ConnectionParams  # the Spark deployment's application database (weekly_kpi)
    spark: SparkSQL
    ingest_dir: str  # where the copies travel as files (readable by the Spark driver)
    compared: dict[str, dict[str, int]]


# --- data ------------------------------------------------------------------------------------

def connect(params: ConnectionParams) -> psycopg.Connection:
    return psycopg.connect(**params.psycopg_kwargs(), autocommit=True)


def copy_to_spark(d: Deployments) -> None:
    """Replace the Spark copies of the application tables with the PostgreSQL rows."""
    from pathlib import Path

    with connect(d.spark_app) as conn:
        load_tables(conn, d.spark.execute, Path(d.ingest_dir), SPARK_DATABASE, SOURCES)


def late_change(params: ConnectionParams) -> int:
    """Delete every exam of DELETED_DAY (local day) and correct one exam of CORRECTED_DAY:
    flip the first answer, move it by a second. Returns the exams deleted."""
    local_day = f"(coalesce(updated_at, created_at) at time zone '{TIMEZONE}')::date"
    with connect(params) as conn, conn.transaction():
        deleted = conn.execute(
            f"delete from public.exam_results where {local_day} = %s", (DELETED_DAY,)
        ).rowcount
        conn.execute(
            f"""
            update public.exam_results
            set result_json = jsonb_set(
                    result_json, '{{questions,0,is_correct}}',
                    to_jsonb(not coalesce((result_json #>> '{{questions,0,is_correct}}')::boolean,
                                          false))),
                updated_at = updated_at + interval '1 second'
            where id = (
                select id from public.exam_results
                where {local_day} = %s and user_id is not null
                    and jsonb_typeof(result_json -> 'questions') = 'array'
                    and jsonb_array_length(result_json -> 'questions') > 0
                order by id limit 1
            )
            """,
            (CORRECTED_DAY,),
        )
    return deleted


# --- runs ------------------------------------------------------------------------------------

def start_postgres_run(params: ConnectionParams, anchor: dt.date, workdir: str,
                       data_tests: bool) -> subprocess.Popen[str]:
    """`seedtest-analytics run` on PostgreSQL, as its own process (runs while Spark works)."""
    env = {
        key: value for key, value in os.environ.items()
        if not key.startswith(("AGG_", "METRICS_", "KPI_", "INACTIVITY_", "ANCHOR_", "SEEDTEST_"))
    }
    env.update(PIPELINE_ENV)
    env.update({
        "SEEDTEST_DBT_TESTS": str(data_tests).lower(),
        "DATABASE_URL": params.to_url(),
        "SEEDTEST_ENGINE": "postgres",
        "DBT_TARGET_PATH": os.path.join(workdir, "target"),
        "DBT_LOG_PATH": os.path.join(workdir, "logs"),
    })
    return subprocess.Popen(
        [sys.executable, "-m", "seedtest_analytics", "run", "--date", anchor.isoformat()],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def run_on_spark(params: ConnectionParams, anchor: dt.date, data_tests: bool, *extra: str
                 ) -> tuple[int, str]:
    """`seedtest-analytics run` with SEEDTEST_ENGINE=spark, in this process (its Spark session)."""
    from seedtest_analytics.cli import main

    output = io.StringIO()
    values = {
        **PIPELINE_ENV, "SEEDTEST_DBT_TESTS": str(data_tests).lower(),
        "DATABASE_URL": params.to_url(), "SEEDTEST_ENGINE": "spark",
    }
    with environment(values), contextlib.redirect_stdout(output), \
            contextlib.redirect_stderr(output):
        code = main(["run", "--date", anchor.isoformat(), *extra])
    return code, output.getvalue()


def run_both(d: Deployments, anchor: dt.date, workdir: str, *, data_tests: bool = False) -> None:
    """The pipeline for `anchor` on both deployments (with the dbt data tests or without)."""
    started = time.monotonic()
    copy_to_spark(d)
    copied = time.monotonic() - started
    postgres = start_postgres_run(d.postgres, anchor, workdir, data_tests)
    code, output = run_on_spark(d.spark_app, anchor, data_tests)
    pg_output, _ = postgres.communicate()
    assert postgres.returncode == 0, pg_output[-4000:]
    assert code == 0, output[-6000:]
    if data_tests:
        assert re.search(r"tests passed=[1-9]", output), output[-3000:]
    REPORT["timings"].append(
        f"anchor {anchor}{' (with the data tests)' if data_tests else ''}: copy to Spark"
        f" {copied:.1f} s; the pipeline (side by side) on Spark {pipeline_seconds(output)},"
        f" on PostgreSQL {pipeline_seconds(pg_output)}"
    )


def pipeline_seconds(output: str) -> str:
    """The duration the `[INFO] Pipeline: ...` line of a run reports."""
    match = re.search(r"^\[INFO\] Pipeline: .*duration_ms=(\d+)$", output, re.M)
    assert match, output[-3000:]
    return f"{int(match.group(1)) / 1000:.1f} s"


# --- comparisons -----------------------------------------------------------------------------

def pg_columns(params: ConnectionParams, table: str) -> list[tuple[str, str]]:
    with connect(params) as conn:
        rows = conn.execute(
            "select column_name, data_type from information_schema.columns"
            " where table_schema = %s and table_name = %s order by ordinal_position",
            (DBT_SCHEMA, table),
        ).fetchall()
    return [(name, kind) for name, kind in rows if name not in RUN_TIME_COLUMNS]


def pg_table(params: ConnectionParams, table: str, columns: Sequence[tuple[str, str]]
             ) -> list[tuple[Any, ...]]:
    exprs = [
        f"(extract(epoch from {name}) * 1000000)::bigint" if kind.startswith("timestamp")
        else name
        for name, kind in columns
    ]
    with connect(params) as conn:
        return conn.execute(f"select {', '.join(exprs)} from {DBT_SCHEMA}.{table}").fetchall()


def spark_table(spark: SparkSQL, table: str, columns: Sequence[tuple[str, str]]
                ) -> list[tuple[Any, ...]]:
    exprs = [
        f"unix_micros(`{name}`)" if kind.startswith("timestamp") else f"`{name}`"
        for name, kind in columns
    ]
    return spark.rows(f"select {', '.join(exprs)} from {DBT_SCHEMA}.{table}")


def same_value(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is b
        return math.isclose(float(a), float(b), rel_tol=FLOAT_TOLERANCE, abs_tol=1e-12)
    return bool(a == b)


def differences(name: str, columns: Sequence[str], key: Sequence[str],
                expected: list[tuple[Any, ...]], actual: list[tuple[Any, ...]]) -> list[str]:
    index = [columns.index(k) for k in key]

    def keyed(rows: list[tuple[Any, ...]], side: str) -> dict[tuple[Any, ...], tuple[Any, ...]]:
        table = {tuple(row[i] for i in index): row for row in rows}
        assert len(table) == len(rows), f"{name} on {side}: duplicate keys"
        return table

    pg, sp = keyed(expected, "PostgreSQL"), keyed(actual, "Spark")
    problems = [f"{name}: only on PostgreSQL: {k}" for k in sorted(pg.keys() - sp.keys(), key=str)]
    problems += [f"{name}: only on Spark: {k}" for k in sorted(sp.keys() - pg.keys(), key=str)]
    for k in sorted(pg.keys() & sp.keys(), key=str):
        for column, a, b in zip(columns, pg[k], sp[k], strict=True):
            if not same_value(a, b):
                problems.append(f"{name} {k}: {column} PostgreSQL={a!r} Spark={b!r}")
    return problems


def weekly_kpi(params: ConnectionParams) -> dict[tuple[str, dt.date], dict[str, Any]]:
    with connect(params) as conn:
        rows = conn.execute("select user_id, week_start, kpis::text from public.weekly_kpi")
        return {(user, week): json.loads(kpis) for user, week, kpis in rows}


def compare(d: Deployments, anchor: dt.date) -> None:
    problems: list[str] = []
    counts = {}
    for model, key in MODELS.items():
        columns = pg_columns(d.postgres, model)
        names = [name for name, _ in columns]
        expected = pg_table(d.postgres, model, columns)
        actual = spark_table(d.spark, model, columns)
        assert expected, f"{model} is empty on PostgreSQL: nothing would be compared"
        problems += differences(model, names, key, expected, actual)
        counts[model] = len(expected)
    pg_kpi, spark_kpi = weekly_kpi(d.postgres), weekly_kpi(d.spark_app)
    scored = [k for k, v in pg_kpi.items() if isinstance(v, dict) and ("P" in v or "S" in v)]
    assert scored, "no P/S was written on PostgreSQL: nothing would be compared"
    if pg_kpi.keys() != spark_kpi.keys():
        problems.append(f"weekly_kpi rows differ: {sorted(pg_kpi.keys() ^ spark_kpi.keys())[:10]}")
    for k in sorted(pg_kpi.keys() & spark_kpi.keys()):
        a, b = pg_kpi[k], spark_kpi[k]
        if not isinstance(a, dict) or not isinstance(b, dict):
            if a != b:
                problems.append(f"weekly_kpi {k}: {a!r} != {b!r}")
            continue
        if a.keys() != b.keys() or not all(same_value(a[x], b[x]) for x in a):
            problems.append(f"weekly_kpi {k}: PostgreSQL={a} Spark={b}")
    counts["weekly_kpi (P/S rows)"] = len(scored)
    d.compared[anchor.isoformat()] = counts
    REPORT["compared"].append(
        f"anchor {anchor}: rows compared " + ", ".join(f"{m}={n}" for m, n in counts.items())
    )
    assert not problems, f"{len(problems)} differences:\n" + "\n".join(problems[:40])


def day_rows(d: Deployments, day: dt.date) -> tuple[int, int, list[str]]:
    """Rows of `day` in features_topic_daily on PostgreSQL and on Spark, and Spark's partitions."""
    with connect(d.postgres) as conn:
        row = conn.execute(
            f"select count(*) from {DBT_SCHEMA}.features_topic_daily where date = %s", (day,)
        ).fetchone()
    spark_count = d.spark.rows(
        f"select count(*) from {DBT_SCHEMA}.features_topic_daily where `date` = date '{day}'"
    )[0][0]
    partitions = [r[0] for r in d.spark.rows(
        f"show partitions {DBT_SCHEMA}.features_topic_daily")]
    return int(row[0]) if row else 0, int(spark_count), partitions


# --- the scenario ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def deployments(server_params: ConnectionParams, spark: SparkSQL,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployments]:
    from seedtest_analytics.db.app_schema import init_db

    postgres = create_database(server_params)
    spark_app: ConnectionParams | None = None
    try:
        init_db(postgres)
        with connect(postgres) as conn:
            generate_demo(conn, users=USERS, days=DAYS, seed=7, end_date=END)
        spark_app = create_database(server_params, template=postgres.dbname)
        ingest = os.environ.get("SEEDTEST_SPARK_INGEST_DIR") or str(
            tmp_path_factory.mktemp("spark-ingest")
        )
        yield Deployments(postgres, spark_app, spark, ingest, {})
    finally:
        drop_database(server_params, postgres)
        if spark_app is not None:
            drop_database(server_params, spark_app)


def test_same_results_on_spark_and_postgres(
    deployments: Deployments, tmp_path_factory: pytest.TempPathFactory
) -> None:
    d = deployments
    workdir = str(tmp_path_factory.mktemp("postgres-run"))
    for anchor in FIRST_ANCHORS:
        run_both(d, anchor, workdir)
        compare(d, anchor)
    before = day_rows(d, DELETED_DAY)
    assert before[0] > 0 and before[1] > 0, f"{DELETED_DAY} has no features to delete: {before}"
    assert f"date={DELETED_DAY}" in before[2]

    deleted = late_change(d.postgres)
    assert late_change(d.spark_app) == deleted > 0
    for anchor in LATE_ANCHORS:
        # the last night with the dbt data tests too: they must pass on Spark as well
        run_both(d, anchor, workdir, data_tests=anchor == LATE_ANCHORS[-1])
        compare(d, anchor)
        after = day_rows(d, DELETED_DAY)
        assert after[:2] == (0, 0), f"the rows of {DELETED_DAY} are still there: {after[:2]}"
        assert f"date={DELETED_DAY}" not in after[2], "its partition is still there"

    # A dry run on Spark computes in a scratch database and writes nothing.
    columns = pg_columns(d.postgres, "features_topic_daily")
    kpis, features = weekly_kpi(d.spark_app), spark_table(d.spark, "features_topic_daily", columns)
    code, output = run_on_spark(d.spark_app, LATE_ANCHORS[-1], False, "--dry-run")
    assert code == 0, output[-4000:]
    found = r"^\[INFO\] Found [1-9][0-9]* inactive users .*dry_run=True$"
    assert re.search(found, output, re.M), output[-3000:]
    assert weekly_kpi(d.spark_app) == kpis
    assert Counter(spark_table(d.spark, "features_topic_daily", columns)) == Counter(features)
    assert not d.spark.database_exists(DBT_SCHEMA + "_dry_run")
