"""Is S right? The churn backtest, and the training of the learned churn model (issue 14).

`seedtest-analytics backtest --start D1 --end D2 [--every N]`: for each anchor A = D1, D1 + N,
... <= D2, the users inactive as of A are scored exactly as the nightly run would have scored
them on A, and compared with what happened: churned = no activity from any activity source on
the days A + 1 .. A + h (the local calendar days of (end of A, end of A + h]), h =
METRICS_CHURN_HORIZON_DAYS. Anchors whose horizon ends after the newest activity day in the
data, or after the run's anchor date (yesterday), are left out and reported as left out.

Set-based: one dbt build of churn_user_anchors (a view over the anchor spine, on the activity
model the nightly run keeps current; built first where the nightly has not run yet) and one
read of it; the scoring and the metrics are numpy over whole columns.

Scorers: `heuristic` (the SPEC's S through metrics.churn_risk, the nightly's own function),
`days_inactive` (days since the last activity; AUC only) and `logistic` (the latest version
trained by `train-churn`, evaluated only on anchors after its training window).

numpy, scikit-learn and matplotlib are the optional extra [backtest]; without them these
commands stop with one line (exit 2). The nightly's logistic mode does not need them.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from . import __version__, log
from .backtest_decisions import decision_report
from .backtest_metrics import (
    PROBABILITY_SCORERS,
    SCORERS,
    evaluate,
)
from .churn_champion import Candidate
from .churn_model import (
    CHURN_INPUTS,
    DEFAULT_FEATURES,
    MODELS_TABLE,
    RESULTS_TABLE,
    ChurnModel,
    ensure_tables,
    latest_model,
    usable,
)
from .config import Settings, parse_date, parse_int
from .connection import ConnectionParams
from .db import connect
from .dbt_runner import invoke, target_schema
from .errors import RunError, UsageError
from .metrics import churn_risk

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    FloatArray = NDArray[np.float64]
    BoolArray = NDArray[np.bool_]

MAX_ANCHORS = 5000
ACTIVITY = "int_activity_daily"
FEATURES_MODEL = "features_topic_daily"
_EPOCH = dt.date(1970, 1, 1)
_MISSING = (
    "{command} needs the optional dependencies numpy, scikit-learn and matplotlib: "
    "pip install 'seedtest-analytics[backtest]'"
)


def _require(command: str, *modules: str) -> None:
    import importlib

    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError:
            raise UsageError(_MISSING.format(command=command)) from None


# --- the anchors and the dbt build ----------------------------------------------------------


@dataclass(frozen=True)
class AnchorSettings(Settings):
    """Settings plus the anchor spine of churn_user_anchors (its dbt vars)."""

    churn_anchor_start: dt.date | None = None
    churn_anchor_end: dt.date | None = None
    churn_anchor_every: int = 1

    def dbt_vars(self) -> dict[str, object]:
        values = super().dbt_vars()
        if self.churn_anchor_end is not None:
            values["churn_anchor_start"] = (
                self.churn_anchor_start or self.churn_anchor_end
            ).isoformat()
            values["churn_anchor_end"] = self.churn_anchor_end.isoformat()
            values["churn_anchor_every"] = self.churn_anchor_every
        return values


def anchor_spine(start: dt.date, end: dt.date, every: int) -> list[dt.date]:
    count = (end - start).days // every + 1
    return [start + dt.timedelta(days=i * every) for i in range(count)]


def check_spine(
    start: dt.date, end: dt.date, every: int, settings: Settings, *, what: str = "--end"
) -> list[dt.date]:
    if start > end:
        raise UsageError(f"--start {start} is after {what} {end}")
    if end > settings.anchor_date:
        raise UsageError(
            f"{what} {end} is after {settings.anchor_date}, the last complete day of data "
            "(yesterday, or ANCHOR_DATE)"
        )
    if (end - start).days // every + 1 > MAX_ANCHORS:
        raise UsageError(f"at most {MAX_ANCHORS} anchors; use a larger --every")
    return anchor_spine(start, end, every)


def build_user_anchors(
    params: ConnectionParams, settings: Settings, anchors: Sequence[dt.date], every: int
) -> None:
    """One dbt build of churn_user_anchors (a view) over the spine. It reads the activity
    model as the nightly run keeps it, and writes none of the nightly's tables; only in a
    database where the nightly has not run yet does it build the models the view reads
    (except features_topic_daily), as the nightly's first run would."""
    schema = target_schema()
    with connect(params) as conn:
        found = conn.execute(
            "select to_regclass(%s) is not null",
            (sql.Identifier(schema, ACTIVITY).as_string(conn),),
        ).fetchone()
    upstream = not (found and found[0])
    values = {field.name: getattr(settings, field.name) for field in dataclasses.fields(Settings)}
    spine = AnchorSettings(
        **values,
        churn_anchor_start=anchors[0],
        churn_anchor_end=anchors[-1],
        churn_anchor_every=every,
    )
    summary = invoke(
        params,
        "build",
        spine,
        select=[f"+{CHURN_INPUTS}" if upstream else CHURN_INPUTS],
        exclude=[FEATURES_MODEL] if upstream else [],
    )
    if not summary.success:
        for message in summary.errors:
            log.error(message)
        raise RunError(f"dbt build of {CHURN_INPUTS} failed; nothing written")


