"""The aggregate job: build features_topic_daily for the window ending at the anchor."""

from __future__ import annotations

import time

from .. import log
from ..config import Settings
from ..db.connection import ConnectionParams
from ..db.history import note, note_build
from ..dbt.failures import report_build_failure
from ..dbt.runner import BuildSummary, invoke, target_schema
from ..errors import RunError
from ..warehouse import reader as warehouse
from .freshness import check_freshness

FEATURES = "features_topic_daily"


def window_counts(params: ConnectionParams, settings: Settings) -> tuple[int, int, int]:
    """(user, topic, day) combinations with valid attempts in the window, attempts skipped for
    a null user, topic or time, and attempts skipped because a key is too long to index."""
    return warehouse.current().window_counts(
        params, target_schema(), settings.since, settings.anchor_date
    )


def features_exist(params: ConnectionParams) -> bool:
    """Whether features_topic_daily has been built in this database."""
    return warehouse.current().table_exists(params, target_schema(), FEATURES)


def selector_args(params: ConnectionParams, settings: Settings, name: str) -> list[str]:
    """`--selector NAME` (selectors.yml) for a build that writes features_topic_daily. A dry
    run makes the same build, in its scratch schema (runs.py), where the incremental models
    start as copies of the real ones, so it computes what the real run would. The first build
    of features_topic_daily reads all history: when the table does not exist yet, the build
    runs with --full-refresh."""
    first_build = [] if features_exist(params) else ["--full-refresh"]
    return ["--selector", name, *first_build]


def build_features(params: ConnectionParams, settings: Settings) -> BuildSummary:
    """dbt build of features_topic_daily and its parents (into the dry-run scratch schema on
    a dry run: runs.py points SEEDTEST_DBT_SCHEMA there)."""
    return invoke(params, "build", settings, extra_args=selector_args(params, settings, "features"))


def report_window(params: ConnectionParams, settings: Settings) -> int:
    """Log the old job's lines for the window just built; returns the combinations found."""
    combinations, skipped, too_long = window_counts(params, settings)
    if combinations == 0:
        log.info(
            "No (user_id, topic_id, date) combinations found "
            f"(lookback={settings.lookback_days} days); exiting."
        )
        return 0
    log.info(
        f"Aggregating features for {combinations} (user, topic, date) combinations; "
        f"since={settings.since.isoformat()}, anchor={settings.anchor_date.isoformat()}, "
        f"dry_run={settings.dry_run}"
    )
    if skipped:
        log.warn(f"Skipped {skipped} attempts with a null user, topic or time")
    if too_long:
        log.warn(
            f"Skipped {too_long} attempts with a topic or user id longer than 1000 bytes "
            "(too long for an index key)"
        )
    return combinations


def log_summary(processed: int, failed: int, started: float) -> None:
    """The old aggregate job's Summary line (operators' alerts grep it)."""
    duration_ms = round((time.monotonic() - started) * 1000)
    log.info(f"Summary: processed={processed}, failed={failed}, duration_ms={duration_ms}")


def run_aggregate(params: ConnectionParams, settings: Settings) -> int:
    started = time.monotonic()
    try:
        freshness = check_freshness(params, settings)
        if freshness.stale:
            log.warn(f"{freshness.line()}; building the features anyway")
        summary = build_features(params, settings)
        note_build(summary)
        if not summary.success:
            note(error=report_build_failure(summary))
            log_summary(0, 1, started)
            return 1
        combinations = report_window(params, settings)
    except RunError as exc:
        log.error(str(exc))
        note(error=str(exc))
        log_summary(0, 1, started)
        return 1
    note(combinations=combinations)
    if combinations:
        log_summary(combinations, 0, started)
    return 0
