"""The nightly pipeline end to end (`run`, `backfill`, and the old jobs' log lines) on the
deterministic demo data, against a real database through the CLI.

dbt invocations are the expensive part, so one demo database serves several tests: the
module fixture `demo` runs `run --dry-run` and then `run` on it once, and the tests assert on
what those runs printed and left behind.
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg import sql

from conftest import create_database, drop_database, run_cli
from seedtest_analytics.db.connection import ConnectionParams
from seedtest_dev.synthetic import generate_demo

ANCHOR = dt.date(2025, 11, 1)  # a Saturday: weekly_kpi week_start 2025-10-27
WEEK_START = ANCHOR - dt.timedelta(days=ANCHOR.weekday())
LOOKBACK = 7

FEATURE_COLUMNS = (
    "user_id, topic_id, date, attempts, correct, avg_time_ms, hints, theta_estimate, theta_sd,"
    " rt_median, improvement, last_seen_at"
)
SELECT_FEATURES = f"select {FEATURE_COLUMNS} from analytics.features_topic_daily"
SELECT_FEATURES_WITH_COMPUTED_AT = (
    f"select {FEATURE_COLUMNS}, computed_at from analytics.features_topic_daily"
)
SELECT_WEEKLY_KPI = (
    "select user_id, week_start, kpis::text, created_at, updated_at from public.weekly_kpi"
)

# The old jobs' lines and the pipeline's own.
AGGREGATING = re.compile(
    r"^\[INFO\] Aggregating features for (\d+) \(user, topic, date\) combinations; "
    r"since=(\d{4}-\d{2}-\d{2}), anchor=(\d{4}-\d{2}-\d{2}), dry_run=(True|False)$",
    re.M,
)
AGG_SUMMARY = re.compile(
    r"^\[INFO\] Summary: processed=(\d+), failed=(\d+), duration_ms=\d+$", re.M
)
FOUND = re.compile(
    r"^\[INFO\] Found (\d+) inactive users \(threshold=(\d+) days\); dry_run=(True|False)$", re.M
)
DETECT_SUMMARY = re.compile(
    r"^\[INFO\] Summary: processed=(\d+), failed=(\d+), threshold=(\d+) days, duration_ms=\d+$",
    re.M,
)
PIPELINE = re.compile(
    r"^\[INFO\] Pipeline: models built=(\d+), tests passed=(\d+), warned=(\d+), failed=(\d+), "
    r"users scored=(\d+), duration_ms=\d+$",
    re.M,
)
BACKFILL = re.compile(
    r"^\[INFO\] Backfill: models built=(\d+), tests passed=(\d+), warned=(\d+), failed=(\d+), "
    r"duration_ms=\d+$",
    re.M,
)
# dbt's per-node progress lines (colour codes may sit around the status).
MODEL_OK = re.compile(
    r"\d+ of \d+ OK created sql (?:view|table|incremental|published_table) model analytics\.(\w+) "
)
NODE_PASS = re.compile(r"\d+ of \d+ PASS (\S+) ")
DBT_STARTED = "Running with dbt="


# --- helpers ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def dbt_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """dbt's target and log directories for this module, out of the checkout."""
    base = tmp_path_factory.mktemp("dbt")
    return {"DBT_TARGET_PATH": str(base / "target"), "DBT_LOG_PATH": str(base / "logs")}


