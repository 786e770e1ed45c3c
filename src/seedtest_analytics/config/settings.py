"""The settings of a run: read from the environment once, validated up front, handed down.

Every value is checked before any connection is made; a bad one raises UsageError with one
clear line (exit 2). The validated values become dbt vars, which the dbt project validates
again (macros/vars/), so nothing unchecked reaches SQL whichever way dbt runs. The modules
that use a setting receive it (Settings, or its Safety or Spark part) from their caller.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..errors import UsageError
from .environment import environ
from .parse import (
    CHURN_MODELS,
    parse_bool,
    parse_choice,
    parse_date,
    parse_float,
    parse_identifier,
    parse_int,
    parse_timezone,
    today_in,
)
from .settings_table import (
    ALLOW_STALE,
    CHURN_MODEL_MAX_AGE,
    DBT_VAR_ENV,
    ENGINE,
    HOLDOUT_SHARE,
    LOCK_WAIT,
    MAX_FAILED_SHARE,
    MAX_FAILED_USERS,
    PUSHGATEWAY_URL,
    SPARK_AUTH,
    SPARK_DIR,
    SPARK_MASTER,
    SPARK_METASTORE,
    SPARK_METHOD,
    SPARK_PASSWORD,
    SPARK_PORT,
    SPARK_SOURCE_SCHEMA,
    SPARK_WAREHOUSE,
)
from .variables import (
    ACTIVITY_TIMEZONE,
    ATTEMPTS_FROM_EXAM_RESULTS,
    CHURN_HORIZON_DAYS,
    CHURN_MODEL,
    DBT_SCHEMA,
    DBT_TESTS,
    DEBUG,
    DEFAULT_TARGET,
    FRESHNESS_HOURS,
    INCLUDE_THETA,
    KPI_LOOKBACK_DAYS,
    LOCK_TIMEOUT,
    LOOKBACK_DAYS,
    MAP_USER_IDS,
    SOURCE_SCHEMA,
    STATEMENT_TIMEOUT,
    THRESHOLD_DAYS,
    USE_BAYESIAN,
    Var,
)

_OFF = ("", "0", "false", "no", "off")
_ON = ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Safety:
    """The run's guards: the lock, the timeouts, the freshness guard, the share of users that
    may go unwritten, and where its metrics go (the reasons for the defaults are in
    db/locking.py, db/timeouts.py, jobs/freshness.py and db/write_limits.py)."""

    lock_wait_seconds: int = int(LOCK_WAIT.default)
    lock_timeout_seconds: int = int(LOCK_TIMEOUT.default)
    statement_timeout_seconds: int = int(STATEMENT_TIMEOUT.default)
    freshness_hours: int = int(FRESHNESS_HOURS.default)
    allow_stale: bool = False
    max_failed_share: float = float(MAX_FAILED_SHARE.default)
    max_failed_users: int = int(MAX_FAILED_USERS.default)
    pushgateway_url: str = ""
    # PGOPTIONS as the operator set it: the run's timeouts are appended to it for every session
    pgoptions: str = ""


POSTGRES = "postgres"
SPARK = "spark"
_ENGINES = {"postgres": POSTGRES, "postgresql": POSTGRES, "spark": SPARK}
SESSION = "session"
THRIFT = "thrift"
SPARK_METHODS = (SESSION, THRIFT)
AUTH_MODES = ("NONE", "NOSASL", "LDAP", "KERBEROS", "CUSTOM")


@dataclass(frozen=True)
class Spark:
    """Where the dbt models run (warehouse/engine.py) and, on Spark, how it is reached. The
    Spark values are only read, and checked, with SEEDTEST_ENGINE=spark (the Thrift ones
    with SEEDTEST_SPARK_METHOD=thrift)."""

    engine: str = POSTGRES
    method: str = SESSION
    source_schema: str = SPARK_SOURCE_SCHEMA.default
    # a local session's folders and master ("": the defaults under the project)
    spark_dir: str = ""
    warehouse: str = ""
    metastore: str = ""
    master: str = SPARK_MASTER.default
    local_ip: str = ""  # SPARK_LOCAL_IP, Spark's own variable

    @property
    def is_spark(self) -> bool:
        return self.engine == SPARK

    @property
    def is_thrift(self) -> bool:
        return self.is_spark and self.method == THRIFT


def load_spark(env: Mapping[str, str] | None = None) -> Spark:
    """The engine settings from the environment, checked (a bad value is a usage error)."""
    env = environ() if env is None else env

    def text(name: str) -> str:
        return env.get(name, "").strip()

    raw = text(ENGINE.env).lower()
    if raw and raw not in _ENGINES:
        raise UsageError(f"{ENGINE.env} must be postgres or spark (got {raw!r})")
    if _ENGINES.get(raw, POSTGRES) != SPARK:
        return Spark()
    source = parse_identifier(
        SPARK_SOURCE_SCHEMA.env, text(SPARK_SOURCE_SCHEMA.env) or SPARK_SOURCE_SCHEMA.default
    )
    method = text(SPARK_METHOD.env).lower() or SESSION
    if method not in SPARK_METHODS:
        raise UsageError(f"{SPARK_METHOD.env} must be session or thrift (got {method!r})")
    if method == THRIFT:
        port = text(SPARK_PORT.env)
        if port and not (port.isdigit() and 0 < int(port) < 65536):
            raise UsageError(f"{SPARK_PORT.env} must be a TCP port number (got {port!r})")
        auth = text(SPARK_AUTH.env).upper()
        if auth and auth not in AUTH_MODES:
            raise UsageError(f"{SPARK_AUTH.env} must be one of {', '.join(AUTH_MODES)}")
        if auth in ("LDAP", "CUSTOM") and not env.get(SPARK_PASSWORD.env):
            raise UsageError(f"{SPARK_AUTH.env}={auth} needs {SPARK_PASSWORD.env}")
    return Spark(
        engine=SPARK,
        method=method,
        source_schema=source,
        spark_dir=env.get(SPARK_DIR.env, ""),
        warehouse=env.get(SPARK_WAREHOUSE.env, ""),
        metastore=env.get(SPARK_METASTORE.env, ""),
        master=env.get(SPARK_MASTER.env, SPARK_MASTER.default),
        local_ip=env.get("SPARK_LOCAL_IP", ""),
    )


def load_safety(env: Mapping[str, str] | None = None, *, allow_stale: bool = False) -> Safety:
    """The guards from the environment, checked; `allow_stale` (--allow-stale) wins."""
    env = environ() if env is None else env

    def text(var: Var) -> str:
        return env.get(var.env, "").strip()

    def get(var: Var) -> str:
        value = env.get(var.env)
        return var.default if value is None or value.strip() == "" else value

    stale = text(ALLOW_STALE).lower()
    if stale not in (*_OFF, *_ON):
        raise UsageError(f"{ALLOW_STALE.env} must be true or false (got {stale!r})")
    raw_share = text(MAX_FAILED_SHARE) or MAX_FAILED_SHARE.default
    share = parse_float(MAX_FAILED_SHARE.env, raw_share)
    if not 0 <= share <= 1:
        raise UsageError(f"{MAX_FAILED_SHARE.env} must be between 0 and 1 (got {raw_share!r})")
    return Safety(
        lock_wait_seconds=LOCK_WAIT.parse(text(LOCK_WAIT) or LOCK_WAIT.default),
        lock_timeout_seconds=LOCK_TIMEOUT.parse(get(LOCK_TIMEOUT)),
        statement_timeout_seconds=STATEMENT_TIMEOUT.parse(get(STATEMENT_TIMEOUT)),
        freshness_hours=FRESHNESS_HOURS.parse(get(FRESHNESS_HOURS)),
        allow_stale=allow_stale or stale in _ON,
        max_failed_share=share,
        max_failed_users=parse_int(
            MAX_FAILED_USERS.env,
            text(MAX_FAILED_USERS) or MAX_FAILED_USERS.default,
            maximum=10**9,
        ),
        pushgateway_url=text(PUSHGATEWAY_URL),
        pgoptions=env.get("PGOPTIONS", ""),
    )


def _holdout_share(env: Mapping[str, str]) -> float:
    raw = env.get(HOLDOUT_SHARE.env, "").strip() or HOLDOUT_SHARE.default
    share = parse_float(HOLDOUT_SHARE.env, raw)
    if not 0.0 <= share <= 1.0:
        raise UsageError(f"{HOLDOUT_SHARE.env} must be between 0 and 1 (got {raw!r})")
    return share


def _var_text(value: object) -> str:
    """A var's value as its environment variable holds it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class Settings:
    anchor_date: dt.date
    lookback_days: int = int(LOOKBACK_DAYS.default)
    include_theta: bool = INCLUDE_THETA.default == "true"
    activity_timezone: str = ACTIVITY_TIMEZONE.default
    threshold_days: int = int(THRESHOLD_DAYS.default)
    kpi_lookback_days: int = int(KPI_LOOKBACK_DAYS.default)
    default_target: float = float(DEFAULT_TARGET.default)
    use_bayesian: bool = USE_BAYESIAN.default == "true"
    churn_horizon_days: int = int(CHURN_HORIZON_DAYS.default)
    source_schema: str = SOURCE_SCHEMA.default
    map_user_ids: bool = MAP_USER_IDS.default == "true"
    attempts_from_exam_results: bool = ATTEMPTS_FROM_EXAM_RESULTS.default == "true"
    debug: bool = DEBUG.default == "true"
    dry_run: bool = False
    # auto (the promoted champion, else the fixed-weight S), heuristic (the fixed-weight S)
    # or logistic (the latest trained logistic model)
    churn_model: str = CHURN_MODEL.default
    # in `auto` mode, the oldest champion the nightly run still uses
    churn_model_max_age_days: int = int(CHURN_MODEL_MAX_AGE.default)
    # why METRICS_CHURN_MODEL_MAX_AGE_DAYS was not usable ("": it was): the nightly run
    # warns and keeps the default, train-churn refuses (exit 2)
    churn_model_max_age_problem: str = ""
    # the share of the scored users flagged as the outreach holdout (0: no flag written)
    holdout_share: float = float(HOLDOUT_SHARE.default)
    # SEEDTEST_DBT_TESTS: `false` builds the models without their data tests
    data_tests: bool = True
    safety: Safety = field(default_factory=Safety)
    spark: Spark = field(default_factory=Spark)

    def dbt_vars(self) -> dict[str, object]:
        """The project's dbt vars: what `dbt build --vars` would take for this run."""
        return {
            "anchor_date": self.anchor_date.isoformat(),
            "lookback_days": self.lookback_days,
            "include_theta": self.include_theta,
            "activity_timezone": self.activity_timezone,
            "inactivity_threshold_days": self.threshold_days,
            "kpi_lookback_days": self.kpi_lookback_days,
            "default_target": self.default_target,
            "source_schema": self.source_schema,
            "map_user_ids": self.map_user_ids,
            "attempts_from_exam_results": self.attempts_from_exam_results,
        }

    def dbt_env(self) -> dict[str, str]:
        """The dbt vars as the environment variables the project falls back to
        (macros/vars/): how the CLI hands its settings to dbt. A --vars value that
        changes (the anchor date, every night) makes dbt re-parse the whole project; an
        environment variable read only when the models compile does not."""
        return {
            DBT_VAR_ENV[name]: _var_text(value)
            for name, value in self.dbt_vars().items()
            if name in DBT_VAR_ENV
        }

    def cli_only_vars(self) -> dict[str, object]:
        """The dbt vars without an environment variable (given with --vars)."""
        return {k: v for k, v in self.dbt_vars().items() if k not in DBT_VAR_ENV}

    @property
    def since(self) -> dt.date:
        return self.anchor_date - dt.timedelta(days=self.lookback_days)


