"""`seedtest-dev bench`: the new pipeline against the old row-at-a-time jobs, side by side.

Everything runs in one process on one dataset, so the ratios hold on a shared, noisy machine
even where the absolute seconds do not:

* synthetic data at the chosen scale (synthetic.generate_bulk, through the real exam_results
  table and the attempt view), then VACUUM ANALYZE;
* (a) the full build of features_topic_daily and (b) the nightly incremental run (wall time of
  the dbt invocation, and from the run results the execution time of the models computing
  the features: features_topic_daily and its intermediate models, "the chain");
* (e) the floor: one hand-written SQL statement computing the same daily aggregate for the
  same window, timed by the server (EXPLAIN ANALYZE, timing off);
* (c) the P/S step for every inactive user;
* (d) the old jobs re-created (legacy.py) on a sample of combinations and users;
* the nightly run's time against the length of history at a fixed daily volume;
* optionally P/S for M synthetic inactive users in a process of its own (seconds, peak RSS).

The report (a table and the targets) is printed and written to --output.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import math
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from seedtest_analytics import log
from seedtest_analytics.config import Settings, parse_identifier, parse_int, today_in
from seedtest_analytics.db import connection
from seedtest_analytics.db.app_schema import init_db
from seedtest_analytics.db.connection import ConnectionParams, connect
from seedtest_analytics.dbt import profiling
from seedtest_analytics.dbt.runner import target_schema
from seedtest_analytics.errors import RunError, UsageError
from seedtest_analytics.jobs.inactivity import score_and_write
from seedtest_analytics.paths import project_root

from . import embedded, legacy
from .rules import improvement_sql
from .synthetic import generate_bulk

FEATURES = "features_topic_daily"
SCORING_INPUTS = "inactive_user_scoring_inputs"
ABILITIES = "user_ability_as_of"
PS_SCHEMA = "bench_ps"
MAX_VALID_TIME_MS = 3 * 60 * 60 * 1000
BEGIN_MARK = "<!-- bench:begin -->"
END_MARK = "<!-- bench:end -->"

# Targets: the old jobs' speed-up; the whole nightly command against the floor (2x, goal
# 1.5x); the nightly command at 10M attempts; P/S for 1M users.
TARGET_SPEEDUP = 100.0
TARGET_FLOOR_RATIO = 2.0
GOAL_FLOOR_RATIO = 1.5
TARGET_NIGHTLY_SECONDS = 60.0
TARGET_NIGHTLY_ATTEMPTS = 10_000_000
TARGET_PS_SECONDS = 20.0
TARGET_PS_RSS_MB = 500.0
TARGET_PS_USERS = 1_000_000


@dataclass(frozen=True)
class BenchOptions:
    attempts: int = 1_000_000
    days: int = 90
    sample: int = 200
    history: tuple[int, ...] = (30, 90, 180)
    ps_users: int = 0
    repeat: int = 3
    output: Path = Path("bench-report.md")
    database: str = "seedtest_bench"
    command_line: str = "seedtest-dev bench"


def parse_history(raw: str) -> tuple[int, ...]:
    text = raw.strip()
    if not text or text.lower() in ("0", "none", "off"):
        return ()
    values = []
    for part in text.split(","):
        values.append(parse_int("--history", part, minimum=8, maximum=3650))
    return tuple(dict.fromkeys(values))


def options_from_args(args: Any) -> BenchOptions:
    options = BenchOptions(
        attempts=parse_int("--attempts", args.attempts, minimum=1000, maximum=200_000_000),
        days=parse_int("--days", args.days, minimum=8, maximum=3650),
        sample=parse_int("--sample", args.sample, minimum=1, maximum=1_000_000),
        history=parse_history(args.history),
        ps_users=parse_int("--ps-users", args.ps_users, minimum=0, maximum=50_000_000),
        repeat=parse_int("--repeat", args.repeat, minimum=1, maximum=50),
        output=Path(args.output),
        database=parse_identifier("--database", args.database),
    )
    command = (
        f"seedtest-dev bench --attempts {options.attempts} --days {options.days} "
        f"--sample {options.sample} --history {','.join(map(str, options.history)) or 0} "
        f"--ps-users {options.ps_users} --repeat {options.repeat}"
    )
    if options.database != BenchOptions.database:
        command += f" --database {options.database}"
    command += f" --output {options.output}"
    return dataclasses.replace(options, command_line=command)


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the results table. `exec_s`: the server-side / model execution time."""

    step: str
    rows: int | None = None
    wall_s: float | None = None
    exec_s: float | None = None
    attempt_rows: int | None = None  # attempt rows the step reads (for attempt rows/s)
    combinations: int | None = None
    users: int | None = None
    note: str = ""

    def _rate(self, count: int | None) -> float | None:
        seconds = self.exec_s if self.exec_s is not None else self.wall_s
        if count is None or not seconds:
            return None
        return count / seconds


@dataclass
class Target:
    name: str
    measured: str
    goal: str
    met: bool | None  # None: not measured in this run


@dataclass
class BenchResults:
    options: BenchOptions
    machine: dict[str, str] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)
    ratios: list[tuple[str, str, str]] = field(default_factory=list)  # name, value, how
    targets: list[Target] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    nightly: CommandTiming | None = None
    checks: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# Database set-up
# --------------------------------------------------------------------------------------------


def _server() -> tuple[ConnectionParams, bool]:
    """The server the bench runs on (DATABASE_URL, else the embedded one) and whether it is
    the embedded one. A given server must let this role create databases."""
    if os.environ.get("DATABASE_URL", "").strip():
        params = connection.resolve()
        with connect(params, autocommit=True) as conn:
            row = conn.execute(
                "select rolcreatedb or rolsuper from pg_roles where rolname = current_user"
            ).fetchone()
        if not (row and row[0]):
            raise UsageError(
                f"the benchmark creates its own database on {params.redacted()}, but role "
                f"{params.user} lacks CREATEDB; grant it or unset DATABASE_URL to use the "
                "embedded server"
            )
        return params, False
    return embedded.start().params(), True


def _admin_params(server: ConnectionParams, database: str) -> ConnectionParams:
    return server.with_dbname("postgres") if server.dbname == database else server


def recreate_database(server: ConnectionParams, database: str) -> ConnectionParams:
    with connect(_admin_params(server, database), autocommit=True) as conn:
        conn.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(database))
        )
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(database)))
    return server.with_dbname(database)


def drop_database(server: ConnectionParams, database: str) -> None:
    with connect(_admin_params(server, database), autocommit=True) as conn:
        conn.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(database))
        )


