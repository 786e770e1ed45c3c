"""The learned churn model: its inputs, its table of versions, the nightly hook.

`seedtest-analytics train-churn` fits a logistic regression and stores it here as a new
version (one row of <dbt schema>.churn_models). With METRICS_CHURN_MODEL=logistic the nightly
P/S step writes the latest version's probability as S (and the version as S_model).

No numpy in this module: the nightly scores with the stored coefficients in plain Python, so
the logistic mode runs without the optional [backtest] dependencies, which only training and
the backtest need.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from ..config import DRY_RUN_SUFFIX, Settings, target_schema
from ..db.connection import ConnectionParams, connect
from ..db.kpi_writer import Score
from ..errors import RunError, UsageError

CHURN_INPUTS = "churn_user_anchors"  # the dbt model (a view over the anchor spine)
MODELS_TABLE = "churn_models"
RESULTS_TABLE = "churn_backtest_results"


@dataclass(frozen=True, slots=True)
class ChurnInputs:
    """One (anchor, inactive user) row of churn_user_anchors: what is known as of the anchor."""

    days_inactive: int
    active_days: int
    mean_gap_days: float
    tenure_days: int
    active_days_total: int
    # share answered right in the KPI_LOOKBACK_DAYS window, and on the last day with answers
    # when that day is in the window; None when there is none
    mean_score: float | None = None
    last_score: float | None = None


def lifetime_mean_gap_days(x: ChurnInputs) -> float:
    """Mean gap between the user's activity days from the first one to the last one."""
    if x.active_days_total < 2:
        return 0.0
    return (x.tenure_days - x.days_inactive) / (x.active_days_total - 1)


# The model's inputs by name. A stored model names its features, so a version keeps scoring
# the same way when features are added here later. churn/evaluation.py has the numpy twins of
# these.
FEATURES: dict[str, Callable[[ChurnInputs], float]] = {
    "log_days_inactive": lambda x: math.log1p(x.days_inactive),
    "active_days": lambda x: float(x.active_days),
    "mean_gap_days": lambda x: float(x.mean_gap_days),
    "log_tenure_days": lambda x: math.log1p(x.tenure_days),
    "log_active_days_total": lambda x: math.log1p(x.active_days_total),
    "log_lifetime_mean_gap_days": lambda x: math.log1p(lifetime_mean_gap_days(x)),
}
DEFAULT_FEATURES: tuple[str, ...] = tuple(FEATURES)


def sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


@dataclass(frozen=True)
class ChurnModel:
    """A stored model version: P(no activity within horizon_days | inputs as of the anchor)."""

    version: int
    features: tuple[str, ...]
    coefficients: tuple[float, ...]
    intercept: float
    trained_until: dt.date
    first_anchor: dt.date
    last_anchor: dt.date
    horizon_days: int
    threshold_days: int
    kpi_lookback_days: int
    package_version: str
    activity_timezone: str | None = None

    def probability(self, x: ChurnInputs) -> float:
        z = self.intercept
        for name, coefficient in zip(self.features, self.coefficients, strict=True):
            z += coefficient * FEATURES[name](x)
        return sigmoid(z)

    def describe(self) -> str:
        return (
            f"logistic v{self.version} (trained on anchors {self.first_anchor} .. "
            f"{self.last_anchor}, outcomes up to {self.trained_until})"
        )


MODELS_DDL = """
create table if not exists {table} (
    version integer generated always as identity primary key,
    model_type text not null default 'logistic',
    created_at timestamptz not null default now(),
    features text[] not null,
    coefficients double precision[] not null,
    intercept double precision not null,
    trained_until date not null,
    first_anchor date not null,
    last_anchor date not null,
    every_days integer not null,
    horizon_days integer not null,
    threshold_days integer not null,
    kpi_lookback_days integer not null,
    activity_timezone text not null,
    user_anchors integer not null,
    churned integer not null,
    package_version text not null,
    sklearn_version text not null,
    metrics jsonb not null
)
"""

RESULTS_DDL = """
create table if not exists {table} (
    run_id uuid not null,
    run_at timestamptz not null default now(),
    scorer text not null,
    model_version integer,
    first_anchor date not null,
    last_anchor date not null,
    every_days integer not null,
    anchors integer not null,
    anchors_left_out integer not null,
    horizon_days integer not null,
    threshold_days integer not null,
    users integer not null,
    churned integer not null,
    auc double precision,
    brier double precision,
    calibration jsonb,
    package_version text not null,
    primary key (run_id, scorer)
)
"""


def ensure_tables(conn: psycopg.Connection, schema: str) -> None:
    """The model and backtest-result tables in the dbt schema (created once, never dropped)."""
    for ddl, table in ((MODELS_DDL, MODELS_TABLE), (RESULTS_DDL, RESULTS_TABLE)):
        conn.execute(sql.SQL(ddl).format(table=sql.Identifier(schema, table)))


_MODEL_COLUMNS = (
    "version, features, coefficients, intercept, trained_until, first_anchor, last_anchor,"
    " horizon_days, threshold_days, kpi_lookback_days, package_version, activity_timezone"
)


def _model(row: Sequence[Any]) -> ChurnModel:
    (
        version,
        features,
        coefficients,
        intercept,
        until,
        first,
        last,
        horizon,
        threshold,
        lookback,
        package,
        timezone,
    ) = row
    return ChurnModel(
        version=version,
        features=tuple(features),
        coefficients=tuple(float("nan") if c is None else float(c) for c in coefficients or ()),
        intercept=float("nan") if intercept is None else float(intercept),
        trained_until=until,
        first_anchor=first,
        last_anchor=last,
        horizon_days=horizon,
        threshold_days=threshold,
        kpi_lookback_days=lookback,
        package_version=package,
        activity_timezone=timezone,
    )