def newest_activity_day(conn: psycopg.Connection, schema: str, as_of: dt.date) -> dt.date | None:
    row = conn.execute(
        sql.SQL("select max(activity_date) from {} where activity_date <= %s").format(
            sql.Identifier(schema, ACTIVITY)
        ),
        (as_of,),
    ).fetchone()
    return None if row is None else row[0]


def split_anchors(
    anchors: Sequence[dt.date], horizon: int, newest: dt.date | None, as_of: dt.date
) -> tuple[list[dt.date], list[dt.date]]:
    """(kept, left out): an anchor is kept when its horizon ends by the newest activity day
    and by the run's anchor date."""
    if newest is None:
        return [], list(anchors)
    last_day = min(newest, as_of)
    kept = [a for a in anchors if a + dt.timedelta(days=horizon) <= last_day]
    return kept, [a for a in anchors if a + dt.timedelta(days=horizon) > last_day]


# --- the user-anchors, as numpy columns -----------------------------------------------------

_COLUMNS = (
    "anchor",
    "days_inactive",
    "active_days",
    "mean_gap_days",
    "tenure_days",
    "active_days_total",
    "days_to_return",
    "user",
    "last_active",
)
_FIT_COLUMNS = _COLUMNS[:-3]  # what a fit sees (the label comes from days_to_return)


@dataclass
class UserAnchors:
    """Columns of churn_user_anchors; `anchor` and `last_active` as days since 1970-01-01,
    `days_to_return` NaN where the user has not come back, `user` a dense number per user
    (in the order of the ids)."""

    anchor: Any
    days_inactive: Any
    active_days: Any
    mean_gap_days: Any
    tenure_days: Any
    active_days_total: Any
    days_to_return: Any
    user: Any
    last_active: Any

    def __len__(self) -> int:
        return int(self.anchor.shape[0])

    def churned(self, horizon: int) -> BoolArray:
        import numpy as np

        back = self.days_to_return
        churned: BoolArray = ~(np.isfinite(back) & (back <= horizon))
        return churned

    def subset(self, mask: Any) -> UserAnchors:
        return UserAnchors(*(getattr(self, name)[mask] for name in _COLUMNS))

    def sorted(self, horizon: int) -> UserAnchors:
        """Rows in an order that depends only on what a fit sees (the anchor, the inputs and
        the label), so a fit is reproducible whatever order the database returned them in."""
        import numpy as np

        keys = [getattr(self, n) for n in _FIT_COLUMNS] + [self.churned(horizon)]
        return self.subset(np.lexsort(tuple(reversed(keys))))