def _scalar(conn: psycopg.Connection, query: sql.Composable | str, args: Any = None) -> Any:
    row = conn.execute(query, args).fetchone()  # type: ignore[arg-type]
    return None if row is None else row[0]


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def generate(
    params: ConnectionParams,
    *,
    attempts: int,
    days: int,
    end_date: dt.date,
    users: int | None = None,
    source_schema: str = "public",
) -> tuple[Any, float]:
    """Application schema, bulk data, VACUUM ANALYZE; returns (BulkSummary, seconds)."""
    started = time.perf_counter()
    init_db(params, source_schema)
    with connect(params) as conn:
        summary = generate_bulk(
            conn, attempts=attempts, days=days, users=users, end_date=end_date, schema=source_schema
        )
    with connect(params, autocommit=True) as conn:
        # What autovacuum would have done by the next night: statistics, visibility map and
        # hint bits, so the first read of the new rows does not pay for writing them.
        conn.execute("vacuum (analyze)")
    return summary, time.perf_counter() - started


def attempts_between(
    params: ConnectionParams,
    first: dt.datetime | None,
    end: dt.datetime,
    source_schema: str = "public",
) -> int:
    """Attempt rows (questions of exams) with activity time in [first, end)."""
    lower = sql.SQL("coalesce(updated_at, created_at) >= %(first)s and ") if first else sql.SQL("")
    query = sql.SQL(
        "select coalesce(sum(jsonb_array_length(result_json -> 'questions')), 0) from {}"
        " where {}coalesce(updated_at, created_at) < %(end)s"
    ).format(sql.Identifier(source_schema, "exam_results"), lower)
    with connect(params) as conn:
        return int(_scalar(conn, query, {"first": first, "end": end}))


# --------------------------------------------------------------------------------------------
# Timed steps
# --------------------------------------------------------------------------------------------


def server_execution_seconds(conn: psycopg.Connection, statement: str) -> float:
    """The server's own execution time of `statement` (EXPLAIN ANALYZE without per-node
    timing, so the instrumentation costs next to nothing)."""
    plan = _scalar(conn, "explain (analyze, timing off, format json) " + statement)
    if isinstance(plan, str):
        plan = json.loads(plan)
    return float(plan[0]["Execution Time"]) / 1000.0


def floor_sql(
    *, source_schema: str, since: dt.date | None, anchor: dt.date, table: str = "bench_floor"
) -> str:
    """One statement computing features_topic_daily's values for the days [since, anchor]
    (every day up to anchor when since is None) from the attempt view: counts, mean and
    median time, hints, last seen, and the improvement index through window functions.

    The attempt rows of the window are read once (a materialized CTE of narrow rows, so the
    sorts do not carry the exams' JSON). The floor keeps the attempt view's uuid-form
    student_id (a one-to-one relabelling that changes no aggregate) and does not de-duplicate
    attempt ids (the bulk data has none): the work the engine adds for those is part of what
    it is measured on.
    """
    end = _day_start(anchor + dt.timedelta(days=1))
    lower = ""
    keep = ""
    if since is not None:
        first = _day_start(since - dt.timedelta(days=27))
        lower = f"and a.completed_at >= '{first.isoformat()}'::timestamptz"
        keep = f"where d >= date '{since.isoformat()}'"
    attempt = sql.Identifier(source_schema, "attempt").as_string(None)
    valid = f"response_time_ms between 0 and {MAX_VALID_TIME_MS}"
    return f"""
create temp table {table} as
with attempts as materialized (
    select
        a.student_id::text as user_id,
        a.topic_id,
        (a.completed_at at time zone 'UTC')::date as d,
        a.correct,
        a.hint_used,
        a.response_time_ms,
        a.completed_at
    from {attempt} as a
    where a.completed_at < '{end.isoformat()}'::timestamptz {lower}
        and a.student_id is not null and a.topic_id <> ''
),
daily as (
    select
        user_id,
        topic_id,
        d,
        count(*)::integer as attempts,
        count(*) filter (where correct)::integer as correct,
        count(*) filter (where hint_used)::integer as hints,
        round(avg(response_time_ms) filter (where {valid}))::integer as avg_time_ms,
        round((percentile_cont(0.5) within group (order by response_time_ms)
            filter (where {valid}))::numeric)::integer as rt_median,
        max(completed_at) as last_seen_at
    from attempts
    group by user_id, topic_id, d
),
windows as (
    select
        daily.*,
        sum(attempts) over recent as n_r,
        sum(correct) over recent as c_r,
        sum(attempts) over previous as n_p,
        sum(correct) over previous as c_p
    from daily
    window
        recent as (partition by user_id, topic_id order by d
                   range between interval '13 days' preceding and current row),
        previous as (partition by user_id, topic_id order by d
                     range between interval '27 days' preceding and interval '14 days' preceding)
)
select
    user_id, topic_id, d as date, attempts, correct, avg_time_ms, hints,
    null::double precision as theta_estimate, null::double precision as theta_sd, rt_median,
    {improvement_sql("n_r", "c_r", "n_p", "c_p")} as improvement,
    last_seen_at,
    now() as computed_at
from windows
{keep}
"""


def time_statement(params: ConnectionParams, statement: str, table: str) -> tuple[float, int]:
    """(server execution seconds, rows) of a `create temp table ... as` statement."""
    with connect(params, autocommit=True) as conn:
        conn.execute(sql.SQL("drop table if exists {}").format(sql.Identifier(table)))
        seconds = server_execution_seconds(conn, statement)
        rows = int(_scalar(conn, sql.SQL("select count(*) from {}").format(sql.Identifier(table))))
        conn.execute(sql.SQL("drop table {}").format(sql.Identifier(table)))
    return seconds, rows


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


# --------------------------------------------------------------------------------------------
# The commands users run, timed as whole processes
# --------------------------------------------------------------------------------------------


def _union_seconds(intervals: Sequence[tuple[float, float]]) -> float:
    """Seconds covered by the union of [start, end] intervals (nodes overlap with 2 threads)."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end <= reach:
            continue
        total += end - max(start, reach)
        reach = end
    return total


@dataclass
class CommandTiming:
    """One `seedtest-analytics ...` process: wall time, peak RSS, and its phases from the
    profile file the process wrote (profiling.py)."""

    args: tuple[str, ...]
    wall_s: float
    peak_rss_mb: float
    python_startup_s: float = 0.0  # process start to the first recorded event
    dbt_invocations: int = 0
    dbt_wall_s: float = 0.0
    dbt_startup_s: float = 0.0  # per invocation: start to its first node (start-up, parse)
    models_s: float = 0.0
    tests_s: float = 0.0
    ps_s: float = 0.0
    log_tail: str = ""

    @property
    def dbt_other_s(self) -> float:
        """dbt time outside start-up, models and tests: hooks, result handling."""
        return max(0.0, self.dbt_wall_s - self.dbt_startup_s - self.models_s - self.tests_s)

    @property
    def other_s(self) -> float:
        """The rest: the lock, the window report, the post-write checks' Python side, exit."""
        return max(0.0, self.wall_s - self.python_startup_s - self.dbt_wall_s - self.ps_s)

    def breakdown(self) -> str:
        return (
            f"python start {self.python_startup_s:.2f} s; {self.dbt_invocations} dbt "
            f"invocation(s) {self.dbt_wall_s:.2f} s = start-up/parse "
            f"{self.dbt_startup_s:.2f} s + models {self.models_s:.2f} s + data tests "
            f"{self.tests_s:.2f} s + hooks/other "
            f"{self.dbt_other_s:.2f} s; P/S read+score+write {self.ps_s:.2f} s; "
            f"rest {self.other_s:.2f} s; "
            f"peak RSS {self.peak_rss_mb:.0f} MB"
        )


