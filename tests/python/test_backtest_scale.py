"""The backtest at scale: over a million scored user-anchors in one process.

A synthetic population of 100k users over 150 days (about 2.9M sessions, written set-based on
the server), the nightly pipeline's activity model built once and a churn model trained, then
`backtest` over 43 anchors (1.3M user-anchors, all three scorers, the HTML report) run as a
whole process, which must finish and report every user-anchor. Its time is printed, not
asserted (speed is measured by the benchmark, never by a test a loaded machine can fail).
Marked slow: `pytest -m slow tests/python/test_backtest_scale.py`.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from pathlib import Path

import pytest

from conftest import create_database, drop_database, run_cli
from seedtest_analytics.db.connection import ConnectionParams

USERS = 100_000
DAYS = 150
# up to yesterday, as in a database the nightly run keeps current (the backtest's own build
# of the activity model then recomputes only the nightly window)
LAST = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
DAY0 = LAST - dt.timedelta(days=DAYS - 1)

# Four kinds of users by id: periodic (every 7-13 days), quitters (near daily for 15-39
# days, then gone), breakers (every other day with one long break), sporadic (8% of days).
POPULATION = """
insert into public.session (id, user_id, started_at, ended_at)
select 's' || u || '-' || d, 'u' || u, at, at + interval '20 minutes'
from generate_series(1, %(users)s) as u
cross join generate_series(0, %(days)s - 1) as d
cross join lateral (
    select
        %(day0)s::timestamptz + d * interval '1 day' + (u %% 80000) * interval '1 second' as at,
        abs(hashtext(u || ':' || d)) %% 1000 as draw,
        (u * 7919) %% (%(days)s - 40) as start
) as r
where case u %% 4
    when 0 then (d + u) %% (7 + u %% 7) = 0
    when 1 then d between r.start and r.start + 14 + u %% 25 and r.draw < 850
    when 2 then d not between r.start and r.start + 8 + u %% 23 and r.draw < 500
    else r.draw < 80
end
"""


@pytest.mark.slow
def test_a_million_user_anchors_in_one_backtest(
    server_params: ConnectionParams, tmp_path: Path
) -> None:
    params = create_database(server_params)
    try:
        import psycopg

        with psycopg.connect(**params.psycopg_kwargs(), autocommit=True) as conn:
            conn.execute(POPULATION, {"users": USERS, "days": DAYS, "day0": DAY0.isoformat()})
            conn.execute("vacuum analyze public.session")
            sessions = conn.execute("select count(*) from public.session").fetchone()
        env = {"ACTIVITY_TIMEZONE": "UTC"}
        # the nightly run has built the activity model (the backtest reads it)
        nightly = run_cli(params, "backfill", "--start", DAY0.isoformat(),
                          "--end", LAST.isoformat(), env=env)
        assert nightly.returncode == 0, nightly.stdout + nightly.stderr
        until = DAY0 + dt.timedelta(days=70)
        train = run_cli(params, "train-churn", "--until", until.isoformat(), env=env)
        assert train.returncode == 0, train.stdout + train.stderr
        started = time.perf_counter()
        result = run_cli(
            params, "backtest", "--start", (DAY0 + dt.timedelta(days=21)).isoformat(),
            "--end", LAST.isoformat(), "--every", "3", "--output", str(tmp_path / "r.json"),
            "--html", str(tmp_path / "r.html"), env=env,
        )
        seconds = time.perf_counter() - started
        assert result.returncode == 0, result.stdout + result.stderr
    finally:
        drop_database(server_params, params)
    report = json.loads((tmp_path / "r.json").read_text())
    pooled = {row["scorer"]: row for row in report["pooled"]}
    line = re.search(r"^\[INFO\] Backtest: .*$", result.stdout, re.M)
    print(f"\n{sessions[0] if sessions else 0} sessions; {pooled['heuristic']['users']} "
          f"user-anchors; backtest process {seconds:.1f} s\n{line[0] if line else ''}")
    assert pooled["heuristic"]["users"] >= 1_000_000
    # every scorer reports the same user-anchors (none dropped at scale)
    assert {row["users"] for row in report["pooled"]} == {pooled["heuristic"]["users"]}
