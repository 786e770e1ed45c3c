"""The nightly command on Spark through a Thrift server, beside PostgreSQL, on the same data.

    bash scripts/bench-spark.sh --attempts 1000000     # starts a standalone cluster for it

or, with a Thrift server already running (SEEDTEST_SPARK_HOST / SEEDTEST_SPARK_PORT):

    python -m seedtest_dev.spark_bench --attempts 1000000 [--days 90] [--cores N]

One dataset (synthetic.generate_bulk, as `seedtest-dev bench`) in one PostgreSQL database,
copied (template) into a second one, the application database of the Spark deployment, whose
tables are then copied into the Spark database `seedtest_bench_sources` (spark_load.py, timed
apart); the models go to `seedtest_bench_analytics` (both dropped first). On
each engine `seedtest-analytics run --date A-1` (first night: every day is built) and then
`run --date A` (the nightly command, dbt data tests on), each a process of its own
(bench.run_command). The two engines do not run at the same time. Afterwards the features
of the window and the P/S rows written must be the same count on both, so a fast but wrong
run cannot pass. Prints one Markdown table (and --output JSON).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from psycopg import sql

from seedtest_analytics import log
from seedtest_analytics.config import Settings, today_in
from seedtest_analytics.db.connection import ConnectionParams, connect

from . import bench
from .spark_load import APPLICATION_TABLES, load_tables

# The bench's own Spark databases (dropped and re-created by each run, like its PostgreSQL
# databases): the copies of the application tables and the models.
SPARK_DATABASE = "seedtest_bench_sources"
DBT_SCHEMA = "seedtest_bench_analytics"


def _clone(server: ConnectionParams, source: str, name: str) -> ConnectionParams:
    with connect(server.with_dbname("postgres"), autocommit=True) as conn:
        conn.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
        )
        conn.execute(
            sql.SQL("create database {} template {}").format(
                sql.Identifier(name), sql.Identifier(source)
            )
        )
    return server.with_dbname(name)


def _pg_features(params: ConnectionParams, since: dt.date, anchor: dt.date) -> int:
    """Rows of features_topic_daily in the window, on PostgreSQL."""
    with connect(params) as conn:
        row = conn.execute(
            sql.SQL("select count(*) from {} where date between %s and %s").format(
                sql.Identifier(DBT_SCHEMA, "features_topic_daily")
            ),
            (since, anchor),
        ).fetchone()
    return int(row[0] if row else 0)


def _scored(params: ConnectionParams) -> int:
    """weekly_kpi rows holding P or S."""
    with connect(params) as conn:
        row = conn.execute(
            "select count(*) from public.weekly_kpi where kpis ? 'P' or kpis ? 'S'"
        ).fetchone()
    return int(row[0] if row else 0)


def _spark_features(since: dt.date, anchor: dt.date) -> int:
    from seedtest_analytics.warehouse import spark_thrift

    rows = list(
        spark_thrift.rows(
            f"select count(*) from {DBT_SCHEMA}.features_topic_daily"
            f" where `date` between date '{since}' and date '{anchor}'"
        )
    )
    return int(rows[0][0])


def _engine_env(engine: str, target: Path) -> None:
    os.environ["SEEDTEST_ENGINE"] = engine
    os.environ["SEEDTEST_SPARK_METHOD"] = "thrift"
    os.environ["SEEDTEST_DBT_SCHEMA"] = DBT_SCHEMA
    os.environ["SEEDTEST_SPARK_SOURCE_SCHEMA"] = SPARK_DATABASE
    target.mkdir(parents=True, exist_ok=True)
    os.environ["DBT_TARGET_PATH"] = str(target)
    os.environ["DBT_LOG_PATH"] = str(target / "logs")


def run(attempts: int, days: int, database: str, cores: str, ingest: Path) -> dict[str, Any]:
    server = bench._server()[0].with_dbname("postgres")  # the maintenance database
    anchor = today_in("UTC") - dt.timedelta(days=1)
    first_night = anchor - dt.timedelta(days=1)
    since = Settings(anchor_date=anchor).since
    results: dict[str, Any] = {
        "attempts": attempts,
        "days": days,
        "anchor": anchor.isoformat(),
        "spark_cores": cores,
    }
    with tempfile.TemporaryDirectory(prefix="seedtest-spark-bench-") as scratch:
        log.info(f"spark-bench: generating {attempts} attempts over {days} days")
        pg = bench.recreate_database(server, database)
        bulk, gen_s = bench.generate(pg, attempts=attempts, days=days, end_date=anchor)
        results["generate_s"] = gen_s
        results["window_attempts"] = bench.attempts_between(
            pg,
            bench._day_start(since - dt.timedelta(days=27)),
            bench._day_start(anchor + dt.timedelta(days=1)),
        )
        spark_app = _clone(server, database, database + "_spark")

        _engine_env("postgres", Path(scratch) / "target-postgres")
        log.info(f"spark-bench: PostgreSQL, run --date {first_night}, then --date {anchor}")
        results["postgres_first_s"] = bench.run_command(
            pg, "run", "--date", first_night.isoformat()
        ).wall_s
        night = bench.run_command(pg, "run", "--date", anchor.isoformat())
        results["postgres_nightly_s"] = night.wall_s
        results["postgres_nightly"] = night.breakdown()

        _engine_env("spark", Path(scratch) / "target-spark")
        from seedtest_analytics.warehouse import spark_thrift

        log.info("spark-bench: copying the application tables into Spark")
        started = time.perf_counter()
        with spark_thrift.Connection() as spark, connect(spark_app, autocommit=True) as conn:
            for database in (DBT_SCHEMA, SPARK_DATABASE):
                spark.execute(f"drop database if exists {database} cascade")
            copied = load_tables(conn, spark.execute, ingest, SPARK_DATABASE, APPLICATION_TABLES)
        results["copy_s"] = time.perf_counter() - started
        results["copied_rows"] = copied
        log.info(f"spark-bench: Spark, run --date {first_night}, then --date {anchor}")
        results["spark_first_s"] = bench.run_command(
            spark_app, "run", "--date", first_night.isoformat()
        ).wall_s
        night = bench.run_command(spark_app, "run", "--date", anchor.isoformat())
        results["spark_nightly_s"] = night.wall_s
        results["spark_nightly"] = night.breakdown()

        pg_features, pg_scored = _pg_features(pg, since, anchor), _scored(pg)
        spark_features, spark_scored = _spark_features(since, anchor), _scored(spark_app)
        results["features_in_window"] = {"postgres": pg_features, "spark": spark_features}
        results["ps_rows"] = {"postgres": pg_scored, "spark": spark_scored}
        results["exams"] = bulk.exam_results
        results["users"] = bulk.users
        if (pg_features, pg_scored) != (spark_features, spark_scored) or not pg_scored:
            raise SystemExit(f"[ERROR] the engines disagree: {json.dumps(results, default=str)}")
        bench.drop_database(server, database + "_spark")
        bench.drop_database(server, database)
    return results


def render(r: dict[str, Any]) -> str:
    lines = [
        f"| nightly command, {r['attempts']:,} attempts over {r['days']} days"
        f" ({r['window_attempts']:,} in the window) | PostgreSQL | Spark via Thrift"
        f" (standalone cluster, {r['spark_cores']} core(s)) |",
        "|---|---|---|",
        f"| first night (`run --date A-1`, builds every day) | {r['postgres_first_s']:.1f} s"
        f" | {r['spark_first_s']:.1f} s |",
        f"| **nightly** (`run --date A`, data tests on) | **{r['postgres_nightly_s']:.1f} s**"
        f" | **{r['spark_nightly_s']:.1f} s** |",
        f"| copy of the application tables into Spark ({sum(r['copied_rows'].values()):,}"
        f" rows) | - | {r['copy_s']:.1f} s |",
        f"| features rows in the window / P/S rows written"
        f" | {r['features_in_window']['postgres']:,} / {r['ps_rows']['postgres']:,}"
        f" | {r['features_in_window']['spark']:,} / {r['ps_rows']['spark']:,} |",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m seedtest_dev.spark_bench")
    parser.add_argument("--attempts", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--database", default="seedtest_spark_bench")
    parser.add_argument("--cores", default=os.environ.get("SPARK_CLUSTER_CORES", "?"))
    parser.add_argument("--ingest-dir", type=Path, default=None)
    parser.add_argument("--output", type=Path, default=None, help="JSON file of the results")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="seedtest-spark-ingest-") as tmp:
        ingest = args.ingest_dir or Path(tmp)
        results = run(args.attempts, args.days, args.database, args.cores, ingest)
    table = render(results)
    print(table, flush=True)
    if args.output:
        args.output.write_text(json.dumps(results, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
