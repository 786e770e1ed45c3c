"""Shared fixtures: a real PostgreSQL (TEST_DATABASE_URL, else a throw-away embedded server in
a temp dir), a fresh database with the application schema per test, and a CLI runner.

Every test database gets a session time zone that is not UTC, so day boundaries that follow
the session instead of `activity_timezone` show up as failures.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

import cli_process
from seedtest_analytics.db.app_schema import init_db
from seedtest_analytics.db.connection import ConnectionParams, parse_database_url

REPO = Path(__file__).resolve().parents[2]
SESSION_TIMEZONE = "Pacific/Auckland"

# The test tiers (docs/testing.md), by file. Every test gets one of the markers fast,
# integration or infra; `pytest -m fast` runs the pure functions and parsing, no database.
# infra: the benchmark, the image and the deployment manifests, the packaging, the
# development tools. slow: load tests and the full benchmark run, left out unless asked for.
INFRA_FILES = {
    "test_bench.py",
    "test_cli_process.py",
    "test_bench_run.py",
    "test_deploy.py",
    "test_dev_tools.py",
    "test_image.py",
    "test_layout.py",
    "test_operator_path.py",
}
SLOW_FILES = {"test_bench_run.py"}
# Files whose tests run dbt, or many of the command's processes, without a database fixture.
INTEGRATION_FILES = {
    "test_app_safety.py",
    "test_tls.py",
    "test_selection_safety.py",
    "test_sql_lint.py",
    "test_var_injection.py",
}
DATABASE_FIXTURE = "server_params"


# The longest files (module set-ups included), longest first: they run first, so that the two
# workers of `pytest -n 2 --dist loadfile` (one file each at a time) end together on the short
# files instead of one worker starting a long file while the other runs out of work. Measured
# on a 2-core machine (docs/testing.md): every file over 8 s; the others keep their order after
# these. A file missing here only runs later; a name of a file that no longer exists is ignored.
LONGEST_FILES = (
    "test_deployments.py",
    "test_operations.py",
    "test_operator_path.py",
    "test_run_safety.py",
    "test_reliability.py",
    "test_selection_safety.py",
    "test_foreign_objects.py",
    "test_churn_training.py",
    "test_pipeline.py",
    "test_dev_tools.py",
    "test_tls.py",
    "test_bench.py",
    "test_backtest.py",
    "test_run_history.py",
    "test_var_injection.py",
    "test_inactivity.py",
    "test_features.py",
    "test_config.py",
    "test_settings_change.py",
    "test_sql_lint.py",
    "test_plain_dbt_lock.py",
    "test_deploy.py",
    "test_window_of_relation_read.py",
    "test_app_migrations.py",
    "test_churn_champion.py",
    "test_privileges.py",
    "test_docs.py",
    "test_outage_catch_up.py",
    "test_dbt_runner.py",
    "test_retry_checks.py",
    "test_commands.py",
)


def tier(item: pytest.Item) -> str:
    """infra by file; integration when the test uses the database (any fixture built on
    server_params) or its file runs dbt; else fast."""
    name = item.path.name
    if name in INFRA_FILES:
        return "infra"
    if name in INTEGRATION_FILES or DATABASE_FIXTURE in getattr(item, "fixturenames", ()):
        return "integration"
    return "fast"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).resolve().parent
    # Stable: the tests of a file stay together and in their order.
    rank = {name: index for index, name in enumerate(LONGEST_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
    for item in items:
        if item.path.parent != here:
            continue
        item.add_marker(tier(item))
        if item.path.name in SLOW_FILES:
            item.add_marker("slow")


@pytest.fixture(scope="session", autouse=True)
def dbt_artifacts(tmp_path_factory: pytest.TempPathFactory) -> None:
    """dbt's target/ and logs/ per test process (tests may run in parallel workers), unless a
    test sets its own."""
    base = tmp_path_factory.mktemp("dbt")
    os.environ["DBT_TARGET_PATH"] = str(base / "target")
    os.environ["DBT_LOG_PATH"] = str(base / "logs")


@pytest.fixture(scope="session")
def server_params(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConnectionParams]:
    url = os.environ.get("TEST_DATABASE_URL", "").strip()
    if url:
        yield parse_database_url(url)
        return
    from seedtest_dev import embedded

    # Not under pytest's temp root: pytest keeps that private (0700), and a server run by
    # root runs as another user, who must reach its folder until it is stopped.
    pgdata = Path(tempfile.mkdtemp(prefix="seedtest-test-pg-"))
    with embedded.throwaway_server(pgdata) as server:
        params = server.params("postgres")
        # A throw-away server: durability buys nothing here, and the suite creates many databases.
        with _admin(params) as conn:
            conn.execute("alter system set fsync = off")
            conn.execute("alter system set synchronous_commit = off")
            conn.execute("alter system set full_page_writes = off")
            conn.execute("select pg_reload_conf()")
        yield params


def _admin(params: ConnectionParams) -> psycopg.Connection:
    return psycopg.connect(**params.psycopg_kwargs(), autocommit=True)


# Database names come back when their database is dropped: the next test's database takes the
# lowest free one, so a command the tests run against it has the same connection as one before
# it, and dbt reads the partial parse a command saved before (a new name is a full parse,
# about 2.4 s). The prefix is new in every test process: no name meets one of another run.
_NAME_PREFIX = f"t_{uuid.uuid4().hex[:8]}_"
_FREE_NAMES: set[int] = set()
_NEW_NAMES = itertools.count(1)


def _take_database_name() -> str:
    number = min(_FREE_NAMES) if _FREE_NAMES else next(_NEW_NAMES)
    _FREE_NAMES.discard(number)
    return f"{_NAME_PREFIX}{number}"


def _give_back_database_name(name: str) -> None:
    if name.startswith(_NAME_PREFIX) and name[len(_NAME_PREFIX):].isdigit():
        _FREE_NAMES.add(int(name[len(_NAME_PREFIX):]))


def create_database(
    server: ConnectionParams,
    *,
    with_schema: bool = True,
    template: ConnectionParams | None = None,
) -> ConnectionParams:
    """A new database with the session time zone of the tests: the application schema (empty
    tables) unless with_schema is false, or a copy of `template` (which must have no open
    connections). drop_database drops it and gives its name back."""
    name = _take_database_name()
    create = sql.SQL("create database {}").format(sql.Identifier(name))
    if template is not None:
        create = sql.SQL("{} template {}").format(create, sql.Identifier(template.dbname))
    with _admin(server) as conn:
        conn.execute(create)
        conn.execute(
            sql.SQL("alter database {} set timezone to {}").format(
                sql.Identifier(name), sql.Literal(SESSION_TIMEZONE)
            )
        )
    params = server.with_dbname(name)
    if with_schema and template is None:
        init_db(params)
    return params


def drop_database(server: ConnectionParams, params: ConnectionParams) -> None:
    with _admin(server) as conn:
        conn.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(params.dbname))
        )
    _give_back_database_name(params.dbname)


@pytest.fixture
def fresh_db(server_params: ConnectionParams) -> Iterator[ConnectionParams]:
    """A new database holding the application schema (empty tables), dropped afterwards."""
    params = create_database(server_params)
    yield params
    drop_database(server_params, params)


@pytest.fixture
def db_conn(fresh_db: ConnectionParams) -> Iterator[psycopg.Connection]:
    with psycopg.connect(**fresh_db.psycopg_kwargs(), autocommit=True) as conn:
        yield conn


def run_cli(
    params: ConnectionParams | None,
    *args: str,
    env: dict[str, str] | None = None,
    module: str = "seedtest_analytics",
) -> subprocess.CompletedProcess[str]:
    """Run `seedtest-analytics ARGS` (or another module's command line, e.g. `seedtest_dev`)
    as its own process (cli_process.py), against params' database. No time limit: a busy
    machine is slow, and a hung run shows up as a hung test, with the process to inspect."""
    full_env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AGG_", "METRICS_", "KPI_", "INACTIVITY_", "ANCHOR_"))
    }
    full_env.pop("DATABASE_URL", None)
    # Models only (`dbt run`): the dbt data tests cost more than the models on small data, and
    # test_pipeline runs them (SEEDTEST_DBT_TESTS=true) where they are the point.
    full_env["SEEDTEST_DBT_TESTS"] = "false"
    if params is not None:
        full_env["DATABASE_URL"] = params.to_url()
    full_env.update(env or {})
    return cli_process.run(module, args, env=full_env, cwd=REPO)


@pytest.fixture(scope="session", autouse=True)
def _cli_processes() -> Iterator[None]:
    """The forking process of cli_process.py ends with the test process."""
    yield
    cli_process.close()
