"""train-churn, backtest and the nightly's logistic mode end to end, against a
synthetic population whose truth is known, compared with an independent computation from the
raw rows (ps_reference.py for what the nightly would have scored, the labels and the
learned model's inputs from the raw activity days, AUC by counting pairs).

The population (activity through exams with and without attempts and through sessions, in
ACTIVITY_TIMEZONE=Asia/Seoul while the database session runs in Pacific/Auckland, some of it
next to local midnight):
- `periodic`: every 9-13 days, always back (the fixed-weight S calls them high risk: long gaps,
  few active days);
- `quitter`: almost daily for weeks, then gone for good (S calls them low risk at first:
  many active days, short gaps);
- `breaker`: every other day, with one long break; `sporadic`: now and then.
So S ranks badly here and a model that knows the user's usual gap does much better.

Non-default threshold, horizon and lookback, so nothing may assume the defaults.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import io
import json
import math
import os
import random
import re
import subprocess
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import psycopg
import pytest
from psycopg.types.json import Jsonb

import ps_reference as ref
from conftest import create_database, drop_database, run_cli
from seedtest_analytics.config import Settings
from seedtest_analytics.db.connection import ConnectionParams
from seedtest_analytics.jobs.inactivity import score_and_write

TZ = "Asia/Seoul"
THRESHOLD = 6
HORIZON = 12
LOOKBACK = 21
ENV = {
    "ACTIVITY_TIMEZONE": TZ,
    "INACTIVITY_THRESHOLD_DAYS": str(THRESHOLD),
    "METRICS_CHURN_HORIZON_DAYS": str(HORIZON),
    "KPI_LOOKBACK_DAYS": str(LOOKBACK),
}
DAY0 = dt.date(2025, 3, 3)
DAYS = 150
LAST = DAY0 + dt.timedelta(days=DAYS - 1)  # the newest activity day in the data
UNTIL = DAY0 + dt.timedelta(days=84)  # train-churn --until
START = DAY0 + dt.timedelta(days=21)  # backtest --start (--end LAST, --every 7)
NIGHTLY = DAY0 + dt.timedelta(days=120)  # the logistic-mode detect-inactivity run
SCORERS = ("heuristic", "days_inactive", "logistic")
FAR = dt.date(2030, 1, 1)
EXACT = 1e-12


def day(offset: int) -> dt.date:
    return DAY0 + dt.timedelta(days=offset)


# --- the population -------------------------------------------------------------------------

def activity_days(kind: str, rng: random.Random) -> list[int]:
    if kind == "periodic":
        period = rng.randint(9, 13)
        return list(range(rng.randint(0, period - 1), DAYS, period))
    if kind == "quitter":
        start = rng.randint(0, DAYS - 45)
        return [start + i for i in range(rng.randint(15, 40)) if i == 0 or rng.random() < 0.9]
    if kind == "breaker":
        pause = rng.randint(10, DAYS - 40)
        length = rng.randint(8, 30)
        return [o for o in range(DAYS) if not pause <= o < pause + length and rng.random() < 0.5]
    return [o for o in range(DAYS) if rng.random() < 0.08]  # sporadic


def local(when: dt.date, seconds: int) -> dt.datetime:
    return dt.datetime(when.year, when.month, when.day, tzinfo=ZoneInfo(TZ)) + dt.timedelta(
        seconds=seconds)


def build_population(conn: psycopg.Connection, rng: random.Random,
                     offsets: dict[str, list[int]] | None = None) -> dict[str, list[int]]:
    """Exams (with and without attempts) and sessions for every user's activity days; the
    users and their days are returned (or `offsets` given: only those are written)."""
    if offsets is None:
        offsets = {}
        kinds = ["periodic"] * 70 + ["quitter"] * 70 + ["breaker"] * 50 + ["sporadic"] * 40
        for i, kind in enumerate(kinds):
            user = f"{kind}{i:03d}" if i % 5 else str(uuid.UUID(int=rng.getrandbits(128)))
            offsets[user] = activity_days(kind, rng) or [rng.randrange(DAYS)]
        offsets["keeper"] = [DAYS - 1]  # the newest activity day is LAST
    exams: list[tuple[Any, ...]] = []
    sessions: list[tuple[Any, ...]] = []
    for user, days in offsets.items():
        for offset in days:
            seconds = rng.choice([5, 86_390, rng.randrange(86_400), rng.randrange(86_400)])
            at = local(day(offset), seconds)
            kind = rng.random()
            key = uuid.UUID(int=rng.getrandbits(128))
            if kind < 0.6:
                questions = ([{"question_id": f"q{offset}", "topic": "algebra",
                               "is_correct": True, "time_spent_sec": 20, "used_hints": 0}]
                             if kind < 0.45 else [{"question_id": "", "topic": "algebra"}])
                exams.append((key, f"es-{key}", user, Jsonb({"questions": questions}),
                              at - dt.timedelta(minutes=20), at))
            else:
                # sessions under the uuid form now and then: still the same person
                who = ref.uuid_form(user) if kind > 0.95 else user
                ended = at if rng.random() < 0.7 else None
                sessions.append((f"s-{key}", who, at - dt.timedelta(minutes=30) if ended else at,
                                 ended))
    with conn.cursor() as cur:
        with cur.copy("copy public.exam_results (id, session_id, user_id, result_json,"
                      " created_at, updated_at) from stdin") as copy:
            for row in exams:
                copy.write_row(row)
        with cur.copy("copy public.session (id, user_id, started_at, ended_at) from stdin"
                      ) as copy:
            for row in sessions:
                copy.write_row(row)
    return offsets


# --- the independent computation ------------------------------------------------------------

@dataclass
class Truth:
    """One user inactive as of one anchor, from the raw rows."""

    anchor: dt.date
    user: str
    d: int
    k: int
    g: float
    s: float  # the nightly's S (ps_reference)
    tenure: int
    total: int
    first: dt.date
    last: dt.date
    next_day: dt.date | None
    churned: bool


def activity_by_user(src: ref.Sources) -> dict[str, list[dt.date]]:
    days: dict[str, set[dt.date]] = defaultdict(set)
    for event in ref.activity_events(src, FAR, TZ):
        days[event.user_id].add(ref.local_day(event.at, TZ))
    return {user: sorted(d) for user, d in days.items()}


def truth_for(src: ref.Sources, days: dict[str, list[dt.date]], anchor: dt.date,
              *, with_s: bool = True) -> list[Truth]:
    if with_s:  # what the nightly run on `anchor` scores, from ps_reference
        expected = ref.compute(src, anchor=anchor, timezone=TZ, threshold=THRESHOLD,
                               kpi_lookback_days=LOOKBACK, horizon_days=HORIZON)
        scored = {u: (s.d, s.k, s.g, s.s) for u, s in expected.scores.items()}
    rows = []
    window_first = anchor - dt.timedelta(days=LOOKBACK - 1)
    for user, all_days in days.items():
        past = [d for d in all_days if d <= anchor]
        if not past or (anchor - past[-1]).days < THRESHOLD:
            continue
        window = [d for d in past if d >= window_first]
        k = len(window)
        g = (window[-1] - window[0]).days / (k - 1) if k >= 2 else 0.0
        d = (anchor - past[-1]).days
        s = ref.s_churn(d, k, g, HORIZON)
        if with_s:
            assert scored[user][:3] == (d, k, g), user
            s = scored.pop(user)[3]
        later = [x for x in all_days if x > anchor]
        rows.append(Truth(anchor, user, d, k, g, s, (anchor - past[0]).days, len(past), past[0],
                          past[-1], later[0] if later else None,
                          not any(x <= anchor + dt.timedelta(days=HORIZON) for x in later)))
    if with_s:
        assert not scored, f"inactive for the nightly but not here: {sorted(scored)[:5]}"
    return rows


def features(t: Truth) -> dict[str, float]:
    gap = (t.last - t.first).days / (t.total - 1) if t.total >= 2 else 0.0
    return {
        "log_days_inactive": math.log(1 + t.d), "active_days": t.k, "mean_gap_days": t.g,
        "log_tenure_days": math.log(1 + t.tenure), "log_active_days_total": math.log(1 + t.total),
        "log_lifetime_mean_gap_days": math.log(1 + gap),
    }


def probability(model: dict[str, Any], t: Truth) -> float:
    x = features(t)
    z = model["intercept"] + sum(c * x[n] for n, c in zip(model["features"],
                                                           model["coefficients"], strict=True))
    return 1 / (1 + math.exp(-z))


def pair_auc(scores: list[float], churned: list[bool]) -> float | None:
    """Count the (churned, returned) pairs the score orders right, ties one half."""
    pos = np.array([s for s, c in zip(scores, churned, strict=True) if c])
    neg = np.array([s for s, c in zip(scores, churned, strict=True) if not c])
    if not len(pos) or not len(neg):
        return None
    wins = sum(float((p > neg).sum()) + 0.5 * float((p == neg).sum()) for p in pos)
    return wins / (len(pos) * len(neg))


def brier(scores: list[float], churned: list[bool]) -> float | None:
    if not scores:
        return None
    return sum((s - c) ** 2 for s, c in zip(scores, churned, strict=True)) / len(scores)


def bin_counts(scores: list[float]) -> list[int]:
    counts = [0] * 10
    for s in scores:
        counts[min(int(s * 10), 9)] += 1
    return counts


def expected_metrics(scorer: str, rows: list[Truth], model: dict[str, Any]) -> dict[str, Any]:
    if scorer == "heuristic":
        scores = [t.s for t in rows]
    elif scorer == "days_inactive":
        scores = [float(t.d) for t in rows]
    else:
        scores = [probability(model, t) for t in rows]
    churned = [t.churned for t in rows]
    return {"users": len(rows), "churned": sum(churned), "auc": pair_auc(scores, churned),
            "brier": None if scorer == "days_inactive" else brier(scores, churned),
            "bins": None if scorer == "days_inactive" else bin_counts(scores)}


# --- the runs -------------------------------------------------------------------------------

def connect(params: ConnectionParams) -> psycopg.Connection:
    return psycopg.connect(**params.psycopg_kwargs(), autocommit=True)


def cli(params: ConnectionParams, *args: str, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    result = run_cli(params, *args, env={**ENV, **(env or {})})
    assert "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr
    return result


def latest_model(params: ConnectionParams) -> dict[str, Any]:
    with connect(params) as conn:
        cur = conn.execute("select * from analytics.churn_models order by version desc limit 1")
        names = [c.name for c in cur.description or []]
        row = cur.fetchone()
    assert row is not None
    return dict(zip(names, row, strict=True))


@dataclass
class Scenario:
    template: ConnectionParams
    params: ConnectionParams
    offsets: dict[str, list[int]]
    src: ref.Sources
    days: dict[str, list[dt.date]]
    train: subprocess.CompletedProcess[str]
    backtest: subprocess.CompletedProcess[str]
    report: dict[str, Any]
    html: str
    model: dict[str, Any]
    view: list[tuple[Any, ...]]  # churn_user_anchors as the backtest left it
    stored: list[tuple[Any, ...]]  # churn_backtest_results
    out: Path


@pytest.fixture(scope="module")
def scenario(server_params: ConnectionParams, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[Scenario]:
    template = create_database(server_params)
    with connect(template) as conn:
        offsets = build_population(conn, random.Random(14))
    params = create_database(server_params, template=template)
    out = tmp_path_factory.mktemp("backtest")
    try:
        train = cli(params, "train-churn", "--until", UNTIL.isoformat(), "--every", "7")
        assert train.returncode == 0, train.stdout + train.stderr
        backtest = cli(params, "backtest", "--start", START.isoformat(), "--end",
                       LAST.isoformat(), "--every", "7", "--output", str(out / "r.json"),
                       "--html", str(out / "r.html"))
        assert backtest.returncode == 0, backtest.stdout + backtest.stderr
        with connect(params) as conn:
            src = ref.load_sources(conn)
            view = conn.execute(
                "select anchor, user_id, days_inactive, active_days, mean_gap_days, tenure_days,"
                " active_days_total, next_active_day from analytics.churn_user_anchors"
            ).fetchall()
            stored = conn.execute(
                "select scorer, model_version, users, churned, auc, brier, calibration,"
                " first_anchor, last_anchor, anchors, anchors_left_out"
                " from analytics.churn_backtest_results").fetchall()
        yield Scenario(template, params, offsets, src, activity_by_user(src), train, backtest,
                       json.loads((out / "r.json").read_text()), (out / "r.html").read_text(),
                       latest_model(params), view, stored, out)
    finally:
        drop_database(server_params, params)
        drop_database(server_params, template)


def anchors() -> list[dt.date]:
    return [START + dt.timedelta(days=7 * i) for i in range((LAST - START).days // 7 + 1)]


def kept_anchors() -> list[dt.date]:
    return [a for a in anchors() if a + dt.timedelta(days=HORIZON) <= LAST]


@pytest.fixture(scope="module")
def truth(scenario: Scenario) -> dict[dt.date, list[Truth]]:
    return {a: truth_for(scenario.src, scenario.days, a) for a in kept_anchors()}


# --- the tests ------------------------------------------------------------------------------

def test_report_has_the_issue_shape(scenario: Scenario) -> None:
    report = scenario.report
    assert set(report) == {"horizon_days", "threshold_days", "anchors_left_out", "results",
                           "pooled", "logistic_model", "decision", "champion"}
    decision = report["decision"]
    assert set(decision) == {"resamples", "seed", "confidence", "buckets", "segments"}
    assert list(decision["segments"]) == ["all", "inactive_7_13", "inactive_14_29",
                                          "inactive_30_plus", "spells"]
    for segment in decision["segments"].values():
        assert set(segment) == {"rows", "users", "churned", "churned_came_back_later",
                                "churned_came_back_later_share", "scorers", "differences"}
        assert set(SCORERS) <= set(segment["scorers"])
        assert set(segment["scorers"]["heuristic"]) == {
            "rows", "auc", "auc_ci", "brier", "brier_ci", "calibration_error",
            "calibration_error_ci"}
    assert (report["horizon_days"], report["threshold_days"]) == (HORIZON, THRESHOLD)
    result_keys = {"anchor", "scorer", "users", "churned", "auc", "brier", "calibration"}
    assert all(set(row) == result_keys for row in report["results"])
    assert all(set(row) == result_keys - {"anchor"} for row in report["pooled"])
    for row in report["results"] + report["pooled"]:
        if row["scorer"] == "days_inactive":
            assert row["brier"] is None and row["calibration"] is None
        else:
            bins = row["calibration"]
            assert [(b["low"], b["high"]) for b in bins] == [(i / 10, (i + 1) / 10)
                                                             for i in range(10)]
            assert set(bins[0]) == {"low", "high", "users", "mean_score", "churn_rate"}


def test_anchors_whose_horizon_is_not_over_are_left_out(scenario: Scenario) -> None:
    left_out = [a.isoformat() for a in anchors() if a not in kept_anchors()]
    assert len(left_out) == 2
    assert scenario.report["anchors_left_out"] == left_out
    assert ("Anchors left out" in scenario.backtest.stdout
            and all(a in scenario.backtest.stdout for a in left_out))
    reported = {row["anchor"] for row in scenario.report["results"]}
    assert reported == {a.isoformat() for a in kept_anchors()}


def test_inputs_per_user_are_the_nightly_ones(scenario: Scenario,
                                              truth: dict[dt.date, list[Truth]]) -> None:
    """Every (anchor, user) the backtest read: d, k, g as the nightly run on that anchor
    (ps_reference), the extra inputs and the next active day from the raw activity days."""
    view = {(a, u): rest for a, u, *rest in scenario.view}
    expected = {(t.anchor, t.user): [t.d, t.k, pytest.approx(t.g, abs=EXACT), t.tenure,
                                     t.total, t.next_day]
                for rows in truth.values() for t in rows}
    kept = set(kept_anchors())
    assert {key: value for key, value in view.items() if key[0] in kept} == expected
    # the left-out anchors are in the view too; their horizon is just not over
    left_out = [a for a in anchors() if a not in kept]
    for anchor in left_out:
        rows = truth_for(scenario.src, scenario.days, anchor, with_s=False)
        assert {u for a, u in view if a == anchor} == {t.user for t in rows}


def test_metrics_equal_an_independent_computation(scenario: Scenario,
                                                  truth: dict[dt.date, list[Truth]]) -> None:
    report, model = scenario.report, scenario.model
    until = model["trained_until"]
    results = {(row["anchor"], row["scorer"]): row for row in report["results"]}
    expected_keys = {(a.isoformat(), s) for a in kept_anchors() for s in SCORERS
                     if s != "logistic" or a > until}
    assert set(results) == expected_keys

    def same(row: dict[str, Any], want: dict[str, Any], scorer: str) -> None:
        tolerance = 1e-9 if scorer == "logistic" else EXACT
        assert (row["users"], row["churned"]) == (want["users"], want["churned"])
        for key in ("auc", "brier"):
            if want[key] is None:
                assert row[key] is None
            else:
                assert row[key] == pytest.approx(want[key], abs=tolerance), (scorer, key)
        if want["bins"] is not None:
            assert [b["users"] for b in row["calibration"]] == want["bins"]

    for (anchor, scorer), row in results.items():
        same(row, expected_metrics(scorer, truth[dt.date.fromisoformat(anchor)], model), scorer)
    pooled = {row["scorer"]: row for row in report["pooled"]}
    assert list(pooled) == list(SCORERS)
    everything = [t for rows in truth.values() for t in rows]
    for scorer in SCORERS:
        rows = [t for t in everything if scorer != "logistic" or t.anchor > until]
        same(pooled[scorer], expected_metrics(scorer, rows, model), scorer)
    # the calibration table of the pooled heuristic: mean score and churn rate per bin
    bins: dict[int, list[Truth]] = defaultdict(list)
    for t in everything:
        bins[min(int(t.s * 10), 9)].append(t)
    for i, entry in enumerate(pooled["heuristic"]["calibration"]):
        members = bins.get(i, [])
        if not members:
            assert entry["mean_score"] is None and entry["churn_rate"] is None
            continue
        assert entry["mean_score"] == pytest.approx(
            sum(t.s for t in members) / len(members), abs=EXACT)
        assert entry["churn_rate"] == pytest.approx(
            sum(t.churned for t in members) / len(members), abs=EXACT)


def test_decision_segments_equal_an_independent_computation(
        scenario: Scenario, truth: dict[dt.date, list[Truth]]) -> None:
    """Buckets of days inactive and one row per spell (the first kept anchor of each user's
    (last active day)), from the raw rows; the intervals hold the figure."""
    report, model = scenario.report, scenario.model
    until = model["trained_until"]
    everything = [t for rows in truth.values() for t in rows]
    first: dict[tuple[str, dt.date], Truth] = {}
    for t in everything:
        if (t.user, t.last) not in first or t.anchor < first[(t.user, t.last)].anchor:
            first[(t.user, t.last)] = t
    wanted = {
        "all": everything,
        "inactive_7_13": [t for t in everything if 7 <= t.d <= 13],
        "inactive_14_29": [t for t in everything if 14 <= t.d <= 29],
        "inactive_30_plus": [t for t in everything if t.d >= 30],
        "spells": list(first.values()),
    }
    segments = report["decision"]["segments"]
    for name, rows in wanted.items():
        segment = segments[name]
        churned = [t for t in rows if t.churned]
        later = [t for t in churned if t.next_day is not None]
        assert (segment["rows"], segment["users"], segment["churned"]) == (
            len(rows), len({t.user for t in rows}), len(churned)), name
        assert segment["churned_came_back_later"] == len(later), name
        assert len(later) > 0 or name == "inactive_7_13"
        for scorer in SCORERS:
            mine = [t for t in rows if scorer != "logistic" or t.anchor > until]
            want = expected_metrics(scorer, mine, model)
            got = segment["scorers"][scorer]
            assert got["rows"] == len(mine), (name, scorer)
            if want["auc"] is None:
                assert got["auc"] is None
                continue
            assert got["auc"] == pytest.approx(want["auc"], abs=1e-9), (name, scorer)
            low, high = got["auc_ci"]
            assert low <= got["auc"] <= high and high - low < 0.5, (name, scorer)
            if scorer != "days_inactive":
                assert got["brier"] == pytest.approx(want["brier"], abs=1e-9), (name, scorer)
    assert "Where outreach is decided" in scenario.html.split("Pooled over all anchors")[0]


def test_logistic_beats_the_heuristic_where_the_truth_is_known(
        scenario: Scenario, truth: dict[dt.date, list[Truth]]) -> None:
    pooled = {row["scorer"]: row for row in scenario.report["pooled"]}
    assert pooled["logistic"]["users"] > 300
    until = scenario.model["trained_until"]
    same_rows = [t for rows in truth.values() for t in rows if t.anchor > until]
    heuristic = expected_metrics("heuristic", same_rows, scenario.model)
    # on the very user-anchors the model was evaluated on, and pooled over everything
    for reference in (heuristic, pooled["heuristic"]):
        assert pooled["logistic"]["auc"] > reference["auc"] + 0.15
        assert pooled["logistic"]["brier"] < reference["brier"] - 0.05
    assert pooled["logistic"]["auc"] > 0.85
    line = re.search(r"^\[INFO\] Backtest pooled logistic: users=(\d+), churned=(\d+), "
                     r"AUC=([\d.]+), Brier=([\d.]+)$", scenario.backtest.stdout, re.M)
    assert line and int(line[1]) == pooled["logistic"]["users"]


def test_the_model_version_and_its_window(scenario: Scenario) -> None:
    model = scenario.model
    assert model["version"] == 1 and model["trained_until"] == UNTIL
    last = UNTIL - dt.timedelta(days=HORIZON)
    assert model["last_anchor"] == last
    assert (last - model["first_anchor"]).days % 7 == 0  # aligned on the last anchor
    training = [t for a in range(0, 53) for t in truth_for(
        scenario.src, scenario.days, last - dt.timedelta(days=7 * a), with_s=False)]
    assert model["user_anchors"] == len(training)
    assert model["churned"] == sum(t.churned for t in training)
    assert model["first_anchor"] == min(t.anchor for t in training)
    assert list(model["features"]) == list(features(training[0]))
    assert (model["horizon_days"], model["threshold_days"], model["kpi_lookback_days"]) == (
        HORIZON, THRESHOLD, LOOKBACK)
    assert model["package_version"] and model["sklearn_version"]
    assert set(model["metrics"]) == {"training", "validation"}
    assert model["metrics"]["validation"]["logistic"]["auc"] > 0.8
    assert scenario.report["logistic_model"] == {
        "version": 1, "first_anchor": model["first_anchor"].isoformat(),
        "last_anchor": last.isoformat(), "trained_until": UNTIL.isoformat(),
        "package_version": model["package_version"],
        "anchors_evaluated": sum(a > UNTIL for a in kept_anchors()),
    }
    assert re.search(r"^\[INFO\] Churn model v1 trained on \d+ user-anchors", scenario.train.stdout,
                     re.M)


def test_pooled_results_are_stored_once_per_scorer(scenario: Scenario) -> None:
    pooled = {row["scorer"]: row for row in scenario.report["pooled"]}
    assert sorted(r[0] for r in scenario.stored) == sorted(SCORERS)
    for scorer, version, users, churned, auc, brier_, calibration, first, last, n, left in (
            scenario.stored):
        row = pooled[scorer]
        assert (users, churned, auc, brier_, calibration) == (
            row["users"], row["churned"], row["auc"], row["brier"], row["calibration"])
        assert version == (1 if scorer == "logistic" else None)
        assert (first, last, left) == (START, anchors()[-1], 2)
        assert n == (scenario.report["logistic_model"]["anchors_evaluated"]
                     if scorer == "logistic" else len(kept_anchors()))


def test_the_html_report_is_self_contained_and_its_images_decode(scenario: Scenario) -> None:
    from PIL import Image

    page = scenario.html
    assert "<table>" in page
    assert not re.search(r'(src|href)="(?!data:)', page)  # nothing to fetch
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 3
    for data in images:
        image = Image.open(io.BytesIO(base64.b64decode(data)))
        image.load()
        assert image.format == "PNG" and image.size[0] >= 500 and image.size[1] >= 300
        assert len(np.unique(np.asarray(image.convert("L")))) > 20  # drawn on, not blank
    for row in scenario.report["pooled"]:
        assert f"{row['auc']:.3f}" in page
    assert "model v1" in page and UNTIL.isoformat() in page


def test_training_cannot_see_past_until(scenario: Scenario,
                                        server_params: ConnectionParams) -> None:
    """Leakage: the same data plus activity after --until (users who never came back coming
    back, later days for everybody) trains the very same model. A label that looked further
    than the horizon, or an input that looked past its anchor, would change it."""
    params = create_database(server_params, template=scenario.template)
    try:
        rng = random.Random(7)
        after = (UNTIL - DAY0).days + 1
        extra = {user: sorted(rng.sample(range(after, DAYS), 3)) for user in scenario.offsets}
        with connect(params) as conn:
            build_population(conn, rng, extra)
        again = cli(params, "train-churn", "--until", UNTIL.isoformat(), "--every", "7")
        assert again.returncode == 0, again.stdout + again.stderr
        model = latest_model(params)
        with connect(params) as conn:
            # the new activity is in the inputs the training read: it changed outcomes
            # beyond the horizon of training anchors, which a leaky label would have used
            changed = conn.execute(
                "select count(*) from analytics.churn_user_anchors where next_active_day > %s",
                (UNTIL,)).fetchone()
    finally:
        drop_database(server_params, params)
    assert changed and changed[0] > 100
    for key in ("features", "coefficients", "intercept", "first_anchor", "last_anchor",
                "user_anchors", "churned"):
        assert model[key] == scenario.model[key], key
    # and the backtest never scores logistic on an anchor inside the training window
    assert all(row["anchor"] > UNTIL.isoformat() for row in scenario.report["results"]
               if row["scorer"] == "logistic")


def test_nightly_logistic_mode_writes_the_model_probability(
        scenario: Scenario) -> None:
    params = scenario.params
    rows = truth_for(scenario.src, scenario.days, NIGHTLY)
    week = NIGHTLY - dt.timedelta(days=NIGHTLY.weekday())
    # the nightly command in the logistic mode: builds the inputs (the model's too), scores
    # with the latest model version and writes S and S_model
    nightly = cli(params, "detect-inactivity", "--date", NIGHTLY.isoformat(),
                  env={"METRICS_CHURN_MODEL": "logistic", "SEEDTEST_FRESHNESS_HOURS": "0"})
    assert nightly.returncode == 0, nightly.stdout + nightly.stderr
    assert f"Found {len(rows)} inactive users (threshold={THRESHOLD} days)" in nightly.stdout
    settings = Settings(anchor_date=NIGHTLY, activity_timezone=TZ, threshold_days=THRESHOLD,
                        kpi_lookback_days=LOOKBACK, churn_horizon_days=HORIZON)

    def written() -> dict[str, Any]:
        with connect(params) as conn:
            return dict(conn.execute("select user_id, kpis from public.weekly_kpi"
                                     " where week_start = %s", (week,)).fetchall())

    kpis = written()
    assert set(kpis) == {t.user for t in rows}
    for t in rows:
        assert kpis[t.user]["S"] == pytest.approx(probability(scenario.model, t), abs=1e-12)
        assert kpis[t.user]["S_model"] == 1
    # the default mode again: the fixed-weight S, and no S_model that would claim otherwise
    assert score_and_write(params, settings).processed == len(rows)
    kpis = written()
    for t in rows:
        assert kpis[t.user] == {"S": pytest.approx(t.s, abs=EXACT),
                                "S_as_of": NIGHTLY.isoformat()}


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str


def cli_here(params: ConnectionParams, *args: str, env: dict[str, str] | None = None
             ) -> Outcome:
    """The command line in this process, for the runs that stop before dbt (a process of
    its own would cost more than the test)."""
    from seedtest_analytics.cli import main

    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        for key in list(os.environ):
            if key.startswith(("AGG_", "METRICS_", "KPI_", "INACTIVITY_", "ANCHOR_")):
                patch.delenv(key)
        for key, value in {**ENV, **(env or {}), "DATABASE_URL": params.to_url()}.items():
            patch.setenv(key, value)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:  # argparse
                code = int(exc.code or 0)
    return Outcome(code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="module")
def empty_db(server_params: ConnectionParams) -> Iterator[ConnectionParams]:
    params = create_database(server_params)
    yield params
    drop_database(server_params, params)


def no_dbt_schema(params: ConnectionParams) -> bool:
    with connect(params) as conn:
        return conn.execute("select to_regnamespace('analytics')").fetchone() == (None,)


def test_logistic_mode_without_a_usable_model_stops_before_anything(
        scenario: Scenario, empty_db: ConnectionParams) -> None:
    none = cli_here(empty_db, "run", env={"METRICS_CHURN_MODEL": "logistic"})
    assert none.returncode == 2
    assert none.stderr.strip().count("\n") == 0 and "train-churn" in none.stderr
    assert no_dbt_schema(empty_db)
    other = cli_here(scenario.params, "detect-inactivity", "--date", NIGHTLY.isoformat(),
                     env={"METRICS_CHURN_MODEL": "logistic", "METRICS_CHURN_HORIZON_DAYS": "7"})
    assert other.returncode == 2 and "METRICS_CHURN_HORIZON_DAYS=12" in other.stderr
    bad = cli_here(empty_db, "run", env={"METRICS_CHURN_MODEL": "forest"})
    assert bad.returncode == 2 and "METRICS_CHURN_MODEL" in bad.stderr


@pytest.mark.parametrize(
    ("damage", "env", "message"),
    [
        ("coefficients[2] = 'NaN'", {}, "is invalid"),
        ("coefficients[2] = 'Infinity'", {}, "is invalid"),
        ("coefficients[2] = null", {}, "is invalid"),
        ("intercept = 'NaN'", {}, "is invalid"),
        ("coefficients = coefficients[1:3]", {}, "is invalid (3 coefficients for 6"),
        ("intercept = intercept", {"INACTIVITY_THRESHOLD_DAYS": "2"},
         "INACTIVITY_THRESHOLD_DAYS=6"),
        ("intercept = intercept", {"ACTIVITY_TIMEZONE": "UTC"}, "ACTIVITY_TIMEZONE=Asia/Seoul"),
    ],
)
def test_a_damaged_or_foreign_logistic_model_is_refused(
        scenario: Scenario, server_params: ConnectionParams, damage: str,
        env: dict[str, str], message: str) -> None:
    """A stored model is checked before scoring: finite numbers, as many as its inputs, the
    settings it was trained under. One line, exit 2, weekly_kpi untouched."""
    params = create_database(server_params, template=scenario.params)
    try:
        with connect(params) as conn:
            conn.execute("update analytics.churn_models set " + damage
                         + " where version = (select max(version) from analytics.churn_models)")
            before = conn.execute("select count(*) from public.weekly_kpi").fetchone()
        result = cli_here(params, "detect-inactivity", "--date", NIGHTLY.isoformat(),
                          env={**ENV, "METRICS_CHURN_MODEL": "logistic", **env})
        with connect(params) as conn:
            after = conn.execute("select count(*) from public.weekly_kpi").fetchone()
    finally:
        drop_database(server_params, params)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip().count("\n") == 0 and message in result.stderr, result.stderr
    assert before == after


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["backtest", "--start", "2025-05-01", "--end", "2025-04-01"], "is after --end"),
        (["backtest", "--start", "2025-05-01", "--end", "2099-01-01"], "last complete day"),
        (["backtest", "--start", "2025-05-01", "--end", "2025-06-01", "--every", "0"],
         "--every"),
        (["backtest", "--start", "2025-13-01", "--end", "2025-06-01"], "--start"),
        (["backtest", "--start", "2025-05-01", "--end", "2025-06-01", "--output", "/nope/r.json"],
         "--output"),
        (["backtest", "--start", "2025-05-01"], "--end"),
        (["train-churn", "--until", "2099-01-01"], "last complete day"),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(empty_db: ConnectionParams, args: list[str],
                                          message: str) -> None:
    result = cli_here(empty_db, *args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip().count("\n") == 0 and message in result.stderr
    assert no_dbt_schema(empty_db)


def test_report_files_are_written_whole(scenario: Scenario) -> None:
    assert sorted(p.name for p in scenario.out.iterdir()) == ["r.html", "r.json"]
    assert f"Report: {scenario.out / 'r.json'} and {scenario.out / 'r.html'}" in (
        scenario.backtest.stdout)