def run_command(params: ConnectionParams, *args: str) -> CommandTiming:
    """Run `seedtest-analytics ARGS` as its own process against params' database, exactly as
    the CronJob does (dbt data tests on), and read back its phase timings."""
    with tempfile.TemporaryDirectory(prefix="seedtest-bench-cmd-") as scratch:
        profile = Path(scratch) / "profile.jsonl"
        env = {k: v for k, v in os.environ.items() if k != profiling.PROFILE_ENV}
        env["DATABASE_URL"] = params.to_url()
        env[profiling.PROFILE_ENV] = str(profile)
        env.pop("SEEDTEST_DBT_TESTS", None)  # the nightly run keeps its tests
        command = [sys.executable, "-m", "seedtest_analytics", *args]
        with tempfile.TemporaryFile("w+") as out:
            started = time.time()
            proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
            _, status, usage = os.wait4(proc.pid, 0)
            ended = time.time()
            out.seek(0)
            output = out.read()
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            tail = "\n".join(output.splitlines()[-8:])
            raise RunError(f"`seedtest-analytics {' '.join(args)}` exited {code}: {tail}")
        events = (
            [json.loads(line) for line in profile.read_text().splitlines() if line.strip()]
            if profile.exists()
            else []
        )
    timing = CommandTiming(
        tuple(args),
        ended - started,
        usage.ru_maxrss / 1024.0,
        log_tail="\n".join(output.splitlines()[-3:]),
    )
    if events:
        timing.python_startup_s = max(0.0, min(e["start"] for e in events) - started)
    for event in events:
        if event["kind"] == "dbt":
            timing.dbt_invocations += 1
            timing.dbt_wall_s += event["end"] - event["start"]
            nodes = event["nodes"]
            first = min((n["start"] for n in nodes), default=event["end"])
            timing.dbt_startup_s += max(0.0, first - event["start"])
            timing.models_s += _union_seconds(
                [(n["start"], n["end"]) for n in nodes if n["type"] == "model"]
            )
            timing.tests_s += _union_seconds(
                [(n["start"], n["end"]) for n in nodes if n["type"] in ("test", "unit_test")]
            )
        elif event["kind"] == "phase" and event["name"] == "ps_step":
            timing.ps_s += event["end"] - event["start"]
    return timing


def median_timing(runs: Sequence[CommandTiming]) -> CommandTiming:
    """The run with the median wall time (its breakdown is one real run's, not a blend)."""
    ordered = sorted(runs, key=lambda r: r.wall_s)
    return ordered[(len(ordered) - 1) // 2]


def activity_floor_sql(
    *, source_schema: str, anchor: dt.date, table: str = "bench_floor_activity"
) -> str:
    """One `group by` of every user's last activity over exam_results up to the end of the
    anchor day: the floor of the inactivity side of the nightly run."""
    end = _day_start(anchor + dt.timedelta(days=1))
    exams = sql.Identifier(source_schema, "exam_results").as_string(None)
    return f"""
create temp table {table} as
select user_id, max(coalesce(updated_at, created_at)) as last_activity_at
from {exams}
where coalesce(updated_at, created_at) < '{end.isoformat()}'::timestamptz
    and user_id is not null
group by user_id
"""


# --------------------------------------------------------------------------------------------
# P/S at scale, in a process of its own
# --------------------------------------------------------------------------------------------

_PS_INPUTS = """
insert into {inputs} (user_id, as_of, week_start, last_activity_at, days_inactive,
    active_days, mean_gap_days, ability_mean, ability_sd, ability_source, target, target_source)
select
    'ps-user-' || lpad(i::text, 8, '0'),
    %(anchor)s::date,
    %(week_start)s::date,
    (%(anchor)s::date - (8 + i %% 200))::timestamp at time zone 'UTC',
    8 + i %% 200,
    (i %% 11),
    case when i %% 11 >= 2 then 1.0 + (i %% 7) * 0.5 else 0.0 end,
    case when i %% 50 = 0 then null
        else ((hashint8extended(i, 11) & 65535) / 65536.0 * 4.0 - 2.0) end,
    case when i %% 50 = 0 then null
        else 0.2 + ((hashint8extended(i, 12) & 1023) / 1024.0) * 0.6 end,
    case when i %% 50 = 0 then null else 'ability_estimates' end,
    case when i %% 3 = 0 then 0.5 else %(default_target)s end,
    case when i %% 3 = 0 then 'interest_goal' else 'default' end
from generate_series(1, %(users)s) as i
"""

_PS_ABILITIES = """
insert into {abilities} (user_id, ability_mean, ability_sd, fitted_at, ability_source)
select user_id, ability_mean, ability_sd, %(fitted)s, ability_source
from {inputs} where ability_mean is not null
"""

_PS_KPI = """
insert into {kpi} (user_id, week_start, kpis, created_at, updated_at)
select
    user_id,
    week_start,
    jsonb_build_object('I_t', 0.5, 'E_t', 0.25, 'R_t', 0.75, 'A_t', 0.125),
    %(fitted)s,
    %(fitted)s
from {inputs}
where right(user_id, 1) <> '0'
on conflict (user_id, week_start) do nothing
"""


def prepare_ps_scale(
    params: ConnectionParams,
    *,
    users: int,
    anchor: dt.date,
    analytics_schema: str,
    source_schema: str,
) -> float:
    """M inactive users' scoring inputs straight into copies of the dbt tables (schema
    bench_ps, same columns), their abilities, and weekly_kpi rows for 90% of them (the rest
    are inserted by the write). 1 user in 50 has no ability (S only)."""
    started = time.perf_counter()
    week_start = anchor - dt.timedelta(days=anchor.weekday())
    names = {
        "inputs": sql.Identifier(PS_SCHEMA, SCORING_INPUTS),
        "abilities": sql.Identifier(PS_SCHEMA, ABILITIES),
        "kpi": sql.Identifier(source_schema, "weekly_kpi"),
    }
    args = {
        "anchor": anchor,
        "week_start": week_start,
        "users": users,
        "default_target": 0.0,
        "fitted": _day_start(anchor),
    }
    with connect(params) as conn:
        conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(PS_SCHEMA)))
        conn.execute(sql.SQL("create schema {}").format(sql.Identifier(PS_SCHEMA)))
        for table in (SCORING_INPUTS, ABILITIES):
            conn.execute(
                sql.SQL("create table {} (like {})").format(
                    sql.Identifier(PS_SCHEMA, table), sql.Identifier(analytics_schema, table)
                )
            )
        conn.execute(sql.SQL(_PS_INPUTS).format(**names), args)
        conn.execute(sql.SQL(_PS_ABILITIES).format(**names), args)
        conn.execute(sql.SQL(_PS_KPI).format(**names), args)
        conn.commit()
    with connect(params, autocommit=True) as conn:
        for relation in (names["inputs"], names["abilities"], names["kpi"]):
            conn.execute(sql.SQL("vacuum (analyze) {}").format(relation))
    return time.perf_counter() - started


