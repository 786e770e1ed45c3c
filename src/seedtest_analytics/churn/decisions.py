"""The backtest where outreach is decided: buckets of days inactive, one row per inactivity
spell, bootstrap confidence intervals resampled by user (numpy, the [backtest] extra).

Pooled over all user-anchors, a student gone 100 days counts at 100 anchors, so the pooled
figures mostly say how well a score tells the long gone from the others. The segments here:

- `all`: every user-anchor (the pooled figures again, with intervals);
- `inactive_7_13`, `inactive_14_29`, `inactive_30_plus`: the user-anchors by days inactive
  (7-13 is the newly inactive, where a first message is decided);
- `spells`: one row per inactivity spell, its first anchor in the backtest (a spell is the
  time from a user's last activity day to the next one).

Intervals: the users are resampled with replacement (`RESAMPLES` times, a fixed seed), each
row weighted by how often its user was drawn, and the 2.5 % and 97.5 % quantiles of the
metric over the resamples are the 95 % interval. `differences` gives the same for the
difference of two scorers' AUC on the same resamples (paired).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    FloatArray = NDArray[np.float64]
    BoolArray = NDArray[np.bool_]

RESAMPLES = 200
SEED = 20261206
CONFIDENCE = 0.95
BINS = 10
BUCKETS: dict[str, tuple[int, int | None]] = {
    "inactive_7_13": (7, 13),
    "inactive_14_29": (14, 29),
    "inactive_30_plus": (30, None),
}
SEGMENTS = ("all", *BUCKETS, "spells")


@dataclass(frozen=True)
class Prepared:
    """A score sorted once, so that each resample costs one pass over the rows."""

    group: Any  # per row: the index of its distinct score value (ties share one)
    groups: int
    bins: Any  # per row: its calibration bin
    scores: Any


def prepare(scores: FloatArray) -> Prepared:
    import numpy as np

    values, group = np.unique(scores, return_inverse=True)
    bins = np.clip(np.floor(scores * BINS).astype(np.int64), 0, BINS - 1)
    return Prepared(group.reshape(-1), int(values.shape[0]), bins, scores)


def weighted_auc(p: Prepared, churned: BoolArray, weights: FloatArray) -> float | None:
    """P(score of a churned row > score of a returned row), ties one half, each row counting
    `weights` times (the plain AUC with weights 1)."""
    import numpy as np

    positive = np.bincount(p.group, weights * churned, minlength=p.groups)
    negative = np.bincount(p.group, weights * ~churned, minlength=p.groups)
    total_p, total_n = float(positive.sum()), float(negative.sum())
    if total_p <= 0 or total_n <= 0:
        return None
    below = np.cumsum(negative) - negative
    return float(np.sum(positive * (below + 0.5 * negative)) / (total_p * total_n))


def weighted_brier(p: Prepared, churned: BoolArray, weights: FloatArray) -> float | None:
    import numpy as np

    total = float(weights.sum())
    if total <= 0:
        return None
    return float(np.sum(weights * (p.scores - churned) ** 2) / total)


def weighted_ece(p: Prepared, churned: BoolArray, weights: FloatArray) -> float | None:
    """Calibration error: over ten equal-width bins of the score, the weight-share of each bin
    times |mean score - churn rate| in it."""
    import numpy as np

    count = np.bincount(p.bins, weights, minlength=BINS)
    total = float(count.sum())
    if total <= 0:
        return None
    score = np.bincount(p.bins, weights * p.scores, minlength=BINS)
    churn = np.bincount(p.bins, weights * churned, minlength=BINS)
    return float(np.sum(np.abs(score - churn)) / total)


def resample_weights(users: Any, resamples: int, seed: int) -> Iterator[FloatArray]:
    """Per resample, each row's weight: how often its user was drawn (users drawn with
    replacement, as many as there are). `users`: a dense user index per row (0 .. U-1)."""
    import numpy as np

    codes, index = np.unique(users, return_inverse=True)
    count = int(codes.shape[0])
    rng = np.random.default_rng(seed)
    for _ in range(resamples):
        drawn = np.bincount(rng.integers(0, count, size=count), minlength=count)
        weights: FloatArray = drawn[index.reshape(-1)].astype(np.float64)
        yield weights


def _interval(values: list[float | None]) -> list[float] | None:
    import numpy as np

    kept = [v for v in values if v is not None]
    if len(kept) < 2:
        return None
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(kept, [tail, 100 - tail])
    return [float(low), float(high)]


def spell_starts(user: Any, last_active: Any, anchor: Any) -> BoolArray:
    """True on the first anchor of each (user, last activity day): one row per spell."""
    import numpy as np

    order = np.lexsort((anchor, last_active, user))
    first = np.ones(len(order), dtype=bool)
    same = (np.diff(user[order]) == 0) & (np.diff(last_active[order]) == 0)
    first[1:] = ~same
    starts = np.zeros(len(order), dtype=bool)
    starts[order] = first
    return starts


def segment_masks(days_inactive: Any, spells: BoolArray) -> dict[str, BoolArray]:
    import numpy as np

    masks: dict[str, BoolArray] = {"all": np.ones(days_inactive.shape[0], dtype=bool)}
    for name, (low, high) in BUCKETS.items():
        mask = days_inactive >= low
        if high is not None:
            mask &= days_inactive <= high
        masks[name] = mask
    masks["spells"] = spells
    return masks


def evaluate_segment(
    scores: Mapping[str, FloatArray],
    probability: set[str],
    churned: BoolArray,
    users: Any,
    *,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    pairs: tuple[tuple[str, str], ...] = (),
) -> dict[str, Any]:
    """Point figures and bootstrap intervals of each scorer on one set of rows (the rows where
    a scorer's score is NaN are not its rows), and of the AUC differences `pairs`
    (challenger, baseline) on the rows both scored."""
    import numpy as np

    ones = np.ones(churned.shape[0])
    prepared: dict[str, tuple[Any, Prepared]] = {}
    for name, values in scores.items():
        mask = np.isfinite(values)
        prepared[name] = (mask, prepare(values[mask]))
    draws: dict[str, list[list[float | None]]] = {name: [[], [], []] for name in scores}
    diff_prepared = {}
    for a, b in pairs:
        mask = np.isfinite(scores[a]) & np.isfinite(scores[b])
        diff_prepared[(a, b)] = (mask, prepare(scores[a][mask]), prepare(scores[b][mask]))
    diff_draws: dict[tuple[str, str], list[float | None]] = {pair: [] for pair in pairs}
    for weights in resample_weights(users, resamples, seed):
        for name, (mask, p) in prepared.items():
            y, w = churned[mask], weights[mask]
            draws[name][0].append(weighted_auc(p, y, w))
            if name in probability:
                draws[name][1].append(weighted_brier(p, y, w))
                draws[name][2].append(weighted_ece(p, y, w))
        for pair, (mask, pa, pb) in diff_prepared.items():
            y, w = churned[mask], weights[mask]
            first, second = weighted_auc(pa, y, w), weighted_auc(pb, y, w)
            diff_draws[pair].append(None if first is None or second is None else first - second)
    result: dict[str, Any] = {}
    for name, (mask, p) in prepared.items():
        y, w = churned[mask], ones[mask]
        is_probability = name in probability
        result[name] = {
            "rows": int(mask.sum()),
            "auc": weighted_auc(p, y, w),
            "auc_ci": _interval(draws[name][0]),
            "brier": weighted_brier(p, y, w) if is_probability else None,
            "brier_ci": _interval(draws[name][1]) if is_probability else None,
            "calibration_error": weighted_ece(p, y, w) if is_probability else None,
            "calibration_error_ci": _interval(draws[name][2]) if is_probability else None,
        }
    differences = []
    for (a, b), (mask, pa, pb) in diff_prepared.items():
        y, w = churned[mask], ones[mask]
        first, second = weighted_auc(pa, y, w), weighted_auc(pb, y, w)
        differences.append(
            {
                "scorer": a,
                "baseline": b,
                "rows": int(mask.sum()),
                "auc_difference": None if first is None or second is None else first - second,
                "auc_difference_ci": _interval(diff_draws[(a, b)]),
            }
        )
    return {"scorers": result, "differences": differences}


def decision_report(
    *,
    scores: Mapping[str, FloatArray],
    probability: set[str],
    churned: BoolArray,
    users: Any,
    last_active: Any,
    anchor: Any,
    days_inactive: Any,
    days_to_return: Any,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> dict[str, Any]:
    """The `decision` section of the backtest report (README: the backtest report)."""
    import numpy as np

    spells = spell_starts(users, last_active, anchor)
    segments: dict[str, Any] = {}
    for name, mask in segment_masks(days_inactive, spells).items():
        y = churned[mask]
        came_back = np.isfinite(days_to_return[mask]) & y
        churned_rows = int(y.sum())
        segments[name] = {
            "rows": int(mask.sum()),
            "users": int(np.unique(users[mask]).shape[0]),
            "churned": churned_rows,
            "churned_came_back_later": int(came_back.sum()),
            "churned_came_back_later_share": (
                float(came_back.sum() / churned_rows) if churned_rows else None
            ),
            **evaluate_segment(
                {k: v[mask] for k, v in scores.items()},
                probability,
                y,
                users[mask],
                resamples=resamples,
                seed=seed,
            ),
        }
    return {
        "resamples": resamples,
        "seed": seed,
        "confidence": CONFIDENCE,
        "buckets": {name: list(bounds) for name, bounds in BUCKETS.items()},
        "segments": segments,
    }
