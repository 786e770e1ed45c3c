"""The backtest's metrics: AUC (ties counting one half), Brier score, calibration bins and
ROC curves of a churn score against the observed outcome. Pure functions over numpy arrays
(the [backtest] extra), shared by the backtest and its HTML report."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
