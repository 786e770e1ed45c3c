"""What an operator sees of the nights: every run's row written when it starts (a killed run
stays visible as `interrupted`), failures classified on one line and in the history, exit
codes the CronJob's retry policy can act on (2: configuration, 3: stale source), a few rows
that cannot be written as warnings, a quiet weekday told from a stale source, the `status`
command, and the metrics pushed to a Pushgateway (a tiny local HTTP server stands in for it).

One database with the demo data, where one weekday never has exams (a school closed on that
day); the runs below happen in order.
"""

from __future__ import annotations

import datetime as dt
import http.server
import os
import re
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import psycopg
import pytest
from psycopg import sql

import background
import cli_process
from conftest import REPO, create_database, drop_database
from seedtest_analytics.db.connection import ConnectionParams
from seedtest_dev.synthetic import generate_demo

ANCHOR = dt.date(2025, 11, 1)  # a Saturday, the last day of the demo data
QUIET = ANCHOR + dt.timedelta(days=1)  # a Sunday: the demo school has no exams on Sundays
STALE = ANCHOR + dt.timedelta(days=2)  # a Monday: every Monday before had exams
SUMMARY = re.compile(
    r"^\[INFO\] Summary: processed=(\d+), failed=(\d+), threshold=7 days, duration_ms=\d+$", re.M)
CLASS = re.compile(r" \[error_class=([a-z_]+)\]$")


def connect(params: ConnectionParams) -> psycopg.Connection:
    return psycopg.connect(**params.psycopg_kwargs(), autocommit=True,
                           options="-c idle_session_timeout=0")


def clean_env(params: ConnectionParams | None, target: Path, **extra: str) -> dict[str, str]:
    env = {
        key: value for key, value in os.environ.items()
        if not key.startswith(("AGG_", "METRICS_", "KPI_", "INACTIVITY_", "ANCHOR_", "SEEDTEST_"))
        and key not in ("DATABASE_URL", "SOURCE_SCHEMA", "PGOPTIONS")
    }
    env.update(ACTIVITY_TIMEZONE="UTC", SEEDTEST_DBT_TESTS="false",
               DBT_TARGET_PATH=str(target), DBT_LOG_PATH=str(target.parent / "logs"))
    if params is not None:
        env["DATABASE_URL"] = params.to_url()
    env.update(extra)
    return env


def cli(params: ConnectionParams | None, target: Path, *args: str,
        **extra: str) -> subprocess.CompletedProcess[str]:
    result = cli_process.run("seedtest_analytics", args, env=clean_env(params, target, **extra),
                             cwd=REPO)
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result


