"""Faults during a run: the run never writes after losing its
lock, never waits forever, and every failure is one [ERROR] line plus the Summary line.

- The lock session is terminated while dbt is inside a model: the model in flight finishes,
  no later write happens (every model checks the lock first), the run exits 1 with one line,
  and the next run, started at once, waits until the old run's write is over before it starts
  dbt: the two never write at the same time.
- idle_session_timeout on the database cannot end the lock session (nor dbt's sessions): a
  second run is refused for as long as the first one runs.
- A `lock table weekly_kpi in exclusive mode` held by another session: the P/S write gives up
  after SEEDTEST_LOCK_TIMEOUT_SECONDS with one line, weekly_kpi untouched.
- A weekly_kpi trigger that raises, and a connection terminated inside the upsert: one
  [ERROR] line and the Summary line, exit 1, no traceback, weekly_kpi untouched.
- A user id holding a newline stays on one log line.

One database with the demo data serves the module; every test leaves it as it found it. dbt
runs models only (SEEDTEST_DBT_TESTS=false): its data tests are not the point here.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

import background
import cli_process
from background import Background, wait_for
from conftest import REPO, create_database, drop_database, run_cli
from seedtest_analytics.db.connection import ConnectionParams
from seedtest_dev.synthetic import generate_demo

ANCHOR = dt.date(2025, 11, 1)
WEEK = ANCHOR - dt.timedelta(days=ANCHOR.weekday())
SELECT_KPI = (
    "select user_id, week_start, kpis::text, updated_at from public.weekly_kpi order by 1, 2"
)
DETECT_SUMMARY = re.compile(
    r"^\[INFO\] Summary: processed=(\d+), failed=(\d+), threshold=7 days, duration_ms=\d+$", re.M
)


def connect(params: ConnectionParams, *, autocommit: bool = True) -> psycopg.Connection:
    # The test's own sessions must survive the idle_session_timeout one test sets.
    return psycopg.connect(**params.psycopg_kwargs(), autocommit=autocommit,
                           options="-c idle_session_timeout=0")


@dataclass
class Scenario:
    params: ConnectionParams
    tmp: Path

    def env(self, name: str, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The CLI's environment: models only, dbt artifacts of its own per `name`."""
        env = {
            key: value for key, value in os.environ.items()
            if not key.startswith(("AGG_", "METRICS_", "KPI_", "INACTIVITY_", "ANCHOR_",
                                   "SEEDTEST_"))
            and key not in ("DATABASE_URL", "SOURCE_SCHEMA", "PGOPTIONS")
        }
        env.update(
            DATABASE_URL=self.params.to_url(), ACTIVITY_TIMEZONE="UTC", SEEDTEST_DBT_TESTS="false",
            DBT_TARGET_PATH=str(self.tmp / f"target-{name}"), DBT_LOG_PATH=str(self.tmp / "logs"),
        )
        env.update(extra or {})
        return env

    def run(self, name: str, *args: str, extra: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
        return cli_process.run("seedtest_analytics", args, env=self.env(name, extra), cwd=REPO)

    def start(self, name: str, *args: str, extra: dict[str, str] | None = None) -> Background:
        return background.start(self.tmp, name, args, self.env(name, extra))

    def rows(self, query: str) -> list[tuple[Any, ...]]:
        with connect(self.params) as conn:
            return conn.execute(query).fetchall()


@pytest.fixture(autouse=True)
def _no_leftover_processes() -> Iterator[None]:
    yield
    background.kill_leftovers()


def one_error(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("[ERROR] "), stderr
    assert "Traceback" not in stderr
    return lines[0]


@pytest.fixture(scope="module")
def scenario(server_params: ConnectionParams, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[Scenario]:
    params = create_database(server_params)
    with connect(params, autocommit=False) as conn:
        generate_demo(conn, users=40, days=40, seed=11, end_date=ANCHOR)
        conn.commit()
    scenario = Scenario(params, tmp_path_factory.mktemp("run_safety"))
    first = scenario.run("first", "run", "--date", ANCHOR.isoformat())
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr
    found = DETECT_SUMMARY.findall(first.stdout)
    assert found and int(found[0][0]) > 0, first.stdout[-3000:]
    yield scenario
    drop_database(server_params, params)


def lock_sessions(conn: psycopg.Connection) -> list[int]:
    return [int(pid) for (pid,) in conn.execute(
        "select pid from pg_stat_activity where datname = current_database()"
        " and application_name like 'seedtest-analytics lock %%'"
    )]


def waiting_on(conn: psycopg.Connection, blocker: int) -> list[tuple[int, str]]:
    return [(int(pid), str(query)) for pid, query in conn.execute(
        "select pid, query from pg_stat_activity where datname = current_database()"
        " and %s = any(pg_blocking_pids(pid))", (blocker,)
    )]


def advisory_waiters(conn: psycopg.Connection) -> list[int]:
    return [int(pid) for (pid,) in conn.execute(
        "select l.pid from pg_locks as l join pg_database as d on d.oid = l.database"
        " where l.locktype = 'advisory' and not l.granted and d.datname = current_database()"
    )]


# --- the lock ---------------------------------------------------------------------------------

def test_a_run_that_lost_its_lock_stops_and_the_next_never_overlaps(scenario: Scenario) -> None:
    before = scenario.rows(SELECT_KPI)
    with connect(scenario.params, autocommit=False) as blocker, connect(scenario.params) as conn:
        # Hold inactive_users, so run A's dbt stops inside that model (its check passed).
        blocker.execute("lock table analytics.inactive_users in access exclusive mode")
        blocker_pid = blocker.info.backend_pid
        first = scenario.start("a", "run", "--date", ANCHOR.isoformat())
        in_model = wait_for("run A to wait inside inactive_users",
                            lambda: waiting_on(conn, blocker_pid), alive=first)
        assert "inactive_users" in in_model[0][1], in_model
        [lock_pid] = lock_sessions(conn)
        conn.execute("select pg_terminate_backend(%s)", (lock_pid,))
        wait_for("the lock session to end", lambda: lock_pid not in lock_sessions(conn))

        # Run B takes the free lock at once, then waits for A's write in flight to end.
        second = scenario.start("b", "run", "--date", ANCHOR.isoformat())
        wait_for("run B to wait for run A's write", lambda: advisory_waiters(conn),
                 alive=second)
        time.sleep(1.0)
        assert "Running with dbt" not in second.stdout, "run B started dbt during A's write"
        assert first.proc.poll() is None
        blocker.rollback()

    assert first.finish() == 1, first.output()
    error = one_error(first.stderr)
    assert error.startswith("[ERROR] the run lost its lock on"), error
    assert f"its lock session (pid {lock_pid}) ended; stopped before its next write" in error
    assert "inactive users" not in first.stdout  # the P/S step never started
    assert re.search(r"^\[INFO\] Summary: processed=0, failed=1, threshold=7 days", first.stdout,
                     re.M), first.stdout[-3000:]

    assert second.finish() == 0, second.output()
    after = scenario.rows(SELECT_KPI)
    # B wrote the same P/S as before (same data, same anchor): only updated_at moved.
    assert [row[:3] for row in after] == [row[:3] for row in before]
    history = scenario.rows(
        "select status, exit_code, error from analytics.seedtest_run_history"
        " order by started_at desc limit 2"
    )
    statuses = sorted(history, key=lambda row: row[1])
    assert statuses[0][:2] == ("success", 0)
    assert statuses[1][:2] == ("failed", 1) and "lost its lock" in statuses[1][2]


def test_idle_session_timeout_cannot_end_the_lock(scenario: Scenario) -> None:
    with connect(scenario.params) as conn:
        conn.execute(f'alter database "{scenario.params.dbname}" set idle_session_timeout = 1000')
    try:
        with connect(scenario.params, autocommit=False) as blocker, \
                connect(scenario.params) as conn:
            blocker.execute("lock table analytics.inactive_users in access exclusive mode")
            first = scenario.start("idle", "run", "--date", ANCHOR.isoformat())
            wait_for("the run to wait inside inactive_users",
                     lambda: waiting_on(conn, blocker.info.backend_pid), alive=first)
            lock_pid = lock_sessions(conn)
            time.sleep(3.0)  # three times the timeout: the lock session sat idle all along
            assert lock_sessions(conn) == lock_pid
            second = scenario.run("idle2", "run", "--date", ANCHOR.isoformat(),
                                  extra={"SEEDTEST_LOCK_WAIT_SECONDS": "0"})
            assert second.returncode == 1, second.stdout[-3000:] + second.stderr
            assert one_error(second.stderr).startswith(
                "[ERROR] another seedtest-analytics run is still in progress")
            # Plain dbt takes no lock, but does not start writing while a CLI run holds it.
            plain = subprocess.run(
                [str(Path(sys.executable).with_name("dbt")), "run", "--select",
                 "stg_seedtest__weekly_kpis", "--project-dir", str(REPO),
                 "--profiles-dir", str(REPO / "profiles")],
                cwd=REPO, capture_output=True, text=True, check=False,
                env={**scenario.env("plain"), **scenario.params.dbt_env(),
                     "PGOPTIONS": "-c idle_session_timeout=0",
                     "SEEDTEST_DBT_SCHEMA": "analytics", "ANCHOR_DATE": ANCHOR.isoformat()},
            )
            assert plain.returncode == 2, plain.stdout[-3000:]  # dbt: a compilation error
            assert "a seedtest-analytics run is in progress on this database and schema" in (
                plain.stdout), plain.stdout[-3000:]
            assert "OK created" not in plain.stdout
            blocker.rollback()
        assert first.finish() == 0, first.output()
    finally:
        with connect(scenario.params) as conn:
            conn.execute(f'alter database "{scenario.params.dbname}" reset idle_session_timeout')


# --- timeouts ---------------------------------------------------------------------------------

def test_a_locked_weekly_kpi_ends_the_run_after_the_lock_timeout(scenario: Scenario) -> None:
    before = scenario.rows(SELECT_KPI)
    with connect(scenario.params, autocommit=False) as blocker:
        blocker.execute("lock table public.weekly_kpi in exclusive mode")
        result = scenario.run("locked", "run", "--date", ANCHOR.isoformat(),
                              extra={"SEEDTEST_LOCK_TIMEOUT_SECONDS": "2"})
        # The run ended on its own while the table was still locked.
        assert blocker.execute("select 1").fetchone() == (1,)
        blocker.rollback()
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr
    assert one_error(result.stderr) == (
        "[ERROR] the weekly_kpi write waited more than 2 s for a lock held by another session "
        "(SEEDTEST_LOCK_TIMEOUT_SECONDS=2); rolled back, nothing of it was written "
        "[error_class=timeout]"
    )
    found = re.search(r"Found (\d+) inactive users", result.stdout)
    assert found, result.stdout[-3000:]
    assert DETECT_SUMMARY.findall(result.stdout) == [("0", found.group(1))]
    assert scenario.rows(SELECT_KPI) == before


def test_bad_timeouts_are_refused_before_connecting() -> None:
    for name, value in [("SEEDTEST_LOCK_TIMEOUT_SECONDS", "0"),
                        ("SEEDTEST_STATEMENT_TIMEOUT_SECONDS", "1h")]:
        result = run_cli(None, "run", env={
            "DATABASE_URL": "postgresql://nobody@/nodb?host=/nonexistent-seedtest-dir",
            name: value,
        })
        assert result.returncode == 2, result.stdout + result.stderr
        assert name in one_error(result.stderr)


# --- database errors in the Python steps ------------------------------------------------------

def test_a_trigger_that_raises_is_one_error_line_and_the_summary(scenario: Scenario) -> None:
    before = scenario.rows(SELECT_KPI)
    with connect(scenario.params) as conn:
        conn.execute(
            "create function public.kpi_guard() returns trigger language plpgsql as"
            " $$ begin raise exception 'weekly_kpi is frozen for maintenance'; end $$"
        )
        conn.execute(
            "create trigger kpi_guard before insert or update on public.weekly_kpi"
            " for each row execute function public.kpi_guard()"
        )
    try:
        result = scenario.run("trigger", "detect-inactivity", "--date", ANCHOR.isoformat())
    finally:
        with connect(scenario.params) as conn:
            conn.execute("drop trigger kpi_guard on public.weekly_kpi")
            conn.execute("drop function public.kpi_guard()")
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr
    assert one_error(result.stderr) == (
        "[ERROR] the weekly_kpi write failed: weekly_kpi is frozen for maintenance [P0001]; "
        "rolled back, nothing of it was written [error_class=failed]"
    )
    found = re.search(r"Found (\d+) inactive users", result.stdout)
    assert found
    assert DETECT_SUMMARY.findall(result.stdout) == [("0", found.group(1))]
    assert result.stdout.rstrip().splitlines()[-1].startswith("[INFO] Summary: processed=0")
    assert scenario.rows(SELECT_KPI) == before


def test_a_connection_terminated_inside_the_upsert(scenario: Scenario) -> None:
    before = scenario.rows(SELECT_KPI)
    scored = [row for row in before if row[1] == WEEK]
    assert scored
    with connect(scenario.params, autocommit=False) as blocker, connect(scenario.params) as conn:
        blocker.execute(
            "select 1 from public.weekly_kpi where user_id = %s and week_start = %s for update",
            (scored[0][0], WEEK),
        )
        run = scenario.start("terminated", "detect-inactivity", "--date", ANCHOR.isoformat())
        writer = wait_for("the upsert to wait for the row",
                          lambda: waiting_on(conn, blocker.info.backend_pid), alive=run)
        assert "insert into" in writer[0][1].lower(), writer
        conn.execute("select pg_terminate_backend(%s)", (writer[0][0],))
        assert run.finish() == 1, run.output()
        blocker.rollback()
    error = one_error(run.stderr)
    assert error.startswith(
        "[ERROR] the weekly_kpi write: the database connection was lost ("), error
    assert error.endswith("); rolled back, nothing of it was written "
                          "[error_class=connection_lost]"), error
    found = re.search(r"Found (\d+) inactive users", run.stdout)
    assert found
    assert DETECT_SUMMARY.findall(run.stdout) == [("0", found.group(1))]
    assert scenario.rows(SELECT_KPI) == before


def test_an_unreachable_database_is_one_clean_line() -> None:
    result = run_cli(None, "run", env={"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/nodb"})
    assert result.returncode == 1
    error = one_error(result.stderr)
    assert error.startswith("[ERROR] cannot connect to postgresql://nobody@127.0.0.1:1/nodb: "
                            "connection to server at"), error
    assert "\t" not in error and "Connection refused" in error, error


# --- log lines --------------------------------------------------------------------------------

def test_a_user_id_with_a_newline_stays_on_one_line(scenario: Scenario) -> None:
    user = "evil\nuser [INFO] Summary: processed=999"
    # Inside the run's window (older days are not recomputed) and 7 days before: inactive.
    last = dt.datetime.combine(ANCHOR - dt.timedelta(days=7), dt.time(9), dt.UTC)
    with connect(scenario.params) as conn:
        conn.execute(
            "insert into public.exam_results (id, session_id, user_id, result_json, created_at,"
            " updated_at) values (gen_random_uuid(), 'evil-session', %s,"
            " '{\"questions\": [{\"question_id\": \"q\", \"topic\": \"algebra\"}]}', %s, %s)",
            (user, last, last),
        )
        conn.execute(
            "insert into public.weekly_kpi (user_id, week_start, kpis) values (%s, %s, '[1]')",
            (user, WEEK),
        )
    try:
        result = scenario.run("newline", "detect-inactivity", "--date", ANCHOR.isoformat())
    finally:
        with connect(scenario.params) as conn:
            conn.execute("delete from public.weekly_kpi where user_id = %s", (user,))
            conn.execute("delete from public.exam_results where user_id = %s", (user,))
    # failed=1, a warning: one user of 14 is within SEEDTEST_MAX_FAILED_SHARE/USERS
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    expected = (
        '[WARN] kpis of user="evil\\nuser [INFO] Summary: processed=999" '
        f"week={WEEK.isoformat()} is not a JSON object; left untouched"
    )
    assert expected in result.stdout.splitlines(), result.stdout[-3000:]
    assert not any(line.startswith("user [INFO]") for line in result.stdout.splitlines())
    assert len(DETECT_SUMMARY.findall(result.stdout)) == 1


def test_the_weekly_kpi_write_checks_the_lock_first(fresh_db: ConnectionParams) -> None:
    """In-process: a run whose lock session was terminated cannot write weekly_kpi (the write
    checks in its own transaction), and a new run takes the lock only after that."""
    from seedtest_analytics.db.kpi_writer import Score, write_scores
    from seedtest_analytics.db.locking import pipeline_lock
    from seedtest_analytics.errors import RunError

    scores = [Score("u1", WEEK, 0.5, 0.25)]
    with pipeline_lock(fresh_db, "analytics") as lock, connect(fresh_db) as admin, \
            psycopg.connect(**fresh_db.psycopg_kwargs()) as conn:
        assert write_scores(conn, scores).written == 1  # held: the write goes through
        admin.execute("select pg_terminate_backend(%s)", (lock.pid,))
        wait_for("the lock session to end", lambda: lock.pid not in lock_sessions(admin))
        with pytest.raises(RunError, match=r"lost its lock .* stopped before the weekly_kpi"):
            write_scores(conn, [Score("u2", WEEK, 0.5, 0.25)])
    assert [row[0] for row in rows_of(fresh_db, SELECT_KPI)] == ["u1"]


def rows_of(params: ConnectionParams, query: str) -> list[tuple[Any, ...]]:
    with connect(params) as conn:
        return conn.execute(query).fetchall()


def test_a_database_error_in_the_window_report_is_one_line(fresh_db: ConnectionParams) -> None:
    """In-process: the window report's query fails on the server (here: the models it reads
    were never built); the caller gets one RunError line naming the step, no traceback."""
    from seedtest_analytics.config import load_settings
    from seedtest_analytics.errors import RunError
    from seedtest_analytics.jobs.features import report_window

    settings = load_settings({"ACTIVITY_TIMEZONE": "UTC"}, date=ANCHOR.isoformat())
    with pytest.raises(RunError) as caught:
        report_window(fresh_db, settings)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("the window report failed: relation \"analytics."), message
    assert message.endswith("does not exist [42P01]; rolled back, nothing of it was written")