def read_user_anchors(
    conn: psycopg.Connection, schema: str, anchors: Sequence[dt.date]
) -> UserAnchors:
    """Every row of churn_user_anchors for `anchors`, in one read (streamed in batches)."""
    import numpy as np

    query = sql.SQL(
        "select anchor - date '1970-01-01', days_inactive, active_days, mean_gap_days::float8,"
        " tenure_days, active_days_total, days_to_return,"
        " dense_rank() over (order by user_id), last_active_day - date '1970-01-01'"
        " from {} where anchor = any(%s)"
    ).format(sql.Identifier(schema, CHURN_INPUTS))
    blocks = [np.empty((0, len(_COLUMNS)))]
    with conn.cursor(name="seedtest_backtest_read") as cur:
        cur.itersize = 50_000
        cur.execute(query, (list(anchors),))
        while rows := cur.fetchmany(50_000):
            blocks.append(np.array(rows, dtype=np.float64))  # None (never back) -> NaN
    conn.rollback()
    data = np.concatenate(blocks)
    return UserAnchors(*(data[:, i] for i in range(len(_COLUMNS))))


# --- scorers --------------------------------------------------------------------------------


def heuristic_scores(rows: UserAnchors, horizon: int) -> FloatArray:
    """The SPEC's S, through the nightly's own function (metrics.churn_risk)."""
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
        after_window = rows.anchor > (model.trained_until - _EPOCH).days
        logistic = np.full(len(rows), np.nan)
        logistic[after_window] = logistic_scores(model, rows.subset(after_window))
        scores["logistic"] = logistic
    scored = {} if champion is None else {"champion": champion}
    scored.update({f"candidate_{c.kind}": c for c in candidates})
    for name, candidate in scored.items():
        from .churn_training import inputs_of, score

        later = rows.anchor > (candidate.trained_until - _EPOCH).days
        values = np.full(len(rows), np.nan)
        values[later] = score(candidate, inputs_of(rows.subset(later)))
        scores[name] = values
    order = np.argsort(rows.anchor, kind="mergesort")
    anchor_sorted = rows.anchor[order]
    results = []
    for anchor in kept:
        day = (anchor - _EPOCH).days
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


def _writable(path: Path, flag: str) -> Path:
    path = path.expanduser()
    if path.is_dir():
        raise UsageError(f"{flag} {path} is a directory")
    parent = path.parent.resolve()
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise UsageError(f"{flag} {path}: directory {parent} does not exist or is not writable")
    return path


def _stage(path: Path, content: bytes) -> Path:
    """Write next to `path` under a temporary name; renamed into place once all is done."""
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent.resolve())
    with os.fdopen(handle, "wb") as out:
        out.write(content)
    umask = os.umask(0o022)
    os.umask(umask)
    os.chmod(name, 0o666 & ~umask)  # as a plain open() would have created it
    return Path(name)


