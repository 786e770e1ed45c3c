"""The champion churn model: stored candidates, the promotion decisions, and the nightly's
`auto` mode. Pure Python (no numpy): the nightly image scores with plain numbers.

A candidate (one row of <dbt schema>.churn_candidates) is a raw score and a calibration:

- raw score, by `kind`: `logistic` (intercept + coefficients x named features of the user's
  activity as of the anchor, a log-odds), `days_inactive` (the days since the last activity),
  `heuristic` (the fixed-weight S of metrics.churn_risk);
- calibration: `platt` (P = sigmoid(a * raw + b), calibration_x = [a, b]) or `isotonic` (the
  raw score's observed churn rate: linear between the points (calibration_x, calibration_y),
  constant beyond them).

`train-churn` (churn_training.py) stores the candidates and one decision per candidate in
<dbt schema>.churn_decisions; the champion is the candidate of the newest decision that
promoted one. With METRICS_CHURN_MODEL=auto (the default) the nightly scores S with the
champion when it is usable (valid numbers, trained under this run's settings, not older than
METRICS_CHURN_MODEL_MAX_AGE_DAYS), else with the previous champion, else with the fixed-weight
S, each fallback one warning line.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import psycopg
from psycopg import sql

from .. import log
from ..config import CHURN_MODEL_MAX_AGE, Settings
from ..errors import UsageError
from .churn_model import FEATURES, ChurnInputs, lifetime_mean_gap_days, read_inputs_as_of, sigmoid
from .formulas import churn_risk
from .inputs import Score

CANDIDATES_TABLE = "churn_candidates"
DECISIONS_TABLE = "churn_decisions"
KINDS = ("logistic", "days_inactive", "heuristic")
CALIBRATIONS = ("platt", "isotonic")
MAX_AGE_ENV = CHURN_MODEL_MAX_AGE.env
DEFAULT_MAX_AGE_DAYS = int(CHURN_MODEL_MAX_AGE.default)


def max_age_days(settings: Settings) -> int:
    """METRICS_CHURN_MODEL_MAX_AGE_DAYS as the settings hold it; UsageError when it was not
    usable (a whole number of days, 1 to 3650)."""
    if settings.churn_model_max_age_problem:
        raise UsageError(settings.churn_model_max_age_problem)
    return settings.churn_model_max_age_days


def _span(x: ChurnInputs) -> float:
    """Days from the first activity day to the last one, plus one."""
    return float(x.tenure_days - x.days_inactive + 1)


def _ignoring_lookback(
    feature: Callable[[ChurnInputs], float],
) -> Callable[[ChurnInputs, int], float]:
    return lambda x, _lookback: feature(x)


# The learned model's inputs: the first model's (churn_model.FEATURES) and more. `lookback`
# is KPI_LOOKBACK_DAYS, the window of active_days.
CandidateFeature = Callable[[ChurnInputs, int], float]
CANDIDATE_FEATURES: dict[str, CandidateFeature] = {
    **{name: _ignoring_lookback(f) for name, f in FEATURES.items()},
    # visits per day over the user's whole active span, and over the recent window
    "lifetime_rate": lambda x, _lookback: x.active_days_total / _span(x),
    "recent_rate": lambda x, lookback: x.active_days / float(lookback),
    # trend: the recent rate minus the lifetime one (negative: slowing down)
    "trend": lambda x, lookback: x.active_days / float(lookback) - x.active_days_total / _span(x),
    # how unusual the absence is for this user: days inactive over the usual gap
    "log_absence_over_usual_gap": lambda x, _lookback: math.log1p(
        x.days_inactive / max(1.0, lifetime_mean_gap_days(x))
    ),
    "single_visit": lambda x, _lookback: 1.0 if x.active_days_total < 2 else 0.0,
    # the exam results of the window: mean and last share right (0 without answers, which
    # no_recent_score flags), and the last one against the mean (negative: getting worse)
    "mean_score": lambda x, _lookback: x.mean_score or 0.0,
    "last_score": lambda x, _lookback: x.last_score or 0.0,
    "score_trend": lambda x, _lookback: (
        x.last_score - x.mean_score
        if x.last_score is not None and x.mean_score is not None
        else 0.0
    ),
    "no_recent_score": lambda x, _lookback: 1.0 if x.mean_score is None else 0.0,
}


@dataclass(frozen=True)
class Candidate:
    candidate_id: int
    kind: str
    features: tuple[str, ...]
    coefficients: tuple[float, ...]
    intercept: float
    calibration: str
    calibration_x: tuple[float, ...]
    calibration_y: tuple[float, ...]
    trained_until: dt.date
    horizon_days: int
    threshold_days: int
    kpi_lookback_days: int
    activity_timezone: str

    def raw(self, x: ChurnInputs) -> float:
        if self.kind == "days_inactive":
            return float(x.days_inactive)
        if self.kind == "heuristic":
            return churn_risk(x.days_inactive, x.active_days, x.mean_gap_days, self.horizon_days)
        z = self.intercept
        for name, coefficient in zip(self.features, self.coefficients, strict=True):
            z += coefficient * CANDIDATE_FEATURES[name](x, self.kpi_lookback_days)
        return z

    def calibrate(self, raw: float) -> float:
        if self.calibration == "platt":
            a, b = self.calibration_x
            return sigmoid(a * raw + b)
        xs, ys = self.calibration_x, self.calibration_y
        i = bisect_right(xs, raw)
        if i == 0:
            return ys[0]
        if i == len(xs):
            return ys[-1]
        x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
        return y0 if x1 == x0 else y0 + (y1 - y0) * (raw - x0) / (x1 - x0)

    def probability(self, x: ChurnInputs) -> float:
        return min(1.0, max(0.0, self.calibrate(self.raw(x))))

    def describe(self) -> str:
        return f"{self.kind} candidate {self.candidate_id} (outcomes up to {self.trained_until})"


CANDIDATES_DDL = """
create table if not exists {table} (
    candidate_id integer generated always as identity primary key,
    created_at timestamptz not null default now(),
    kind text not null,
    features text[] not null,
    coefficients double precision[] not null,
    intercept double precision not null,
    calibration text not null,
    calibration_x double precision[] not null,
    calibration_y double precision[] not null,
    trained_until date not null,
    train_first_anchor date not null,
    train_last_anchor date not null,
    calibration_first_anchor date not null,
    calibration_last_anchor date not null,
    horizon_days integer not null,
    threshold_days integer not null,
    kpi_lookback_days integer not null,
    activity_timezone text not null,
    package_version text not null,
    metrics jsonb not null
)
"""

DECISIONS_DDL = """
create table if not exists {table} (
    decision_id integer generated always as identity primary key,
    decided_at timestamptz not null default now(),
    trained_until date not null,
    candidate_id integer not null,
    champion_before integer,
    promoted boolean not null,
    reason text not null,
    evidence jsonb not null
)
"""


def ensure_tables(conn: psycopg.Connection, schema: str) -> None:
    """The candidate and decision tables in the dbt schema (created once, never dropped)."""
    for ddl, table in ((CANDIDATES_DDL, CANDIDATES_TABLE), (DECISIONS_DDL, DECISIONS_TABLE)):
        conn.execute(sql.SQL(ddl).format(table=sql.Identifier(schema, table)))


_COLUMNS = (
    "candidate_id, kind, features, coefficients, intercept, calibration, calibration_x,"
    " calibration_y, trained_until, horizon_days, threshold_days, kpi_lookback_days,"
    " activity_timezone"
)


class InvalidCandidate(Exception):
    """A stored candidate that cannot score (a tampered or broken row)."""


def _finite(values: Any, what: str) -> tuple[float, ...]:
    if values is None:
        raise InvalidCandidate(f"{what} is null")
    result = []
    for value in values:
        if value is None:
            raise InvalidCandidate(f"{what} holds a null")
        number = float(value)
        if not math.isfinite(number):
            raise InvalidCandidate(f"{what} holds {number}")
        result.append(number)
    return tuple(result)


def parse_candidate(row: Sequence[Any]) -> Candidate:
    """A row of churn_candidates as a Candidate; InvalidCandidate when it cannot score."""
    (cid, kind, features, coefficients, intercept, calibration, cx, cy, until, *rest) = row
    if kind not in KINDS:
        raise InvalidCandidate(f"unknown kind {kind!r}")
    if calibration not in CALIBRATIONS:
        raise InvalidCandidate(f"unknown calibration {calibration!r}")
    names = tuple(features or ())
    unknown = [n for n in names if n not in CANDIDATE_FEATURES]
    if unknown:
        raise InvalidCandidate(f"unknown inputs {', '.join(map(str, unknown))}")
    coefficients_ = _finite(coefficients, "coefficients")
    if kind == "logistic" and len(coefficients_) != len(names):
        raise InvalidCandidate(f"{len(coefficients_)} coefficients for {len(names)} inputs")
    (intercept_,) = _finite([intercept], "intercept")
    xs, ys = _finite(cx, "calibration_x"), _finite(cy, "calibration_y")
    if calibration == "platt" and len(xs) != 2:
        raise InvalidCandidate(f"platt calibration needs 2 numbers, has {len(xs)}")
    if calibration == "isotonic":
        if not xs or len(xs) != len(ys):
            raise InvalidCandidate(f"isotonic calibration of {len(xs)} and {len(ys)} points")
        if any(b < a for a, b in pairwise(xs)):
            raise InvalidCandidate("isotonic calibration points not in order")
        if any(not 0 <= y <= 1 for y in ys):
            raise InvalidCandidate("isotonic calibration outside [0, 1]")
    horizon, threshold, lookback, timezone = rest
    if None in (until, horizon, threshold, lookback, timezone):
        raise InvalidCandidate("a setting it was trained under is null")
    return Candidate(
        cid, kind, names, coefficients_, intercept_, calibration, xs, ys, until,
        horizon, threshold, lookback, timezone,
    )  # fmt: skip


def mismatch(candidate: Candidate, settings: Settings) -> str | None:
    """Why the candidate does not answer this run's question (None: it does)."""
    pairs = (
        ("METRICS_CHURN_HORIZON_DAYS", candidate.horizon_days, settings.churn_horizon_days),
        ("INACTIVITY_THRESHOLD_DAYS", candidate.threshold_days, settings.threshold_days),
        ("KPI_LOOKBACK_DAYS", candidate.kpi_lookback_days, settings.kpi_lookback_days),
        ("ACTIVITY_TIMEZONE", candidate.activity_timezone, settings.activity_timezone),
    )
    for name, trained, now in pairs:
        if trained != now:
            return f"trained with {name}={trained}, this run has {now}"
    return None


