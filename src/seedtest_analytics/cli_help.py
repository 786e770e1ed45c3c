"""What each subcommand's --help says besides its options: what it does, and the environment
variables it reads (a test walks every subcommand)."""

from __future__ import annotations

import argparse
import textwrap

CONNECTION = ("DATABASE_URL",)
WHERE = ("SEEDTEST_DBT_SCHEMA", "SOURCE_SCHEMA", "DBT_TARGET_PATH", "DBT_LOG_PATH")
RUN = (
    "SEEDTEST_LOCK_WAIT_SECONDS",
    "SEEDTEST_LOCK_TIMEOUT_SECONDS",
    "SEEDTEST_STATEMENT_TIMEOUT_SECONDS",
    "SEEDTEST_DBT_TESTS",
    "SEEDTEST_PUSHGATEWAY_URL",
    "SEEDTEST_ENGINE",
    "DEBUG",
)
FEATURES = (
    "ANCHOR_DATE",
    "ACTIVITY_TIMEZONE",
    "AGG_LOOKBACK_DAYS",
    "AGG_INCLUDE_THETA",
    "MAP_USER_IDS",
    "ATTEMPTS_FROM_EXAM_RESULTS",
    "SEEDTEST_FRESHNESS_HOURS",
)
SCORES = (
    "INACTIVITY_THRESHOLD_DAYS",
    "KPI_LOOKBACK_DAYS",
    "METRICS_DEFAULT_TARGET",
    "METRICS_USE_BAYESIAN",
    "METRICS_CHURN_HORIZON_DAYS",
    "METRICS_CHURN_MODEL",
    "SEEDTEST_ALLOW_STALE",
    "SEEDTEST_MAX_FAILED_SHARE",
    "SEEDTEST_MAX_FAILED_USERS",
)

ENVIRONMENT: dict[str, tuple[str, ...]] = {
    "init-db": (*CONNECTION, "SOURCE_SCHEMA"),
    "aggregate": CONNECTION + WHERE + FEATURES + RUN,
    "detect-inactivity": CONNECTION + WHERE + FEATURES + SCORES + RUN,
    "run": CONNECTION + WHERE + FEATURES + SCORES + RUN,
    "backfill": CONNECTION + WHERE + FEATURES + RUN,
    "rebuild": CONNECTION + WHERE + FEATURES + RUN,
    "backtest": CONNECTION + WHERE + FEATURES + SCORES,
    "train-churn": CONNECTION + WHERE + FEATURES + SCORES,
    "dbt-retry": CONNECTION + WHERE + RUN,
    "docs": CONNECTION + WHERE + FEATURES,
    "status": (*CONNECTION, "SEEDTEST_DBT_SCHEMA"),
}

EXIT_CODES = (
    "exit codes: 0 success; 1 a run-time failure (nothing half-written, a retry may succeed); "
    "2 usage or configuration, a refused login or a missing privilege; 3 the source is stale"
)


def describe(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Give every subcommand its description (its one-line help) and an epilog naming the
    environment variables it reads and the exit codes."""
    helps = {action.dest: action.help for action in commands._choices_actions}
    for name, parser in commands.choices.items():
        parser.formatter_class = argparse.RawDescriptionHelpFormatter
        parser.description = parser.description or helps.get(name)
        names = ENVIRONMENT.get(name, CONNECTION)
        parser.epilog = "\n".join(
            [
                textwrap.fill("environment variables read: " + ", ".join(names), 79),
                textwrap.fill(EXIT_CODES, 79),
            ]
        )
