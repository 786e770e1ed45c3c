"""The churn backtest's evaluation: the scorers (the nightly's heuristic S, days inactive,
the learned logistic model) over the user-anchors as numpy columns, and their metrics (AUC
with ties counting one half, Brier score, calibration bins and ROC curves) per anchor and
pooled. numpy is the [backtest] extra; the HTML report reads what this module computes."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import TYPE_CHECKING, Any

from ..config import Settings
from ..scoring.churn_champion import Candidate
from ..scoring.churn_model import ChurnModel
from ..scoring.formulas import churn_risk
from .anchors import EPOCH, UserAnchors
from .decisions import decision_report

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    FloatArray = NDArray[np.float64]
    BoolArray = NDArray[np.bool_]

SCORERS = ("heuristic", "days_inactive", "logistic")
PROBABILITY_SCORERS = ("heuristic", "logistic")
BINS = 10


# --- metrics --------------------------------------------------------------------------------


def average_ranks(values: FloatArray) -> FloatArray:
    """1-based ranks, ties sharing their mean rank."""
    import numpy as np

    n = values.shape[0]
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts = np.concatenate(([0], np.flatnonzero(np.diff(ordered)) + 1))
    ends = np.concatenate((starts[1:], [n]))
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = np.repeat((starts + 1 + ends) / 2.0, ends - starts)
    return ranks


def auc(scores: FloatArray, churned: BoolArray) -> float | None:
    """P(score of a churned user > score of one who came back), ties counting one half
    (Mann-Whitney); None without both outcomes."""
    positives = int(churned.sum())
    negatives = int(churned.shape[0]) - positives
    if positives == 0 or negatives == 0:
        return None
    rank_sum = float(average_ranks(scores)[churned].sum())
    return (rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives)


def brier(scores: FloatArray, churned: BoolArray) -> float | None:
    import numpy as np

    if scores.shape[0] == 0:
        return None
    return float(np.mean((scores - churned.astype(np.float64)) ** 2))


def score_bins(scores: FloatArray) -> Any:
    """Bin i of the 10 equal-width bins holds the scores with floor(10 * score) = i (a score
    of exactly 1 in the last one)."""
    import numpy as np

    return np.clip(np.floor(scores * BINS).astype(np.int64), 0, BINS - 1)


def calibration(scores: FloatArray, churned: BoolArray) -> list[dict[str, Any]]:
    import numpy as np

    bins = score_bins(scores)
    users = np.bincount(bins, minlength=BINS)
    score_sum = np.bincount(bins, weights=scores, minlength=BINS)
    churn_sum = np.bincount(bins, weights=churned.astype(np.float64), minlength=BINS)
    table = []
    for i in range(BINS):
        n = int(users[i])
        table.append(
            {
                "low": i / BINS,
                "high": (i + 1) / BINS,
                "users": n,
                "mean_score": float(score_sum[i] / n) if n else None,
                "churn_rate": float(churn_sum[i] / n) if n else None,
            }
        )
    return table


def evaluate(scorer: str, scores: FloatArray, churned: BoolArray) -> dict[str, Any]:
    probability = scorer in PROBABILITY_SCORERS
    return {
        "users": int(scores.shape[0]),
        "churned": int(churned.sum()),
        "auc": auc(scores, churned),
        "brier": brier(scores, churned) if probability else None,
        "calibration": calibration(scores, churned) if probability else None,
    }


def roc_curve(
    scores: FloatArray, churned: BoolArray, max_points: int = 2000
) -> tuple[FloatArray, FloatArray]:
    """(false positive rate, true positive rate) at every distinct threshold, thinned."""
    import numpy as np

    positives = max(int(churned.sum()), 1)
    negatives = max(int((~churned).sum()), 1)
    order = np.argsort(-scores, kind="mergesort")
    ordered = scores[order]
    hits = churned[order]
    last_of_tie = np.concatenate((np.flatnonzero(np.diff(ordered)), [len(ordered) - 1]))
    tpr = np.concatenate(([0.0], np.cumsum(hits)[last_of_tie] / positives))
    fpr = np.concatenate(([0.0], np.cumsum(~hits)[last_of_tie] / negatives))
    if len(fpr) > max_points:
        keep = np.unique(np.linspace(0, len(fpr) - 1, max_points).astype(np.int64))
        fpr, tpr = fpr[keep], tpr[keep]
    return fpr, tpr


# --- the backtest ---------------------------------------------------------------------------


# --- scorers --------------------------------------------------------------------------------


def heuristic_scores(rows: UserAnchors, horizon: int) -> FloatArray:
    """The nightly's S, through its own function (scoring.formulas.churn_risk)."""
    import numpy as np

    n = len(rows)
    return np.fromiter(
        map(
            churn_risk,
            rows.days_inactive.astype(np.int64).tolist(),
            rows.active_days.astype(np.int64).tolist(),
            rows.mean_gap_days.tolist(),
            repeat(horizon, n),
        ),
        dtype=np.float64,
        count=n,
    )


def _lifetime_gap(rows: UserAnchors) -> FloatArray:
    import numpy as np

    total = rows.active_days_total
    span = rows.tenure_days - rows.days_inactive
    return np.where(total >= 2, span / np.maximum(total - 1.0, 1.0), 0.0)


