"""Run configuration: the env vars of both old jobs, CLI flags winning, validated up front.

Every value is checked before any connection is made; a bad one raises UsageError with one
clear line (exit 2). The validated values become dbt vars, which the dbt project validates
again (macros/vars/), so nothing unchecked reaches SQL whichever way dbt runs.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Container, Mapping
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import UsageError

_TRUE = {"1", "true", "yes", "on", "y", "t"}
_FALSE = {"0", "false", "no", "off", "n", "f", ""}
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_TIMEZONE = re.compile(r"^[A-Za-z0-9_+\-/]{1,64}$")
# ASCII digits only: \d would also match other scripts' digits.
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
MIN_DATE = dt.date(1900, 1, 1)


@dataclass(frozen=True)
class Var:
    """One setting: its environment variable, the dbt var it becomes (None: used in Python
    only), its default as an environment would hold it ("" when there is none), what it means
    and the group it is listed under. The single definition of the settings:
    docs/configuration.md is generated from SETTINGS (`seedtest-dev config-docs`), and
    macros/vars/, profiles/profiles.yml and the ConfigMap are checked against
    these (tests/python/test_settings.py)."""

    env: str
    dbt_var: str | None
    default: str
    doc: str = ""
    group: str = "run"


@dataclass(frozen=True)
class IntVar(Var):
    """A whole number between minimum and maximum."""

    minimum: int = 0
    maximum: int = 36500

    def parse(self, raw: str | int, name: str | None = None) -> int:
        return parse_int(name or self.env, raw, minimum=self.minimum, maximum=self.maximum)


LOOKBACK_DAYS = IntVar(
    "AGG_LOOKBACK_DAYS",
    "lookback_days",
    "7",
    maximum=3650,
    group="window",
    doc="days before the anchor date that a run recomputes (the window is this + 1 days)",
)
INCLUDE_THETA = Var(
    "AGG_INCLUDE_THETA",
    "include_theta",
    "false",
    group="window",
    doc="fill `theta_estimate`/`theta_sd` of `features_topic_daily` from `student_topic_theta`"
    " (else `mirt_ability`)",
)
ACTIVITY_TIMEZONE = Var(
    "ACTIVITY_TIMEZONE",
    "activity_timezone",
    "UTC",
    group="window",
    doc="IANA time zone of the calendar days and of the default anchor date (never the"
    " database session's time zone)",
)
THRESHOLD_DAYS = IntVar(
    "INACTIVITY_THRESHOLD_DAYS",
    "inactivity_threshold_days",
    "7",
    group="scores",
    doc="days without activity before the end of the anchor day after which a user is"
    " inactive (`--threshold` wins)",
)
KPI_LOOKBACK_DAYS = IntVar(
    "KPI_LOOKBACK_DAYS",
    "kpi_lookback_days",
    "30",
    minimum=1,
    group="scores",
    doc="activity window of S, in days",
)
DEFAULT_TARGET = Var(
    "METRICS_DEFAULT_TARGET",
    "default_target",
    "0.0",
    group="scores",
    doc="P's target for a user without an `interest_goal` row",
)
USE_BAYESIAN = Var(
    "METRICS_USE_BAYESIAN",
    None,
    "false",
    group="scores",
    doc="empirical-Bayes shrinkage of the ability before P is computed",
)
CHURN_HORIZON_DAYS = IntVar(
    "METRICS_CHURN_HORIZON_DAYS",
    None,
    "14",
    group="scores",
    doc="horizon `h` of S: the days after the anchor in which a churned user does not return",
)
SOURCE_SCHEMA = Var(
    "SOURCE_SCHEMA",
    "source_schema",
    "public",
    group="connection",
    doc="schema of the application tables (`exam_results`, `attempt`, `weekly_kpi`, ...)",
)
MAP_USER_IDS = Var(
    "MAP_USER_IDS",
    "map_user_ids",
    "true",
    group="window",
    doc="map uuid-shaped ids back to the application's `user_id`; `false` only when"
    " `attempt.student_id` already equals `user_id`",
)
ATTEMPTS_FROM_EXAM_RESULTS = Var(
    "ATTEMPTS_FROM_EXAM_RESULTS",
    "attempts_from_exam_results",
    "false",
    group="window",
    doc="`true` derives the attempts from `exam_results` (by the `attempt` view's own rules)"
    " instead of reading the `attempt` view",
)
CHURN_MODEL = Var(
    "METRICS_CHURN_MODEL",
    None,
    "auto",
    group="scores",
    doc="`auto`: the champion promoted by `train-churn`, else the fixed-weight S;"
    " `heuristic`: the fixed-weight S; `logistic`: the latest trained logistic model"
    " (see docs/churn.md)",
)
DEBUG = Var(
    "DEBUG",
    None,
    "false",
    group="dbt",
    doc="debug log lines (for example a sample of the scores)",
)
# Read by dbt/runner.py (the profile's schema, and whether a build runs the data tests).
DBT_SCHEMA = Var(
    "SEEDTEST_DBT_SCHEMA",
    None,
    "analytics",
    group="connection",
    doc="schema the models are built in; never `SOURCE_SCHEMA`, and it may hold nothing but"
    " this project's relations (else exit 2 before dbt starts)",
)
DBT_TESTS = Var(
    "SEEDTEST_DBT_TESTS",
    None,
    "true",
    group="dbt",
    doc="`false` builds the models without their dbt data tests (development and the test"
    " suite only; the nightly run keeps them)",
)
# Read by db/timeouts.py and jobs/freshness.py (the reasons for the defaults are there).
LOCK_TIMEOUT = IntVar(
    "SEEDTEST_LOCK_TIMEOUT_SECONDS",
    None,
    "120",
    minimum=1,
    maximum=86_400,
    group="safety",
    doc="longest wait of any statement (dbt's and the P/S write) for a lock another session"
    " holds; then one line, exit 1, everything rolled back",
)
STATEMENT_TIMEOUT = IntVar(
    "SEEDTEST_STATEMENT_TIMEOUT_SECONDS",
    None,
    "3600",
    minimum=1,
    maximum=86_400,
    group="safety",
    doc="longest any statement may run (the slowest measured, a full build at 10M attempts,"
    " takes under 3 minutes); keep it below the Job's deadline so the log says why",
)
FRESHNESS_HOURS = IntVar(
    "SEEDTEST_FRESHNESS_HOURS",
    None,
    "24",
    maximum=87_600,
    group="safety",
    doc="freshness guard: `run`/`detect-inactivity` stop before the P/S step (exit 3) when"
    " `exam_results` has no row in the last this-many hours of the anchor day; `aggregate`"
    " only warns; `0` switches it off",
)
VARS: tuple[Var, ...] = (
    LOOKBACK_DAYS,
    INCLUDE_THETA,
    ACTIVITY_TIMEZONE,
    THRESHOLD_DAYS,
    KPI_LOOKBACK_DAYS,
    DEFAULT_TARGET,
    USE_BAYESIAN,
    CHURN_HORIZON_DAYS,
    SOURCE_SCHEMA,
    MAP_USER_IDS,
    ATTEMPTS_FROM_EXAM_RESULTS,
    CHURN_MODEL,
    DEBUG,
    DBT_SCHEMA,
    DBT_TESTS,
    LOCK_TIMEOUT,
    STATEMENT_TIMEOUT,
    FRESHNESS_HOURS,
)

# The other environment variables, read outside Settings or only by profiles/profiles.yml.
DATABASE_URL = Var(
    "DATABASE_URL",
    None,
    "",
    group="connection",
    doc="the database: a libpq URI (`postgresql://`, also `postgresql+psycopg2://`; a unix"
    " socket is `?host=/var/run/postgresql`). Unset: the development tools' embedded"
    " PostgreSQL; the image has none",
)
ANCHOR_DATE = Var(
    "ANCHOR_DATE",
    "anchor_date",
    "",
    group="window",
    doc="the last day a run (re)computes, `YYYY-MM-DD`, when `--date` is not given; unset:"
    " yesterday in `ACTIVITY_TIMEZONE`",
)
LOCK_WAIT = IntVar(
    "SEEDTEST_LOCK_WAIT_SECONDS",
    None,
    "300",
    maximum=86_400,
    group="safety",
    doc="how long a command waits for another run's lock before it exits 1 (`0`: do not wait)",
)
DBT_THREADS = Var(
    "SEEDTEST_DBT_THREADS",
    None,
    "2",
    group="dbt",
    doc="dbt's threads (models built in parallel)",
)
DBT_TARGET_PATH = Var(
    "DBT_TARGET_PATH",
    None,
    "target",
    group="dbt",
    doc="where dbt keeps its artifacts (`run_results.json` for `dbt-retry`, the parse it"
    " reuses); on a volume that outlives the pod in Kubernetes. Dry runs use"
    " `<DBT_TARGET_PATH>-dry-run`",
)
DBT_LOG_PATH = Var(
    "DBT_LOG_PATH",
    None,
    "logs",
    group="dbt",
    doc="where dbt writes its log files",
)
PROJECT_DIR = Var(
    "SEEDTEST_PROJECT_DIR",
    None,
    "",
    group="dbt",
    doc="the dbt project the CLI runs (the image sets it); unset: the checkout of an editable"
    " install, else the current folder",
)
PROFILE_FILE = Var(
    "SEEDTEST_PROFILE_FILE",
    None,
    "",
    group="dbt",
    doc="write the run's phase timings (JSON) to this file; used by `seedtest-dev bench`",
)
ENGINE = Var(
    "SEEDTEST_ENGINE",
    None,
    "postgres",
    group="spark",
    doc="`spark` builds the models on Apache Spark (profile target `spark`; see docs/spark.md)",
)
SPARK_SOURCE_SCHEMA = Var(
    "SEEDTEST_SPARK_SOURCE_SCHEMA",
    None,
    "seedtest",
    group="spark",
    doc="the Spark database holding the copies of the application tables",
)
SPARK_MASTER = Var(
    "SEEDTEST_SPARK_MASTER",
    None,
    "local[2]",
    group="spark",
    doc="`spark.master` of the in-process session",
)
SPARK_DIR = Var(
    "SEEDTEST_SPARK_DIR",
    None,
    ".spark",
    group="spark",
    doc="folder of the local session's warehouse and Derby metastore",
)
SPARK_WAREHOUSE = Var(
    "SEEDTEST_SPARK_WAREHOUSE",
    None,
    ".spark/warehouse",
    group="spark",
    doc="`spark.sql.warehouse.dir` (the CLI makes it `<SEEDTEST_SPARK_DIR>/warehouse`)",
)
SPARK_METASTORE = Var(
    "SEEDTEST_SPARK_METASTORE",
    None,
    ".spark/metastore_db",
    group="spark",
    doc="the Derby metastore (the CLI makes it `<SEEDTEST_SPARK_DIR>/metastore_db`)",
)
SPARK_HOST = Var(
    "SEEDTEST_SPARK_HOST",
    None,
    "localhost",
    group="spark",
    doc="the Thrift server's (or cluster's) host",
)
SPARK_DRIVER_MEMORY = Var(
    "SEEDTEST_SPARK_DRIVER_MEMORY",
    None,
    "2g",
    group="spark",
    doc="`spark.driver.memory`",
)
SPARK_SHUFFLE_PARTITIONS = Var(
    "SEEDTEST_SPARK_SHUFFLE_PARTITIONS",
    None,
    "4",
    group="spark",
    doc="`spark.sql.shuffle.partitions`",
)
SPARK_METHOD = Var(
    "SEEDTEST_SPARK_METHOD",
    None,
    "session",
    group="spark",
    doc="`session`: Spark inside the process; `thrift`: through a Spark Thrift Server"
    " (profile target `thrift`; see docs/spark-thrift.md)",
)
SPARK_PORT = Var(
    "SEEDTEST_SPARK_PORT", None, "10000", group="spark", doc="the Thrift server's port"
)
SPARK_USER = Var(
    "SEEDTEST_SPARK_USER",
    None,
    "seedtest",
    group="spark",
    doc="the user the Thrift sessions are opened as",
)
SPARK_AUTH = Var(
    "SEEDTEST_SPARK_AUTH",
    None,
    "NONE",
    group="spark",
    doc="the Thrift server's authentication: `NONE`, `NOSASL`, `LDAP`, `KERBEROS` or `CUSTOM`"
    " (the server's `hive.server2.authentication`)",
)
SPARK_PASSWORD = Var(
    "DBT_ENV_SECRET_SPARK_PASSWORD",
    None,
    "",
    group="spark",
    doc="the Thrift server's password, with `LDAP` or `CUSTOM` (dbt never prints it)",
)
SPARK_KERBEROS_SERVICE = Var(
    "SEEDTEST_SPARK_KERBEROS_SERVICE",
    None,
    "hive",
    group="spark",
    doc="the Kerberos service name, with `KERBEROS`",
)
SPARK_CONNECT_RETRIES = Var(
    "SEEDTEST_SPARK_CONNECT_RETRIES",
    None,
    "3",
    group="spark",
    doc="dbt's connection retries to the Thrift server (10 s apart) while a cluster starts",
)
SPARK_POLL_SECONDS = Var(
    "SEEDTEST_SPARK_POLL_SECONDS",
    None,
    "1",
    group="spark",
    doc="seconds between dbt's checks whether a statement on the Thrift server is done"
    " (dbt-spark's default, 5, adds seconds to every statement)",
)
# profiles/profiles.yml's connection: the CLI sets these from DATABASE_URL (the password in a
# variable dbt keeps out of its logs); set them yourself only for a plain `dbt` command.
PLAIN_DBT = "set by the CLI from `DATABASE_URL`; set it yourself only for a plain `dbt` command"
REQUIRED = "required: a plain `dbt` command stops when it is unset"
PGHOST = Var("SEEDTEST_PGHOST", None, "", group="plain_dbt", doc=f"host ({REQUIRED}); {PLAIN_DBT}")
PGPORT = Var("SEEDTEST_PGPORT", None, "5432", group="plain_dbt", doc=f"port; {PLAIN_DBT}")
PGUSER = Var("SEEDTEST_PGUSER", None, "", group="plain_dbt", doc=f"role ({REQUIRED}); {PLAIN_DBT}")
PGDATABASE = Var(
    "SEEDTEST_PGDATABASE",
    None,
    "",
    group="plain_dbt",
    doc=f"database ({REQUIRED}); {PLAIN_DBT}",
)
LIBPQ_TLS = "unset: libpq's own `{}` applies"
PGSSLMODE = Var(
    "SEEDTEST_PGSSLMODE",
    None,
    "",
    group="plain_dbt",
    doc=f"`sslmode` ({LIBPQ_TLS.format('PGSSLMODE')}, else `prefer`); {PLAIN_DBT}",
)
PGSSLROOTCERT = Var(
    "SEEDTEST_PGSSLROOTCERT",
    None,
    "",
    group="plain_dbt",
    doc=f"`sslrootcert`, the server's CA file ({LIBPQ_TLS.format('PGSSLROOTCERT')}); {PLAIN_DBT}",
)
PGSSLCERT = Var(
    "SEEDTEST_PGSSLCERT",
    None,
    "",
    group="plain_dbt",
    doc=f"`sslcert`, a client certificate ({LIBPQ_TLS.format('PGSSLCERT')}); {PLAIN_DBT}",
)
PGSSLKEY = Var(
    "SEEDTEST_PGSSLKEY",
    None,
    "",
    group="plain_dbt",
    doc=f"`sslkey`, its key file ({LIBPQ_TLS.format('PGSSLKEY')}); {PLAIN_DBT}",
)
PGPASSWORD = Var(
    "DBT_ENV_SECRET_PGPASSWORD",
    None,
    "",
    group="plain_dbt",
    doc=f"password (dbt never prints a `DBT_ENV_SECRET_` value); {PLAIN_DBT}",
)

# Read by scoring/churn_champion.py and scoring/holdout.py.
CHURN_MODEL_MAX_AGE = IntVar(
    "METRICS_CHURN_MODEL_MAX_AGE_DAYS",
    None,
    "35",
    minimum=1,
    maximum=3650,
    group="scores",
    doc="in `auto` mode, the oldest champion the nightly run still uses (else the previous"
    " champion, else the fixed-weight S)",
)
HOLDOUT_SHARE = Var(
    "SEEDTEST_HOLDOUT_SHARE",
    None,
    "0",
    group="scores",
    doc="share (0 to 1) of the scored users flagged as a stable holdout in `weekly_kpi.kpis`;"
    " `0` writes no flag",
)

# Read by db/write_limits.py, jobs/freshness.py and monitoring/pushgateway.py.
MAX_FAILED_SHARE = Var(
    "SEEDTEST_MAX_FAILED_SHARE",
    None,
    "0.01",
    group="safety",
    doc="the run fails (exit 1) only when more than this share of the users found could not be"
    " written (and more than `SEEDTEST_MAX_FAILED_USERS`); fewer are warnings counted in"
    " `failed=`",
)
MAX_FAILED_USERS = Var(
    "SEEDTEST_MAX_FAILED_USERS",
    None,
    "10",
    group="safety",
    doc="the number of unwritable users a run tolerates whatever the share",
)
ALLOW_STALE = Var(
    "SEEDTEST_ALLOW_STALE",
    None,
    "false",
    group="safety",
    doc="`true` scores even on a stale source, for one run (same as `--allow-stale`)",
)
PUSHGATEWAY_URL = Var(
    "SEEDTEST_PUSHGATEWAY_URL",
    None,
    "",
    group="safety",
    doc="a Prometheus Pushgateway: each run pushes its `seedtest_*` metrics there (a failed"
    " push is a warning); empty pushes nothing",
)

# Every setting, in the order docs/configuration.md lists them (by group).
SETTINGS: tuple[Var, ...] = (
    DATABASE_URL,
    ANCHOR_DATE,
    *VARS,
    CHURN_MODEL_MAX_AGE,
    HOLDOUT_SHARE,
    MAX_FAILED_SHARE,
    MAX_FAILED_USERS,
    ALLOW_STALE,
    PUSHGATEWAY_URL,
    LOCK_WAIT,
    DBT_THREADS,
    DBT_TARGET_PATH,
    DBT_LOG_PATH,
    PROJECT_DIR,
    PROFILE_FILE,
    ENGINE,
    SPARK_SOURCE_SCHEMA,
    SPARK_MASTER,
    SPARK_DIR,
    SPARK_WAREHOUSE,
    SPARK_METASTORE,
    SPARK_HOST,
    SPARK_DRIVER_MEMORY,
    SPARK_SHUFFLE_PARTITIONS,
    SPARK_METHOD,
    SPARK_PORT,
    SPARK_USER,
    SPARK_AUTH,
    SPARK_PASSWORD,
    SPARK_KERBEROS_SERVICE,
    SPARK_CONNECT_RETRIES,
    SPARK_POLL_SECONDS,
    PGHOST,
    PGPORT,
    PGUSER,
    PGDATABASE,
    PGSSLMODE,
    PGSSLROOTCERT,
    PGSSLCERT,
    PGSSLKEY,
    PGPASSWORD,
)
# The groups of docs/configuration.md, in order: key -> heading.
GROUPS: dict[str, str] = {
    "connection": "Database and schemas",
    "window": "The run's days and inputs",
    "scores": "Inactivity, P and S",
    "safety": "Locks, timeouts and the freshness guard",
    "dbt": "dbt and logging",
    "spark": "Apache Spark (`SEEDTEST_ENGINE=spark`)",
    "plain_dbt": "The dbt profile's connection (plain `dbt` commands)",
}

# Each dbt var and the environment variable macros/vars/ reads when it is not
# given with --vars (_var_env_names there; a test checks both agree).
DBT_VAR_ENV: dict[str, str] = {
    "anchor_date": "ANCHOR_DATE",
    **{var.dbt_var: var.env for var in VARS if var.dbt_var is not None},
}


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


def parse_bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise UsageError(f"{name} must be true or false (got {raw!r})")


def parse_int(name: str, raw: str | int, *, minimum: int = 0, maximum: int = 100_000) -> int:
    text = str(raw).strip()
    if not re.fullmatch(r"[+-]?\d+", text):
        raise UsageError(f"{name} must be a whole number (got {raw!r})")
    value = int(text)
    if value < minimum or value > maximum:
        raise UsageError(f"{name} must be between {minimum} and {maximum} (got {value})")
    return value


def parse_float(name: str, raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise UsageError(f"{name} must be a number (got {raw!r})") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise UsageError(f"{name} must be a finite number (got {raw!r})")
    return value


CHURN_MODELS = ("auto", "heuristic", "logistic")


def parse_choice(name: str, raw: str, choices: tuple[str, ...]) -> str:
    value = raw.strip().lower()
    if value not in choices:
        raise UsageError(f"{name} must be one of {', '.join(choices)} (got {raw!r})")
    return value


def parse_date(name: str, raw: str) -> dt.date:
    """A date by the project's one date rule, the same as macros/vars/validators.sql's
    date_problem (tests/python/test_var_injection.py runs both over the same texts): YYYY-MM-DD
    in ASCII digits, a real calendar date, on or after MIN_DATE."""
    text = raw.strip()
    if not _DATE.fullmatch(text):
        raise UsageError(f"{name} must be a date as YYYY-MM-DD (got {raw!r})")
    try:
        value = dt.date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{name} is not a valid date (got {raw!r})") from None
    if value < MIN_DATE:
        raise UsageError(f"{name} must be on or after {MIN_DATE.isoformat()} (got {raw!r})")
    return value


def _dbt_timezones() -> Container[str] | None:
    """The zone names macros/vars/ accepts (pytz's list; pytz comes with dbt)."""
    try:
        import pytz
    except ImportError:  # pragma: no cover - a dependency of dbt-core
        return None
    return pytz.all_timezones_set  # a lazy set: use `in`, not iteration


def parse_timezone(name: str, raw: str) -> str:
    text = raw.strip()
    if not _TIMEZONE.fullmatch(text):
        raise UsageError(f"{name} must be an IANA time zone such as Asia/Seoul (got {raw!r})")
    # A file of the zoneinfo directory is not necessarily a zone the dbt project (and the
    # database) know: `localtime`, `posixrules`, `right/UTC`, `Factory` would pass here and
    # only fail later inside dbt, with exit code 1 instead of 2.
    known = _dbt_timezones()
    try:
        ZoneInfo(text)
        if known is not None and text not in known:
            raise ZoneInfoNotFoundError(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(f"{name} is not a known time zone (got {raw!r})") from None
    return text


def parse_identifier(name: str, raw: str) -> str:
    text = raw.strip()
    if not _IDENTIFIER.fullmatch(text):
        raise UsageError(
            f"{name} must be a lowercase PostgreSQL identifier (letters, digits, _) (got {raw!r})"
        )
    return text


def today_in(timezone: str) -> dt.date:
    return dt.datetime.now(ZoneInfo(timezone)).date()


def load_settings(
    env: Mapping[str, str] | None = None,
    *,
    date: str | None = None,
    threshold: str | int | None = None,
    lookback: str | int | None = None,
    dry_run: bool = False,
) -> Settings:
    """Build Settings from the environment, CLI values (already strings or ints) winning."""
    env = os.environ if env is None else env

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
    for checked in (LOCK_TIMEOUT, STATEMENT_TIMEOUT, FRESHNESS_HOURS):  # used outside Settings
        checked.parse(get(checked))
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
    )


# The process environment. This module is the only one that touches it: load_settings and
# target_schema read it, and the rest of the package asks through environ_get/environ_has.
# The one writer is dbt_environment: dbt runs in-process and reads its variables
# (env_var() in profiles.yml and macros/vars/) from the environment, so the values a run
# hands to dbt are set there; environ_copy is what dbt's env_var() context is built from.
# A test (tests/python/test_settings_env.py) keeps it so.


def environ_get(name: str, default: str = "") -> str:
    """The environment variable `name` as set, `default` when unset."""
    return os.environ.get(name, default)


def environ_has(name: str) -> bool:
    """Whether the environment variable `name` is set (even to an empty value)."""
    return name in os.environ


def environ_copy() -> dict[str, str]:
    """A copy of the whole environment, as dbt's env_var() sees it."""
    return dict(os.environ)


def dbt_environment(values: Mapping[str, str | None]) -> dict[str, str | None]:
    """Set environment variables for dbt, which runs in-process (None: remove the variable).
    Returns the values they replace (None: was unset): passing those back restores them."""
    replaced = {key: os.environ.get(key) for key in values}
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    return replaced


# The suffix of a dry run's scratch schema (and of its dbt target path): `<schema>_dry_run`.
DRY_RUN_SUFFIX = "_dry_run"


def target_schema() -> str:
    """The dbt schema: SEEDTEST_DBT_SCHEMA, else `analytics`; a plain lowercase identifier,
    since dbt puts it into SQL between double quotes without escaping them."""
    raw = os.environ.get(DBT_SCHEMA.env, "")
    return parse_identifier(DBT_SCHEMA.env, raw) if raw.strip() else DBT_SCHEMA.default