def cli(
    params: ConnectionParams, dbt_dirs: dict[str, str], *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    result = run_cli(
        params, *args,
        env={"ACTIVITY_TIMEZONE": "UTC", "SEEDTEST_DBT_TESTS": "true", **dbt_dirs, **env},
    )
    assert "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr
    return result


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, (
        f"exit {result.returncode}\n{result.stdout[-6000:]}\n{result.stderr[-3000:]}"
    )
    return result


def connect(params: ConnectionParams) -> psycopg.Connection:
    return psycopg.connect(**params.psycopg_kwargs(), autocommit=True)


def rows(params: ConnectionParams, query: str, *args: Any) -> list[tuple[Any, ...]]:
    with connect(params) as conn:
        return [tuple(row) for row in conn.execute(query + " order by 1, 2, 3", args)]


def scalar(params: ConnectionParams, query: str, *args: Any) -> Any:
    with connect(params) as conn:
        row = conn.execute(query, args).fetchone()
    assert row is not None
    return row[0]


def table_exists(params: ConnectionParams, name: str) -> bool:
    return scalar(params, "select to_regclass(%s) is not null", name)


@dataclass
class DemoRuns:
    params: ConnectionParams
    weekly_kpi_before: list[tuple[Any, ...]]
    dry_run: subprocess.CompletedProcess[str]
    features_after_dry_run: bool
    weekly_kpi_after_dry_run: list[tuple[Any, ...]]
    run: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def demo(server_params: ConnectionParams, dbt_dirs: dict[str, str]) -> Iterator[DemoRuns]:
    """A demo database: `run --dry-run`, then `run`, both at ANCHOR."""
    params = create_database(server_params)
    try:
        with connect(params) as conn:
            generate_demo(conn, users=40, days=40, seed=11, end_date=ANCHOR)
        weekly_kpi_before = rows(params, SELECT_WEEKLY_KPI)
        dry_run = cli(params, dbt_dirs, "run", "--date", ANCHOR.isoformat(), "--dry-run")
        features_after_dry_run = table_exists(params, "analytics.features_topic_daily")
        weekly_kpi_after_dry_run = rows(params, SELECT_WEEKLY_KPI)
        run = cli(params, dbt_dirs, "run", "--date", ANCHOR.isoformat())
        yield DemoRuns(
            params=params,
            weekly_kpi_before=weekly_kpi_before,
            dry_run=dry_run,
            features_after_dry_run=features_after_dry_run,
            weekly_kpi_after_dry_run=weekly_kpi_after_dry_run,
            run=run,
        )
    finally:
        drop_database(server_params, params)


# --- run ----------------------------------------------------------------------------------

def test_run_builds_everything_then_scores(demo: DemoRuns) -> None:
    out = ok(demo.run).stdout
    params = demo.params
    # The build is the first dbt invocation (checks of what the P/S step wrote may follow).
    build_out = out.split(DBT_STARTED)[1]

    # dbt's own progress lines: one `OK created` per model, every model of the project.
    built = MODEL_OK.findall(build_out)
    assert len(built) == len(set(built)), built
    assert {
        "int_attempts__windowed", "int_user_ids", "features_topic_daily", "int_activity_daily",
        "user_last_activity", "inactive_users", "user_ability_as_of",
        "inactive_user_scoring_inputs",
    } <= set(built)
    assert "Completed successfully" in build_out

    # The old jobs' lines, for the anchor's window.
    since = (ANCHOR - dt.timedelta(days=LOOKBACK)).isoformat()
    in_window = scalar(
        params,
        "select count(*) from analytics.features_topic_daily where date between %s and %s",
        ANCHOR - dt.timedelta(days=LOOKBACK), ANCHOR,
    )
    assert in_window > 0
    assert AGGREGATING.findall(out) == [(str(in_window), since, ANCHOR.isoformat(), "False")]
    inactive = scalar(params, "select count(*) from analytics.inactive_users")
    assert inactive > 0
    assert FOUND.findall(out) == [(str(inactive), "7", "False")]
    assert DETECT_SUMMARY.findall(out) == [(str(inactive), "0", "7")]

    # The final line: U = the rows of the anchor's week that now hold S (the demo writes no S).
    assert not any('"S"' in row[2] for row in demo.weekly_kpi_before)
    pipeline = PIPELINE.findall(out)
    assert len(pipeline) == 1, out
    models, passed, warned, failed, scored = (int(n) for n in pipeline[0])
    assert out.rstrip().splitlines()[-1].startswith("[INFO] Pipeline: ")
    assert models == len(built)
    assert passed > 0
    assert passed == len(NODE_PASS.findall(build_out))
    assert failed == 0
    # The demo data breaks no warn-severity rule: those tests ran and passed (a warning would
    # not stop the run, so only this shows that they hold).
    assert warned == 0
    passed_tests = set(NODE_PASS.findall(build_out))
    assert {
        "stg_seedtest__weekly_kpis__kpis_is_object",
        "stg_seedtest__weekly_kpis__week_start_is_monday",
    } <= passed_tests
    with_s = scalar(
        params,
        "select count(*) from public.weekly_kpi where week_start = %s and kpis ? 'S'",
        WEEK_START,
    )
    assert scored == with_s == inactive
    assert scalar(
        params, "select count(*) from public.weekly_kpi where week_start <> %s and kpis ? 'S'",
        WEEK_START,
    ) == 0


def test_run_dry_run_writes_nothing_and_reports_the_same_counts(demo: DemoRuns) -> None:
    out = ok(demo.dry_run).stdout
    assert not demo.features_after_dry_run, "a dry run created features_topic_daily"
    assert demo.weekly_kpi_after_dry_run == demo.weekly_kpi_before
    assert not any('"S"' in row[2] or '"P"' in row[2] for row in demo.weekly_kpi_after_dry_run)

    dry_aggregating = AGGREGATING.findall(out)
    dry_found = FOUND.findall(out)
    assert [line[3] for line in dry_aggregating] == ["True"]
    assert [line[2] for line in dry_found] == ["True"]
    real = demo.run.stdout
    real_aggregating = AGGREGATING.findall(real)
    assert [line[:3] for line in dry_aggregating] == [line[:3] for line in real_aggregating]
    assert [line[:2] for line in dry_found] == [line[:2] for line in FOUND.findall(real)]
    assert DETECT_SUMMARY.findall(out) == DETECT_SUMMARY.findall(real)
    assert len(PIPELINE.findall(out)) == 1


def test_detect_inactivity_log_lines(demo: DemoRuns, dbt_dirs: dict[str, str]) -> None:
    """detect-inactivity keeps the old job's lines; --threshold shows in them."""
    params = demo.params
    before = rows(params, SELECT_WEEKLY_KPI)
    inactive_7 = scalar(params, "select count(*) from analytics.inactive_users")
    out = ok(cli(
        params, dbt_dirs, "detect-inactivity", "--date", ANCHOR.isoformat(),
        "--threshold", "10", "--dry-run",
    )).stdout
    # The dry run built its models in a scratch schema: the real run's are as they were.
    assert scalar(params, "select min(threshold_days) from analytics.inactive_users") == 7
    assert scalar(params, "select count(*) from analytics.inactive_users") == inactive_7
    inactive = int(FOUND.findall(out)[0][0])
    assert 0 < inactive <= inactive_7
    assert FOUND.findall(out) == [(str(inactive), "10", "True")]
    assert DETECT_SUMMARY.findall(out) == [(str(inactive), "0", "10")]
    assert "No inactive users found" not in out
    assert rows(params, SELECT_WEEKLY_KPI) == before


def test_run_stops_before_ps_when_an_error_test_fails(
    demo: DemoRuns, dbt_dirs: dict[str, str]
) -> None:
    """A wrong value in the run's own window (a trigger plays a model bug: a theta while
    include_theta is off): the window-scoped error test fails, the run exits 1 with an [ERROR]
    line, and weekly_kpi is not touched. The same wrong value on a day outside the window (a
    day an earlier run wrote with theta on) stops nothing, and stays as it was."""
    params = demo.params
    assert table_exists(params, "analytics.features_topic_daily")
    old_day = ANCHOR - dt.timedelta(days=30)
    before = rows(params, SELECT_WEEKLY_KPI)
    with connect(params) as conn:
        old_rows = conn.execute(
            "update analytics.features_topic_daily set theta_estimate = 0.5 where date = %s",
            (old_day,),
        ).rowcount
        assert old_rows > 0
        conn.execute(
            "create function analytics.corrupt_theta() returns trigger language plpgsql as"
            " $$ begin new.theta_estimate := 0.5; return new; end $$"
        )
        conn.execute(sql.SQL(
            "create trigger corrupt_theta before insert on analytics.features_topic_daily"
            " for each row when (new.date = {}) execute function analytics.corrupt_theta()"
        ).format(sql.Literal(ANCHOR)))
    try:
        result = cli(params, dbt_dirs, "run", "--date", ANCHOR.isoformat())
        assert result.returncode == 1, result.stdout[-4000:] + result.stderr
        errors = re.findall(r"^\[ERROR\] .*null_unless_include_theta.*$", result.stderr, re.M)
        assert errors, result.stderr
        assert all("theta_estimate" in line for line in errors), errors
        assert re.search(r"^\[ERROR\] dbt build failed; stopping before the P/S step",
                         result.stderr, re.M), result.stderr
        pipeline = PIPELINE.findall(result.stdout)
        assert len(pipeline) == 1
        assert pipeline[0][3] == "1"  # tests failed: only the theta of the window
        assert pipeline[0][4] == "0"  # users scored
        assert not FOUND.findall(result.stdout)
        assert rows(params, SELECT_WEEKLY_KPI) == before
        # The day outside the window was not touched.
        assert scalar(
            params,
            "select count(*) from analytics.features_topic_daily"
            " where date = %s and theta_estimate = 0.5",
            old_day,
        ) == old_rows
    finally:
        with connect(params) as conn:
            conn.execute("drop trigger corrupt_theta on analytics.features_topic_daily")
            conn.execute("drop function analytics.corrupt_theta()")
            conn.execute(
                "update analytics.features_topic_daily set theta_estimate = null"
                " where date in (%s, %s)",
                (old_day, ANCHOR),
            )


# --- backfill -----------------------------------------------------------------------------

def _utc_day(column: str) -> str:
    return f"(({column}) at time zone 'UTC')::date"


def test_backfill_equals_daily_runs(
    server_params: ConnectionParams, fresh_db: ConnectionParams, dbt_dirs: dict[str, str]
) -> None:
    """From the same state (a first run at FIRST, then the source changes: an exam deleted,
    one moved to another day, one deleted on a day no later window covers), daily
    `aggregate --date d` for d in START..END on one database and one `backfill --start START
    --end END` on its copy give the same features_topic_daily; days before every window keep
    their rows as the first run left them."""
    # Models only: the equality of the tables is the point here, not the data tests.
    lookback = {"AGG_LOOKBACK_DAYS": "2", "SEEDTEST_DBT_TESTS": "false"}
    first = dt.date(2025, 10, 20)
    start, end = first + dt.timedelta(days=1), first + dt.timedelta(days=3)
    oldest_recomputed = start - dt.timedelta(days=2)

    with connect(fresh_db) as conn:
        generate_demo(conn, users=20, days=30, seed=5, end_date=end)
    ok(cli(fresh_db, dbt_dirs, "aggregate", "--date", first.isoformat(), **lookback))
    initial = rows(fresh_db, SELECT_FEATURES_WITH_COMPUTED_AT)
    assert initial

    activity = "coalesce(updated_at, created_at)"
    with connect(fresh_db) as conn:
        # All exams of one user on the window's oldest day: their rows must disappear.
        gone_user = conn.execute(
            f"select min(user_id) from public.exam_results where user_id <> ''"
            f" and {_utc_day(activity)} = %s", (oldest_recomputed,),
        ).fetchone()[0]
        assert gone_user is not None
        conn.execute(
            f"delete from public.exam_results where user_id = %s and {_utc_day(activity)} = %s",
            (gone_user, oldest_recomputed),
        )
        # A correction: one exam of FIRST really happened two days later.
        conn.execute(
            "update public.exam_results set updated_at = updated_at + interval '2 days'"
            f" where id = (select min(id::text)::uuid from public.exam_results"
            f" where user_id <> '' and {_utc_day(activity)} = %s)",
            (first,),
        )
        # An exam on a day no window of START..END covers: its rows stay as they were.
        deleted_old = conn.execute(
            f"delete from public.exam_results where id = (select min(id::text)::uuid"
            f" from public.exam_results where user_id <> '' and {_utc_day(activity)} = %s)"
            " returning id",
            (oldest_recomputed - dt.timedelta(days=2),),
        ).fetchall()
        assert len(deleted_old) == 1
    assert any(row[0] == gone_user and row[2] == oldest_recomputed for row in initial)

    copy = create_database(server_params, template=fresh_db)
    try:
        # Daily runs on the original, each with the old job's lines.
        day = start
        while day <= end:
            out = ok(cli(fresh_db, dbt_dirs, "aggregate", "--date", day.isoformat(),
                         **lookback)).stdout
            since = day - dt.timedelta(days=2)
            in_window = scalar(
                fresh_db,
                "select count(*) from analytics.features_topic_daily where date between %s and %s",
                since, day,
            )
            assert AGGREGATING.findall(out) == [
                (str(in_window), since.isoformat(), day.isoformat(), "False")
            ]
            assert AGG_SUMMARY.findall(out) == [(str(in_window), "0")]
            day += dt.timedelta(days=1)
        daily = rows(fresh_db, SELECT_FEATURES)

        # One backfill on the copy: one dbt invocation.
        out = ok(cli(copy, dbt_dirs, "backfill", "--start", start.isoformat(),
                     "--end", end.isoformat(), **lookback)).stdout
        assert out.count(DBT_STARTED) == 1, out
        assert len(BACKFILL.findall(out)) == 1, out
        assert [line[1:] for line in AGGREGATING.findall(out)] == [
            (oldest_recomputed.isoformat(), end.isoformat(), "False")
        ]
        backfilled = rows(copy, SELECT_FEATURES)
        assert backfilled == daily

        # The changes did reach the recomputed days, and only those.
        assert not any(r[0] == gone_user and r[2] == oldest_recomputed for r in backfilled)
        untouched = [r for r in initial if r[2] < oldest_recomputed]
        assert untouched
        assert rows(copy, SELECT_FEATURES_WITH_COMPUTED_AT + " where date < %s",
                    oldest_recomputed) == untouched
        assert max(r[2] for r in backfilled) == end
    finally:
        drop_database(server_params, copy)


def test_backfill_bad_range_is_a_usage_error(
    fresh_db: ConnectionParams, dbt_dirs: dict[str, str]
) -> None:
    for args in (
        ("--start", "2025-10-05", "--end", "2025-10-01"),
        ("--start", "2025-13-40", "--end", "2025-10-01"),
    ):
        result = cli(fresh_db, dbt_dirs, "backfill", *args)
        assert result.returncode == 2, result.stdout + result.stderr
        assert re.search(r"^\[ERROR\] .*--start", result.stderr, re.M), result.stderr
        assert DBT_STARTED not in result.stdout
    assert not table_exists(fresh_db, "analytics.features_topic_daily")

