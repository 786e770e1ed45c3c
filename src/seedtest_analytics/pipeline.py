"""The nightly pipeline (`run`) and backfills: dbt build, then the P/S step."""

from __future__ import annotations

import dataclasses
import time

from . import log
from .aggregate import report_window, selector_args
from .config import LOOKBACK_DAYS, Settings, parse_date
from .connection import ConnectionParams
from .dbt_runner import invoke
from .errors import UsageError
from .inactivity import score_check_and_report

ACTIVITY = "int_activity_daily"
MAX_LOOKBACK_DAYS = LOOKBACK_DAYS.maximum


def run_pipeline(params: ConnectionParams, settings: Settings) -> int:
    """dbt build of every model and test, then P/S; P/S is skipped if the build failed."""
    started = time.monotonic()
    summary = invoke(params, "build", settings,
                     extra_args=selector_args(params, settings, "nightly"))  # selectors.yml
    if not summary.success:
        for message in summary.errors:
            log.error(message)
        log.error("dbt build failed; stopping before the P/S step (weekly_kpi untouched)")
        log.info(f"Pipeline: {summary.line()}, users scored=0, "
                 f"duration_ms={round((time.monotonic() - started) * 1000)}")
        return 1
    report_window(params, settings)
    result, exit_code = score_check_and_report(params, settings, started)
    log.info(f"Pipeline: {summary.line()}, users scored={result.processed}, "
             f"duration_ms={round((time.monotonic() - started) * 1000)}")
    return exit_code


def backfill_settings(settings: Settings, start: str) -> Settings:
    """The window of a backfill from `start` to the settings' anchor (the --end date): the
    days daily runs from start to end would have recomputed, each with its lookback."""
    first = parse_date("--start", start)
    last = settings.anchor_date
    if first > last:
        raise UsageError(f"--start {first} is after --end {last}")
    lookback = (last - first).days + settings.lookback_days
    if lookback > MAX_LOOKBACK_DAYS:  # the bound macros/validate_vars.sql puts on lookback_days
        raise UsageError(
            f"--start {first} is too far back: a backfill covers at most "
            f"{MAX_LOOKBACK_DAYS - settings.lookback_days + 1} days"
        )
    return dataclasses.replace(settings, lookback_days=lookback)


def run_backfill(params: ConnectionParams, settings: Settings) -> int:
    """Fill features_topic_daily (and the activity it feeds) for the settings' window in one
    dbt invocation; equal to running each day in turn."""
    started = time.monotonic()
    summary = invoke(params, "build", settings,
                     extra_args=selector_args(params, settings, "backfill"))  # selectors.yml
    if not summary.success:
        for message in summary.errors:
            log.error(message)
        return 1
    report_window(params, settings)
    log.info(f"Backfill: {summary.line()}, "
             f"duration_ms={round((time.monotonic() - started) * 1000)}")
    return 0