# The numpy twins of churn_model.FEATURES (tests check that both agree).
NUMPY_FEATURES: dict[str, Callable[[UserAnchors], FloatArray]] = {
    "log_days_inactive": lambda r: _np().log1p(r.days_inactive),
    "active_days": lambda r: r.active_days,
    "mean_gap_days": lambda r: r.mean_gap_days,
    "log_tenure_days": lambda r: _np().log1p(r.tenure_days),
    "log_active_days_total": lambda r: _np().log1p(r.active_days_total),
    "log_lifetime_mean_gap_days": lambda r: _np().log1p(_lifetime_gap(r)),
}


def _np() -> Any:
    import numpy

    return numpy


def feature_matrix(rows: UserAnchors, names: Sequence[str]) -> FloatArray:
    import numpy as np

    return np.column_stack([NUMPY_FEATURES[name](rows) for name in names]).astype(np.float64)


def logistic_scores(model: ChurnModel, rows: UserAnchors) -> FloatArray:
    """The model's probability, term by term in the order ChurnModel.probability adds them."""
    import numpy as np

    z = np.full(len(rows), model.intercept)
    for name, coefficient in zip(model.features, model.coefficients, strict=True):
        z = z + coefficient * NUMPY_FEATURES[name](rows)
    e = np.exp(-np.abs(z))
    probability: FloatArray = np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    return probability


@dataclass
class Backtest:
    report: dict[str, Any]
    rows: UserAnchors
    churned: BoolArray
    scores: dict[str, FloatArray]  # per scorer, aligned with rows (NaN: not evaluated)
    model: ChurnModel | None
    seconds: float


def _model_window(model: ChurnModel) -> dict[str, Any]:
    return {
        "version": model.version,
        "first_anchor": model.first_anchor.isoformat(),
        "last_anchor": model.last_anchor.isoformat(),
        "trained_until": model.trained_until.isoformat(),
        "package_version": model.package_version,
    }


def evaluate_backtest(
    rows: UserAnchors,
    kept: Sequence[dt.date],
    left_out: Sequence[dt.date],
    settings: Settings,
    model: ChurnModel | None,
    champion: Candidate | None = None,
    candidates: Sequence[Candidate] = (),
) -> Backtest:
    """Score every user-anchor with each scorer; per-anchor and pooled metrics."""
    import numpy as np

    started = time.perf_counter()
    horizon = settings.churn_horizon_days
    churned = rows.churned(horizon)
    scores = {
        "heuristic": heuristic_scores(rows, horizon),
        "days_inactive": rows.days_inactive.astype(np.float64),
    }
    after_window = np.zeros(len(rows), dtype=bool)
    if model is not None:
        after_window = rows.anchor > (model.trained_until - EPOCH).days
        logistic = np.full(len(rows), np.nan)
        logistic[after_window] = logistic_scores(model, rows.subset(after_window))
        scores["logistic"] = logistic
    scored = {} if champion is None else {"champion": champion}
    scored.update({f"candidate_{c.kind}": c for c in candidates})
    for name, candidate in scored.items():
        from .challengers import inputs_of, score

        later = rows.anchor > (candidate.trained_until - EPOCH).days
        values = np.full(len(rows), np.nan)
        values[later] = score(candidate, inputs_of(rows.subset(later)))
        scores[name] = values
    order = np.argsort(rows.anchor, kind="mergesort")
    anchor_sorted = rows.anchor[order]
    results = []
    for anchor in kept:
        day = (anchor - EPOCH).days
        lo, hi = np.searchsorted(anchor_sorted, [day, day + 1])
        index = order[lo:hi]
        for scorer in SCORERS:
            if scorer not in scores or (
                scorer == "logistic" and model is not None and anchor <= model.trained_until
            ):
                continue
            results.append(
                {
                    "anchor": anchor.isoformat(),
                    "scorer": scorer,
                    **evaluate(scorer, scores[scorer][index], churned[index]),
                }
            )
    pooled = []
    for scorer in SCORERS:
        if scorer not in scores:
            continue
        mask = after_window if scorer == "logistic" else slice(None)
        pooled.append({"scorer": scorer, **evaluate(scorer, scores[scorer][mask], churned[mask])})
    window: dict[str, Any] | None = None
    if model is not None:
        evaluated = [a for a in kept if a > model.trained_until]
        window = {**_model_window(model), "anchors_evaluated": len(evaluated)}
    report = {
        "horizon_days": horizon,
        "threshold_days": settings.threshold_days,
        "anchors_left_out": [a.isoformat() for a in left_out],
        "decision": decision_report(
            scores=scores,
            probability={*PROBABILITY_SCORERS, *scored},
            churned=churned,
            users=rows.user,
            last_active=rows.last_active,
            anchor=rows.anchor,
            days_inactive=rows.days_inactive,
            days_to_return=rows.days_to_return,
        ),
        "results": results,
        "pooled": pooled,
        "logistic_model": window,
        "champion": None
        if champion is None
        else {
            "candidate_id": champion.candidate_id,
            "kind": champion.kind,
            "trained_until": champion.trained_until.isoformat(),
        },
    }
    return Backtest(report, rows, churned, scores, model, time.perf_counter() - started)


def format_metric(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