def table_exists(conn: psycopg.Connection, schema: str, table: str) -> bool:
    row = conn.execute(
        "select to_regclass(%s) is not null", (sql.Identifier(schema, table).as_string(conn),)
    ).fetchone()
    return bool(row and row[0])


def champions(conn: psycopg.Connection, schema: str) -> list[tuple[int, Sequence[Any] | None]]:
    """Every promoted candidate, newest promotion first: (candidate_id, its row or None when
    the row is gone). One read."""
    if not (
        table_exists(conn, schema, DECISIONS_TABLE) and table_exists(conn, schema, CANDIDATES_TABLE)
    ):
        return []
    columns = ", ".join(f"c.{c.strip()}" for c in _COLUMNS.split(","))
    rows = conn.execute(
        sql.SQL(
            "select d.candidate_id, " + columns + " from {} as d left join {} as c"
            " on c.candidate_id = d.candidate_id where d.promoted"
            " order by d.decision_id desc"
        ).format(sql.Identifier(schema, DECISIONS_TABLE), sql.Identifier(schema, CANDIDATES_TABLE))
    ).fetchall()
    return [(row[0], None if row[1] is None else row[1:]) for row in rows]


def choose_champion(
    rows: Sequence[tuple[int, Sequence[Any] | None]], settings: Settings, max_age: int
) -> tuple[Candidate | None, list[str]]:
    """The newest promoted candidate that is usable for this run, and why each newer one was
    passed over ("candidate N: reason")."""
    seen: set[int] = set()
    passed_over: list[str] = []
    for candidate_id, row in rows:
        if candidate_id in seen:
            continue
        seen.add(candidate_id)
        why: str | None
        try:
            if row is None:
                raise InvalidCandidate("its row is missing")
            candidate = parse_candidate(row)
        except (InvalidCandidate, TypeError, ValueError) as exc:
            why = f"invalid ({exc})"
        else:
            age = (settings.anchor_date - candidate.trained_until).days
            reason = mismatch(candidate, settings)
            if reason is not None:
                why = reason
            elif age > max_age:
                why = f"{age} days old ({MAX_AGE_ENV}={max_age})"
            elif age < 0:
                why = f"trained on outcomes after {settings.anchor_date}"
            else:
                return candidate, passed_over
        passed_over.append(f"candidate {candidate_id}: {why}")
    return None, passed_over