def load_settings(
    env: Mapping[str, str] | None = None,
    *,
    date: str | None = None,
    threshold: str | int | None = None,
    lookback: str | int | None = None,
    dry_run: bool = False,
    allow_stale: bool = False,
) -> Settings:
    """Build Settings from the environment, CLI values (already strings or ints) winning."""
    env = environ() if env is None else env

    def get(var: Var) -> str:
        value = env.get(var.env)
        return var.default if value is None or value.strip() == "" else value

    def flag(var: Var) -> bool:
        return parse_bool(var.env, get(var))

    timezone = parse_timezone(ACTIVITY_TIMEZONE.env, get(ACTIVITY_TIMEZONE))
    today = today_in(timezone)
    anchor_raw = date if date is not None else env.get("ANCHOR_DATE") or None
    if anchor_raw is None:
        anchor = today - dt.timedelta(days=1)
    else:
        anchor = parse_date("--date" if date is not None else "ANCHOR_DATE", anchor_raw)
    if anchor > today:
        raise UsageError(
            f"anchor date {anchor.isoformat()} is in the future (today is {today.isoformat()} "
            f"in {timezone})"
        )
    if lookback is not None:
        lookback_days = LOOKBACK_DAYS.parse(lookback, "--lookback")
    else:
        lookback_days = LOOKBACK_DAYS.parse(get(LOOKBACK_DAYS))
    if threshold is not None:
        threshold_days = THRESHOLD_DAYS.parse(threshold, "--threshold")
    else:
        threshold_days = THRESHOLD_DAYS.parse(get(THRESHOLD_DAYS))
    safety = load_safety(env, allow_stale=allow_stale)
    max_age, max_age_problem = int(CHURN_MODEL_MAX_AGE.default), ""
    try:
        max_age = CHURN_MODEL_MAX_AGE.parse(
            env.get(CHURN_MODEL_MAX_AGE.env, "").strip() or CHURN_MODEL_MAX_AGE.default
        )
    except UsageError as exc:
        max_age_problem = str(exc)
    return Settings(
        anchor_date=anchor,
        lookback_days=lookback_days,
        include_theta=flag(INCLUDE_THETA),
        activity_timezone=timezone,
        threshold_days=threshold_days,
        kpi_lookback_days=KPI_LOOKBACK_DAYS.parse(get(KPI_LOOKBACK_DAYS)),
        default_target=parse_float(DEFAULT_TARGET.env, get(DEFAULT_TARGET)),
        use_bayesian=flag(USE_BAYESIAN),
        churn_horizon_days=CHURN_HORIZON_DAYS.parse(get(CHURN_HORIZON_DAYS)),
        source_schema=parse_identifier(SOURCE_SCHEMA.env, get(SOURCE_SCHEMA)),
        map_user_ids=flag(MAP_USER_IDS),
        attempts_from_exam_results=flag(ATTEMPTS_FROM_EXAM_RESULTS),
        debug=flag(DEBUG),
        dry_run=dry_run,
        churn_model=parse_choice(CHURN_MODEL.env, get(CHURN_MODEL), CHURN_MODELS),
        churn_model_max_age_days=max_age,
        churn_model_max_age_problem=max_age_problem,
        holdout_share=_holdout_share(env),
        data_tests=env.get(DBT_TESTS.env, "").strip().lower() not in _OFF[1:],
        safety=safety,
        spark=load_spark(env),
    )


# The suffix of a dry run's scratch schema (and of its dbt target path): `<schema>_dry_run`.
DRY_RUN_SUFFIX = "_dry_run"


def target_schema() -> str:
    """The dbt schema: SEEDTEST_DBT_SCHEMA, else `analytics`; a plain lowercase identifier,
    since dbt puts it into SQL between double quotes without escaping them."""
    raw = environ().get(DBT_SCHEMA.env, "")
    return parse_identifier(DBT_SCHEMA.env, raw) if raw.strip() else DBT_SCHEMA.default
