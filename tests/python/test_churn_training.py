"""train-churn's champion and challengers on a generated population (seedtest_dev.population):
candidates stored with their decision and evidence, one line each, the gate's rules held; the
nightly's default (auto) then writes the champion's S, recomputed here from the raw activity
days and the stored numbers; a second training with nothing better promotes nothing."""

from __future__ import annotations

import datetime as dt
import math
import re
import subprocess
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from conftest import create_database, drop_database, run_cli
from seedtest_analytics.db.connection import ConnectionParams
from seedtest_dev.population import Calendar, write_population

DAY0 = dt.date(2026, 1, 5)
DAYS = 182
UNTIL = DAY0 + dt.timedelta(days=150)
NIGHTLY = DAY0 + dt.timedelta(days=155)
WEEK = NIGHTLY - dt.timedelta(days=NIGHTLY.weekday())
THRESHOLD, LOOKBACK, HORIZON = 7, 30, 14
LINE = re.compile(r"^\[INFO\] Churn candidate (\d+) \((\w+)\): newly inactive AUC .*"
                  r"; calibration error \S+; (.+)$", re.M)


@dataclass
class Trained:
    params: ConnectionParams
    days: dict[str, list[dt.date]]
    first: subprocess.CompletedProcess[str]
    candidates: dict[int, dict[str, Any]]
    decisions: list[dict[str, Any]]


def rows(params: ConnectionParams, query: str) -> list[dict[str, Any]]:
    with psycopg.connect(**params.psycopg_kwargs()) as conn:
        cur = conn.execute(query)
        names = [c.name for c in cur.description or []]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


@pytest.fixture(scope="module")
def trained(server_params: ConnectionParams) -> Iterator[Trained]:
    params = create_database(server_params)
    try:
        with psycopg.connect(**params.psycopg_kwargs()) as conn:
            # the holiday and the exams after --until: the mechanics here, not the seasons
            calendar = Calendar(DAY0, DAYS, (158, 164), ((168, 177),))
            population = write_population(conn, students=4000, start=DAY0, days=DAYS, seed=21,
                                          calendar=calendar)
        env = {"ANCHOR_DATE": (DAY0 + dt.timedelta(days=DAYS - 1)).isoformat()}
        first = run_cli(params, "train-churn", "--until", UNTIL.isoformat(), "--every", "1",
                        env=env)
        assert first.returncode == 0, first.stdout + first.stderr
        candidates = {r["candidate_id"]: r for r in rows(
            params, "select * from analytics.churn_candidates")}
        decisions = rows(params, "select * from analytics.churn_decisions order by decision_id")
        yield Trained(params, population.activity_days(), first, candidates, decisions)
    finally:
        drop_database(server_params, params)


def test_each_candidate_is_stored_with_its_decision_and_one_line(trained: Trained) -> None:
    assert sorted(c["kind"] for c in trained.candidates.values()) == [
        "days_inactive", "heuristic", "logistic"]
    lines = LINE.findall(trained.first.stdout)
    assert len(lines) == 3
    assert [(int(i), kind) for i, kind, _ in lines] == [
        (d["candidate_id"], trained.candidates[d["candidate_id"]]["kind"])
        for d in trained.decisions]
    assert [reason for *_, reason in lines] == [d["reason"] for d in trained.decisions]
    assert sum(d["promoted"] for d in trained.decisions) <= 1
    for candidate in trained.candidates.values():
        assert candidate["trained_until"] == UNTIL
        assert (candidate["horizon_days"], candidate["threshold_days"],
                candidate["kpi_lookback_days"], candidate["activity_timezone"]) == (
            HORIZON, THRESHOLD, LOOKBACK, "UTC")
        # the three parts of the anchors, a horizon apart, all before --until
        assert candidate["train_last_anchor"] + dt.timedelta(days=HORIZON) == candidate[
            "calibration_first_anchor"]
        evaluation = [dt.date.fromisoformat(x)
                      for x in candidate["metrics"]["windows"]["evaluation"]]
        assert candidate["calibration_last_anchor"] + dt.timedelta(days=HORIZON) <= evaluation[0]
        assert evaluation[1] + dt.timedelta(days=HORIZON) == UNTIL


def test_the_gate(trained: Trained) -> None:
    promoted = [d for d in trained.decisions if d["promoted"]]
    assert promoted, "nothing promoted on a population where activity predicts returns"
    for decision in trained.decisions:
        evidence = decision["evidence"]
        lows = [d["auc_difference_ci"][0] for d in evidence["newly_inactive"]["differences"]]
        ece = evidence["all"]["calibration_error"]
        passes = all(low > 0 for low in lows) and ece <= 0.05
        assert passes or not decision["promoted"], decision
        assert decision["champion_before"] is None  # the first training
    (winner,) = promoted
    assert trained.candidates[winner["candidate_id"]]["kind"] != "heuristic"


