"""P (goal-attainment probability) and S (churn risk): small pure functions, no database,
and score_users, which applies them to the scoring-input rows.

All results are unrounded; the writer stores them as they are.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from statistics import fmean

from ..db.kpi_writer import Score
from ..warehouse.scoring_inputs import ScoringInput


def _clamp(x: float, lo: float = 0.0, hi: float = 1.0) -> float:
    # max() keeps its first argument when the other is NaN, so a NaN becomes `lo`, not NaN.
    return min(hi, max(lo, x))


def normal_cdf(x: float) -> float:
    """Phi(x), the standard normal distribution function."""
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def goal_probability(mu: float | None, sd: float | None, target: float | None) -> float | None:
    """P = 1 - Phi((target - mu) / sd), clamped to [0, 1]; None without a usable ability."""
    if mu is None or sd is None or target is None:
        return None
    if not (math.isfinite(mu) and math.isfinite(target) and math.isfinite(sd) and sd > 0):
        return None
    z = (target - mu) / sd
    # 1 - Phi(z) == erfc(z / sqrt 2) / 2, and erfc keeps the far upper tail instead of
    # rounding it to 0 through the subtraction.
    return _clamp(0.5 * math.erfc(z / math.sqrt(2.0)))


def population_prior(means: Sequence[float]) -> tuple[float, float] | None:
    """(m0, s0^2): mean and population variance (ddof=0) of all users' ability means.

    None when fewer than 2 finite means or the variance is 0 (the caller then uses the
    normal mode). Two passes with fsum stay exact enough for a million values.
    """
    values = [m for m in means if math.isfinite(m)]
    # Equal means have variance 0 exactly, even where fmean's rounding would leave ~1e-32.
    if len(values) < 2 or min(values) == max(values):
        return None
    m0 = fmean(values)
    s0sq = math.fsum((m - m0) ** 2 for m in values) / len(values)
    if not (math.isfinite(s0sq) and s0sq > 0):
        return None
    return m0, s0sq


def _posterior_mean_sd(mu: float, sd: float, m0: float, s0sq: float) -> tuple[float, float]:
    # Written with the ratio t = small/large of the two standard deviations so that neither
    # 1/sd^2 nor sd^2 can overflow or underflow for extreme (but finite) inputs.
    s0 = math.sqrt(s0sq)
    small, large = min(sd, s0), max(sd, s0)
    t2 = (small / large) ** 2
    post_sd = small / math.sqrt(1.0 + t2)
    # Weight of the prior mean: sd^2 / (sd^2 + s0^2).
    w_prior = t2 / (1.0 + t2) if sd <= s0 else 1.0 / (1.0 + t2)
    return mu + w_prior * (m0 - mu), post_sd


def posterior(mu: float, sd: float, m0: float, s0sq: float) -> tuple[float, float]:
    """Normal-normal update: v = 1/(1/s0^2 + 1/sd^2), mean = v*(m0/s0^2 + mu/sd^2).

    Needs sd > 0 and s0sq > 0; returns (mean, v).
    """
    if not (sd > 0 and s0sq > 0):
        raise ValueError("posterior needs sd > 0 and s0sq > 0")
    mean, post_sd = _posterior_mean_sd(mu, sd, m0, s0sq)
    return mean, post_sd * post_sd


def goal_probability_bayes(
    mu: float | None,
    sd: float | None,
    target: float | None,
    prior: tuple[float, float] | None,
) -> float | None:
    """P with the ability shrunk toward the population prior (m0, s0^2).

    Without a prior (fewer than 2 users, or zero variance) this is the normal mode.
    """
    if prior is None:
        return goal_probability(mu, sd, target)
    if mu is None or sd is None or not (math.isfinite(mu) and math.isfinite(sd) and sd > 0):
        return None
    mean, post_sd = _posterior_mean_sd(mu, sd, prior[0], prior[1])
    return goal_probability(mean, post_sd, target)


def churn_risk(
    days_inactive: int, active_days: int, mean_gap_days: float, horizon_days: int
) -> float:
    """S = clamp(0.6*clamp(d/max(1,h)) + 0.25*clamp(g/7) + 0.15*clamp(1 - k/10))."""
    d, k, g, h = days_inactive, active_days, mean_gap_days, horizon_days
    return _clamp(
        0.6 * _clamp(d / max(1, h)) + 0.25 * _clamp(g / 7.0) + 0.15 * _clamp(1.0 - k / 10.0)
    )


def score_users(
    inputs: Iterable[ScoringInput],
    *,
    default_target: float,
    use_bayesian: bool,
    horizon_days: int,
    prior_means: Sequence[float] | None = None,
) -> tuple[list[Score], list[str]]:
    """Scores of the users with P or S (or both), and the ids of users with neither.

    In Bayesian mode the prior comes from `prior_means`: the ability means of all users with
    an ability as of the anchor, not only the scored ones. Without usable prior means
    (None, fewer than 2, zero variance) P falls back to the normal mode.
    """
    prior = population_prior(prior_means) if use_bayesian and prior_means is not None else None
    scores: list[Score] = []
    failed: list[str] = []
    for row in inputs:
        target = default_target if row.target is None else row.target
        p = goal_probability_bayes(row.ability_mean, row.ability_sd, target, prior)
        s = (
            None
            if row.days_inactive is None
            else churn_risk(row.days_inactive, row.active_days, row.mean_gap_days, horizon_days)
        )
        if p is None and s is None:
            failed.append(row.user_id)
        else:
            scores.append(Score(row.user_id, row.week_start, p, s))
    return scores, failed
