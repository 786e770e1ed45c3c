"""Infinite timestamps and NaN/Infinity abilities and thetas are invalid rows: skipped (the
first build no longer fails, an older valid estimate is used), counted and named like the
other invalid rows (the skipped-attempts line, the source checks `is_finite`)."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import pytest
from psycopg.types.json import Jsonb

from conftest import run_cli
from ps_reference import phi
from seedtest_analytics.db.connection import ConnectionParams
from test_privileges import ANCHOR, WEEK, admin, at_day, seed


def test_infinite_and_nan_values_are_skipped_counted_and_named(
    fresh_db: ConnectionParams, tmp_path: Path
) -> None:
    with admin(fresh_db) as conn:
        seed(conn)
        questions = [{"question_id": f"q{i}", "topic": "algebra", "is_correct": True}
                     for i in range(2)]
        conn.execute(
            "insert into public.exam_results (id, session_id, user_id, result_json, created_at,"
            " updated_at) values (%s, 's-inf', 'far', %s, '-infinity', '-infinity')",
            (str(uuid.uuid4()), Jsonb({"questions": questions})),
        )
        newer = at_day(ANCHOR - dt.timedelta(days=5))
        conn.execute(
            "insert into public.ability_estimates (user_id, mean, sd, fitted_at) values"
            " ('ivy', 'NaN', 0.5, %s), ('ivy', 0.1, 'Infinity', %s)",
            (newer, newer + dt.timedelta(hours=1)),
        )
        conn.execute(
            "insert into public.student_topic_theta (user_id, topic_id, theta, se, updated_at)"
            " values ('bo', 'geometry', 'NaN', 0.2, %s)",
            (at_day(ANCHOR - dt.timedelta(days=40)),),
        )
    env = {"ACTIVITY_TIMEZONE": "UTC", "SEEDTEST_FRESHNESS_HOURS": "0",
           "AGG_INCLUDE_THETA": "true", "SEEDTEST_DBT_TESTS": "true",
           "DBT_TARGET_PATH": str(tmp_path / "target"), "DBT_LOG_PATH": str(tmp_path / "logs")}
    result = run_cli(fresh_db, "run", "--date", ANCHOR.isoformat(), env=env)
    out = result.stdout
    assert result.returncode == 0, out[-5000:] + result.stderr
    assert "[WARN] Skipped 2 attempts with a null user, topic or time" in out, out[-5000:]
    for named in ("stg_seedtest__exam_results.activity_at is_finite: 1 row",
                  "stg_seedtest__ability_estimates.ability_mean is_finite: 1 row",
                  "stg_seedtest__ability_estimates.ability_sd is_finite: 1 row",
                  "stg_seedtest__student_topic_thetas.theta is_finite: 1 row"):
        assert f"[WARN] source check {named}" in out, (named, out[-5000:])
    with admin(fresh_db) as conn:
        thetas = conn.execute(
            "select distinct theta_estimate from analytics.features_topic_daily"
            " where user_id = 'amy' and topic_id = 'algebra'"
        ).fetchall()
        assert thetas == [(pytest.approx(0.4),)]
        # bo's only theta is NaN: skipped, so bo has none (not NaN)
        assert conn.execute(
            "select distinct theta_estimate::text from analytics.features_topic_daily"
            " where user_id = 'bo'"
        ).fetchall() == [(None,)]
        (kpis,) = conn.execute(
            "select kpis from public.weekly_kpi where user_id = 'ivy' and week_start = %s",
            (WEEK,),
        ).fetchone() or (None,)
        # the valid estimate (0.3, 0.8), not the NaN or Infinity ones after it
        assert kpis["P"] == pytest.approx(1.0 - phi((0.9 - 0.3) / 0.8), abs=1e-12)
        assert conn.execute(
            "select count(*) from analytics.int_activity_daily where user_id = 'far'"
        ).fetchone() == (0,)
