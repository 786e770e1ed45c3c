"""Champion and challengers: the candidates `train-churn` trains, calibrates, evaluates and
gates (numpy and scikit-learn, the [backtest] extra; the nightly scores them in pure Python,
churn_champion.py).

The anchors up to --until minus the horizon are cut in three, oldest first, each ending a
horizon before the next one starts so that no outcome of a later part is known to an earlier
one: training, calibration (CALIBRATION_DAYS of anchors: the latest complete window before
the evaluation) and evaluation (the last EVALUATION_DAYS of anchors). (Fitting on the
calibration anchors too was tried: on one generated population it promoted nothing, as the
training then spans a holiday and an exam period.)

Candidates: `logistic` (a logistic regression on the activity inputs of CANDIDATE_FEATURES,
each inactivity spell weighing one in total so the long gone do not dominate, then Platt
calibration), `days_inactive` (days since the last activity mapped to the observed churn rate,
isotonic) and `heuristic` (the fixed-weight S, isotonic). A challenger is promoted when, on the
newly inactive (7-13 days) of the evaluation anchors, its AUC beats both days inactive and the
current champion by a margin whose bootstrap interval (users resampled) is above zero, and its
calibration error on every evaluated user-anchor is at most MAX_CALIBRATION_ERROR. Of those
that pass, the one with the highest AUC there. Every candidate is stored with its decision and
the evidence, and each decision is one log line.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from .. import __version__, log
from ..config import Settings
from ..scoring.churn_champion import (
    CANDIDATE_FEATURES,
    CANDIDATES_TABLE,
    DECISIONS_TABLE,
    Candidate,
    champions,
    choose_champion,
    ensure_tables,
    max_age_days,
)
from ..scoring.churn_model import ChurnInputs
from .decisions import BUCKETS, evaluate_segment, prepare, spell_starts, weighted_ece

if TYPE_CHECKING:
    from .anchors import UserAnchors

EVALUATION_DAYS = 28
CALIBRATION_DAYS = 21
MAX_CALIBRATION_ERROR = 0.05
NEWLY_INACTIVE = "inactive_7_13"
LOGISTIC_FEATURES: tuple[str, ...] = (
    "log_days_inactive",
    "active_days",
    "mean_gap_days",
    "log_tenure_days",
    "log_active_days_total",
    "log_lifetime_mean_gap_days",
    "lifetime_rate",
    "recent_rate",
    "trend",
    "log_absence_over_usual_gap",
    "single_visit",
    "mean_score",
    "last_score",
    "score_trend",
    "no_recent_score",
)
_EPOCH = dt.date(1970, 1, 1)


def _day(ordinal: float) -> dt.date:
    return _EPOCH + dt.timedelta(days=int(ordinal))


def inputs_of(rows: UserAnchors) -> list[ChurnInputs]:
    return [
        ChurnInputs(int(d), int(k), float(g), int(t), int(n), _score(mean), _score(last))
        for d, k, g, t, n, mean, last in zip(
            rows.days_inactive.tolist(),
            rows.active_days.tolist(),
            rows.mean_gap_days.tolist(),
            rows.tenure_days.tolist(),
            rows.active_days_total.tolist(),
            rows.mean_score.tolist(),
            rows.last_score.tolist(),
            strict=True,
        )
    ]


def _score(value: float) -> float | None:
    return None if math.isnan(value) else value


def score(candidate: Candidate, inputs: Sequence[ChurnInputs]) -> Any:
    import numpy as np

    return np.array([candidate.probability(x) for x in inputs], dtype=np.float64)


def spell_weights(rows: UserAnchors) -> Any:
    """1 / (the rows of the row's inactivity spell): each spell weighs one in total."""
    import numpy as np

    _, index, counts = np.unique(
        np.column_stack((rows.user, rows.last_active)), axis=0, return_inverse=True,
        return_counts=True,
    )  # fmt: skip
    return 1.0 / counts[index.reshape(-1)]


def fit_logistic(rows: UserAnchors, horizon: int, lookback: int) -> tuple[list[float], float]:
    import numpy as np
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
    from sklearn.preprocessing import StandardScaler  # type: ignore[import-untyped]

    rows = rows.sorted(horizon)
    inputs = inputs_of(rows)
    x = np.array(
        [[CANDIDATE_FEATURES[n](i, lookback) for n in LOGISTIC_FEATURES] for i in inputs],
        dtype=np.float64,
    )
    y = rows.churned(horizon)
    weights = spell_weights(rows)
    weights = weights * (len(weights) / weights.sum())
    scaler = StandardScaler().fit(x)
    scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    fitted = LogisticRegression(C=1.0, max_iter=5000).fit(
        (x - scaler.mean_) / scale, y, sample_weight=weights
    )
    coefficients = fitted.coef_[0] / scale
    intercept = float(fitted.intercept_[0] - np.sum(coefficients * scaler.mean_))
    return [float(c) for c in coefficients], intercept


def platt(raw: Any, churned: Any) -> tuple[float, float]:
    from sklearn.linear_model import LogisticRegression

    fitted = LogisticRegression(C=1e6, max_iter=5000).fit(raw.reshape(-1, 1), churned)
    return float(fitted.coef_[0][0]), float(fitted.intercept_[0])


def isotonic(raw: Any, churned: Any) -> tuple[list[float], list[float]]:
    from sklearn.isotonic import IsotonicRegression  # type: ignore[import-untyped]

    fitted = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(raw, churned)
    return [float(v) for v in fitted.X_thresholds_], [float(v) for v in fitted.y_thresholds_]


def _candidate(kind: str, settings: Settings, until: dt.date, **values: Any) -> Candidate:
    return Candidate(
        candidate_id=0,
        kind=kind,
        features=values.get("features", ()),
        coefficients=tuple(values.get("coefficients", ())),
        intercept=values.get("intercept", 0.0),
        calibration=values.get("calibration", "platt"),
        calibration_x=(1.0, 0.0),
        calibration_y=(),
        trained_until=until,
        horizon_days=settings.churn_horizon_days,
        threshold_days=settings.threshold_days,
        kpi_lookback_days=settings.kpi_lookback_days,
        activity_timezone=settings.activity_timezone,
    )


def calibrated(candidate: Candidate, inputs: Sequence[ChurnInputs], churned: Any) -> Candidate:
    import dataclasses

    import numpy as np

    raw = np.array([candidate.raw(x) for x in inputs], dtype=np.float64)
    if candidate.calibration == "platt":
        a, b = platt(raw, churned)
        return dataclasses.replace(candidate, calibration_x=(a, b), calibration_y=())
    xs, ys = isotonic(raw, churned)
    return dataclasses.replace(candidate, calibration_x=tuple(xs), calibration_y=tuple(ys))


def windows(
    anchors: Sequence[dt.date], horizon: int
) -> tuple[list[dt.date], list[dt.date], list[dt.date]] | None:
    """(training, calibration, evaluation) anchors; None when there are too few."""
    if not anchors:
        return None
    last = anchors[-1]
    evaluation_first = last - dt.timedelta(days=EVALUATION_DAYS - 1)
    calibration_last = evaluation_first - dt.timedelta(days=horizon)
    calibration_first = calibration_last - dt.timedelta(days=CALIBRATION_DAYS - 1)
    training_last = calibration_first - dt.timedelta(days=horizon)
    parts = (
        [a for a in anchors if a <= training_last],
        [a for a in anchors if calibration_first <= a <= calibration_last],
        [a for a in anchors if a >= evaluation_first],
    )
    return parts if all(parts) else None


def _select(rows: UserAnchors, anchors: Sequence[dt.date]) -> UserAnchors:
    import numpy as np

    days = np.array([(a - _EPOCH).days for a in anchors], dtype=np.float64)
    return rows.subset(np.isin(rows.anchor, days))


def train_candidates(
    conn: psycopg.Connection,
    schema: str,
    rows: UserAnchors,
    anchors: Sequence[dt.date],
    settings: Settings,
    until: dt.date,
) -> list[dict[str, Any]]:
    """Train, calibrate, evaluate and gate the candidates on `rows` (churn_user_anchors over
    `anchors`, every horizon over by `until`); store them and the decisions (committed with
    the caller's transaction). Returns the decisions."""
    import numpy as np

    horizon, lookback = settings.churn_horizon_days, settings.kpi_lookback_days
    parts = windows(sorted(set(anchors)), horizon)
    if parts is None:
        log.warn(
            f"Champion/challenger skipped: the anchors up to {until} minus the horizon do not "
            f"hold a training part, {CALIBRATION_DAYS} days of calibration anchors and "
            f"{EVALUATION_DAYS} days of evaluation anchors, each a horizon ({horizon} days) "
            "apart; choose an earlier --start"
        )
        return []
    train, calibration, evaluation = (_select(rows, p) for p in parts)
    y_train, y_cal, y_eval = (p.churned(horizon) for p in (train, calibration, evaluation))
    if any(not y.any() or y.all() for y in (y_train, y_cal, y_eval)):
        log.warn("Champion/challenger skipped: a part of the anchors lacks one of the outcomes")
        return []
    coefficients, intercept = fit_logistic(train, horizon, lookback)
    raw_candidates = [
        _candidate(
            "logistic", settings, until, features=LOGISTIC_FEATURES,
            coefficients=coefficients, intercept=intercept, calibration="platt",
        ),
        _candidate("days_inactive", settings, until, calibration="isotonic"),
        _candidate("heuristic", settings, until, calibration="isotonic"),
    ]  # fmt: skip
    cal_inputs, eval_inputs = inputs_of(calibration), inputs_of(evaluation)
    candidates = [calibrated(c, cal_inputs, y_cal) for c in raw_candidates]
    ensure_tables(conn, schema)
    previous = champions(conn, schema)
    champion = choose_champion(previous, settings, max_age_days(settings))[0] if previous else None
    scores: dict[str, Any] = {c.kind: score(c, eval_inputs) for c in candidates}
    scores["days_inactive_raw"] = evaluation.days_inactive.astype(np.float64)
    if champion is not None:
        scores["champion"] = score(champion, eval_inputs)
    low, high = BUCKETS[NEWLY_INACTIVE]
    newly = (evaluation.days_inactive >= low) & (evaluation.days_inactive <= high)
    baselines = ["days_inactive_raw"] + (["champion"] if champion is not None else [])
    pairs = tuple((c.kind, b) for c in candidates for b in baselines)
    newly_figures = evaluate_segment(
        {k: v[newly] for k, v in scores.items()},
        {c.kind for c in candidates} | {"champion"},
        y_eval[newly],
        evaluation.user[newly],
        pairs=pairs,
    )
    spells = spell_starts(evaluation.user, evaluation.last_active, evaluation.anchor)
    window = {
        "train": [parts[0][0].isoformat(), parts[0][-1].isoformat()],
        "calibration": [parts[1][0].isoformat(), parts[1][-1].isoformat()],
        "evaluation": [parts[2][0].isoformat(), parts[2][-1].isoformat()],
    }
    verdicts: list[dict[str, Any]] = []
    ones = np.ones(len(evaluation))
    for candidate in candidates:
        kind = candidate.kind
        ece = weighted_ece(prepare(scores[kind]), y_eval, ones)
        diffs = {d["baseline"]: d for d in newly_figures["differences"] if d["scorer"] == kind}
        beats = {
            b: bool(diffs[b]["auc_difference_ci"] and diffs[b]["auc_difference_ci"][0] > 0)
            for b in baselines
        }
        failing = [f"not above {b} on the newly inactive" for b, ok in beats.items() if not ok]
        if ece is None or ece > MAX_CALIBRATION_ERROR:
            failing.append(f"calibration error {ece:.3f} > {MAX_CALIBRATION_ERROR}")
        spell_auc = evaluate_segment(
            {kind: scores[kind][spells]}, set(), y_eval[spells], evaluation.user[spells],
            resamples=0,
        )["scorers"][kind]["auc"]  # fmt: skip
        verdicts.append(
            {
                "candidate": candidate,
                "passes": not failing,
                "failing": failing,
                "evidence": {
                    "windows": window,
                    "newly_inactive": {
                        "rows": int(newly.sum()),
                        "auc": newly_figures["scorers"][kind]["auc"],
                        "auc_ci": newly_figures["scorers"][kind]["auc_ci"],
                        "calibration_error": newly_figures["scorers"][kind]["calibration_error"],
                        "differences": list(diffs.values()),
                        "days_inactive_auc": newly_figures["scorers"]["days_inactive_raw"]["auc"],
                        "champion_auc": newly_figures["scorers"].get("champion", {}).get("auc"),
                    },
                    "all": {"rows": len(evaluation), "calibration_error": ece},
                    "spells_auc": spell_auc,
                    "champion_before": None if champion is None else champion.candidate_id,
                },
            }
        )
    passing = [v for v in verdicts if v["passes"]]
    best = max(passing, key=lambda v: v["evidence"]["newly_inactive"]["auc"], default=None)
    decisions = []
    with conn.cursor() as cur:
        for verdict in verdicts:
            candidate = verdict["candidate"]
            cur.execute(
                sql.SQL(
                    "insert into {} (kind, features, coefficients, intercept, calibration,"
                    " calibration_x, calibration_y, trained_until, train_first_anchor,"
                    " train_last_anchor, calibration_first_anchor, calibration_last_anchor,"
                    " horizon_days, threshold_days, kpi_lookback_days, activity_timezone,"
                    " package_version, metrics) values (%s, %s, %s, %s, %s, %s, %s, %s, %s,"
                    " %s, %s, %s, %s, %s, %s, %s, %s, %s) returning candidate_id"
                ).format(sql.Identifier(schema, CANDIDATES_TABLE)),
                (
                    candidate.kind, list(candidate.features), list(candidate.coefficients),
                    candidate.intercept, candidate.calibration, list(candidate.calibration_x),
                    list(candidate.calibration_y), until, parts[0][0], parts[0][-1],
                    parts[1][0], parts[1][-1], horizon, settings.threshold_days, lookback,
                    settings.activity_timezone, __version__, Jsonb(verdict["evidence"]),
                ),
            )  # fmt: skip
            inserted = cur.fetchone()
            assert inserted is not None
            promoted = verdict is best
            if promoted:
                reason = (
                    "promoted: beats "
                    + " and ".join(baselines).replace("days_inactive_raw", "days inactive")
                    + " on the newly inactive, calibrated"
                )
            elif verdict["passes"]:
                reason = "passes the gate, but another candidate does better"
            else:
                reason = "not promoted: " + "; ".join(verdict["failing"]).replace(
                    "days_inactive_raw", "days inactive"
                )
            cur.execute(
                sql.SQL(
                    "insert into {} (trained_until, candidate_id, champion_before, promoted,"
                    " reason, evidence) values (%s, %s, %s, %s, %s, %s)"
                ).format(sql.Identifier(schema, DECISIONS_TABLE)),
                (
                    until, inserted[0], verdict["evidence"]["champion_before"], promoted,
                    reason, Jsonb(verdict["evidence"]),
                ),
            )  # fmt: skip
            newly_ev = verdict["evidence"]["newly_inactive"]
            decisions.append(
                {
                    "candidate_id": inserted[0],
                    "kind": candidate.kind,
                    "promoted": promoted,
                    "reason": reason,
                    **verdict["evidence"],
                }
            )
            ci = newly_ev["auc_ci"] or [float("nan")] * 2
            log.info(
                f"Churn candidate {inserted[0]} ({candidate.kind}): newly inactive AUC "
                f"{_fmt(newly_ev['auc'])} [{ci[0]:.3f}, {ci[1]:.3f}] vs days inactive "
                f"{_fmt(newly_ev['days_inactive_auc'])}, champion "
                f"{_fmt(newly_ev['champion_auc'])}; calibration error "
                f"{_fmt(verdict['evidence']['all']['calibration_error'])}; {reason}"
            )
    return decisions


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
