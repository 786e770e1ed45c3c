"""The nightly pipeline (`run`) and backfills: dbt build, then the P/S step."""

from __future__ import annotations

import dataclasses
import time

from .. import log
from ..config import LOOKBACK_DAYS, Settings, parse_date
from ..db.connection import ConnectionParams
from ..db.history import note, note_build
from ..dbt.failures import report_build_failure
from ..dbt.runner import BuildSummary, invoke
from ..errors import ReportedError, RunError, UsageError
from .features import log_summary as log_aggregate_summary
from .features import report_window, selector_args
from .freshness import check_freshness
from .inactivity import InactivityResult, score_check_and_report, stop_if_stale
from .inactivity import log_summary as log_detect_summary

MAX_LOOKBACK_DAYS = LOOKBACK_DAYS.maximum


def _pipeline_line(summary: BuildSummary, scored: int, started: float) -> None:
    log.info(
        f"Pipeline: {summary.line()}, users scored={scored}, "
        f"duration_ms={round((time.monotonic() - started) * 1000)}"
    )


def run_pipeline(params: ConnectionParams, settings: Settings) -> int:
    """dbt build of every model and test, then P/S; P/S is skipped if the build failed or the
    source is stale. Prints both old jobs' lines: the aggregate job's (Aggregating ...,
    Summary: processed=N, failed=M, duration_ms=T) and the detect job's. Any failure is one
    [ERROR] line, then the Summary lines not printed yet."""
    started = time.monotonic()
    summary = BuildSummary(success=False)
    aggregate_reported = False
    try:
        freshness = check_freshness(params, settings)
        summary = invoke(
            params, "build", settings, extra_args=selector_args(params, settings, "nightly")
        )  # selectors.yml
        note_build(summary)
        if not summary.success:
            raise ReportedError(
                report_build_failure(
                    summary, "dbt build failed; stopping before the P/S step (weekly_kpi untouched)"
                )
            )
        combinations = report_window(params, settings)
        note(combinations=combinations)
        if combinations:
            log_aggregate_summary(combinations, 0, started)
        aggregate_reported = True
        if stop_if_stale(freshness, settings, started):
            _pipeline_line(summary, 0, started)
            return 1
    except RunError as exc:
        if not isinstance(exc, ReportedError):
            log.error(str(exc))
        note(error=str(exc))
        if not aggregate_reported:
            log_aggregate_summary(0, 1, started)
        log_detect_summary(InactivityResult(failed=1), settings, started)
        _pipeline_line(summary, 0, started)
        return 1
    result, exit_code = score_check_and_report(params, settings, started)
    _pipeline_line(summary, result.processed, started)
    return exit_code


def backfill_settings(settings: Settings, start: str) -> Settings:
    """The window of a backfill from `start` to the settings' anchor (the --end date): the
    days daily runs from start to end would have recomputed, each with its lookback."""
    first = parse_date("--start", start)
    last = settings.anchor_date
    if first > last:
        raise UsageError(f"--start {first} is after --end {last}")
    lookback = (last - first).days + settings.lookback_days
    if lookback > MAX_LOOKBACK_DAYS:  # the bound macros/vars/project_vars.sql puts on lookback_days
        raise UsageError(
            f"--start {first} is too far back: a backfill covers at most "
            f"{MAX_LOOKBACK_DAYS - settings.lookback_days + 1} days"
        )
    return dataclasses.replace(settings, lookback_days=lookback)


def run_backfill(params: ConnectionParams, settings: Settings) -> int:
    """Fill features_topic_daily (and the activity it feeds) for the settings' window in one
    dbt invocation; equal to running each day in turn. The source's freshness is recorded in
    the run history, never a reason to stop: a backfill rebuilds the past as it was."""
    started = time.monotonic()
    try:
        check_freshness(params, settings)
        summary = invoke(
            params, "build", settings, extra_args=selector_args(params, settings, "backfill")
        )
        note_build(summary)
        if not summary.success:
            note(error=report_build_failure(summary))
            return 1
        note(combinations=report_window(params, settings))
    except RunError as exc:
        log.error(str(exc))
        note(error=str(exc))
        return 1
    log.info(
        f"Backfill: {summary.line()}, duration_ms={round((time.monotonic() - started) * 1000)}"
    )
    return 0
