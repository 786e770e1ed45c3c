"""The operator's view of the nights: the dry run writes nothing the next
real run can see, `run` prints both old jobs' Summary lines, the freshness guard stops the
P/S step on a stale source (judged against the end of the anchor day), every run appends one
row to the run history, dbt's artifacts of the last real run stay for `dbt-retry`, and the
operator guide's queries (docs/operations.md) run as written.

One database with the demo data; the runs below happen once, in order, and the tests read
what they printed and left. dbt runs models only (SEEDTEST_DBT_TESTS=false).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest

import cli_process
from conftest import REPO, create_database, drop_database
from seedtest_analytics.db.connection import ConnectionParams
from seedtest_dev.synthetic import generate_demo

ANCHOR = dt.date(2025, 11, 1)
STALE = dt.date(2025, 11, 4)  # three days after the last exam of the demo data
AGGREGATING = re.compile(
    r"^\[INFO\] Aggregating features for (\d+) \(user, topic, date\) combinations; "
    r"since=(\S+), anchor=(\S+), dry_run=(True|False)$", re.M)
AGG_SUMMARY = re.compile(r"^\[INFO\] Summary: processed=(\d+), failed=(\d+), duration_ms=\d+$",
                         re.M)
FOUND = re.compile(r"^\[INFO\] Found (\d+) inactive users \(threshold=7 days\); dry_run=(\w+)$",
                   re.M)
DETECT_SUMMARY = re.compile(
    r"^\[INFO\] Summary: processed=(\d+), failed=(\d+), threshold=7 days, duration_ms=\d+$", re.M)
PIPELINE = re.compile(r"^\[INFO\] Pipeline: models built=(\d+), ", re.M)
SELECT_KPI = (
    "select user_id, week_start, kpis::text, updated_at from public.weekly_kpi order by 1, 2"
)
# Everything of the project's schema but the history: name, storage, and content.
SNAPSHOT = """
select c.relname::text, c.relkind::text, c.relfilenode::bigint,
       case when c.relkind = 'v' then pg_get_viewdef(c.oid) end
from pg_class as c join pg_namespace as n on n.oid = c.relnamespace
where n.nspname = 'analytics' and c.relkind in ('r', 'v', 'i')
    and c.relname not like 'seedtest_run_history%%'
