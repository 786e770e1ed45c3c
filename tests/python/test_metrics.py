"""P and S: the worked examples, properties over many inputs, and score_users' accounting."""

from __future__ import annotations

import datetime as dt
import math
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seedtest_analytics.db.kpi_writer import Score
from seedtest_analytics.scoring.formulas import (
    churn_risk,
    goal_probability,
    goal_probability_bayes,
    normal_cdf,
    population_prior,
    posterior,
    score_users,
)
from seedtest_analytics.warehouse.scoring_inputs import ScoringInput

WEEK = dt.date(2025, 10, 27)

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
positive = st.floats(min_value=1e-6, max_value=1e6, allow_nan=False, allow_infinity=False)
days = st.integers(min_value=0, max_value=100_000)
active = st.integers(min_value=0, max_value=400)
gaps = st.floats(min_value=0, max_value=1e6, allow_nan=False)
horizons = st.integers(min_value=0, max_value=36_500)
priors = st.one_of(st.none(), st.tuples(finite, positive))


# --- worked examples -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("d", "k", "g", "h", "expected"),
    [(4, 1, 3, 14, 0.4136), (7, 2, 2, 7, 0.7914), (0, 12, 0, 14, 0.0)],
)
def test_churn_examples(d: int, k: int, g: float, h: int, expected: float) -> None:
    assert round(churn_risk(d, k, g, h), 4) == expected


def test_churn_is_unrounded() -> None:
    assert churn_risk(4, 1, 3, 14) == pytest.approx(0.6 * 4 / 14 + 0.25 * 3 / 7 + 0.15 * 0.9)
    assert churn_risk(4, 1, 3, 14) != 0.4136


def test_goal_examples() -> None:
    assert goal_probability(0.0, 1.0, 0.0) == 0.5
    assert goal_probability(0.0, 0.0, 0.0) is None
    assert goal_probability(0.0, -1.0, 0.0) is None
    assert goal_probability(None, 1.0, 0.0) is None
    assert goal_probability(0.0, None, 0.0) is None
    assert goal_probability(math.nan, 1.0, 0.0) is None
    assert goal_probability(0.0, math.inf, 0.0) is None
    assert goal_probability(0.0, 1.0, 1.0) == pytest.approx(1 - normal_cdf(1.0), abs=1e-15)


def test_normal_cdf() -> None:
    assert normal_cdf(0.0) == 0.5
    assert normal_cdf(1.959963984540054) == pytest.approx(0.975)
    assert normal_cdf(-1.0) == pytest.approx(1 - normal_cdf(1.0))


def test_population_prior_is_mean_and_population_variance() -> None:
    means = [1.0, 2.0, 4.0, 7.0]
    assert population_prior(means) == pytest.approx(
        (statistics.fmean(means), statistics.pvariance(means))
    )
    assert population_prior([]) is None
    assert population_prior([1.5]) is None
    assert population_prior([2.0, 2.0, 2.0]) is None
    assert population_prior([1.0, math.nan]) is None  # one finite mean is not a population


def test_population_prior_is_stable_with_a_large_offset() -> None:
    # Naive sum(x^2)/n - mean^2 loses everything here; the true variance is 0.25.
    m0, s0sq = population_prior([1e9 + 0.5, 1e9 - 0.5] * 500_000)  # type: ignore[misc]
    assert m0 == 1e9
    assert s0sq == pytest.approx(0.25, rel=1e-9)


def test_posterior_formula() -> None:
    mu, sd, m0, s0sq = 1.2, 0.5, -0.3, 2.0
    v = 1 / (1 / s0sq + 1 / sd**2)
    mean, var = posterior(mu, sd, m0, s0sq)
    assert var == pytest.approx(v, rel=1e-12)
    assert mean == pytest.approx(v * (m0 / s0sq + mu / sd**2), rel=1e-12)
    with pytest.raises(ValueError):
        posterior(mu, 0.0, m0, s0sq)


def test_bayes_uses_the_posterior() -> None:
    prior = (-0.3, 2.0)
    mean, var = posterior(1.2, 0.5, *prior)
    expected = 1 - normal_cdf((0.8 - mean) / math.sqrt(var))
    assert goal_probability_bayes(1.2, 0.5, 0.8, prior) == pytest.approx(expected, abs=1e-14)
    assert goal_probability_bayes(1.2, 0.0, 0.8, prior) is None
    assert goal_probability_bayes(None, 0.5, 0.8, prior) is None


# --- properties ----------------------------------------------------------------------------


@given(mu=finite, sd=st.floats(allow_nan=True), target=finite, prior=priors)
def test_p_is_a_probability_or_none(
    mu: float, sd: float, target: float, prior: tuple[float, float] | None
) -> None:
    for p in (goal_probability(mu, sd, target), goal_probability_bayes(mu, sd, target, prior)):
        assert p is None or 0.0 <= p <= 1.0
        assert (p is None) == (not (math.isfinite(sd) and sd > 0))


@given(d=st.integers(-1000, 10**9), k=st.integers(-10, 10**6), g=st.floats(allow_nan=False),
       h=st.integers(-10, 10**6))