def run_ps_child(params: ConnectionParams, anchor: dt.date) -> dict[str, Any]:
    """Run the P/S step on schema bench_ps in a separate Python process; its wall time and
    its own peak RSS (from wait4, i.e. the child's ru_maxrss)."""
    env = dict(os.environ)
    env["DATABASE_URL"] = params.to_url()
    env["SEEDTEST_DBT_SCHEMA"] = PS_SCHEMA
    command = [sys.executable, "-m", "seedtest_dev.bench", "--ps-child", anchor.isoformat()]
    with tempfile.TemporaryFile("w+") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        output = out.read()
    result_line = next(
        (line for line in reversed(output.splitlines()) if line.startswith("{")), None
    )
    if proc.returncode != 0 or result_line is None:
        tail = "\n".join(output.splitlines()[-5:])
        raise RunError(f"the P/S process failed (exit {proc.returncode}): {tail}")
    result: dict[str, Any] = json.loads(result_line)
    result["process_wall_s"] = wall
    result["peak_rss_mb"] = usage.ru_maxrss / 1024.0  # kilobytes on Linux
    # The same figure through the documented interface (max over all waited-for children).
    result["children_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    return result


def _ps_child_main(argv: Sequence[str]) -> int:
    """Entry point of the P/S process: score and write every row of bench_ps's inputs."""
    anchor = dt.date.fromisoformat(argv[0])
    settings = Settings(anchor_date=anchor, use_bayesian=True)
    params = connection.resolve()
    started = time.perf_counter()
    result = score_and_write(params, settings)
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "seconds": seconds,
                "found": result.found,
                "processed": result.processed,
                "failed": result.failed,
                "self_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
            }
        ),
        flush=True,
    )
    return 0


# --------------------------------------------------------------------------------------------
# The benchmark
# --------------------------------------------------------------------------------------------


def machine_info(params: ConnectionParams, is_embedded: bool) -> dict[str, str]:
    import dbt.version

    info: dict[str, str] = {}
    info["date"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    info["cpus (nproc)"] = str(len(os.sched_getaffinity(0)))
    try:
        meminfo = Path("/proc/meminfo").read_text()
        kb = int(re.search(r"MemTotal:\s+(\d+)", meminfo).group(1))  # type: ignore[union-attr]
        info["memory"] = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, AttributeError, ValueError):
        info["memory"] = "unknown"
    info["python"] = platform.python_version()
    info["dbt-core"] = dbt.version.__version__
    with connect(params) as conn:
        info["postgresql"] = str(_scalar(conn, "show server_version"))
        jit = "yes" if _scalar(conn, "select pg_jit_available()") else "no"
        settings = conn.execute(
            "select name, setting, unit from pg_settings where name in ('shared_buffers',"
            " 'work_mem', 'max_parallel_workers_per_gather', 'jit', 'synchronous_commit')"
            " order by name"
        ).fetchall()
    info["server"] = "embedded (no DATABASE_URL)" if is_embedded else params.redacted()
    info["server settings"] = (
        ", ".join(f"{name}={setting}{unit or ''}" for name, setting, unit in settings)
        + f", jit available={jit}"
    )
    info["platform"] = platform.platform()
    info["load average at start (1/5/15 min)"] = _loadavg()
    return info


def _loadavg() -> str:
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


_PROJECT_ENTRIES = (
    "dbt_project.yml",
    "selectors.yml",
    "packages.yml",
    "dependencies.yml",
    "profiles",
    "models",
    "macros",
    "seeds",
    "snapshots",
    "analyses",
    "tests",
    "dbt_packages",
)


def _snapshot_project(root: Path, dest: Path) -> Path:
    dest.mkdir(parents=True)
    for name in _PROJECT_ENTRIES:
        source = root / name
        if source.is_dir():
            shutil.copytree(
                source, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
            )
        elif source.is_file():
            shutil.copy2(source, dest / name)
    return dest


def _revision(root: Path) -> str:
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head.stdout.strip() + (" + uncommitted changes" if dirty.stdout.strip() else "")


def _count(params: ConnectionParams, query: sql.Composable, args: Any = None) -> int:
    with connect(params) as conn:
        return int(_scalar(conn, query, args) or 0)


def _step(label: str) -> None:
    log.info(f"bench: {label}")


def run_bench(options: BenchOptions) -> int:
    started = time.perf_counter()
    server, embedded = _server()
    schema = target_schema()
    src = "public"
    end_date = today_in("UTC") - dt.timedelta(days=1)
    settings = Settings(anchor_date=end_date)
    since = settings.since
    anchor_end = _day_start(end_date + dt.timedelta(days=1))
    with tempfile.TemporaryDirectory(prefix="seedtest-bench-") as scratch:
        # A snapshot of the dbt project, so that edits to the checkout during a long run do
        # not change what is measured half-way through; dbt's artefacts (run results, logs)
        # stay out of the project's target/, which other runs share.
        root = project_root()
        revision = _revision(root)
        project = _snapshot_project(root, Path(scratch) / "project")
        os.environ["SEEDTEST_PROJECT_DIR"] = str(project)
        target = Path(scratch) / "target"
        target.mkdir()
        os.environ["DBT_TARGET_PATH"] = str(target)
        os.environ["DBT_LOG_PATH"] = str(Path(scratch) / "logs")
        # Start from the project's partial-parse state when there is one (dbt checks it and
        # re-parses whatever changed, or everything if it does not fit).
        state = root / "target" / "partial_parse.msgpack"
        with contextlib.suppress(OSError):
            shutil.copyfile(state, target / "partial_parse.msgpack")
        results = BenchResults(options)
        params = recreate_database(server, options.database)
        results.machine = machine_info(params, embedded)
        results.machine["project revision"] = revision
        _main_scale(
            results, params, settings, schema=schema, src=src, since=since, anchor_end=anchor_end
        )
        if options.history:
            _history(results, server, settings, schema=schema, src=src)
    results.machine["bench process peak RSS"] = (
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0:.0f} MB"
    )
    results.machine["load average at end (1/5/15 min)"] = _loadavg()
    results.machine["bench duration"] = f"{time.perf_counter() - started:.0f} s"
    _targets(results)
    report = render(results)
    print(report, flush=True)
    write_report(options.output, report)
    log.info(f"bench: report written to {options.output}")
    return 0