def store_pooled(
    conn: psycopg.Connection,
    schema: str,
    backtest: Backtest,
    anchors: Sequence[dt.date],
    every: int,
) -> uuid.UUID:
    """The pooled results, one row per scorer, under one new run id; one transaction."""
    run_id = uuid.uuid4()
    report = backtest.report
    ensure_tables(conn, schema)
    kept = len(anchors) - len(report["anchors_left_out"])
    with conn.cursor() as cur:
        for row in report["pooled"]:
            logistic = row["scorer"] == "logistic" and backtest.model is not None
            cur.execute(
                sql.SQL(
                    "insert into {} (run_id, scorer, model_version, first_anchor, last_anchor,"
                    " every_days, anchors, anchors_left_out, horizon_days, threshold_days,"
                    " users, churned, auc, brier, calibration, package_version)"
                    " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                ).format(sql.Identifier(schema, RESULTS_TABLE)),
                (
                    run_id,
                    row["scorer"],
                    backtest.model.version if logistic and backtest.model else None,
                    anchors[0],
                    anchors[-1],
                    every,
                    report["logistic_model"]["anchors_evaluated"] if logistic else kept,
                    len(report["anchors_left_out"]),
                    report["horizon_days"],
                    report["threshold_days"],
                    row["users"],
                    row["churned"],
                    row["auc"],
                    row["brier"],
                    None if row["calibration"] is None else Jsonb(row["calibration"]),
                    __version__,
                ),
            )
    return run_id


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def run_backtest(
    params: ConnectionParams,
    settings: Settings,
    *,
    start: dt.date,
    end: dt.date,
    every: int,
    output: Path,
    html: Path | None,
) -> Backtest:
    _require("backtest", "numpy", *(("matplotlib",) if html is not None else ()))
    anchors = check_spine(start, end, every, settings)
    output = _writable(output, "--output")
    html = None if html is None else _writable(html, "--html")
    started = time.perf_counter()
    schema = target_schema()
    build_user_anchors(params, settings, anchors, every)
    built = time.perf_counter()
    with connect(params) as conn:
        newest = newest_activity_day(conn, schema, settings.anchor_date)
        kept, left_out = split_anchors(
            anchors, settings.churn_horizon_days, newest, settings.anchor_date
        )
        model = latest_model(conn, schema)
        conn.rollback()
        if model is not None:
            try:
                model = usable(model, settings, schema)
            except UsageError as exc:
                log.warn(f"logistic left out of the backtest: {exc}")
                model = None
        else:
            log.info("No trained churn model (train-churn): logistic left out of the backtest")
        champion = current_champion(conn, schema, settings)
        candidates = latest_candidates(conn, schema)
        rows = read_user_anchors(conn, schema, kept)
        read = time.perf_counter()
        backtest = evaluate_backtest(rows, kept, left_out, settings, model, champion, candidates)
        staged = [(_stage(output, (json.dumps(backtest.report, indent=1) + "\n").encode()), output)]
        if html is not None:
            from .backtest_report import render_html

            staged.append((_stage(html, render_html(backtest).encode()), html))
        try:
            run_id = store_pooled(conn, schema, backtest, anchors, every)
            conn.commit()
            for temporary, final in staged:
                temporary.replace(final)
        finally:
            for temporary, _ in staged:
                temporary.unlink(missing_ok=True)
    if not kept:
        log.warn("No anchor has a complete horizon: nothing to evaluate (see the left-out anchors)")
    if left_out:
        log.info(
            f"Anchors left out (horizon of {settings.churn_horizon_days} days ends after "
            f"{min(newest, settings.anchor_date) if newest else 'the data'}): "
            f"{', '.join(a.isoformat() for a in left_out)}"
        )
    if model is not None:
        log.info(
            f"Scorer logistic: {model.describe()}; evaluated on "
            f"{backtest.report['logistic_model']['anchors_evaluated']} later anchors"
        )
    for row in backtest.report["pooled"]:
        log.info(
            f"Backtest pooled {row['scorer']}: users={row['users']}, "
            f"churned={row['churned']}, AUC={_fmt(row['auc'])}, "
            f"Brier={_fmt(row['brier'])}"
        )
    log.info(
        f"Backtest: {len(rows)} user-anchors over {len(kept)} anchors (left out "
        f"{len(left_out)}); dbt build {built - started:.1f} s, read {read - built:.1f} s, "
        f"scoring and metrics {backtest.seconds:.1f} s, total "
        f"{time.perf_counter() - started:.1f} s; run {run_id} in {schema}.{RESULTS_TABLE}"
    )
    log.info(f"Report: {output.resolve()}" + (f" and {html.resolve()}" if html else ""))
    return backtest


def current_champion(conn: psycopg.Connection, schema: str, settings: Settings) -> Candidate | None:
    """The champion the nightly's auto mode would use on the run's anchor date (whatever its
    age: the backtest evaluates it only on anchors after its training window)."""
    from .churn_champion import champions, choose_champion

    rows = champions(conn, schema)
    conn.rollback()
    return choose_champion(rows, settings, 36500)[0] if rows else None


def latest_candidates(conn: psycopg.Connection, schema: str) -> list[Candidate]:
    """The valid candidates of the newest train-churn round (the backtest shows each)."""
    from .churn_champion import (
        _COLUMNS,
        CANDIDATES_TABLE,
        InvalidCandidate,
        parse_candidate,
        table_exists,
    )

    if not table_exists(conn, schema, CANDIDATES_TABLE):
        return []
    rows = conn.execute(
        sql.SQL(
            "select " + _COLUMNS + " from {} where created_at = (select max(created_at) from {})"
            " order by candidate_id"
        ).format(*[sql.Identifier(schema, CANDIDATES_TABLE)] * 2)
    ).fetchall()
    conn.rollback()
    result = []
    for row in rows:
        try:
            result.append(parse_candidate(row))
        except (InvalidCandidate, TypeError, ValueError) as exc:
            log.warn(f"churn candidate {row[0]} left out of the backtest: {exc}")
    return result


# --- training -------------------------------------------------------------------------------


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
    return _EPOCH + dt.timedelta(days=int(ordinal))


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
    _require("train-churn", "numpy", "sklearn")
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
        from .churn_training import train_candidates

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
            f"logistic AUC={_fmt(validation['logistic']['auc'])} "
            f"Brier={_fmt(validation['logistic']['brier'])}, heuristic "
            f"AUC={_fmt(validation['heuristic']['auc'])} "
            f"Brier={_fmt(validation['heuristic']['brier'])}"
        )
    return model


