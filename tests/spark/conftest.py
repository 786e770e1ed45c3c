"""Fixtures of the Spark equivalence test (`bash scripts/test-spark.sh`).

Not part of the default suite (pyproject's testpaths is tests/python): it needs pyspark,
Java 17 and about a minute to start a Spark session. A real PostgreSQL comes from
TEST_DATABASE_URL, else an embedded server in a temp dir. Spark is reached as
SEEDTEST_SPARK_METHOD says: `thrift`, a Spark Thrift Server (SEEDTEST_SPARK_HOST/PORT; the
script starts a standalone cluster for it), or `session` (default), Spark in this process
(dbt-spark's method session) with its warehouse and metastore in a temp dir.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from seedtest_analytics.db.connection import ConnectionParams, parse_database_url

SESSION_TIMEZONE = "Pacific/Auckland"  # the databases' session time zone: not UTC, on purpose

# Filled by the test, printed at the end of the run (the README quotes these numbers).
REPORT: dict[str, list[str]] = {"timings": [], "compared": []}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "spark: needs pyspark and Java (scripts/test-spark.sh)")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if REPORT["timings"] or REPORT["compared"]:
        terminalreporter.section("Spark vs PostgreSQL")
        for line in REPORT["timings"] + REPORT["compared"]:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session", autouse=True)
def isolated_dirs(tmp_path_factory: pytest.TempPathFactory) -> None:
    """dbt artifacts and the Spark warehouse/metastore of this test run only."""
    base = tmp_path_factory.mktemp("spark-run")
    os.environ["DBT_TARGET_PATH"] = str(base / "target")
    os.environ["DBT_LOG_PATH"] = str(base / "logs")
    os.environ["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    os.environ["SEEDTEST_SPARK_DIR"] = str(base / "spark")
    for name in ("SEEDTEST_SPARK_WAREHOUSE", "SEEDTEST_SPARK_METASTORE"):
        os.environ.pop(name, None)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")


@pytest.fixture(scope="session")
def server_params() -> Iterator[ConnectionParams]:
    url = os.environ.get("TEST_DATABASE_URL", "").strip()
    if url:
        yield parse_database_url(url)
        return
    from seedtest_dev import embedded

    # Not under pytest's temp root (private to root; the server runs as another user).
    with embedded.throwaway_server(Path(tempfile.mkdtemp(prefix="seedtest-spark-pg-"))) as server:
        yield server.params("postgres")


def create_database(server: ConnectionParams, template: str | None = None) -> ConnectionParams:
    """A new database (a copy of `template` if given) whose session time zone is not UTC."""
    name = f"t_spark_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(**server.psycopg_kwargs(), autocommit=True) as conn:
        statement = sql.SQL("create database {}").format(sql.Identifier(name))
        if template is not None:
            statement += sql.SQL(" template {}").format(sql.Identifier(template))
        conn.execute(statement)
        conn.execute(
            sql.SQL("alter database {} set timezone to {}").format(
                sql.Identifier(name), sql.Literal(SESSION_TIMEZONE)
            )
        )
    return server.with_dbname(name)


def drop_database(server: ConnectionParams, params: ConnectionParams) -> None:
    with psycopg.connect(**server.psycopg_kwargs(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("drop database if exists {} with (force)").format(
                sql.Identifier(params.dbname)
            )
        )


class SparkSQL:
    """Spark SQL for the test, whichever way Spark is reached: `rows(query)` (a list of
    tuples) and `execute(statement)`. Over a Thrift server the statements share one session
    (the loader's temporary views need that) and each read opens a new one."""

    def __init__(self, method: str, session: Any = None) -> None:
        self.method = method
        self.session = session
        self.connection: Any = None
        if method == "thrift":
            from seedtest_analytics.warehouse import spark_thrift

            self.connection = spark_thrift.Connection()

    def rows(self, query: str) -> list[tuple[Any, ...]]:
        if self.connection is not None:
            # A session of its own, as the P/S step reads: a Thrift session keeps the file
            # listing of each table it read, which a run's partition swap then makes stale
            # (FILE_NOT_EXIST until `refresh table`).
            from seedtest_analytics.warehouse import spark_thrift

            return list(spark_thrift.rows(query))
        return [tuple(row) for row in self.session.sql(query).collect()]

    def execute(self, statement: str) -> None:
        if self.connection is not None:
            self.connection.execute(statement)
        else:
            self.session.sql(statement)

    def database_exists(self, name: str) -> bool:
        return any(row[0] == name for row in self.rows(f"show databases like '{name}'"))

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()


@pytest.fixture(scope="session")
def spark(isolated_dirs: None) -> Iterator[SparkSQL]:
    """Spark as the run reaches it: a Thrift session, or the process's SparkSession
    configured from the profile's spark target (dbt reuses it)."""
    from seedtest_analytics import engine
    from seedtest_analytics.config import load_spark
    from seedtest_analytics.warehouse.spark import spark_session

    # the method the runs will use (they run with SEEDTEST_ENGINE=spark; this process does not)
    method = load_spark({**os.environ, engine.ENGINE_ENV: "spark"}).method
    if method == engine.THRIFT:
        started = time.monotonic()
        client = SparkSQL(method)
        version = client.rows("select version()")[0][0]
        REPORT["timings"].append(
            f"Thrift session to {client.connection.where} (Spark {version}):"
            f" {time.monotonic() - started:.1f} s"
        )
        yield client
        client.close()
        return

    previous = os.environ.get(engine.ENGINE_ENV)
    os.environ[engine.ENGINE_ENV] = "spark"
    started = time.monotonic()
    try:
        session = spark_session()
    finally:
        if previous is None:
            os.environ.pop(engine.ENGINE_ENV, None)
        else:
            os.environ[engine.ENGINE_ENV] = previous
    session.sparkContext.setLogLevel("ERROR")
    REPORT["timings"].append(
        f"Spark session start (Spark {session.version}): {time.monotonic() - started:.1f} s"
    )
    yield SparkSQL(method, session)