def errors(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The [ERROR] lines; each one line ending with its class."""
    lines = result.stderr.strip().splitlines()
    assert all(line.startswith("[ERROR] ") and CLASS.search(line) for line in lines), lines
    return lines


def output(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n{result.stdout[-4000:]}\nstderr:\n{result.stderr}"


@dataclass
class Ops:
    params: ConnectionParams
    tmp: Path
    out: dict[str, subprocess.CompletedProcess[str]] = field(default_factory=dict)

    def run(self, name: str, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        self.out[name] = cli(self.params, self.tmp / f"target-{name}", *args, **extra)
        return self.out[name]

    def rows(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        with connect(self.params) as conn:
            return [tuple(row) for row in conn.execute(query, args).fetchall()]

    def last_run(self) -> tuple[Any, ...]:
        return self.rows("select command, status, exit_code, error_class, error, users_found,"
                         " users_scored, users_failed, finished_at"
                         " from analytics.seedtest_run_history order by started_at desc limit 1")[0]


@pytest.fixture(autouse=True)
def _no_leftover_processes() -> Iterator[None]:
    yield
    background.kill_leftovers()


@pytest.fixture(scope="module")
def ops(server_params: ConnectionParams, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[Ops]:
    params = create_database(server_params)
    with connect(params) as conn:
        generate_demo(conn, users=30, days=40, seed=5, end_date=ANCHOR)
        # A school closed on Sundays: no exam ever on that weekday.
        conn.execute("delete from public.exam_results where extract(isodow from"
                     " coalesce(updated_at, created_at) at time zone 'UTC') = 7"
                     " or extract(isodow from created_at at time zone 'UTC') = 7")
    ops = Ops(params, tmp_path_factory.mktemp("ops"))
    first = ops.run("first", "run", "--date", ANCHOR.isoformat())
    assert first.returncode == 0, output(first)
    yield ops
    drop_database(server_params, params)


# --- the run's row from its start -------------------------------------------------------------

def test_a_killed_run_stays_visible_as_interrupted(ops: Ops) -> None:
    with connect(ops.params) as blocker, connect(ops.params) as conn:
        blocker.execute("begin")
        blocker.execute("lock table analytics.features_topic_daily in access exclusive mode")
        run = background.start(ops.tmp, "killed", ("aggregate", "--date", ANCHOR.isoformat()),
                               clean_env(ops.params, ops.tmp / "target-killed"))
        background.wait_for(
            "the run to wait for features_topic_daily",
            lambda: conn.execute("select pid from pg_stat_activity where %s = any("
                                 "pg_blocking_pids(pid))", (blocker.info.backend_pid,)
                                 ).fetchall(), alive=run)
        # While it runs, its row is there already and reads as running.
        [(status, state, session)] = conn.execute(
            "select status, state, session_name from analytics.seedtest_run_status"
            " where finished_at is null").fetchall()
        assert (status, state) == ("running", "running")
        run.kill()
        blocker.execute("rollback")
        background.wait_for("the run's sessions to end", lambda: not conn.execute(
            "select from pg_stat_activity where application_name = %s", (session,)).fetchall())
        [(status, state, command)] = conn.execute(
            "select status, state, command from analytics.seedtest_run_status"
            " where session_name = %s", (session,)).fetchall()
    assert (status, state, command) == ("running", "interrupted", "aggregate")
    status_out = ops.run("status-killed", "status")
    assert status_out.returncode == 0, output(status_out)
    assert re.search(r"^\[WARN\] aggregate: then interrupted at ", status_out.stdout, re.M), \
        status_out.stdout


def test_an_unreachable_database_says_so_in_one_line(tmp_path: Path) -> None:
    result = cli(None, tmp_path / "target", "run",
                 DATABASE_URL="postgresql://nobody@127.0.0.1:1/nodb")
    assert result.returncode == 1, output(result)
    [line] = errors(result)
    assert line.startswith("[ERROR] cannot connect to postgresql://nobody@127.0.0.1:1/nodb: ")
    assert "no run history row could be written" in line, line
    assert line.endswith("[error_class=database_unreachable]"), line


# --- a few rows that cannot be written ----------------------------------------------------------

def test_rows_that_cannot_be_written_are_warnings_up_to_a_share(ops: Ops) -> None:
    week = ANCHOR - dt.timedelta(days=ANCHOR.weekday())
    with connect(ops.params) as conn:
        spoiled = conn.execute(
            "update public.weekly_kpi set kpis = '[1]'::jsonb where (user_id, week_start) in ("
            " select user_id, week_start from public.weekly_kpi where week_start = %s"
            " and kpis ? 'S' order by user_id limit 2) returning user_id", (week,)).fetchall()
    assert len(spoiled) == 2
    tolerated = ops.run("tolerated", "detect-inactivity", "--date", ANCHOR.isoformat())
    assert tolerated.returncode == 0, output(tolerated)
    assert tolerated.stderr == ""
    [(processed, failed)] = SUMMARY.findall(tolerated.stdout)
    assert failed == "2" and int(processed) > 0
    assert len(re.findall(r"^\[WARN\] kpis of user=.* is not a JSON object; left untouched$",
                          tolerated.stdout, re.M)) == 2
    found = int(processed) + 2
    assert (f"[WARN] 2 of {found} users found could not be scored or written (warnings above); "
            "within SEEDTEST_MAX_FAILED_SHARE=0.01 or SEEDTEST_MAX_FAILED_USERS=10, so the run "
            "succeeds") in tolerated.stdout.splitlines()
    row = ops.last_run()
    assert row[:4] == ("detect-inactivity", "success", 0, None)
    assert (row[5], row[6], row[7]) == (found, int(processed), 2)

    strict = ops.run("strict", "detect-inactivity", "--date", ANCHOR.isoformat(),
                     SEEDTEST_MAX_FAILED_USERS="1")
    assert strict.returncode == 1, output(strict)
    [line] = errors(strict)
    share = 2 / found
    assert line == (
        f"[ERROR] 2 of {found} users found ({share:.1%}) could not be written, more than "
        "SEEDTEST_MAX_FAILED_SHARE=0.01 and SEEDTEST_MAX_FAILED_USERS=1; the others were "
        "written [error_class=write_failures]")
    assert SUMMARY.findall(strict.stdout) == [(processed, "2")]
    row = ops.last_run()
    assert row[:4] == ("detect-inactivity", "failed", 1, "write_failures")
    assert row[4] == line.removeprefix("[ERROR] ").removesuffix(" [error_class=write_failures]")
    with connect(ops.params) as conn:
        conn.execute("update public.weekly_kpi set kpis = '{}'::jsonb"
                     " where jsonb_typeof(kpis) <> 'object'")


# --- freshness: stale or quiet ------------------------------------------------------------------

def test_a_quiet_weekday_is_not_a_stale_source(ops: Ops) -> None:
    quiet = ops.run("quiet", "detect-inactivity", "--date", QUIET.isoformat())
    assert quiet.returncode == 0, output(quiet)
    assert (f"[INFO] no exams in public.exam_results on the anchor day {QUIET.isoformat()} (UTC),"
            " a quiet weekday (0 of the 4 same weekdays before had exams): not a stale source"
            ) in quiet.stdout.splitlines()


def test_a_stale_source_exits_3_and_says_how_to_override(ops: Ops) -> None:
    stale = ops.run("stale", "detect-inactivity", "--date", STALE.isoformat())
    assert stale.returncode == 3, output(stale)
    [line] = errors(stale)
    assert "looks stale" in line and "4 of the 4 same weekdays before had exams" in line, line
    assert line.endswith("; if the source is right (a quiet day), score anyway for this one run "
                         "with --allow-stale or SEEDTEST_ALLOW_STALE=true "
                         "[error_class=stale_source]"), line
    assert ops.last_run()[:4] == ("detect-inactivity", "failed", 3, "stale_source")
    allowed = ops.run("allowed", "detect-inactivity", "--date", STALE.isoformat(),
                      "--allow-stale")
    assert allowed.returncode == 0, output(allowed)
    assert re.search(r"^\[WARN\] source public.exam_results looks stale: .*; scoring anyway",
                     allowed.stdout, re.M), allowed.stdout


def test_the_cronjob_does_not_retry_a_stale_source() -> None:
    import yaml

    for name in ("cronjob.yaml", "backfill-job.yaml"):
        manifest = yaml.safe_load((REPO / "deploy" / "k8s" / name).read_text())
        spec = manifest["spec"]["jobTemplate"]["spec"] if manifest["kind"] == "CronJob" else \
            manifest["spec"]
        codes = [rule["onExitCodes"]["values"] for rule in spec["podFailurePolicy"]["rules"]
                 if rule["action"] == "FailJob" and "onExitCodes" in rule]
        assert codes == [[2, 3]], (name, codes)


# --- status -------------------------------------------------------------------------------------

def test_status_reports_the_last_success_and_exits_1_when_too_old(ops: Ops) -> None:
    fine = ops.run("status", "status", "--max-age", "26")
    assert fine.returncode == 0, output(fine)
    [(anchor,)] = ops.rows("select anchor_date from analytics.seedtest_run_history"
                           " where command = 'run' and status = 'success'")
    assert re.search(rf"^\[INFO\] run: last success at \S+ \S+ UTC \(anchor {anchor}, "
                     r"\d+\.\d h ago\)$", fine.stdout, re.M), fine.stdout
    old = ops.run("status-old", "status", "--max-age", "0.0001")
    assert old.returncode == 1, output(old)
    [line] = errors(old)
    assert line.startswith("[ERROR] run: last success at ") and "more than --max-age" in line
    assert line.endswith("[error_class=no_recent_success]"), line
    never = ops.run("status-never", "status", "--max-age", "26", "--command", "backfill")
    assert never.returncode == 1, output(never)
    assert errors(never)[0].startswith("[ERROR] backfill: no successful run")
    bad = ops.run("status-bad", "status", "--max-age", "soon")
    assert bad.returncode == 2, output(bad)


# --- metrics ------------------------------------------------------------------------------------

class _Gateway(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, str, str]]] = []
    answer = 200

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        type(self).received.append((self.command, self.path, body))
        self.send_response(type(self).answer)
        self.end_headers()

    do_PUT = do_POST

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def gateway() -> Iterator[tuple[str, type[_Gateway]]]:
    handler = type("Gateway", (_Gateway,), {"received": [], "answer": 200})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


def metric(body: str, name: str, **labels: str) -> float:
    for line in body.splitlines():
        match = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if match and all(f'{k}="{v}"' in match.group(1) for k, v in labels.items()):
            return float(match.group(2))
    raise AssertionError(f"{name} {labels} not in:\n{body}")


def test_metrics_are_pushed_and_a_failed_push_is_a_warning(
    ops: Ops, gateway: tuple[str, type[_Gateway]]
) -> None:
    url, handler = gateway
    before = dt.datetime.now(dt.UTC).timestamp()
    pushed = ops.run("pushed", "detect-inactivity", "--date", ANCHOR.isoformat(),
                     SEEDTEST_PUSHGATEWAY_URL=url)
    assert pushed.returncode == 0, output(pushed)
    [(method, path, body)] = handler.received
    assert (method, path) == ("POST", "/metrics/job/seedtest-analytics/command/detect-inactivity")
    [(processed, failed)] = SUMMARY.findall(pushed.stdout)
    command = {"command": "detect-inactivity"}
    assert metric(body, "seedtest_users_scored", **command) == int(processed)
    assert metric(body, "seedtest_users_failed", **command) == int(failed)
    assert metric(body, "seedtest_rows_written", **command) == int(processed)
    assert metric(body, "seedtest_last_success_timestamp_seconds", **command) >= before
    assert metric(body, "seedtest_run_duration_seconds", **command) > 0
    assert metric(body, "seedtest_exit_class", exit_class="success", **command) == 1
    assert metric(body, "seedtest_exit_class", exit_class="stale_source", **command) == 0

    # A stale night: no new last-success time (pushadd keeps the gateway's), the class is set.
    handler.received.clear()
    stale = ops.run("pushed-stale", "detect-inactivity", "--date", STALE.isoformat(),
                    SEEDTEST_PUSHGATEWAY_URL=url)
    assert stale.returncode == 3, output(stale)
    [(_, _, body)] = handler.received
    assert "seedtest_last_success_timestamp_seconds" not in body
    assert metric(body, "seedtest_exit_class", exit_class="stale_source", **command) == 1

    handler.answer = 500
    refused = ops.run("push-refused", "detect-inactivity", "--date", ANCHOR.isoformat(),
                      SEEDTEST_PUSHGATEWAY_URL=url)
    assert refused.returncode == 0, output(refused)
    assert re.search(r"^\[WARN\] metrics not pushed to SEEDTEST_PUSHGATEWAY_URL: ",
                     refused.stdout, re.M), refused.stdout


# --- configuration failures exit 2 --------------------------------------------------------------

@pytest.fixture
def bare_role(ops: Ops) -> Iterator[str]:
    """A login role that may connect and use its own schema, but read no source table."""
    role = "seedtest_bare"
    with connect(ops.params) as conn:
        conn.execute(sql.SQL("create role {} login").format(sql.Identifier(role)))
        conn.execute(sql.SQL("grant connect, temporary on database {} to {}").format(
            sql.Identifier(ops.params.dbname), sql.Identifier(role)))
        conn.execute(sql.SQL("create schema bare authorization {}").format(sql.Identifier(role)))
    yield role
    with connect(ops.params) as conn:
        conn.execute("drop schema bare cascade")
        conn.execute(sql.SQL("drop owned by {} cascade").format(sql.Identifier(role)))
        conn.execute(sql.SQL("drop role {}").format(sql.Identifier(role)))


def test_a_missing_privilege_is_configuration_exit_2(ops: Ops, bare_role: str) -> None:
    params = ConnectionParams(host=ops.params.host, port=ops.params.port, user=bare_role,
                              password="", dbname=ops.params.dbname)
    result = cli(params, ops.tmp / "target-bare", "detect-inactivity", "--date",
                 ANCHOR.isoformat(), SEEDTEST_DBT_SCHEMA="bare", SOURCE_SCHEMA="public")
    assert result.returncode == 2, output(result)
    first = errors(result)[0]
    assert "permission denied" in first and first.endswith("[error_class=permission]"), first
    with connect(ops.params) as conn:
        [(status, code, error_class)] = conn.execute(
            "select status, exit_code, error_class from bare.seedtest_run_history").fetchall()
    assert (status, code, error_class) == ("refused", 2, "permission")


# --- the database stops during a run ------------------------------------------------------------

def test_a_database_that_stops_is_named_not_the_lock(tmp_path: Path) -> None:
    from seedtest_analytics.db.app_schema import init_db
    from seedtest_dev import embedded

    pgdata = Path(tempfile.mkdtemp(prefix="seedtest-test-stop-"))
    with embedded.throwaway_server(pgdata) as server:
        params = server.params("postgres")
        init_db(params)
        with connect(params) as conn:
            generate_demo(conn, users=10, days=30, seed=3, end_date=ANCHOR)
        first = cli(params, tmp_path / "target", "run", "--date", ANCHOR.isoformat())
        assert first.returncode == 0, output(first)
        blocker, conn = connect(params), connect(params)
        try:
            blocker.execute("begin")
            blocker.execute("lock table analytics.features_topic_daily in access exclusive mode")
            run = background.start(tmp_path, "stopped", ("run", "--date", ANCHOR.isoformat()),
                                   clean_env(params, tmp_path / "target"))
            background.wait_for(
                "the run to wait for features_topic_daily",
                lambda: conn.execute("select pid from pg_stat_activity where %s = any("
                                     "pg_blocking_pids(pid))", (blocker.info.backend_pid,)
                                     ).fetchall(), alive=run)
            embedded.stop(server.pgdata)
            code = run.finish()
        finally:
            blocker.close()  # the server is gone: nothing to roll back
            conn.close()
    text = run.stdout + run.stderr
    assert code == 1, run.output()
    assert "Traceback" not in text and "keyboard interrupt" not in text.lower(), run.output()
    assert "lost its lock" not in text, run.output()
    lines = run.stderr.strip().splitlines()
    assert lines and all(line.startswith("[ERROR] ") for line in lines), run.output()
    assert "the database stopped answering (cannot connect to" in lines[0], lines
    assert lines[0].endswith("[error_class=database_unreachable]"), lines
    assert re.search(r"^\[INFO\] Summary: processed=0, failed=1, threshold=7 days",
                     run.stdout, re.M), run.output()


# --- rebuild, backfill --dry-run ------------------------------------------------------------------

FEATURES_UP_TO = ("select * from analytics.features_topic_daily where date <= %s"
                  " order by 1, 2, 3")


def test_rebuild_and_backfill_dry_runs_write_nothing_and_rebuild_gives_the_same_rows(
    ops: Ops,
) -> None:
    before = ops.rows(FEATURES_UP_TO, ANCHOR)
    storage = ops.rows("select relfilenode from pg_class where oid ="
                       " 'analytics.features_topic_daily'::regclass")
    assert before
    dry = ops.run("rebuild-dry", "rebuild", "--date", ANCHOR.isoformat(), "--dry-run")
    assert dry.returncode == 0, output(dry)
    assert re.search(r"^\[INFO\] Rebuild: models built=\d+, .*full refresh, dry_run=True, ",
                     dry.stdout, re.M), dry.stdout[-3000:]
    backfill = ops.run("backfill-dry", "backfill", "--start", (ANCHOR - dt.timedelta(days=3))
                       .isoformat(), "--end", ANCHOR.isoformat(), "--dry-run")
    assert backfill.returncode == 0, output(backfill)
    # Nothing of the real tables moved.
    assert ops.rows(FEATURES_UP_TO, ANCHOR) == before
    assert ops.rows("select relfilenode from pg_class where oid ="
                    " 'analytics.features_topic_daily'::regclass") == storage
    real = ops.run("rebuild", "rebuild", "--date", ANCHOR.isoformat())
    assert real.returncode == 0, output(real)
    # Every day rebuilt from all history equals what the nights built incrementally (all but
    # the last column, the time the row was computed).
    assert [r[:-1] for r in ops.rows(FEATURES_UP_TO, ANCHOR)] == [r[:-1] for r in before]
    assert ops.rows("select relfilenode from pg_class where oid ="
                    " 'analytics.features_topic_daily'::regclass") != storage  # rebuilt
    history = ops.rows("select command, dry_run, status from analytics.seedtest_run_history"
                       " where command in ('rebuild', 'backfill') order by started_at")
    assert history == [("rebuild", True, "success"), ("backfill", True, "success"),
                       ("rebuild", False, "success")]


def test_plain_dbt_without_the_connection_settings_fails_clearly(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("SEEDTEST_PG", "DBT_ENV_SECRET"))}
    env.update(DBT_TARGET_PATH=str(tmp_path / "target"), DBT_LOG_PATH=str(tmp_path / "logs"))
    result = subprocess.run(
        [str(Path(sys.executable).parent / "dbt"), "debug", "--project-dir", str(REPO),
         "--profiles-dir", str(REPO / "profiles")],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
    assert result.returncode != 0, result.stdout
    assert "Env var required but not provided: 'SEEDTEST_PGHOST'" in result.stdout, \
        result.stdout[-3000:]
    assert "localhost" not in result.stdout


# --- every subcommand's --help --------------------------------------------------------------------

def test_every_subcommand_says_what_it_does_and_what_it_reads(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from seedtest_analytics import cli

    parser = cli.build_parser()
    [commands] = [a for a in parser._actions if a.dest == "command"]
    names = sorted(commands.choices)  # type: ignore[arg-type]
    assert {"run", "status", "rebuild", "backtest", "train-churn", "dbt-retry"} <= set(names)
    for name in names:
        with pytest.raises(SystemExit) as stopped:
            cli.main([name, "--help"])
        assert stopped.value.code == 0
        text = capsys.readouterr().out
        usage_end = text.index("\n\n")
        description = text[usage_end:].strip().split("\n\n")[0]
        assert len(description) > 20 and not description.startswith(("options", "-")), \
            (name, text)
        assert "environment variables read: DATABASE_URL" in text, (name, text)
        assert "exit codes: 0 success" in text, (name, text)
    with pytest.raises(SystemExit):
        cli.main(["backfill", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "also rewrites the AGG_LOOKBACK_DAYS days before it" in text, text
