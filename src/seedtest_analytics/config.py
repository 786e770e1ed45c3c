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
    only), and its default as an environment would hold it. The single definition of the
    defaults and bounds: macros/vars/, the README and the ConfigMap are checked
    against these (tests/python/test_settings.py)."""

    env: str
    dbt_var: str | None
    default: str


@dataclass(frozen=True)
class IntVar(Var):
    """A whole number between minimum and maximum."""

    minimum: int = 0
    maximum: int = 36500

    def parse(self, raw: str | int, name: str | None = None) -> int:
        return parse_int(name or self.env, raw, minimum=self.minimum, maximum=self.maximum)


LOOKBACK_DAYS = IntVar("AGG_LOOKBACK_DAYS", "lookback_days", "7", maximum=3650)
INCLUDE_THETA = Var("AGG_INCLUDE_THETA", "include_theta", "false")
ACTIVITY_TIMEZONE = Var("ACTIVITY_TIMEZONE", "activity_timezone", "UTC")
THRESHOLD_DAYS = IntVar("INACTIVITY_THRESHOLD_DAYS", "inactivity_threshold_days", "7")
KPI_LOOKBACK_DAYS = IntVar("KPI_LOOKBACK_DAYS", "kpi_lookback_days", "30", minimum=1)
DEFAULT_TARGET = Var("METRICS_DEFAULT_TARGET", "default_target", "0.0")
USE_BAYESIAN = Var("METRICS_USE_BAYESIAN", None, "false")
CHURN_HORIZON_DAYS = IntVar("METRICS_CHURN_HORIZON_DAYS", None, "14")
SOURCE_SCHEMA = Var("SOURCE_SCHEMA", "source_schema", "public")
MAP_USER_IDS = Var("MAP_USER_IDS", "map_user_ids", "true")
ATTEMPTS_FROM_EXAM_RESULTS = Var(
    "ATTEMPTS_FROM_EXAM_RESULTS", "attempts_from_exam_results", "false"
)
CHURN_MODEL = Var("METRICS_CHURN_MODEL", None, "auto")
DEBUG = Var("DEBUG", None, "false")
# Read by dbt/runner.py (the profile's schema, and whether a build runs the data tests).
DBT_SCHEMA = Var("SEEDTEST_DBT_SCHEMA", None, "analytics")
DBT_TESTS = Var("SEEDTEST_DBT_TESTS", None, "true")
# Read by db/timeouts.py and jobs/freshness.py (the reasons for the defaults are there).
LOCK_TIMEOUT = IntVar("SEEDTEST_LOCK_TIMEOUT_SECONDS", None, "120", minimum=1, maximum=86_400)
STATEMENT_TIMEOUT = IntVar(
    "SEEDTEST_STATEMENT_TIMEOUT_SECONDS", None, "3600", minimum=1, maximum=86_400
)
FRESHNESS_HOURS = IntVar("SEEDTEST_FRESHNESS_HOURS", None, "24", maximum=87_600)
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