def test_s_is_a_probability(d: int, k: int, g: float, h: int) -> None:
    assert 0.0 <= churn_risk(d, k, g, h) <= 1.0


@given(mu=finite, sd=positive, t1=finite, t2=finite, prior=priors)
def test_p_does_not_rise_with_the_target(
    mu: float, sd: float, t1: float, t2: float, prior: tuple[float, float] | None
) -> None:
    lo, hi = sorted((t1, t2))
    assert goal_probability(mu, sd, lo) >= goal_probability(mu, sd, hi)  # type: ignore[operator]
    assert (
        goal_probability_bayes(mu, sd, lo, prior)  # type: ignore[operator]
        >= goal_probability_bayes(mu, sd, hi, prior)
    )


@given(d1=days, d2=days, k=active, g=gaps, h=horizons)
def test_s_does_not_fall_with_days_inactive(d1: int, d2: int, k: int, g: float, h: int) -> None:
    lo, hi = sorted((d1, d2))
    assert churn_risk(lo, k, g, h) <= churn_risk(hi, k, g, h)


@given(mu=finite, sd=positive, m0=finite, s0sq=positive)
def test_posterior_variance_is_below_both(mu: float, sd: float, m0: float, s0sq: float) -> None:
    mean, var = posterior(mu, sd, m0, s0sq)
    assert 0 < var <= min(sd * sd, s0sq) * (1 + 1e-12)
    # The posterior mean lies between the prior mean and the user's own mean.
    assert min(mu, m0) - 1e-9 * (1 + abs(mu) + abs(m0)) <= mean
    assert mean <= max(mu, m0) + 1e-9 * (1 + abs(mu) + abs(m0))


@given(
    mu=finite,
    sd=positive,
    target=finite,
    means=st.one_of(st.lists(finite, max_size=1), st.lists(st.just(0.7), min_size=2)),
)
def test_bayes_falls_back_to_normal_without_a_population(
    mu: float, sd: float, target: float, means: list[float]
) -> None:
    prior = population_prior(means)
    assert prior is None
    assert goal_probability_bayes(mu, sd, target, prior) == goal_probability(mu, sd, target)
    row = ScoringInput("u", WEEK, 3, 2, 1.0, mu, sd, target)
    kwargs = {"default_target": 0.0, "horizon_days": 14, "prior_means": means}
    assert score_users([row], use_bayesian=True, **kwargs) == score_users(  # type: ignore[arg-type]
        [row], use_bayesian=False, **kwargs  # type: ignore[arg-type]
    )


# --- score_users ---------------------------------------------------------------------------


def _row(user_id: str, *, days_inactive: int | None = 10, mean: float | None = 0.0,
         sd: float | None = 1.0, target: float | None = None) -> ScoringInput:
    return ScoringInput(user_id, WEEK, days_inactive, 1, 3.0, mean, sd, target)


def test_score_users_failure_accounting() -> None:
    rows = [
        _row("both"),
        _row("only_s", mean=None, sd=None),
        _row("only_s_bad_sd", sd=0.0),
        _row("only_p", days_inactive=None),
        _row("neither", days_inactive=None, mean=None, sd=None),
        _row("neither_bad_sd", days_inactive=None, sd=-1.0),
    ]
    scores, failed = score_users(rows, default_target=0.0, use_bayesian=False, horizon_days=14)
    by_user = {score.user_id: score for score in scores}
    assert failed == ["neither", "neither_bad_sd"]
    assert set(by_user) == {"both", "only_s", "only_s_bad_sd", "only_p"}
    assert by_user["both"] == Score("both", WEEK, 0.5, churn_risk(10, 1, 3.0, 14))
    assert by_user["only_s"].p is None and by_user["only_s"].s is not None
    assert by_user["only_s_bad_sd"].p is None
    assert by_user["only_p"] == Score("only_p", WEEK, 0.5, None)


def test_score_users_targets() -> None:
    rows = [_row("default"), _row("own", target=1.0)]
    scores, failed = score_users(rows, default_target=-1.0, use_bayesian=False, horizon_days=14)
    assert failed == []
    assert scores[0].p == goal_probability(0.0, 1.0, -1.0)
    assert scores[1].p == goal_probability(0.0, 1.0, 1.0)


def test_score_users_bayes_prior_from_all_users() -> None:
    # The prior is the population of all users with an ability, not only the scored one.
    population = [-1.0, 0.0, 1.0, 2.0]
    rows = [_row("u", mean=1.5, sd=0.8, target=1.0)]
    scores, _ = score_users(
        rows, default_target=0.0, use_bayesian=True, horizon_days=14, prior_means=population
    )
    prior = population_prior(population)
    assert scores[0].p == goal_probability_bayes(1.5, 0.8, 1.0, prior)
    assert scores[0].p != goal_probability(1.5, 0.8, 1.0)
    normal, _ = score_users(
        rows, default_target=0.0, use_bayesian=False, horizon_days=14, prior_means=population
    )
    assert normal[0].p == goal_probability(1.5, 0.8, 1.0)
