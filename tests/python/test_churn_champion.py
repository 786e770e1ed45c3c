"""METRICS_CHURN_MODEL=auto (the default): the promoted champion scores S, else the previous
champion, else the fixed-weight formula, each fallback one warning line; never a non-finite S.

A population from seedtest_dev.population; the expected S computed here from its truth (the
activity days), the champion's S from the stored numbers by hand (linear between the points).
"""

from __future__ import annotations

import datetime as dt
import math
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

import ps_reference as ref
from conftest import create_database, drop_database, run_cli
from seedtest_analytics.config import Settings
from seedtest_analytics.db.connection import ConnectionParams
from seedtest_analytics.db.returners import mark_returned
from seedtest_analytics.jobs.inactivity import score_and_write
from seedtest_analytics.scoring.churn_champion import ensure_tables
from seedtest_dev.population import write_population

DAY0 = dt.date(2026, 1, 5)
NIGHTLY = DAY0 + dt.timedelta(days=100)
WEEK = NIGHTLY - dt.timedelta(days=NIGHTLY.weekday())
THRESHOLD, LOOKBACK, HORIZON = 7, 30, 14
OLD_POINTS = ([7.0, 30.0, 60.0], [0.2, 0.6, 0.9])
NEW_POINTS = ([7.0, 20.0], [0.3, 0.8])


@dataclass
class World:
    params: ConnectionParams
    inactive: dict[str, tuple[int, int, float]]  # user: (d, k, g) from the truth
    days: dict[str, list[dt.date]]
    first_run: subprocess.CompletedProcess[str]


def truth(days: dict[str, list[dt.date]], anchor: dt.date = NIGHTLY
          ) -> dict[str, tuple[int, int, float]]:
    result = {}
    window_first = anchor - dt.timedelta(days=LOOKBACK - 1)
    for user, all_days in days.items():
        past = [d for d in all_days if d <= anchor]
        if not past or (anchor - past[-1]).days < THRESHOLD:
            continue
        window = [d for d in past if d >= window_first]
        k = len(window)
        g = (window[-1] - window[0]).days / (k - 1) if k >= 2 else 0.0
        result[user] = ((anchor - past[-1]).days, k, g)
    return result


@pytest.fixture(scope="module")
def world(server_params: ConnectionParams) -> Iterator[World]:
    params = create_database(server_params)
    try:
        with psycopg.connect(**params.psycopg_kwargs()) as conn:
            population = write_population(conn, students=300, start=DAY0, days=110, seed=11)
        first = run_cli(params, "detect-inactivity", "--date", NIGHTLY.isoformat(),
                        env={"SEEDTEST_FRESHNESS_HOURS": "0"})
        assert first.returncode == 0, first.stdout + first.stderr
        days = population.activity_days()
        yield World(params, truth(days), days, first)
    finally:
        drop_database(server_params, params)


def kpis(params: ConnectionParams) -> dict[str, dict[str, Any]]:
    with psycopg.connect(**params.psycopg_kwargs()) as conn:
        return dict(conn.execute("select user_id, kpis from public.weekly_kpi"
                                 " where week_start = %s", (WEEK,)).fetchall())


def interpolate(points: tuple[list[float], list[float]], x: float) -> float:
    xs, ys = points
    if x <= xs[0]:
        return ys[0]
    for (x0, y0), (x1, y1) in zip(zip(xs, ys, strict=True), zip(xs[1:], ys[1:], strict=True),
                                  strict=False):
        if x <= x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return ys[-1]


def reset_champions(params: ConnectionParams) -> tuple[int, int]:
    """Two promoted days-inactive candidates: an older one, then a newer one."""
    with psycopg.connect(**params.psycopg_kwargs(), autocommit=True) as conn:
        ensure_tables(conn, "analytics")
        conn.execute("truncate analytics.churn_candidates, analytics.churn_decisions")
        ids = []
        for points, until in ((OLD_POINTS, NIGHTLY - dt.timedelta(days=30)),
                              (NEW_POINTS, NIGHTLY - dt.timedelta(days=10))):
            row = conn.execute(
                "insert into analytics.churn_candidates (kind, features, coefficients,"
                " intercept, calibration, calibration_x, calibration_y, trained_until,"
                " train_first_anchor, train_last_anchor, calibration_first_anchor,"
                " calibration_last_anchor, horizon_days, threshold_days, kpi_lookback_days,"
                " activity_timezone, package_version, metrics) values ('days_inactive', '{}',"
                " '{}', 0, 'isotonic', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'UTC', 'test',"
                " '{}') returning candidate_id",
                (points[0], points[1], until, DAY0, until, until, until, HORIZON, THRESHOLD,
                 LOOKBACK)).fetchone()
            assert row is not None
            conn.execute("insert into analytics.churn_decisions (trained_until, candidate_id,"
                         " promoted, reason, evidence) values (%s, %s, true, 'test', '{}')",
                         (until, row[0]))
            ids.append(row[0])
    return ids[0], ids[1]