def _main_scale(
    results: BenchResults,
    params: ConnectionParams,
    settings: Settings,
    *,
    schema: str,
    src: str,
    since: dt.date,
    anchor_end: dt.datetime,
) -> None:
    options = results.options
    rows = results.rows
    anchor = settings.anchor_date
    first_night = anchor - dt.timedelta(days=1)

    _step(f"generating {options.attempts} attempts over {options.days} days")
    bulk, gen_s = generate(
        params, attempts=options.attempts, days=options.days, end_date=anchor, source_schema=src
    )
    results.notes.append(
        f"Data: {bulk.attempts} attempts in {bulk.exam_results} exams of {bulk.users} users "
        f"over {options.days} days ({bulk.start_date} .. {bulk.end_date}), {bulk.topics} "
        f"topics; {bulk.inactive_users} users inactive at the anchor {anchor}."
    )
    rows.append(
        Row(
            "data generation (generate_bulk + VACUUM ANALYZE)",
            rows=bulk.attempts,
            wall_s=gen_s,
            attempt_rows=bulk.attempts,
            note=f"{bulk.exam_results} exams",
        )
    )

    _step(f"(a) first night: seedtest-analytics run --date {first_night} (full build)")
    first = run_command(params, "run", "--date", first_night.isoformat())
    feature_rows = _count(
        params, sql.SQL("select count(*) from {}").format(sql.Identifier(schema, FEATURES))
    )
    rows.append(
        Row(
            f"(a) first night: `seedtest-analytics run --date {first_night}` (builds every day)",
            rows=feature_rows,
            wall_s=first.wall_s,
            attempt_rows=bulk.attempts,
            note=first.breakdown(),
        )
    )

    # Scratch copies for the old jobs, before the nightly runs write this week's P/S.
    with connect(params) as conn:
        legacy.prepare_scratch(conn, analytics_schema=schema, source_schema=src)

    window_attempts = attempts_between(
        params, _day_start(since - dt.timedelta(days=27)), anchor_end, src
    )
    nightly: list[CommandTiming] = []
    floors: list[float] = []
    floor_rows = 0
    for i in range(options.repeat):
        _step(
            f"(b) nightly: seedtest-analytics run --date {anchor}, and (e) the floor, "
            f"round {i + 1}/{options.repeat}"
        )
        nightly.append(run_command(params, "run", "--date", anchor.isoformat()))
        features_s, floor_rows = time_statement(
            params, floor_sql(source_schema=src, since=since, anchor=anchor), "bench_floor"
        )
        activity_s, _ = time_statement(
            params, activity_floor_sql(source_schema=src, anchor=anchor), "bench_floor_activity"
        )
        floors.append(features_s + activity_s)
    combinations = _count(
        params,
        sql.SQL("select count(*) from {} where date between %s and %s").format(
            sql.Identifier(schema, FEATURES)
        ),
        (since, anchor),
    )
    inactive = _count(
        params, sql.SQL("select count(*) from {}").format(sql.Identifier(schema, "inactive_users"))
    )
    night = median_timing(nightly)
    results.nightly = night
    rows.append(
        Row(
            f"(b) nightly: `seedtest-analytics run --date {anchor}` (window {since} .. "
            f"{anchor}, what the CronJob runs)",
            rows=combinations,
            wall_s=night.wall_s,
            attempt_rows=window_attempts,
            combinations=combinations,
            users=inactive,
            note=f"median of {len(nightly)} "
            f"({', '.join(f'{t.wall_s:.1f}' for t in nightly)} s); " + night.breakdown(),
        )
    )
    floor_s = _median(floors)
    rows.append(
        Row(
            "(e) floor: one statement for the window's features + one group by of "
            "every user's last activity",
            rows=floor_rows,
            exec_s=floor_s,
            attempt_rows=window_attempts,
            combinations=floor_rows,
            note=f"server execution time, median of {len(floors)}",
        )
    )
    if floor_rows != combinations:
        results.checks.append(
            f"MISMATCH: floor has {floor_rows} rows for the window, features {combinations}"
        )
    else:
        results.checks.append(
            f"floor and features_topic_daily agree on the window's row count ({combinations})"
        )

    _step("the old jobs' commands: aggregate, then detect-inactivity")
    agg = run_command(params, "aggregate", "--date", anchor.isoformat())
    rows.append(
        Row(
            f"`seedtest-analytics aggregate --date {anchor}` (the old aggregate job's command)",
            rows=combinations,
            wall_s=agg.wall_s,
            attempt_rows=window_attempts,
            combinations=combinations,
            note=agg.breakdown(),
        )
    )
    detect = run_command(params, "detect-inactivity", "--date", anchor.isoformat())
    rows.append(
        Row(
            f"`seedtest-analytics detect-inactivity --date {anchor}` (the old detect "
            "job's command)",
            rows=inactive,
            wall_s=detect.wall_s,
            users=inactive,
            note=detect.breakdown(),
        )
    )

    variants = _legacy_variants(results, params, settings, schema=schema, src=src)

    # Ratios, side by side on the same data.
    ratios = results.ratios
    per_comb = night.wall_s / combinations if combinations else float("nan")
    speedups: dict[str, float] = {}
    for label, old_agg, old_ps in variants:
        speedups[label] = old_agg.per_item / per_comb
        ratios.append(
            (
                f"row-at-a-time ({label}) / nightly command, per combination",
                f"{old_agg.per_item / per_comb:.0f}x",
                f"{old_agg.per_item * 1000:.3f} ms vs {per_comb * 1000:.4f} ms "
                "(the whole nightly process per combination of its window)",
            )
        )
        projected = old_agg.per_item * combinations + old_agg.listing_seconds
        ratios.append(
            (
                f"row-at-a-time ({label}), projected for the whole window",
                f"{projected:.1f} s",
                f"{combinations} combinations x {old_agg.per_item * 1000:.2f} ms + "
                f"listing {old_agg.listing_seconds:.2f} s; new: {night.wall_s:.2f} s",
            )
        )
        if inactive and old_ps is not None:
            projected_ps = old_ps.per_item * inactive
            ratios.append(
                (
                    f"user-at-a-time P/S ({label}), projected for every inactive user",
                    f"{projected_ps:.1f} s",
                    f"{inactive} users x {old_ps.per_item * 1000:.2f} ms; new P/S step "
                    f"{night.ps_s:.2f} s",
                )
            )
    ratios.append(
        (
            "nightly command / floor",
            f"{night.wall_s / floor_s:.2f}x",
            f"{night.wall_s:.2f} s (whole process) vs {floor_s:.2f} s",
        )
    )
    ratios.append(
        (
            "nightly command's models / floor",
            f"{night.models_s / floor_s:.2f}x",
            f"{night.models_s:.2f} s vs {floor_s:.2f} s",
        )
    )
    ratios.append(
        (
            "nightly command, per million window attempt rows",
            f"{night.wall_s / max(window_attempts, 1) * 1e6:.1f} s",
            f"{window_attempts:,} attempt rows in the window and its 27-day lead-in",
        )
    )
    ratios.append(
        (
            "nightly command: share of dbt data tests",
            f"{night.tests_s / night.wall_s:.0%}",
            f"{night.tests_s:.2f} s of {night.wall_s:.2f} s",
        )
    )
    _record_targets_main(results, speedups, night, floor_s, bulk.attempts)

    if options.ps_users:
        _step(f"P/S scale: {options.ps_users} inactive users in a separate process")
        prep_s = prepare_ps_scale(
            params,
            users=options.ps_users,
            anchor=anchor,
            analytics_schema=schema,
            source_schema=src,
        )
        load = _loadavg()
        child = run_ps_child(params, anchor)
        written = _count(
            params,
            sql.SQL(
                "select count(*) from {} where user_id like 'ps-user-%%' and week_start = %s"
                " and kpis ? 'S'"
            ).format(sql.Identifier(src, "weekly_kpi")),
            (anchor - dt.timedelta(days=anchor.weekday()),),
        )
        rows.append(
            Row(
                f"P/S scale: {options.ps_users} users, own process (Bayesian mode)",
                rows=child["processed"],
                wall_s=child["seconds"],
                users=child["found"],
                note=f"process {child['process_wall_s']:.1f} s incl. start-up, peak "
                f"RSS {child['peak_rss_mb']:.0f} MB; inputs prepared in "
                f"{prep_s:.1f} s; rows with S in weekly_kpi: {written}; load "
                f"average before: {load}",
            )
        )
        results.machine["_ps"] = json.dumps(child)
        # weekly_kpi now knows M more users that are long gone: the same nightly command again.
        _step(f"(b) nightly again, with {options.ps_users} more user ids in weekly_kpi")
        again = run_command(params, "run", "--date", anchor.isoformat())
        rows.append(
            Row(
                f"(b) nightly again, {options.ps_users:,} more long-gone user ids in weekly_kpi",
                rows=combinations,
                wall_s=again.wall_s,
                combinations=combinations,
                note=f"before: {night.wall_s:.2f} s; " + again.breakdown(),
            )
        )
        ratios.append(
            (
                f"nightly command with {options.ps_users:,} more known ids / without",
                f"{again.wall_s / night.wall_s:.2f}x",
                "flat = close to 1",
            )
        )
        if written != options.ps_users:
            results.checks.append(
                f"MISMATCH: {written} of {options.ps_users} P/S-scale users have S in weekly_kpi"
            )
        else:
            results.checks.append(f"P/S scale: all {written} users have S in weekly_kpi")


