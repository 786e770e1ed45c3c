"""A setting that shapes an incremental table (ACTIVITY_TIMEZONE, SOURCE_SCHEMA, the id
mapping, the attempt source, AGG_INCLUDE_THETA) changed between two nights: the run stops
before writing, with one line naming the setting and the rebuild command; the table keeps
the rows of the settings it was built with."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import psycopg

from conftest import run_cli
from seedtest_analytics.db.connection import ConnectionParams
from test_privileges import ANCHOR, admin, seed

ENV = {"ACTIVITY_TIMEZONE": "UTC", "SEEDTEST_FRESHNESS_HOURS": "0"}


def snapshot(conn: psycopg.Connection) -> dict[str, list[tuple[object, ...]]]:
    return {
        table: conn.execute(f"select * from analytics.{table} order by 1, 2, 3").fetchall()
        for table in ("features_topic_daily", "int_activity_daily")
    }


def stopped(result: subprocess.CompletedProcess[str], setting: str) -> str:
    output = f"exit {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr}"
    assert result.returncode == 1, output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, output
    assert f"computed with {setting}=" in lines[0] and "seedtest-analytics rebuild" in lines[0]
    assert "nothing written" in lines[0], output
    return lines[0]


def test_a_changed_setting_stops_before_writing(fresh_db: ConnectionParams, tmp_path: Path
                                                ) -> None:
    env = {**ENV, "DBT_TARGET_PATH": str(tmp_path / "target"),
           "DBT_LOG_PATH": str(tmp_path / "logs")}
    with admin(fresh_db) as conn:
        seed(conn)
    first = (ANCHOR - dt.timedelta(days=1)).isoformat()
    done = run_cli(fresh_db, "run", "--date", first, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    with admin(fresh_db) as conn:
        before = snapshot(conn)
        kpi = conn.execute("select * from public.weekly_kpi order by 1, 2").fetchall()
        # a late exam of the next night, so a write would show
        conn.execute(
            "insert into public.exam_results (id, session_id, user_id, result_json, created_at,"
            " updated_at) values (gen_random_uuid(), 'late', 'amy', '{\"questions\": []}',"
            " %s, %s)", (dt.datetime(2025, 6, 18, 11, tzinfo=dt.UTC),) * 2)

    kiritimati = {**env, "ACTIVITY_TIMEZONE": "Pacific/Kiritimati"}
    line = stopped(run_cli(fresh_db, "run", "--date", ANCHOR.isoformat(), env=kiritimati),
                   "ACTIVITY_TIMEZONE")
    assert "ACTIVITY_TIMEZONE=UTC" in line and "Pacific/Kiritimati" in line, line
    stopped(run_cli(fresh_db, "run", "--date", ANCHOR.isoformat(), "--dry-run", env=kiritimati),
            "ACTIVITY_TIMEZONE")
    stopped(run_cli(fresh_db, "aggregate", "--date", ANCHOR.isoformat(),
                    env={**env, "AGG_INCLUDE_THETA": "true"}), "AGG_INCLUDE_THETA")
    stopped(run_cli(fresh_db, "run", "--date", ANCHOR.isoformat(),
                    env={**env, "MAP_USER_IDS": "false"}), "MAP_USER_IDS")
    with admin(fresh_db) as conn:
        assert snapshot(conn) == before
        assert conn.execute("select * from public.weekly_kpi order by 1, 2").fetchall() == kpi

    # the same settings again: the night runs
    done = run_cli(fresh_db, "run", "--date", ANCHOR.isoformat(), env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
