"""Training the learned churn model (`train-churn`): a logistic regression of churned on
the user-anchors' features, checked out of time on the last quarter of the anchors, stored as
a new version in churn_models."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

from .. import __version__, log
from ..config import Settings
from ..db.connection import ConnectionParams, connect
from ..dbt.runner import target_schema
from ..errors import UsageError
from ..scoring.churn_model import DEFAULT_FEATURES, MODELS_TABLE, ChurnModel, ensure_tables
from .anchors import (
    EPOCH,
    UserAnchors,
    build_user_anchors,
    check_spine,
    newest_activity_day,
    read_user_anchors,
    require_extra,
    split_anchors,
)
from .evaluation import evaluate, feature_matrix, format_metric, heuristic_scores, logistic_scores


def fit_logistic(
    rows: UserAnchors, horizon: int, names: Sequence[str] = DEFAULT_FEATURES
) -> tuple[list[float], float]:
    """A logistic regression of churned on the features (standardised for the fit, the
    coefficients then folded back onto the raw features)."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
    from sklearn.preprocessing import StandardScaler  # type: ignore[import-untyped]

    rows = rows.sorted(horizon)
    x = feature_matrix(rows, names)
    y = rows.churned(horizon)
    scaler = StandardScaler().fit(x)
    fitted = LogisticRegression(C=1.0, max_iter=2000).fit(scaler.transform(x), y)
    coefficients = fitted.coef_[0] / scaler.scale_
    intercept = float(fitted.intercept_[0] - np.sum(coefficients * scaler.mean_))
    return [float(c) for c in coefficients], intercept


def _as_model(
    coefficients: Sequence[float],
    intercept: float,
    *,
    version: int,
    first: dt.date,
    last: dt.date,
    until: dt.date,
    settings: Settings,
) -> ChurnModel:
    return ChurnModel(
        version=version,
        features=DEFAULT_FEATURES,
        coefficients=tuple(coefficients),
        intercept=intercept,
        trained_until=until,
        first_anchor=first,
        last_anchor=last,
        horizon_days=settings.churn_horizon_days,
        threshold_days=settings.threshold_days,
        kpi_lookback_days=settings.kpi_lookback_days,
        package_version=__version__,
        activity_timezone=settings.activity_timezone,
    )


def _day(ordinal: float) -> dt.date:
    return EPOCH + dt.timedelta(days=int(ordinal))


def validation_metrics(rows: UserAnchors, settings: Settings) -> dict[str, Any]:
    """Out-of-time check: hold out the last quarter of the anchors, fit on the anchors whose
    horizon ended by the first held-out anchor, score the held-out ones."""
    import numpy as np

    horizon = settings.churn_horizon_days
    days = np.unique(rows.anchor)
    held_out = days[len(days) - max(1, len(days) // 4) :]
    first = held_out[0]
    train = rows.subset(rows.anchor + horizon <= first)
    test = rows.subset(rows.anchor >= first)
    y_train = train.churned(horizon)
    if len(train) == 0 or y_train.all() or not y_train.any():
        return {"validation": None}
    coefficients, intercept = fit_logistic(train, horizon)
    model = _as_model(
        coefficients,
        intercept,
        version=0,
        first=_day(train.anchor.min()),
        last=_day(train.anchor.max()),
        until=_day(first),
        settings=settings,
    )
    y_test = test.churned(horizon)
    return {
        "validation": {
            "first_anchor": _day(first).isoformat(),
            "last_anchor": _day(held_out[-1]).isoformat(),
            "user_anchors": len(test),
            "churned": int(y_test.sum()),
            "logistic": {
                k: evaluate("logistic", logistic_scores(model, test), y_test)[k]
                for k in ("auc", "brier")
            },
            "heuristic": {
                k: evaluate("heuristic", heuristic_scores(test, horizon), y_test)[k]
                for k in ("auc", "brier")
            },
        }
    }


def run_train(
    params: ConnectionParams,
    settings: Settings,
    *,
    until: dt.date,
    start: dt.date | None,
    every: int,
) -> ChurnModel:
    require_extra("train-churn", "numpy", "sklearn")
    import sklearn  # type: ignore[import-untyped]

    horizon = settings.churn_horizon_days
    if until > settings.anchor_date:
        raise UsageError(
            f"--until {until} is after {settings.anchor_date}, the last complete "
            "day of data (yesterday, or ANCHOR_DATE)"
        )
    last = until - dt.timedelta(days=horizon)
    if start is None:
        start = last - dt.timedelta(days=every * (365 // every))
    anchors = check_spine(start, last, every, settings, what="--until minus the horizon")
    schema = target_schema()
    build_user_anchors(params, settings, anchors, every)
    with connect(params) as conn:
        newest = newest_activity_day(conn, schema, settings.anchor_date)
        kept, _ = split_anchors(anchors, horizon, newest, min(until, settings.anchor_date))
        rows = read_user_anchors(conn, schema, kept)
        y = rows.churned(horizon)
        if len(rows) == 0 or y.all() or not y.any():
            raise UsageError(
                f"no user-anchors with both outcomes whose {horizon}-day horizon ended by "
                f"{until} (found {len(rows)}, {int(y.sum())} churned); choose a later --until "
                "or an earlier --start"
            )
        coefficients, intercept = fit_logistic(rows, horizon)
        first, last_kept = _day(rows.anchor.min()), _day(rows.anchor.max())
        candidate = _as_model(
            coefficients,
            intercept,
            version=0,
            first=first,
            last=last_kept,
            until=until,
            settings=settings,
        )
        metrics = {
            "training": {
                k: evaluate("logistic", logistic_scores(candidate, rows), y)[k]
                for k in ("auc", "brier")
            },
            **validation_metrics(rows, settings),
        }
        ensure_tables(conn, schema)
        row = conn.execute(
            sql.SQL(
                "insert into {} (features, coefficients, intercept, trained_until, first_anchor,"
                " last_anchor, every_days, horizon_days, threshold_days, kpi_lookback_days,"
                " activity_timezone, user_anchors, churned, package_version, sklearn_version,"
                " metrics) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
                " %s) returning version"
            ).format(sql.Identifier(schema, MODELS_TABLE)),
            (
                list(DEFAULT_FEATURES),
                coefficients,
                intercept,
                until,
                first,
                last_kept,
                every,
                horizon,
                settings.threshold_days,
                settings.kpi_lookback_days,
                settings.activity_timezone,
                len(rows),
                int(y.sum()),
                __version__,
                sklearn.__version__,
                Jsonb(metrics),
            ),
        ).fetchone()
        conn.commit()
        from .challengers import train_candidates

        train_candidates(conn, schema, rows, kept, settings, until)
        conn.commit()
    assert row is not None
    model = dataclasses.replace(candidate, version=row[0])
    validation = metrics["validation"]
    log.info(
        f"Churn model v{model.version} trained on {len(rows)} user-anchors "
        f"({int(y.sum())} churned), anchors {first} .. {last_kept} every {every} days, "
        f"outcomes up to {until}; stored in {schema}.{MODELS_TABLE}"
    )
    if validation is not None:
        log.info(
            f"Held-out anchors {validation['first_anchor']} .. {validation['last_anchor']}: "
            f"logistic AUC={format_metric(validation['logistic']['auc'])} "
            f"Brier={format_metric(validation['logistic']['brier'])}, heuristic "
            f"AUC={format_metric(validation['heuristic']['auc'])} "
            f"Brier={format_metric(validation['heuristic']['brier'])}"
        )
    return model