def _legacy_variants(
    results: BenchResults,
    params: ConnectionParams,
    settings: Settings,
    *,
    schema: str,
    src: str,
) -> list[tuple[str, legacy.LegacyTiming, legacy.LegacyTiming | None]]:
    """(d) The old jobs, one row/user at a time, twice: on the application's attempt view
    (what they ran on), and on an indexed table copy of its rows (their best case)."""
    options = results.options
    anchor = settings.anchor_date
    with connect(params) as conn:
        inactive = [
            u
            for (u,) in conn.execute(
                sql.SQL("select user_id from {} order by user_id").format(
                    sql.Identifier(schema, "inactive_users")
                )
            ).fetchall()
        ]
        conn.rollback()
    chosen = legacy.sample_users(inactive, options.sample)
    _step("(d) indexed copy of the attempt rows for the old jobs' best case")
    copy_started = time.perf_counter()
    with connect(params) as conn:
        indexed = legacy.create_indexed_attempts(conn, source_schema=src)
    results.notes.append(
        f"(d) best case: the attempt rows copied into {'.'.join(indexed)} with indexes on "
        f"(student_id, topic_id, completed_at) and (student_id, completed_at) in "
        f"{time.perf_counter() - copy_started:.1f} s (not counted)."
    )
    variants: list[tuple[str, legacy.LegacyTiming, legacy.LegacyTiming | None]] = []
    for label, table in (("attempt view", None), ("indexed copy", indexed)):
        _step(f"(d) row-at-a-time on the {label}: {options.sample} combinations")
        with connect(params) as conn:
            conn.execute(
                sql.SQL("truncate {}").format(sql.Identifier(legacy.SCRATCH_SCHEMA, FEATURES))
            )
            conn.commit()
            old_agg = legacy.aggregate_features_row_at_a_time(
                conn,
                anchor=anchor,
                lookback_days=settings.lookback_days,
                sample=options.sample,
                source_schema=src,
                attempt_table=table,
            )
        results.rows.append(
            Row(
                f"(d) row-at-a-time aggregate on the {label}, per combination",
                rows=old_agg.items,
                wall_s=old_agg.per_item,
                combinations=1,
                note=f"{old_agg.items} of {old_agg.total_found} combinations in "
                f"{old_agg.seconds:.2f} s, {old_agg.queries} queries, {old_agg.items} "
                f"commits; listing {old_agg.listing_seconds:.2f} s",
            )
        )
        results.checks.append(
            f"{label}: " + _check_legacy_features(params, schema, src, old_agg.items)
        )
        old_ps = None
        if chosen:
            _step(f"(d) user-at-a-time on the {label}: {len(chosen)} inactive users")
            with connect(params) as conn:
                old_ps = legacy.score_users_one_at_a_time(
                    conn,
                    chosen,
                    anchor=anchor,
                    analytics_schema=schema,
                    source_schema=src,
                    kpi_lookback_days=settings.kpi_lookback_days,
                    horizon_days=settings.churn_horizon_days,
                    default_target=settings.default_target,
                    attempt_table=table,
                )
            results.rows.append(
                Row(
                    f"(d) user-at-a-time P/S on the {label}, per user",
                    rows=old_ps.items,
                    wall_s=old_ps.per_item,
                    users=1,
                    note=f"{old_ps.items} of {len(inactive)} inactive users in "
                    f"{old_ps.seconds:.2f} s, {old_ps.queries} queries, {old_ps.items} "
                    "commits",
                )
            )
            results.checks.append(f"{label}: " + _check_legacy_scores(params, src, chosen, anchor))
        variants.append((label, old_agg, old_ps))
    return variants


