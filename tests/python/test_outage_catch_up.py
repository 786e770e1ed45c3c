"""After an outage longer than AGG_LOOKBACK_DAYS, the next night catches features_topic_daily
up from the last anchor built (the days in between equal a full rebuild's); a gap larger
than the bound keeps the usual window and names the backfill command in one warning line."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

import reference
from conftest import run_cli
from seedtest_analytics.db.connection import ConnectionParams
from seedtest_analytics.jobs.catch_up import MAX_CATCH_UP_DAYS
from test_privileges import add_exam, admin, at_day

FIRST = dt.date(2025, 5, 20)
SECOND = FIRST + dt.timedelta(days=16)  # 15 nights missed, lookback 7


def features(conn: object) -> dict[tuple[object, ...], tuple[object, ...]]:
    rows = conn.execute(  # type: ignore[attr-defined]
        "select " + ", ".join(reference.COLUMNS) + " from analytics.features_topic_daily"
    ).fetchall()
    return {(row[0], row[1], row[2]): tuple(row) for row in rows}


def test_a_night_after_an_outage_catches_up(fresh_db: ConnectionParams, tmp_path: Path) -> None:
    env = {"ACTIVITY_TIMEZONE": "UTC", "SEEDTEST_FRESHNESS_HOURS": "0",
           "DBT_TARGET_PATH": str(tmp_path / "target"), "DBT_LOG_PATH": str(tmp_path / "logs")}
    with admin(fresh_db) as conn:
        day = FIRST - dt.timedelta(days=20)
        while day <= SECOND:
            add_exam(conn, "amy", "algebra", at_day(day, 9), correct=day.day % 2 == 0)
            add_exam(conn, "bo", "geometry", at_day(day, 15))
            day += dt.timedelta(days=1)
    first = run_cli(fresh_db, "run", "--date", FIRST.isoformat(), env=env)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr
    second = run_cli(fresh_db, "run", "--date", SECOND.isoformat(), env=env)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr
    assert (
        f"[INFO] features_topic_daily was last built for {FIRST.isoformat()}: this run catches "
        f"up from {(FIRST + dt.timedelta(days=1)).isoformat()} (lookback 15 days instead of 7)"
    ) in second.stdout, second.stdout[-3000:]
    with admin(fresh_db) as conn:
        actual = features(conn)
        expected = reference.features(reference.load_sources(conn), anchor=SECOND,
                                      timezone="UTC")
    missed = {key[2] for key in expected} - {key[2] for key in actual}
    assert not missed, sorted(missed)
    assert actual.keys() == expected.keys()
    for key, row in expected.items():
        for got, want in zip(actual[key], row.as_tuple(), strict=True):
            if isinstance(want, float):
                assert got == pytest.approx(want, abs=1e-9), key
            else:
                assert got == want, key

    # a gap beyond the bound: the usual window, and the command that fills the rest
    third = SECOND + dt.timedelta(days=MAX_CATCH_UP_DAYS + 10)
    late = run_cli(fresh_db, "aggregate", "--date", third.isoformat(), env=env)
    assert late.returncode == 0, late.stdout[-3000:] + late.stderr
    start = (SECOND + dt.timedelta(days=1)).isoformat()
    end = (third - dt.timedelta(days=7)).isoformat()
    warned = [line for line in late.stdout.splitlines() if line.startswith("[WARN]")]
    assert any(
        f"fill the rest with: seedtest-analytics backfill --start {start} --end {end}" in line
        for line in warned
    ), late.stdout[-3000:]