# --- the champion's S from the raw activity days and the stored numbers --------------------

def inputs(days: list[dt.date], anchor: dt.date) -> dict[str, float]:
    past = [d for d in days if d <= anchor]
    window = [d for d in past if d > anchor - dt.timedelta(days=LOOKBACK)]
    d = (anchor - past[-1]).days
    k = len(window)
    g = (window[-1] - window[0]).days / (k - 1) if k >= 2 else 0.0
    tenure = (anchor - past[0]).days
    total = len(past)
    usual = (past[-1] - past[0]).days / (total - 1) if total >= 2 else 0.0
    span = (past[-1] - past[0]).days + 1
    return {
        "d": d, "k": k, "g": g,
        "log_days_inactive": math.log(1 + d), "active_days": k, "mean_gap_days": g,
        "log_tenure_days": math.log(1 + tenure), "log_active_days_total": math.log(1 + total),
        "log_lifetime_mean_gap_days": math.log(1 + usual),
        "lifetime_rate": total / span, "recent_rate": k / LOOKBACK,
        "trend": k / LOOKBACK - total / span,
        "log_absence_over_usual_gap": math.log(1 + d / max(1.0, usual)),
        "single_visit": 1.0 if total < 2 else 0.0,
    }


def expected_s(candidate: dict[str, Any], x: dict[str, float]) -> float:
    if candidate["kind"] == "days_inactive":
        raw = x["d"]
    elif candidate["kind"] == "logistic":
        raw = candidate["intercept"] + sum(
            c * x[name] for name, c in zip(candidate["features"], candidate["coefficients"],
                                           strict=True))
    else:
        pytest.skip("the heuristic is not expected to win here")
    if candidate["calibration"] == "platt":
        a, b = candidate["calibration_x"]
        return 1 / (1 + math.exp(-(a * raw + b)))
    xs, ys = candidate["calibration_x"], candidate["calibration_y"]
    i = bisect_right(xs, raw)
    if i == 0:
        return float(ys[0])
    if i == len(xs):
        return float(ys[-1])
    return float(ys[i - 1] + (ys[i] - ys[i - 1]) * (raw - xs[i - 1]) / (xs[i] - xs[i - 1]))


def test_the_nightly_default_writes_the_champion_then_a_retraining_must_beat_it(
        trained: Trained) -> None:
    (winner,) = [d for d in trained.decisions if d["promoted"]]
    champion = trained.candidates[winner["candidate_id"]]
    nightly = run_cli(trained.params, "detect-inactivity", "--date", NIGHTLY.isoformat(),
                      env={"SEEDTEST_FRESHNESS_HOURS": "0"})
    assert nightly.returncode == 0, nightly.stdout + nightly.stderr
    assert f"S from the churn champion: {champion['kind']} candidate" in nightly.stdout
    written = dict(rows_kpis(trained.params))
    inactive = {u: inputs(d, NIGHTLY) for u, d in trained.days.items()
                if min(d) <= NIGHTLY and inputs(d, NIGHTLY)["d"] >= THRESHOLD}
    assert set(written) == set(inactive)
    for user, x in inactive.items():
        assert written[user]["S_model"] == champion["candidate_id"]
        assert written[user]["S_as_of"] == NIGHTLY.isoformat()
        assert written[user]["S"] == pytest.approx(expected_s(champion, x), abs=1e-9), user
    # the same training again: nothing new beats the champion by a margin above zero
    again = run_cli(trained.params, "train-churn", "--until", UNTIL.isoformat(), "--every", "1",
                    env={"ANCHOR_DATE": (DAY0 + dt.timedelta(days=DAYS - 1)).isoformat()})
    assert again.returncode == 0, again.stdout + again.stderr
    new = rows(trained.params, "select * from analytics.churn_decisions"
                               " order by decision_id")[len(trained.decisions):]
    assert len(new) == 3 and not any(d["promoted"] for d in new)
    assert all(d["champion_before"] == champion["candidate_id"] for d in new)
    assert any("not above champion" in d["reason"] for d in new)


def rows_kpis(params: ConnectionParams) -> list[tuple[str, dict[str, Any]]]:
    with psycopg.connect(**params.psycopg_kwargs()) as conn:
        return conn.execute("select user_id, kpis from public.weekly_kpi where week_start = %s",
                            (WEEK,)).fetchall()