def apply_champion(
    conn: psycopg.Connection, scores: Sequence[Score], settings: Settings, schema: str
) -> list[Score]:
    """`scores` with S from the champion (METRICS_CHURN_MODEL=auto), or as they are (the
    fixed-weight S) when there is no usable champion. Two reads; never a non-finite S."""
    from .churn_model import models_schema

    try:
        limit = max_age_days(settings)
    except UsageError as exc:
        log.warn(f"{exc}; using {DEFAULT_MAX_AGE_DAYS}")
        limit = DEFAULT_MAX_AGE_DAYS
    rows = champions(conn, models_schema(schema, settings))
    conn.rollback()
    if not rows:
        return list(scores)
    candidate, passed_over = choose_champion(rows, settings, limit)
    if passed_over:
        instead = (
            "the fixed-weight formula scores S"
            if candidate is None
            else f"the previous champion, candidate {candidate.candidate_id}, scores S"
        )
        log.warn(f"churn champion not used ({'; '.join(passed_over)}): {instead}")
    if candidate is None:
        return list(scores)
    inputs = read_inputs_as_of(conn, schema, settings.anchor_date)
    conn.rollback()
    result = []
    kept = 0
    for score in scores:
        x = inputs.get(score.user_id)
        s = None if x is None else candidate.probability(x)
        if s is None or not math.isfinite(s):
            result.append(score)  # the fixed-weight S (never a non-finite one)
            continue
        kept += 1
        result.append(dataclasses.replace(score, s=s, s_model=candidate.candidate_id))
    log.info(f"S from the churn champion: {candidate.describe()}, {kept} users")
    if kept < sum(1 for s in scores if s.s is not None):
        log.warn(
            f"the churn champion could not score {len(scores) - kept} user(s) (no inputs as "
            f"of {settings.anchor_date}); their S is the fixed-weight formula"
        )
    return result