def _check_legacy_features(params: ConnectionParams, schema: str, src: str, items: int) -> str:
    """How many rows the old strategy wrote equal the new model's rows (same data rules)."""
    query = sql.SQL(
        """
        select count(*), count(*) filter (where
            f.attempts = l.attempts and f.correct = l.correct and f.hints = l.hints
            and f.avg_time_ms is not distinct from l.avg_time_ms
            and f.rt_median is not distinct from l.rt_median
            and f.last_seen_at = l.last_seen_at
            and ((f.improvement is null and l.improvement is null)
                 or abs(f.improvement - l.improvement) < 1e-9))
        from {legacy} as l
        left join {features} as f
            on {src}.app_user_uuid(f.user_id)::text = l.user_id
            and f.topic_id = l.topic_id and f.date = l.date
        """
    ).format(
        legacy=sql.Identifier(legacy.SCRATCH_SCHEMA, FEATURES),
        features=sql.Identifier(schema, FEATURES),
        src=sql.Identifier(src),
    )
    with connect(params) as conn:
        row = conn.execute(query).fetchone()
    total, equal = (int(row[0]), int(row[1])) if row else (0, 0)
    status = "" if equal == total == items else "MISMATCH: "
    return (
        f"{status}row-at-a-time rows equal to features_topic_daily's: {equal} of {total} "
        f"(sampled {items})"
    )


def _check_legacy_scores(
    params: ConnectionParams, src: str, users: Sequence[str], anchor: dt.date
) -> str:
    week_start = anchor - dt.timedelta(days=anchor.weekday())
    query = sql.SQL(
        """
        select count(*), count(*) filter (where
            abs((n.kpis ->> 'S')::float8 - (o.kpis ->> 'S')::float8) < 1e-12
            and ((n.kpis ->> 'P') is null and (o.kpis ->> 'P') is null
                 or abs((n.kpis ->> 'P')::float8 - (o.kpis ->> 'P')::float8) < 1e-12))
        from {old} as o
        join {new} as n on n.user_id = o.user_id and n.week_start = o.week_start
        where o.user_id = any(%s) and o.week_start = %s
        """
    ).format(
        old=sql.Identifier(legacy.SCRATCH_SCHEMA, "weekly_kpi"),
        new=sql.Identifier(src, "weekly_kpi"),
    )
    with connect(params) as conn:
        row = conn.execute(query, (list(users), week_start)).fetchone()
    total, equal = (int(row[0]), int(row[1])) if row else (0, 0)
    status = "" if equal == total == len(users) else "MISMATCH: "
    return (
        f"{status}user-at-a-time P/S equal to the new step's: {equal} of {total} "
        f"(sampled {len(users)})"
    )


