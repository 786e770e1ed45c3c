"""The backtest's decision segments (buckets of days inactive, one row per spell, intervals
resampled by user) against plain Python: pairs counted one by one, rows repeated as often as
their user was drawn, spells found with a dict."""

from __future__ import annotations

import random
from collections import defaultdict

import numpy as np
import pytest

from seedtest_analytics.churn.decisions import (
    SEED,
    decision_report,
    evaluate_segment,
    prepare,
    spell_starts,
    weighted_auc,
    weighted_ece,
)


def pair_auc(scores: list[float], churned: list[bool]) -> float | None:
    pos = [s for s, c in zip(scores, churned, strict=True) if c]
    neg = [s for s, c in zip(scores, churned, strict=True) if not c]
    if not pos or not neg:
        return None
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def ece(scores: list[float], churned: list[bool]) -> float:
    bins: dict[int, list[tuple[float, bool]]] = defaultdict(list)
    for s, c in zip(scores, churned, strict=True):
        bins[min(int(s * 10), 9)].append((s, c))
    return sum(
        len(b) / len(scores) * abs(sum(s for s, _ in b) / len(b) - sum(c for _, c in b) / len(b))
        for b in bins.values()
    )


def percentile(values: list[float], q: float) -> float:
    """numpy's default (linear) percentile, written out."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@pytest.mark.parametrize("seed", range(4))
def test_weighted_auc_and_calibration_equal_repeated_rows(seed: int) -> None:
    rng = random.Random(seed)
    n = rng.randint(5, 80)
    scores = [rng.choice([0.05, 0.2, 0.2, 0.51, 0.9, 0.999]) for _ in range(n)]
    churned = [rng.random() < 0.4 for _ in range(n)]
    churned[0], churned[1] = True, False
    weights = [rng.randint(0, 3) for _ in range(n)]
    weights[0] = weights[1] = 1
    repeated = [(s, c) for s, c, w in zip(scores, churned, weights, strict=True) for _ in range(w)]
    p = prepare(np.array(scores))
    y, w = np.array(churned), np.array(weights, dtype=np.float64)
    assert weighted_auc(p, y, w) == pytest.approx(
        pair_auc([s for s, _ in repeated], [c for _, c in repeated]), abs=1e-12
    )
    assert weighted_ece(p, y, w) == pytest.approx(
        ece([s for s, _ in repeated], [c for _, c in repeated]), abs=1e-12
    )


def test_intervals_resample_users_not_rows() -> None:
    rng = random.Random(7)
    users = [rng.randint(0, 24) for _ in range(150)]
    churned = [rng.random() < 0.35 for _ in users]
    a = [min(0.99, max(0.0, (0.6 if c else 0.4) + rng.gauss(0, 0.2))) for c in churned]
    b = [rng.random() for _ in users]
    resamples = 40
    got = evaluate_segment(
        {"a": np.array(a), "b": np.array(b)}, {"a"}, np.array(churned), np.array(users),
        resamples=resamples, seed=SEED, pairs=(("a", "b"),),
    )
    # the same draws, written out: the distinct users in order, drawn with replacement
    distinct = sorted(set(users))
    draws = np.random.default_rng(SEED)
    aucs, diffs, eces = [], [], []
    for _ in range(resamples):
        picked = draws.integers(0, len(distinct), size=len(distinct))
        rows = [i for u in picked for i, x in enumerate(users) if x == distinct[u]]
        y = [churned[i] for i in rows]
        auc_a = pair_auc([a[i] for i in rows], y)
        auc_b = pair_auc([b[i] for i in rows], y)
        assert auc_a is not None and auc_b is not None
        aucs.append(auc_a)
        diffs.append(auc_a - auc_b)
        eces.append(ece([a[i] for i in rows], y))
    row = got["scorers"]["a"]
    assert row["auc"] == pytest.approx(pair_auc(a, churned), abs=1e-12)
    assert row["auc_ci"] == pytest.approx([percentile(aucs, 2.5), percentile(aucs, 97.5)])
    assert row["calibration_error_ci"] == pytest.approx(
        [percentile(eces, 2.5), percentile(eces, 97.5)]
    )
    assert got["scorers"]["b"]["brier"] is None  # not a probability here
    (diff,) = got["differences"]
    assert diff["auc_difference_ci"] == pytest.approx(
        [percentile(diffs, 2.5), percentile(diffs, 97.5)]
    )
    assert row["auc_ci"][0] < row["auc"] < row["auc_ci"][1]


def test_segments_spells_and_returns_after_the_horizon() -> None:
    rng = random.Random(3)
    rows = []
    for user in range(60):
        last = rng.randint(0, 40)
        back = rng.choice([None, rng.randint(1, 60)])
        for anchor in range(last + 7, last + 7 + rng.randint(1, 50), 3):
            d = anchor - last
            to_return = None if back is None or back <= d else back - d
            rows.append((user, last, anchor, d, to_return))
    horizon = 14
    churned = [r[4] is None or r[4] > horizon for r in rows]
    score = [rng.random() for _ in rows]
    report = decision_report(
        scores={"x": np.array(score)}, probability={"x"}, churned=np.array(churned),
        users=np.array([r[0] for r in rows]), last_active=np.array([r[1] for r in rows]),
        anchor=np.array([r[2] for r in rows]), days_inactive=np.array([r[3] for r in rows]),
        days_to_return=np.array([np.nan if r[4] is None else r[4] for r in rows]),
        resamples=5,
    )
    first: dict[tuple[int, int], int] = {}
    for i, r in enumerate(rows):
        if (r[0], r[1]) not in first or r[2] < rows[first[(r[0], r[1])]][2]:
            first[(r[0], r[1])] = i
    wanted = {
        "all": range(len(rows)),
        "inactive_7_13": [i for i, r in enumerate(rows) if 7 <= r[3] <= 13],
        "inactive_14_29": [i for i, r in enumerate(rows) if 14 <= r[3] <= 29],
        "inactive_30_plus": [i for i, r in enumerate(rows) if r[3] >= 30],
        "spells": sorted(first.values()),
    }
    for name, index in wanted.items():
        segment = report["segments"][name]
        y = [churned[i] for i in index]
        later = sum(1 for i in index if churned[i] and rows[i][4] is not None)
        assert segment["rows"] == len(index), name
        assert segment["users"] == len({rows[i][0] for i in index}), name
        assert segment["churned"] == sum(y), name
        assert segment["churned_came_back_later"] == later, name
        assert segment["scorers"]["x"]["auc"] == pytest.approx(
            pair_auc([score[i] for i in index], y), abs=1e-12
        ), name
    assert report["segments"]["spells"]["rows"] == 60
    starts = spell_starts(np.array([2, 1, 2, 2]), np.array([5, 5, 5, 9]), np.array([9, 3, 7, 20]))
    assert starts.tolist() == [False, True, True, True]