def corrupt(params: ConnectionParams, candidate: int, statement: str) -> None:
    with psycopg.connect(**params.psycopg_kwargs(), autocommit=True) as conn:
        conn.execute(f"update analytics.churn_candidates set {statement}"
                     " where candidate_id = %s", (candidate,))


def settings(**changes: Any) -> Settings:
    return Settings(**{"anchor_date": NIGHTLY, **changes})


def assert_formula(params: ConnectionParams, world: World) -> None:
    written = kpis(params)
    assert set(written) == set(world.inactive)
    for user, (d, k, g) in world.inactive.items():
        assert written[user]["S"] == pytest.approx(ref.s_churn(d, k, g, HORIZON), abs=1e-12)
        assert "S_model" not in written[user]


def assert_champion(params: ConnectionParams, world: World, points: Any, cid: int) -> None:
    written = kpis(params)
    assert set(written) == set(world.inactive)
    for user, (d, _k, _g) in world.inactive.items():
        assert written[user]["S"] == pytest.approx(interpolate(points, d), abs=1e-12)
        assert written[user]["S_model"] == cid


def test_without_a_champion_auto_is_the_formula(world: World) -> None:
    assert "[WARN" not in world.first_run.stdout
    assert len(world.inactive) > 30
    assert_formula(world.params, world)