def _history(
    results: BenchResults, server: ConnectionParams, settings: Settings, *, schema: str, src: str
) -> None:
    """The nightly command's time against the length of history, at the main run's daily
    volume and user count; each length in a database of its own, dropped afterwards."""
    options = results.options
    daily = max(1, options.attempts // options.days)
    users = max(10, (options.attempts // 10) // 40)  # generate_bulk's default for the main run
    anchor = settings.anchor_date
    since = settings.since
    for days in options.history:
        name = f"{options.database}_h{days}"
        _step(f"history {days} days: {daily * days} attempts ({daily}/day, {users} users)")
        params = recreate_database(server, name)
        try:
            bulk, gen_s = generate(
                params,
                attempts=daily * days,
                days=days,
                users=users,
                end_date=anchor,
                source_schema=src,
            )
            first = run_command(
                params, "run", "--date", (anchor - dt.timedelta(days=1)).isoformat()
            )
            runs = [
                run_command(params, "run", "--date", anchor.isoformat())
                for _ in range(options.repeat)
            ]
            combinations = _count(
                params,
                sql.SQL("select count(*) from {} where date between %s and %s").format(
                    sql.Identifier(schema, FEATURES)
                ),
                (since, anchor),
            )
        finally:
            drop_database(server, name)
        night = median_timing(runs)
        entry = {
            "days": days,
            "attempts": bulk.attempts,
            "combinations": combinations,
            "generate_s": gen_s,
            "first_wall_s": first.wall_s,
            "nightly_wall_s": night.wall_s,
            "nightly_models_s": night.models_s,
            "nightly_tests_s": night.tests_s,
            "nightly_startup_s": night.dbt_startup_s,
            "nightly_ps_s": night.ps_s,
        }
        results.history.append(entry)
        results.rows.append(
            Row(
                f"history {days} days: nightly command",
                rows=combinations,
                wall_s=night.wall_s,
                combinations=combinations,
                note=f"{bulk.attempts} attempts; first night {first.wall_s:.1f} s; median of "
                f"{len(runs)}",
            )
        )
    # A nightly run reads its window and the improvement index's 27-day lead-in; a shorter
    # history holds less than that, so it is cheaper by construction and left out of the
    # comparison when at least two lengths cover the whole span.
    span = settings.lookback_days + 1 + 27
    covered = [h for h in results.history if h["days"] >= span]
    compared = covered if len(covered) >= 2 else results.history
    if len(compared) >= 2:
        walls = [h["nightly_wall_s"] for h in compared]
        models = [h["nightly_models_s"] for h in compared]
        spread = (
            f"{max(walls) / min(walls):.2f}x whole command, "
            f"{max(models) / min(models):.2f}x its models"
        )
        lengths = ", ".join(str(h["days"]) for h in compared)
        left_out = (
            ""
            if compared is results.history
            else (f"; lengths under the {span} days a nightly run reads are left out")
        )
        results.ratios.append(
            (
                f"nightly command, max / min over history lengths {lengths} days",
                spread,
                f"flat = close to 1{left_out}",
            )
        )


def _record_targets_main(
    results: BenchResults,
    speedups: dict[str, float],
    night: CommandTiming,
    floor_s: float,
    attempts: int,
) -> None:
    """The speed-up target is against the faithful re-creation (the old jobs on the attempt
    view, as they ran); the indexed copy's speed-ups are reported as ratios only."""
    speedup = speedups["attempt view"]
    results.targets.append(
        Target(
            "nightly command >= 100x faster per combination than row-at-a-time (attempt view)",
            f"{speedup:.0f}x",
            f">= {TARGET_SPEEDUP:.0f}x",
            speedup >= TARGET_SPEEDUP,
        )
    )
    ratio = night.wall_s / floor_s
    results.targets.append(
        Target(
            "whole nightly command within 2x of the floor (goal 1.5x), every protecting test "
            "running",
            f"{ratio:.2f}x",
            f"<= {TARGET_FLOOR_RATIO}x (goal {GOAL_FLOOR_RATIO}x)",
            ratio <= TARGET_FLOOR_RATIO,
        )
    )
    at_scale = attempts >= TARGET_NIGHTLY_ATTEMPTS
    results.targets.append(
        Target(
            "nightly command at 10M attempts < 60 s"
            + ("" if at_scale else f" (measured at {attempts:,} attempts only)"),
            f"{night.wall_s:.1f} s",
            f"< {TARGET_NIGHTLY_SECONDS:.0f} s",
            night.wall_s < TARGET_NIGHTLY_SECONDS if at_scale else None,
        )
    )


def _targets(results: BenchResults) -> None:
    ps = results.machine.pop("_ps", None)
    goal = f"< {TARGET_PS_SECONDS:.0f} s, < {TARGET_PS_RSS_MB:.0f} MB"
    if ps is None:
        results.targets.append(
            Target(f"P/S for 1M users {goal}", "not run (--ps-users 0)", goal, None)
        )
        return
    child = json.loads(ps)
    users = results.options.ps_users
    scale = "" if users >= TARGET_PS_USERS else f" (measured at {users} users only)"
    results.targets.append(
        Target(
            f"P/S for 1M users < {TARGET_PS_SECONDS:.0f} s{scale}",
            f"{child['seconds']:.1f} s for {users} users",
            f"< {TARGET_PS_SECONDS:.0f} s",
            child["seconds"] < TARGET_PS_SECONDS if users >= TARGET_PS_USERS else None,
        )
    )
    results.targets.append(
        Target(
            f"P/S for 1M users < {TARGET_PS_RSS_MB:.0f} MB peak RSS{scale}",
            f"{child['peak_rss_mb']:.0f} MB",
            f"< {TARGET_PS_RSS_MB:.0f} MB",
            child["peak_rss_mb"] < TARGET_PS_RSS_MB if users >= TARGET_PS_USERS else None,
        )
    )


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.{digits}f}"


def _fmt_rate(value: float | None) -> str:
    if value is None or math.isnan(value):
        return ""
    return f"{value:,.0f}" if value >= 100 else f"{value:.2f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows]
    return lines


def render(results: BenchResults) -> str:
    options = results.options
    out: list[str] = [f"## Run: `{options.command_line}`", ""]
    out += _table(["machine", ""], [[k, v] for k, v in results.machine.items()])
    out.append("")
    out += [f"- {note}" for note in results.notes]
    out.append("")
    out.append("### Results")
    out.append("")
    out.append(
        "Every timed command is a whole `seedtest-analytics` process, as the CronJob "
        "runs it (dbt data tests on; the unit tests run in CI). Rates are per second of the "
        "wall time, or of the server's execution time for the floor (`exec s`)."
    )
    out.append("")
    table_rows = []
    for row in results.rows:
        table_rows.append(
            [
                row.step,
                "" if row.rows is None else f"{row.rows:,}",
                _fmt(row.wall_s, 4 if (row.wall_s or 1) < 0.1 else 3),
                _fmt(row.exec_s),
                _fmt_rate(row._rate(row.attempt_rows)),
                _fmt_rate(row._rate(row.combinations)),
                _fmt_rate(row._rate(row.users)),
                row.note,
            ]
        )
    out += _table(
        [
            "step",
            "rows",
            "wall s",
            "exec s",
            "attempt rows/s",
            "combinations/s",
            "users/s",
            "notes",
        ],
        table_rows,
    )
    out.append("")
    night = results.nightly
    if night is not None:
        out.append("### Where the nightly command's time goes (the median run)")
        out.append("")
        parts = [
            ("Python start-up (interpreter, imports, settings, lock)", night.python_startup_s),
            (f"dbt start-up and parse ({night.dbt_invocations} invocations)", night.dbt_startup_s),
            ("dbt models (wall time of the model phase)", night.models_s),
            ("dbt data tests (wall time of the test phase)", night.tests_s),
            ("dbt hooks and the rest of the invocations", night.dbt_other_s),
            ("P/S step: read the inputs, score, one bulk write", night.ps_s),
            ("the rest: window report, post-write check set-up, exit", night.other_s),
        ]
        out += _table(
            ["phase", "s", "share"],
            [[name, f"{sec:.2f}", f"{sec / night.wall_s:.0%}"] for name, sec in parts]
            + [["whole process", f"{night.wall_s:.2f}", "100%"]],
        )
        out.append("")
    if results.history:
        out.append("### Nightly command against the length of history (fixed daily volume)")
        out.append("")
        out += _table(
            [
                "history days",
                "attempts",
                "window combinations",
                "first night wall s",
                "nightly wall s",
                "nightly models s",
                "nightly tests s",
                "nightly dbt start-up s",
                "nightly P/S s",
            ],
            [
                [
                    str(h["days"]),
                    f"{h['attempts']:,}",
                    f"{h['combinations']:,}",
                    f"{h['first_wall_s']:.2f}",
                    f"{h['nightly_wall_s']:.2f}",
                    f"{h['nightly_models_s']:.2f}",
                    f"{h['nightly_tests_s']:.2f}",
                    f"{h['nightly_startup_s']:.2f}",
                    f"{h['nightly_ps_s']:.2f}",
                ]
                for h in results.history
            ],
        )
        out.append("")
    out.append("### Ratios (same run, same data)")
    out.append("")
    out += _table(["ratio", "value", "from"], [list(r) for r in results.ratios])
    out.append("")
    out.append("### Targets")
    out.append("")
    out += _table(
        ["target", "measured", "goal", "status"],
        [
            [
                t.name,
                t.measured,
                t.goal,
                "not measured" if t.met is None else ("met" if t.met else "MISSED"),
            ]
            for t in results.targets
        ],
    )
    out.append("")
    if results.checks:
        out.append("### Checks")
        out.append("")
        out += [f"- {c}" for c in results.checks]
        out.append("")
    return "\n".join(out)


def write_report(path: Path, report: str) -> None:
    """Write the report into `path` between the bench markers (the rest of the file, e.g. an
    analysis written by hand, is kept); a file without the markers is replaced whole."""
    block = f"{BEGIN_MARK}\n{report}\n{END_MARK}\n"
    if path.exists():
        text = path.read_text()
        begin, end = text.find(BEGIN_MARK), text.find(END_MARK)
        if 0 <= begin < end:
            path.write_text(text[:begin] + block + text[end + len(END_MARK) :].lstrip("\n"))
            return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# Benchmarks\n\n" + block)


def main(args: Any) -> int:
    """The `bench` subcommand (args: the parsed command line)."""
    return run_bench(options_from_args(args))


def _entry(argv: Sequence[str]) -> int:
    if argv[:1] == ["--ps-child"]:
        return _ps_child_main(argv[1:])
    print("usage: seedtest-dev bench [options]", file=sys.stderr)
    return 2


__all__ = ["BenchOptions", "floor_sql", "main", "render", "run_bench", "write_report"]

if __name__ == "__main__":
    sys.exit(_entry(sys.argv[1:]))
