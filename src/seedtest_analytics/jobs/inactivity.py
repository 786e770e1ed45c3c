"""The detect-inactivity job: find inactive users, score P and S, write them to weekly_kpi.

The inputs come from the dbt model inactive_user_scoring_inputs in one read; the write is
one bulk statement in one transaction (kpi_writer).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg
from psycopg import sql

from .. import log
from ..config import Settings
from ..db.connection import ConnectionParams, connect
from ..db.failures import database_step
from ..db.history import note, note_build
from ..db.kpi_writer import Score, write_scores
from ..db.returners import mark_returned, week_start_of
from ..db.write_limits import load_limits
from ..dbt import dry_run, profiling
from ..dbt.failures import report_build_failure
from ..dbt.runner import (
    POST_WRITE_TAG,
    BuildSummary,
    data_tests_enabled,
    invoke,
    target_schema,
)
from ..errors import RunError
from ..scoring.churn_scorer import churn_scorer
from ..scoring.formulas import score_users
from ..scoring.holdout import holdout_flag
from ..warehouse import reader as warehouse
from .features import selector_args
from .freshness import ALLOW_STALE_ENV, Freshness, check_freshness
from .inputs_check import check_inputs_anchor

SCORING_INPUTS = "inactive_user_scoring_inputs"
ABILITIES = "user_ability_as_of"


@dataclass
class InactivityResult:
    found: int = 0
    processed: int = 0
    failed: int = 0


def shown(user_id: str) -> str:
    """A user id as log lines show it: as is when it is plain, else quoted with escapes, so
    one event is one line whatever the id holds (a newline, a quote, a control character)."""
    if user_id and all(ch.isalnum() or ch in "._-@:+/" for ch in user_id) and user_id.isascii():
        return user_id
    escaped = json.dumps(user_id, ensure_ascii=False)
    # json leaves U+2028/U+2029 and other non-printables alone; a log reader may split there.
    return "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in escaped)


def build_inputs(params: ConnectionParams, settings: Settings) -> BuildSummary:
    """dbt build of the scoring inputs and what they depend on (in the dry-run scratch schema
    on a dry run: runs.py points SEEDTEST_DBT_SCHEMA there)."""
    selector = selector_args(params, settings, "inactivity")  # selectors.yml
    summary = invoke(params, "build", settings, extra_args=selector)
    note_build(summary)
    return summary


def score_and_write(
    params: ConnectionParams, settings: Settings, result: InactivityResult | None = None
) -> InactivityResult:
    """Read the inputs, compute P and S, and (unless dry_run) write them; logs as the old job.
    `result` is filled in as the step goes (so a failure still knows how many were found)."""
    result = result if result is not None else InactivityResult()
    threshold = settings.threshold_days
    schema = target_schema()
    with connect(params) as conn:
        models = warehouse.current()
        if models.beside_weekly_kpi:  # inputs built for another anchor are never scored
            with database_step("checking the scoring inputs"):
                check_inputs_anchor(
                    conn, schema, dry_run.relation(SCORING_INPUTS), settings.anchor_date
                )
                conn.rollback()
        # The models are on the engine's warehouse; weekly_kpi stays on PostgreSQL (conn).
        inputs, prior_means = models.read_scoring(
            conn,
            schema,
            inputs=dry_run.relation(SCORING_INPUTS),
            abilities=dry_run.relation(ABILITIES) if settings.use_bayesian else None,
        )
        result.found = len(inputs)
        note(users_found=len(inputs))
        if not inputs:
            log.info(f"No inactive users found (threshold={threshold} days)")
            _mark_returned(conn, settings, schema)
            return result
        log.info(
            f"Found {len(inputs)} inactive users (threshold={threshold} days); "
            f"dry_run={settings.dry_run}"
        )
        scores, failed_users = score_users(
            inputs,
            default_target=settings.default_target,
            use_bayesian=settings.use_bayesian,
            horizon_days=settings.churn_horizon_days,
            prior_means=prior_means,
        )
        scores = churn_scorer(settings).apply(conn, scores, settings, schema)
        for user_id in failed_users:
            log.warn(f"Could not calculate P/S for user={shown(user_id)}")
        for score in scores[: 50 if settings.debug else 0]:
            log.debug(
                f"user={shown(score.user_id)} week={score.week_start} P={score.p} S={score.s}"
            )
        if settings.dry_run:
            # Same report as a real run: the rows the write would leave untouched.
            with database_step("reading weekly_kpi"):
                skipped = not_object_rows(conn, scores, schema=settings.source_schema)
        else:
            with database_step("the weekly_kpi write"):
                skipped = write_scores(
                    conn,
                    scores,
                    schema=settings.source_schema,
                    as_of=settings.anchor_date,
                    holdout=holdout_flag(settings.holdout_share),
                ).not_object
            _mark_returned(conn, settings, schema)
        for user_id, week_start in skipped:
            log.warn(
                f"kpis of user={shown(user_id)} week={week_start.isoformat()} is not a JSON "
                "object; left untouched"
            )
        not_object = len(skipped)
    result.processed = len(scores) - not_object
    result.failed = len(failed_users) + not_object
    return result


def _mark_returned(conn: psycopg.Connection, settings: Settings, schema: str) -> None:
    """Users scored earlier this week who have come back get S_returned_on (returners.py)."""
    if settings.dry_run:
        return
    # two days before the week's first local midnight: wider than any UTC offset
    since = week_start_of(settings) - dt.timedelta(days=2)
    last_activity = warehouse.current().last_activity_apart(schema, since)
    with database_step("marking the returners in weekly_kpi"):
        marked = mark_returned(
            conn,
            settings,
            kpi_schema=settings.source_schema,
            dbt_schema=schema,
            last_activity=last_activity,
        )
    if marked:
        log.info(f"{marked} user(s) scored earlier this week came back: S_returned_on set")


def not_object_rows(
    conn: psycopg.Connection, scores: Sequence[Score], *, schema: str
) -> list[tuple[str, dt.date]]:
    """The (user_id, week_start) rows of `scores` whose kpis is not a JSON object, in one read
    (what write_scores would leave untouched), ordered as write_scores reports them."""
    keys = [(s.user_id, s.week_start) for s in scores if s.p is not None or s.s is not None]
    if not keys:
        return []
    query = sql.SQL(
        "select k.user_id, k.week_start from {} as k"
        " inner join unnest(%s::text[], %s::date[]) as t (user_id, week_start)"
        " on k.user_id = t.user_id and k.week_start = t.week_start"
        " where jsonb_typeof(k.kpis) <> 'object'"
        " order by k.user_id, k.week_start"
    ).format(sql.Identifier(schema, "weekly_kpi"))
    rows = conn.execute(query, ([u for u, _ in keys], [w for _, w in keys])).fetchall()
    conn.rollback()
    return [(user_id, week) for user_id, week in rows]


def check_written(params: ConnectionParams, settings: Settings) -> bool:
    """The data tests of what the write produced (tag post_write); False when one failed."""
    if settings.dry_run or not data_tests_enabled(settings):
        return True
    if not warehouse.current().beside_weekly_kpi:
        # Those tests read weekly_kpi through the dbt source, i.e. the Spark copy, which the
        # write (on PostgreSQL) does not change.
        log.info("post-write tests skipped: weekly_kpi is on PostgreSQL, the models on Spark")
        return True
    summary = invoke(params, "test", settings, extra_args=["--selector", POST_WRITE_TAG])
    note_build(summary)
    if not summary.success:
        report_build_failure(summary)
    return summary.success


def log_summary(result: InactivityResult, settings: Settings, started: float) -> None:
    """The old detect job's Summary line (operators' alerts grep it)."""
    duration_ms = round((time.monotonic() - started) * 1000)
    log.info(
        f"Summary: processed={result.processed}, failed={result.failed}, "
        f"threshold={settings.threshold_days} days, duration_ms={duration_ms}"
    )


def stop_if_stale(freshness: Freshness, settings: Settings, started: float) -> bool:
    """The freshness guard of the P/S step: True (and the lines logged) when it must stop."""
    if freshness.quiet:
        log.info(freshness.quiet_line())
    if not freshness.stale:
        return False
    if settings.safety.allow_stale:
        log.warn(f"{freshness.line()}; scoring anyway ({ALLOW_STALE_ENV} or --allow-stale)")
        return False
    message = (
        f"{freshness.line()}; stopping before the P/S step, weekly_kpi untouched; "
        f"{freshness.override()}"
    )
    log.error(message)
    note(error=message)
    log_summary(InactivityResult(failed=1), settings, started)
    return True


def run_detect_inactivity(params: ConnectionParams, settings: Settings) -> int:
    started = time.monotonic()
    try:
        if stop_if_stale(check_freshness(params, settings), settings, started):
            return 1
        summary = build_inputs(params, settings)
    except RunError as exc:
        log.error(str(exc))
        note(error=str(exc))
        log_summary(InactivityResult(failed=1), settings, started)
        return 1
    if not summary.success:
        note(
            error=report_build_failure(
                summary, "dbt build failed; P/S not computed, weekly_kpi untouched"
            )
        )
        log_summary(InactivityResult(failed=1), settings, started)
        return 1
    return score_check_and_report(params, settings, started)[1]


def score_check_and_report(
    params: ConnectionParams, settings: Settings, started: float
) -> tuple[InactivityResult, int]:
    """The P/S step after a successful build: score, write, test what was written, and log
    the old job's Summary line (duration since `started`). Returns the result and exit code.
    A failure (a database error, a lost lock, a timeout) is one [ERROR] line, then the
    Summary line: nothing of the write landed, so every user found counts as failed."""
    result = InactivityResult()
    try:
        with profiling.phase("ps_step"):
            score_and_write(params, settings, result)
        checked = check_written(params, settings)
    except RunError as exc:
        log.error(str(exc))
        note(error=str(exc))
        if result.processed == 0:
            result.failed = max(result.found, 1)
        checked = False
    code = 0 if checked else 1
    if checked and result.failed:
        limits = load_limits(settings.safety)
        too_many = limits.exceeded(result.failed, result.found)
        if too_many is not None:
            log.error(too_many)
            code = 1
        else:
            log.warn(limits.tolerated(result.failed, result.found))
    note(users_scored=result.processed, users_failed=result.failed)
    log_summary(result, settings, started)
    return result, code
