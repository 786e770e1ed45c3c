"""The declared settings: Var and IntVar, and the variables that become the dbt vars
(VARS). settings_table.py declares the others and the one ordered table, SETTINGS."""

from __future__ import annotations

from dataclasses import dataclass

from .parse import parse_int


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
# Settings.data_tests and the profile's schema (config.target_schema), used by dbt/runner.py.
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
# Settings.safety (the reasons for the defaults are in db/timeouts.py and jobs/freshness.py).
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