order by 1
"""


def connect(params: ConnectionParams) -> psycopg.Connection:
    return psycopg.connect(**params.psycopg_kwargs(), autocommit=True)


def rows(params: ConnectionParams, query: str, *args: Any) -> list[tuple[Any, ...]]:
    with connect(params) as conn:
        return [tuple(row) for row in conn.execute(query, args).fetchall()]


@dataclass
class Nights:
    params: ConnectionParams
    target: Path
    out: dict[str, subprocess.CompletedProcess[str]] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)

    def cli(self, name: str, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        env = {
            key: value for key, value in os.environ.items()
            if not key.startswith(("AGG_", "METRICS_", "KPI_", "INACTIVITY_", "ANCHOR_",
                                   "SEEDTEST_"))
            and key not in ("DATABASE_URL", "SOURCE_SCHEMA", "PGOPTIONS")
        }
        env.update(DATABASE_URL=self.params.to_url(), ACTIVITY_TIMEZONE="UTC",
                   SEEDTEST_DBT_TESTS="false", DBT_TARGET_PATH=str(self.target),
                   DBT_LOG_PATH=str(self.target.parent / "logs"), **extra)
        result = cli_process.run("seedtest_analytics", args, env=env, cwd=REPO)
        assert "Traceback" not in result.stdout + result.stderr, result.stderr
        self.out[name] = result
        return result

    def invocation_id(self) -> str:
        data = json.loads((self.target / "run_results.json").read_text())
        return str(data["metadata"]["invocation_id"])


def newest_before(params: ConnectionParams, day: dt.date) -> dt.datetime:
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.UTC)
    [(newest,)] = rows(params, "select max(coalesce(updated_at, created_at))"
                       " from public.exam_results where coalesce(updated_at, created_at) < %s",
                       end)
    return newest


@pytest.fixture(scope="module")
def nights(server_params: ConnectionParams, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Nights]:
    params = create_database(server_params)
    with connect(params) as conn:
        generate_demo(conn, users=30, days=40, seed=5, end_date=ANCHOR)
    n = Nights(params, tmp_path_factory.mktemp("nights") / "target")
    try:
        # 1. a real night
        assert n.cli("run", "run", "--date", ANCHOR.isoformat()).returncode == 0
        n.notes["run_invocation"] = n.invocation_id()
        n.notes["snapshot"] = rows(params, SNAPSHOT)
        n.notes["kpi"] = rows(params, SELECT_KPI)
        n.notes["features"] = rows(params, "select * from analytics.features_topic_daily"
                                   " order by 1, 2, 3")
        # 2. a dry run, after the sources changed inside the window
        last = dt.datetime.combine(ANCHOR - dt.timedelta(days=1), dt.time(10), dt.UTC)
        with connect(params) as conn:
            conn.execute(
                "insert into public.exam_results (id, session_id, user_id, result_json,"
                " created_at, updated_at) values (gen_random_uuid(), 'late-1', 'late-user',"
                " '{\"questions\": [{\"question_id\": \"q\", \"topic\": \"algebra\"}]}', %s, %s)",
                (last, last),
            )
        n.cli("dry", "run", "--date", ANCHOR.isoformat(), "--dry-run")
        n.notes["dry_snapshot"] = rows(params, SNAPSHOT)
        n.notes["dry_kpi"] = rows(params, SELECT_KPI)
        n.notes["dry_features"] = rows(params, "select * from analytics.features_topic_daily"
                                       " order by 1, 2, 3")
        n.notes["dry_schemas"] = rows(params, "select nspname::text from pg_namespace"
                                      " where nspname like 'analytics%%' order by 1")
        n.notes["after_dry_invocation"] = n.invocation_id()
        # 3. stale source: the anchor is three days after the newest exam
        n.cli("stale_run", "run", "--date", STALE.isoformat())
        n.cli("stale_detect", "detect-inactivity", "--date", STALE.isoformat())
        n.notes["stale_kpi"] = rows(params, SELECT_KPI)
        n.cli("stale_aggregate", "aggregate", "--date", STALE.isoformat())
        # 4. a backfill (never stopped by freshness)
        n.cli("backfill", "backfill", "--start", "2025-10-30", "--end", ANCHOR.isoformat())
        # 5. a night that fails inside dbt (features_topic_daily locked), then dbt-retry
        with connect(params) as blocker:
            blocker.execute("begin")
            blocker.execute("lock table analytics.features_topic_daily in access exclusive mode")
            n.cli("locked", "aggregate", "--date", ANCHOR.isoformat(),
                  SEEDTEST_LOCK_TIMEOUT_SECONDS="2")
            blocker.execute("rollback")
        n.cli("retry", "dbt-retry")
        n.notes["retry_invocation"] = n.invocation_id()
        yield n
    finally:
        drop_database(server_params, params)


def test_run_prints_both_old_jobs_lines(nights: Nights) -> None:
    out = nights.out["run"].stdout
    lines = [line for line in out.splitlines() if line.startswith("[")]
    kinds = [next(name for name, rx in [("aggregating", AGGREGATING), ("agg", AGG_SUMMARY),
                                        ("found", FOUND), ("detect", DETECT_SUMMARY),
                                        ("pipeline", PIPELINE), ("other", re.compile("."))]
                  if rx.match(line)) for line in lines]
    assert [k for k in kinds if k != "other"] == [
        "aggregating", "agg", "found", "detect", "pipeline"], out[-3000:]
    [(combinations, _, _, _)] = AGGREGATING.findall(out)
    assert AGG_SUMMARY.findall(out) == [(combinations, "0")]


def test_dry_run_writes_nothing_the_next_run_can_see(nights: Nights) -> None:
    dry = nights.out["dry"]
    assert dry.returncode == 0, dry.stdout[-3000:] + dry.stderr
    assert [d for *_, d in AGGREGATING.findall(dry.stdout)] == ["True"]
    assert [d for _, d in FOUND.findall(dry.stdout)] == ["True"]
    # It saw the new exam (its counts are a real run's) ...
    real_n = int(AGGREGATING.findall(nights.out["run"].stdout)[0][0])
    assert int(AGGREGATING.findall(dry.stdout)[0][0]) == real_n + 1
    # ... and left the project's schema exactly as it was: same relations, same storage
    # (nothing rebuilt), same rows; no scratch schema; weekly_kpi untouched.
    assert nights.notes["dry_snapshot"] == nights.notes["snapshot"]
    assert nights.notes["dry_features"] == nights.notes["features"]
    assert nights.notes["dry_kpi"] == nights.notes["kpi"]
    assert nights.notes["dry_schemas"] == [("analytics",)]
    # dbt's artifacts of the real run stay where `dbt retry` reads them.
    assert nights.notes["after_dry_invocation"] == nights.notes["run_invocation"]
    assert (nights.target.parent / "target-dry-run" / "run_results.json").is_file()


def test_stale_source_stops_the_ps_step(nights: Nights) -> None:
    newest = newest_before(nights.params, STALE).astimezone(dt.UTC)
    [(usual,)] = rows(nights.params, "select count(distinct (coalesce(updated_at, created_at)"
                      " at time zone 'UTC')::date) from public.exam_results"
                      " where (coalesce(updated_at, created_at) at time zone 'UTC')::date"
                      " = any(%s)", [STALE - dt.timedelta(days=7 * k) for k in (1, 2, 3, 4)])
    assert usual >= 2  # that weekday usually has exams: a stale source, not a quiet day
    line = (
        f"source public.exam_results looks stale: its newest row is from "
        f"{newest:%Y-%m-%d %H:%M:%S} UTC, more than 24 h before the end of the anchor day "
        f"{STALE.isoformat()} (UTC) (SEEDTEST_FRESHNESS_HOURS=24), while {usual} of the 4 same "
        "weekdays before had exams"
    )
    stopping = (
        f"[ERROR] {line}; stopping before the P/S step, weekly_kpi untouched; if the source is "
        "right (a quiet day), score anyway for this one run with --allow-stale or "
        "SEEDTEST_ALLOW_STALE=true [error_class=stale_source]"
    )
    for name in ("stale_run", "stale_detect"):
        result = nights.out[name]
        assert result.returncode == 3, result.stdout[-3000:] + result.stderr
        assert result.stderr.strip().splitlines() == [stopping]
        assert not FOUND.findall(result.stdout)
        assert DETECT_SUMMARY.findall(result.stdout) == [("0", "1")]
    # run built the features (the aggregate job's part) and printed its lines; detect did
    # not even start dbt.
    assert AGG_SUMMARY.findall(nights.out["stale_run"].stdout)
    assert "Running with dbt" not in nights.out["stale_detect"].stdout
    assert nights.notes["stale_kpi"] == nights.notes["dry_kpi"]
    aggregate = nights.out["stale_aggregate"]
    assert aggregate.returncode == 0, aggregate.stdout[-3000:] + aggregate.stderr
    assert f"[WARN] {line}; building the features anyway" in aggregate.stdout.splitlines()
    assert AGG_SUMMARY.findall(aggregate.stdout)


def test_a_lock_timeout_inside_dbt_is_one_line_and_dbt_retry_finishes_it(nights: Nights) -> None:
    locked = nights.out["locked"]
    assert locked.returncode == 1, locked.stdout[-3000:] + locked.stderr
    # (The model that meets the lock first may be one that reads features_topic_daily.)
    [line] = locked.stderr.strip().splitlines()
    assert re.fullmatch(
        r"\[ERROR\] dbt model \w+ waited more than 2 s for a lock held by another session "
        r"\(SEEDTEST_LOCK_TIMEOUT_SECONDS=2\); its transaction was rolled back "
        r"\[error_class=timeout\]", line), line
    assert AGG_SUMMARY.findall(locked.stdout) == [("0", "1")]
    retry = nights.out["retry"]
    assert retry.returncode == 0, retry.stdout[-3000:] + retry.stderr
    assert re.search(r"^\[INFO\] Retrying [1-9]\d* failed or skipped dbt nodes of the last "
                     rf"invocation \(anchor {ANCHOR.isoformat()}\)$", retry.stdout, re.M)
    assert re.search(r"OK created sql incremental model analytics\.features_topic_daily",
                     retry.stdout), retry.stdout[-3000:]


def test_every_run_has_one_history_row(nights: Nights) -> None:
    history = rows(nights.params, """
        select command, dry_run, anchor_date, window_start, window_end, status, exit_code,
               models_built, combinations, users_found, users_scored, users_failed,
               source_fresh, source_newest_at, dbt_invocation_id, error, duration_ms
        from analytics.seedtest_run_history order by started_at""")
    summary = [(r[0], r[1], r[2], r[5], r[6], r[12]) for r in history]
    assert summary == [
        ("run", False, ANCHOR, "success", 0, True),
        ("run", True, ANCHOR, "success", 0, True),
        ("run", False, STALE, "failed", 3, False),
        ("detect-inactivity", False, STALE, "failed", 3, False),
        ("aggregate", False, STALE, "success", 0, False),
        ("backfill", False, ANCHOR, "success", 0, True),
        ("aggregate", False, ANCHOR, "failed", 1, True),
        ("dbt-retry", False, ANCHOR, "success", 0, None),  # retries dbt only: no check
    ]
    run, dry = history[0], history[1]
    out = nights.out["run"].stdout
    assert run[3:5] == (ANCHOR - dt.timedelta(days=7), ANCHOR)
    assert run[7] == int(PIPELINE.findall(out)[0]) > 0
    assert run[8] == int(AGGREGATING.findall(out)[0][0])
    assert run[9] == int(FOUND.findall(out)[0][0])
    assert (run[10], run[11]) == tuple(int(x) for x in DETECT_SUMMARY.findall(out)[0])
    assert run[13] == newest_before(nights.params, ANCHOR)
    assert run[14] == nights.notes["run_invocation"]
    assert dry[14] != run[14] and dry[8] == run[8] + 1
    assert all(r[15] is None for r in history if r[6] == 0)
    assert "looks stale" in history[2][15] and "looks stale" in history[3][15]
    assert "waited more than 2 s for a lock" in history[6][15]
    assert history[7][14] == nights.notes["retry_invocation"]
    assert all(r[16] > 0 for r in history)


def test_the_operator_guide_queries_run(nights: Nights) -> None:
    guide = (REPO / "docs" / "operations.md").read_text()
    section = guide[guide.index("## Run history"):]
    block = section[section.index("```sql") + len("```sql"):]
    statements = [s.strip() for s in block[:block.index("```")].split(";") if s.strip()]
    assert len(statements) == 2
    with connect(nights.params) as conn:
        nights_rows = conn.execute(statements[0]).fetchall()
        per_anchor = conn.execute(statements[1]).fetchall()
    # The history's rows are of 2025 anchors but were written now: all within 30 days.
    assert len(nights_rows) == 7  # every run but the dry one
    assert [(r[0], r[1], r[2]) for r in per_anchor] == [(STALE, 1, False), (ANCHOR, 1, True)]