def latest_model(conn: psycopg.Connection, schema: str) -> ChurnModel | None:
    """The newest version in <schema>.churn_models; None when there is none (or no table)."""
    exists = conn.execute(
        "select to_regclass(%s) is not null",
        (sql.Identifier(schema, MODELS_TABLE).as_string(conn),),
    ).fetchone()
    if not (exists and exists[0]):
        return None
    row = conn.execute(
        sql.SQL("select {} from {} order by version desc limit 1").format(
            sql.SQL(_MODEL_COLUMNS), sql.Identifier(schema, MODELS_TABLE)
        )
    ).fetchone()
    return None if row is None else _model(row)


def usable(model: ChurnModel | None, settings: Settings, schema: str) -> ChurnModel:
    """The model, if it answers the question the settings ask; else one clear UsageError."""
    if model is None:
        raise UsageError(
            f"METRICS_CHURN_MODEL=logistic, but no churn model has been trained (schema "
            f"{schema}); run `seedtest-analytics train-churn --until YYYY-MM-DD` first"
        )
    numbers = (model.intercept, *model.coefficients)
    if len(model.coefficients) != len(model.features) or not all(
        isinstance(c, float) and math.isfinite(c) for c in numbers
    ):
        raise UsageError(
            f"churn model v{model.version} is invalid ({len(model.coefficients)} coefficients "
            f"for {len(model.features)} inputs, or a null, NaN or infinite number); train a "
            "new one with train-churn"
        )
    unknown = [name for name in model.features if name not in FEATURES]
    if unknown:
        raise UsageError(
            f"churn model v{model.version} uses inputs this version does not know "
            f"({', '.join(unknown)}); train a new one with train-churn"
        )
    if model.threshold_days != settings.threshold_days or (
        model.activity_timezone is not None
        and model.activity_timezone != settings.activity_timezone
    ):
        raise UsageError(
            f"churn model v{model.version} was trained for INACTIVITY_THRESHOLD_DAYS="
            f"{model.threshold_days} and ACTIVITY_TIMEZONE={model.activity_timezone}, this run "
            f"has {settings.threshold_days} and {settings.activity_timezone}; train a new one "
            "with train-churn"
        )
    if (model.horizon_days, model.kpi_lookback_days) != (
        settings.churn_horizon_days,
        settings.kpi_lookback_days,
    ):
        raise UsageError(
            f"churn model v{model.version} was trained for METRICS_CHURN_HORIZON_DAYS="
            f"{model.horizon_days} and KPI_LOOKBACK_DAYS={model.kpi_lookback_days}, this run "
            f"has {settings.churn_horizon_days} and {settings.kpi_lookback_days}; train a new "
            "one with train-churn"
        )
    return model


def require_model(conn: psycopg.Connection, settings: Settings, schema: str) -> ChurnModel:
    return usable(latest_model(conn, schema), settings, schema)


def read_inputs_as_of(
    conn: psycopg.Connection, schema: str, anchor: dt.date
) -> dict[str, ChurnInputs]:
    """The churn inputs of every user inactive as of `anchor`, in one read."""
    query = sql.SQL(
        "select user_id::text, days_inactive, active_days, mean_gap_days::float8,"
        " tenure_days, active_days_total, mean_score::float8, last_score::float8"
        " from {} where anchor = %s"
    ).format(sql.Identifier(schema, CHURN_INPUTS))
    with conn.cursor(name="seedtest_churn_read", withhold=conn.autocommit) as cur:
        cur.itersize = 10_000
        cur.execute(query, (anchor,))
        return {
            user: ChurnInputs(d, k, g, tenure, total, mean, last)
            for user, d, k, g, tenure, total, mean, last in cur
        }


def apply_model(
    conn: psycopg.Connection, scores: Sequence[Score], settings: Settings, schema: str
) -> list[Score]:
    """`scores` with S replaced by the latest model's probability and S_model set (logistic
    mode of the nightly P/S step). Reads churn_user_anchors as of the anchor once."""
    # A dry run builds its inputs in a scratch schema; the trained models stay in the real one.
    model = require_model(conn, settings, models_schema(schema, settings))
    inputs = read_inputs_as_of(conn, schema, settings.anchor_date)
    conn.rollback()
    missing = [score.user_id for score in scores if score.user_id not in inputs]
    if missing:
        raise RunError(
            f"{CHURN_INPUTS} has no inputs as of {settings.anchor_date} for {len(missing)} "
            f"inactive user(s) (e.g. {missing[0]}); rebuild it with the same vars"
        )
    result = []
    for score in scores:
        s = model.probability(inputs[score.user_id])
        # never a non-finite S: the fixed-weight one stays (usable() checked the numbers)
        result.append(
            dataclasses.replace(score, s=s, s_model=model.version) if math.isfinite(s) else score
        )
    return result


def models_schema(schema: str, settings: Settings) -> str:
    """The schema of the model versions: the project's own, also during a dry run (whose dbt
    schema is the scratch `<schema>_dry_run`)."""
    return schema.removesuffix(DRY_RUN_SUFFIX) if settings.dry_run else schema


def check_trained(params: ConnectionParams, settings: Settings) -> None:
    """Before a logistic-mode run builds anything: a usable model exists (else UsageError)."""
    schema = models_schema(target_schema(), settings)
    with connect(params) as conn:
        require_model(conn, settings, schema)
