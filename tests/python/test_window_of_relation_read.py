"""The run-window guard checks the window of the relation actually read: a per-run table
replaced by a copy (a clone) of one built for another window stops features_topic_daily
before anything is deleted, even though the registry's record matches the run's vars."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

from conftest import REPO, run_cli
from seedtest_analytics.db.connection import ConnectionParams
from test_privileges import add_exam, admin, at_day

FIRST = dt.date(2025, 6, 10)
SECOND = FIRST + dt.timedelta(days=4)
SELECT = "select * from analytics.features_topic_daily order by 1, 2, 3"


def test_a_cloned_per_run_table_from_another_window_stops_before_deleting(
    fresh_db: ConnectionParams, tmp_path: Path
) -> None:
    env = {"ACTIVITY_TIMEZONE": "UTC", "SEEDTEST_FRESHNESS_HOURS": "0",
           "DBT_TARGET_PATH": str(tmp_path / "target"), "DBT_LOG_PATH": str(tmp_path / "logs")}
    with admin(fresh_db) as conn:
        day = FIRST - dt.timedelta(days=12)
        while day <= SECOND:
            add_exam(conn, "amy", "algebra", at_day(day, 10))
            day += dt.timedelta(days=1)
    for anchor in (FIRST, SECOND):
        done = run_cli(fresh_db, "aggregate", "--date", anchor.isoformat(), env=env)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr
        if anchor == FIRST:
            with admin(fresh_db) as conn:
                conn.execute("create table public.saved_aggregate as"
                             " select * from analytics.int_topic_daily__aggregated")
    with admin(fresh_db) as conn:
        before = conn.execute(SELECT).fetchall()
        assert {row[2] for row in before} >= {SECOND - dt.timedelta(days=1), SECOND}
        # a clone of the first night's per-run table where the second night's was
        conn.execute("drop table analytics.int_topic_daily__aggregated")
        conn.execute("create table analytics.int_topic_daily__aggregated as"
                     " select * from public.saved_aggregate")

    plain_env = {**{k: v for k, v in os.environ.items() if not k.startswith("SEEDTEST_LOCK")},
                 **fresh_db.dbt_env(), **env, "ANCHOR_DATE": SECOND.isoformat(),
                 "DBT_TARGET_PATH": str(tmp_path / "plain")}
    dbt = str(Path(sys.executable).with_name("dbt"))
    result = subprocess.run(
        [dbt, "run", "--select", "features_topic_daily", "--project-dir", str(REPO),
         "--profiles-dir", str(REPO / "profiles")],
        cwd=REPO, env=plain_env, capture_output=True, text=True, check=False,
    )
    assert result.returncode == 1, result.stdout[-3000:]
    assert "nothing deleted" in result.stdout and "copy or clone" in result.stdout, (
        result.stdout[-3000:])
    with admin(fresh_db) as conn:
        assert conn.execute(SELECT).fetchall() == before