def test_the_newest_champion_scores(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    _old, new = reset_champions(world.params)
    score_and_write(world.params, settings())
    assert_champion(world.params, world, NEW_POINTS, new)
    assert "WARN" not in capsys.readouterr().out
    # heuristic stays an explicit choice
    score_and_write(world.params, settings(churn_model="heuristic"))
    assert_formula(world.params, world)


@pytest.mark.parametrize("damage", [
    "calibration_y = array[0.3, 'NaN'::float8]",
    "calibration_y = array[0.3, 'Infinity'::float8]",
    "calibration_x = array[7.0, null]",
    "calibration_y = array[0.3]",
    "kind = 'logistic', features = array['log_days_inactive', 'active_days'],"
    " coefficients = array[1.0]",
    "kind = 'logistic', features = array['log_days_inactive'], coefficients = array[1.0],"
    " intercept = 'NaN'",
    "calibration = 'platt', calibration_x = array[1.0, 'NaN'::float8]",
    "kind = 'forest'",
])
def test_a_corrupted_champion_falls_back_to_the_previous_one(
        world: World, capsys: pytest.CaptureFixture[str], damage: str) -> None:
    old, new = reset_champions(world.params)
    corrupt(world.params, new, damage)
    score_and_write(world.params, settings())
    assert_champion(world.params, world, OLD_POINTS, old)
    warnings = [line for line in capsys.readouterr().out.splitlines() if "WARN" in line]
    assert len(warnings) == 1, warnings
    assert f"candidate {new}: invalid" in warnings[0]
    assert f"previous champion, candidate {old}" in warnings[0]
    for row in kpis(world.params).values():
        assert math.isfinite(row["S"])


@pytest.mark.parametrize(("changes", "env", "said"), [
    ({"churn_model_max_age_days": 9}, {}, "METRICS_CHURN_MODEL_MAX_AGE_DAYS=9"),
    ({"threshold_days": 8}, {}, "INACTIVITY_THRESHOLD_DAYS=7, this run has 8"),
    ({"activity_timezone": "Asia/Seoul"}, {}, "ACTIVITY_TIMEZONE=UTC"),
    ({"churn_horizon_days": 21}, {}, "METRICS_CHURN_HORIZON_DAYS=14"),
    ({"kpi_lookback_days": 28}, {}, "KPI_LOOKBACK_DAYS=30"),
])
def test_a_stale_or_foreign_champion_is_not_used(
        world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        changes: dict[str, Any], env: dict[str, str], said: str) -> None:
    reset_champions(world.params)
    score_and_write(world.params, settings())  # the champion first, so a fallback shows
    assert all("S_model" in row for row in kpis(world.params).values())
    capsys.readouterr()
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    score_and_write(world.params, settings(**changes))
    warnings = [line for line in capsys.readouterr().out.splitlines() if "WARN" in line]
    assert len(warnings) == 1 and said in warnings[0], warnings
    assert "the fixed-weight formula scores S" in warnings[0]
    written = kpis(world.params)
    assert all("S_model" not in row for row in written.values())


def test_holdout_is_a_stable_hashed_share(world: World) -> None:
    import hashlib

    def held(user: str, share: float) -> bool:
        digest = hashlib.sha256(b"seedtest-holdout:" + user.encode()).digest()
        return (int.from_bytes(digest[:7], "big") >> 4) / 2**52 < share

    score_and_write(world.params, settings(churn_model="heuristic", holdout_share=0.3))
    written = kpis(world.params)
    flagged = {user for user, row in written.items() if row["holdout"] is True}
    assert all(row["holdout"] in (True, False) for row in written.values())
    assert flagged == {user for user in world.inactive if held(user, 0.3)}
    assert 0.15 < len(flagged) / len(written) < 0.45
    # a larger share only adds users
    score_and_write(world.params, settings(churn_model="heuristic", holdout_share=0.6))
    more = {user for user, row in kpis(world.params).items() if row["holdout"] is True}
    assert flagged < more
    bad = run_cli(world.params, "detect-inactivity", "--date", NIGHTLY.isoformat(),
                  env={"SEEDTEST_HOLDOUT_SHARE": "1.5"})
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert "SEEDTEST_HOLDOUT_SHARE" in bad.stderr


def test_s_as_of_and_the_returners_of_the_week(world: World) -> None:
    """Scored on Wednesday; some come back on Thursday: Thursday's run marks them
    S_returned_on (their S and S_as_of stay), the others get Thursday's S."""
    score_and_write(world.params, settings(churn_model="heuristic"))
    before = kpis(world.params)
    assert {row["S_as_of"] for row in before.values()} == {NIGHTLY.isoformat()}
    thursday = NIGHTLY + dt.timedelta(days=1)
    back = sorted(world.inactive)[::4]
    with psycopg.connect(**world.params.psycopg_kwargs(), autocommit=True) as conn:
        for i, user in enumerate(back):
            at = dt.datetime(thursday.year, thursday.month, thursday.day, 12, tzinfo=dt.UTC)
            conn.execute(
                "insert into public.exam_results (id, session_id, user_id, result_json,"
                " created_at, updated_at) values (gen_random_uuid(), %s, %s, %s, %s, %s)",
                (f"back-{i}", user, '{"questions": [{"question_id": "q1", "topic": "algebra",'
                 ' "is_correct": true}]}', at, at))
    run = run_cli(world.params, "detect-inactivity", "--date", thursday.isoformat(),
                  env={"SEEDTEST_FRESHNESS_HOURS": "0", "METRICS_CHURN_MODEL": "heuristic"})
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"{len(back)} user(s) scored earlier this week came back" in run.stdout
    after = kpis(world.params)
    later = truth({u: [*d, thursday] if u in back else d for u, d in world.days.items()},
                  thursday)
    assert set(after) == set(world.inactive) | set(later)  # some became inactive on Thursday
    assert not set(back) & set(later)
    for user, row in after.items():
        if user in back:
            assert row["S_returned_on"] == thursday.isoformat()
            assert (row["S"], row["S_as_of"]) == (before[user]["S"], NIGHTLY.isoformat())
        else:
            assert "S_returned_on" not in row
            d, k, g = later[user]
            assert row["S_as_of"] == thursday.isoformat()
            assert row["S"] == pytest.approx(ref.s_churn(d, k, g, HORIZON), abs=1e-12)

    # The same marks from last-activity rows read apart, as the Spark warehouse passes them
    # (epoch seconds): the returners at Thursday noon UTC, everyone else long before.
    noon = dt.datetime(thursday.year, thursday.month, thursday.day, 12, tzinfo=dt.UTC)
    apart = [(user, noon.timestamp() if user in back else noon.timestamp() - 30 * 86400)
             for user in after]
    with psycopg.connect(**world.params.psycopg_kwargs()) as conn:
        conn.execute("update public.weekly_kpi set kpis = kpis - 'S_returned_on'")
        conn.commit()
        marked = mark_returned(conn, settings(anchor_date=thursday, activity_timezone="UTC"),
                               kpi_schema="public", dbt_schema="no_such_schema",
                               last_activity=apart)
    assert marked == len(back)
    assert kpis(world.params) == after
    with psycopg.connect(**world.params.psycopg_kwargs()) as conn:
        assert mark_returned(conn, settings(anchor_date=thursday), kpi_schema="public",
                             dbt_schema="no_such_schema", last_activity=[]) == 0