# --- the command line -----------------------------------------------------------------------


def run_command(args: argparse.Namespace, params: ConnectionParams, settings: Settings) -> int:
    every = parse_int("--every", args.every, minimum=1, maximum=3650)
    if args.command == "train-churn":
        start = None if args.start is None else parse_date("--start", args.start)
        run_train(
            params, settings, until=parse_date("--until", args.until), start=start, every=every
        )
        return 0
    run_backtest(
        params,
        settings,
        start=parse_date("--start", args.start),
        end=parse_date("--end", args.end),
        every=every,
        output=Path(args.output),
        html=None if args.html is None else Path(args.html),
    )
    return 0


def demo_backtest(
    params: ConnectionParams,
    settings: Settings,
    *,
    first_day: dt.date,
    last_day: dt.date,
    directory: Path | None = None,
) -> int:
    """The end of the demo: train the churn model on the first part of its data, backtest all
    three scorers on the rest, and say where the report is. Skipped (exit 0) without the
    [backtest] extra."""
    try:
        _require("the demo's backtest", "numpy", "sklearn", "matplotlib")
    except UsageError as exc:
        log.info(f"Skipping the backtest: {exc}")
        return 0
    directory = Path.cwd() if directory is None else directory
    horizon = settings.churn_horizon_days
    # Daily anchors from a couple of weeks into the data to the last one with a complete
    # horizon; the model learns from the first half of them (outcomes up to `until`) and is
    # evaluated on the second half, the other scorers on all of them.
    span = (last_day - first_day).days
    first_anchor = first_day + dt.timedelta(days=min(settings.kpi_lookback_days, span // 4))
    last_anchor = last_day - dt.timedelta(days=horizon)
    anchor_days = (last_anchor - first_anchor).days
    if anchor_days < horizon + 4:
        log.info("Skipping the backtest: the demo data spans too few days")
        return 0
    until = first_anchor + dt.timedelta(days=horizon + (anchor_days - horizon) // 2)
    try:
        run_train(params, settings, until=until, start=first_anchor, every=1)
    except UsageError as exc:  # too few users to learn from: the other scorers still run
        log.warn(f"No churn model for the demo's backtest: {exc}")
    run_backtest(
        params,
        settings,
        start=first_anchor,
        end=last_anchor,
        every=1,
        output=directory / "demo-backtest.json",
        html=directory / "demo-backtest.html",
    )
    log.info(f"Backtest report of the demo data: {(directory / 'demo-backtest.html').resolve()}")
    return 0
