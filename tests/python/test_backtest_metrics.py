"""The backtest's pure parts: AUC, Brier, calibration bins, ROC, the left-out rule,
and the learned model's two implementations (plain Python for the nightly, numpy for the
backtest) agreeing. No database."""

from __future__ import annotations

import datetime as dt
import math
import random

import numpy as np
import pytest

from seedtest_analytics.churn.anchors import UserAnchors, anchor_spine, split_anchors
from seedtest_analytics.churn.evaluation import (
    auc,
    brier,
    calibration,
    feature_matrix,
    heuristic_scores,
    logistic_scores,
    roc_curve,
)
from seedtest_analytics.scoring.churn_model import (
    DEFAULT_FEATURES,
    FEATURES,
    ChurnInputs,
    ChurnModel,
    sigmoid,
)
from seedtest_analytics.scoring.formulas import churn_risk


def pairwise_auc(scores: list[float], churned: list[bool]) -> float:
    pos = [s for s, c in zip(scores, churned, strict=True) if c]
    neg = [s for s, c in zip(scores, churned, strict=True) if not c]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def random_rows(rng: random.Random, n: int) -> UserAnchors:
    d = [rng.randint(7, 200) for _ in range(n)]
    k = [rng.randint(0, 30) for _ in range(n)]
    g = [0.0 if kk < 2 else rng.choice([1.0, 2.5, 29 / 3, 7.0]) for kk in k]
    total = [max(kk, rng.randint(1, 120)) for kk in k]
    tenure = [dd + rng.randint(0, 300) for dd in d]
    back = [rng.choice([np.nan, 1.0, 5.0, 14.0, 15.0, 40.0]) for _ in range(n)]
    anchor = [19_000 + 7 * rng.randint(0, 5) for _ in range(n)]
    user = [rng.randint(1, max(1, n // 3)) for _ in range(n)]
    last = [a - dd for a, dd in zip(anchor, d, strict=True)]
    score = [rng.choice([np.nan, 0.0, 0.4, 0.75, 1.0]) for _ in range(n)]
    last_score = [np.nan if s != s else rng.choice([0.2, 0.5, 1.0]) for s in score]
    return UserAnchors(*(np.array(c, dtype=np.float64)
                         for c in (anchor, d, k, g, tenure, total, back, user, last, score,
                                   last_score)))


@pytest.mark.parametrize("seed", range(5))
def test_auc_counts_pairs_with_ties_as_one_half(seed: int) -> None:
    rng = random.Random(seed)
    n = rng.randint(2, 300)
    scores = [rng.choice([0.1, 0.2, 0.2, 0.35, 0.9]) + rng.choice([0, 0, 0.01]) for _ in range(n)]
    churned = [rng.random() < 0.3 for _ in range(n)]
    churned[0], churned[1] = True, False
    value = auc(np.array(scores), np.array(churned))
    assert value == pytest.approx(pairwise_auc(scores, churned), abs=1e-12)
    fpr, tpr = roc_curve(np.array(scores), np.array(churned))
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    # the trapezoids under the ROC curve are the AUC with ties counted one half
    assert float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2)) == pytest.approx(value)


def test_auc_and_brier_edge_cases() -> None:
    assert auc(np.array([0.2, 0.4]), np.array([True, True])) is None
    assert auc(np.array([]), np.array([], dtype=bool)) is None
    assert auc(np.array([0.3, 0.3]), np.array([True, False])) == 0.5
    assert auc(np.array([0.9, 0.1]), np.array([True, False])) == 1.0
    assert brier(np.array([]), np.array([], dtype=bool)) is None
    assert brier(np.array([1.0, 0.25]), np.array([True, False])) == pytest.approx(0.03125)


def test_calibration_bins_are_ten_equal_width_bins() -> None:
    scores = np.array([0.0, 0.05, 0.1, 0.3, 0.7, 0.95, 0.999, 1.0, 0.2999999])
    churned = np.array([False, True, True, False, True, True, False, True, True])
    table = calibration(scores, churned)
    assert [(b["low"], b["high"]) for b in table] == [(i / 10, (i + 1) / 10) for i in range(10)]
    assert [b["users"] for b in table] == [2, 1, 1, 1, 0, 0, 0, 1, 0, 3]
    assert table[4]["mean_score"] is None and table[4]["churn_rate"] is None
    assert table[9]["mean_score"] == pytest.approx((0.95 + 0.999 + 1.0) / 3)
    assert table[9]["churn_rate"] == pytest.approx(2 / 3)
    assert table[0]["churn_rate"] == 0.5


def test_horizon_must_be_over_by_the_newest_activity_and_the_anchor_date() -> None:
    anchors = anchor_spine(dt.date(2025, 1, 1), dt.date(2025, 1, 31), 7)
    assert anchors == [dt.date(2025, 1, d) for d in (1, 8, 15, 22, 29)]
    kept, left = split_anchors(anchors, 14, dt.date(2025, 1, 29), dt.date(2025, 2, 10))
    assert kept == [dt.date(2025, 1, 1), dt.date(2025, 1, 8), dt.date(2025, 1, 15)]
    assert left == [dt.date(2025, 1, 22), dt.date(2025, 1, 29)]
    kept, _ = split_anchors(anchors, 14, dt.date(2025, 3, 1), dt.date(2025, 1, 22))
    assert kept == [dt.date(2025, 1, 1), dt.date(2025, 1, 8)]
    assert split_anchors(anchors, 14, None, dt.date(2025, 3, 1)) == ([], anchors)


def test_churned_means_not_back_within_the_horizon() -> None:
    rows = random_rows(random.Random(1), 50)
    churned = rows.churned(14)
    back = rows.days_to_return
    assert list(churned) == [not (b == b and b <= 14) for b in back]


def test_heuristic_is_the_nightlys_function() -> None:
    rows = random_rows(random.Random(2), 400)
    expected = [churn_risk(int(d), int(k), g, 10) for d, k, g in
                zip(rows.days_inactive, rows.active_days, rows.mean_gap_days, strict=True)]
    assert heuristic_scores(rows, 10).tolist() == expected


def test_the_two_implementations_of_the_model_agree() -> None:
    rng = random.Random(3)
    rows = random_rows(rng, 500)
    for scale in (0.1, 1.0, 30.0):  # up to saturated probabilities
        model = ChurnModel(
            version=1, features=DEFAULT_FEATURES,
            coefficients=tuple(rng.uniform(-scale, scale) for _ in DEFAULT_FEATURES),
            intercept=rng.uniform(-2, 2), trained_until=dt.date(2025, 1, 1),
            first_anchor=dt.date(2024, 6, 1), last_anchor=dt.date(2024, 12, 18),
            horizon_days=14, threshold_days=7, kpi_lookback_days=30, package_version="x",
        )
        vectorised = logistic_scores(model, rows)
        matrix = feature_matrix(rows, DEFAULT_FEATURES)
        for i in range(len(rows)):
            x = ChurnInputs(int(rows.days_inactive[i]), int(rows.active_days[i]),
                            float(rows.mean_gap_days[i]), int(rows.tenure_days[i]),
                            int(rows.active_days_total[i]))
            assert [FEATURES[n](x) for n in DEFAULT_FEATURES] == pytest.approx(
                matrix[i].tolist(), abs=1e-12)
            assert vectorised[i] == pytest.approx(model.probability(x), abs=1e-12)
            assert 0.0 <= vectorised[i] <= 1.0


def test_sigmoid_does_not_overflow() -> None:
    assert sigmoid(800.0) == 1.0 and sigmoid(-800.0) == 0.0
    assert sigmoid(0.0) == 0.5
    assert sigmoid(2.0) == pytest.approx(1 / (1 + math.exp(-2.0)))
