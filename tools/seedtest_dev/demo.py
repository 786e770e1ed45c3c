"""The demo: application schema, deterministic synthetic data, the nightly pipeline, then a
summary that explains its numbers and the commands to look further (each works as printed).

Without DATABASE_URL it runs on the embedded PostgreSQL in `.pgdata/`, in a database of its
own (`seedtest`) that it drops and re-creates each time; the server keeps running afterwards.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import textwrap
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from psycopg import sql

from seedtest_analytics import log
from seedtest_analytics.config import Settings, load_settings, parse_int
from seedtest_analytics.db.app_schema import init_db, tables_with_rows
from seedtest_analytics.db.connection import ConnectionParams, connect, resolve
from seedtest_analytics.db.locking import pipeline_lock
from seedtest_analytics.dbt.runner import progress, target_schema
from seedtest_analytics.errors import UsageError
from seedtest_analytics.jobs.pipeline import run_pipeline

from . import embedded
from .synthetic import DemoSummary, generate_demo

MIN_DAYS = 30  # the demo's student profiles need a month of history


def command_path(name: str) -> str:
    """A console script of this virtualenv as the reader can type it: relative to the
    current directory when it is below it (`.venv/bin/seedtest-dev`), else absolute."""
    script = Path(sys.executable).parent / name
    relative = os.path.relpath(script)
    return str(script) if relative.startswith("..") else relative


def _ensure_empty(params: ConnectionParams, schema: str) -> None:
    """Checked before anything is created or written: the demo needs an empty database."""
    filled = tables_with_rows(params, schema)
    if filled:
        raise UsageError(
            f"the demo writes synthetic data, but {params.redacted()} already holds rows in "
            f"{', '.join(filled)}; nothing was changed; point DATABASE_URL at an empty database"
        )


class ModelProgress:
    """dbt's events as one line per model (and per test that did not pass), `[n/N]`.

    dbt calls it from its worker threads: each line is written whole, under a lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def _line(self, text: str) -> None:
        with self._lock:
            sys.stdout.write(text + "\n")
            sys.stdout.flush()

    def __call__(self, event: Any) -> None:
        name = event.info.name
        data = event.data
        if name == "LogModelResult":
            status = "ERROR" if data.status == "error" else "OK"
            self._line(
                f"  [{data.index:>2}/{data.total}] {status:<5} {data.description} "
                f"({data.execution_time:.1f} s)"
            )
        elif name == "LogTestResult" and data.status != "pass":
            self._line(
                f"  [{data.index:>2}/{data.num_models}] {data.status.upper():<5} test {data.name}"
            )


@dataclass(frozen=True)
class Outcome:
    """The numbers of a finished demo run, read back from the database."""

    features: int
    first_day: dt.date | None
    last_day: dt.date | None
    window_combinations: int
    users: int
    inactive: int
    skipped_no_user: int
    skipped_no_topic: int
    skipped_no_time: int
    with_s: int
    with_p: int
    no_ability: int
    degenerate_ability: int


def read_outcome(params: ConnectionParams, settings: Settings) -> Outcome:
    s = sql.Identifier(target_schema())
    kpi = sql.Identifier(settings.source_schema, "weekly_kpi")
    query = sql.SQL(
        """
        with skipped as (
            select user_id, topic_id, completed_at
            from {s}.int_attempts__windowed
            where not is_valid
                and (activity_date is null or activity_date between %(since)s and %(anchor)s)
        ),
        scored as (
            select count(*) filter (where k.kpis ? 'S') as with_s,
                   count(*) filter (where k.kpis ? 'P') as with_p
            from {s}.inactive_user_scoring_inputs as i
            inner join {kpi} as k on k.user_id = i.user_id and k.week_start = i.week_start
        )
        select
            (select count(*) from {s}.features_topic_daily),
            (select min(date) from {s}.features_topic_daily),
            (select max(date) from {s}.features_topic_daily),
            (select count(*) from {s}.features_topic_daily
             where date between %(since)s and %(anchor)s),
            (select count(*) from {s}.user_last_activity),
            (select count(*) from {s}.inactive_users),
            (select count(*) from skipped where user_id is null),
            (select count(*) from skipped
             where user_id is not null and nullif(topic_id, '') is null),
            (select count(*) from skipped
             where user_id is not null and nullif(topic_id, '') is not null),
            (select with_s from scored),
            (select with_p from scored),
            (select count(*) from {s}.inactive_user_scoring_inputs
             where ability_mean is null),
            (select count(*) from {s}.inactive_user_scoring_inputs
             where ability_mean is not null and not coalesce(ability_sd > 0, false))
        """
    ).format(s=s, kpi=kpi)
    with connect(params) as conn:
        row = conn.execute(
            query, {"since": settings.since, "anchor": settings.anchor_date}
        ).fetchone()
    assert row is not None
    return Outcome(*row)


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def explain(
    data: DemoSummary,
    outcome: Outcome,
    settings: Settings,
    params: ConnectionParams,
    embedded_server: bool,
) -> list[str]:
    """The closing summary: what the numbers mean, then where to look and how to stop."""
    schema = target_schema()
    dev, runtime = command_path("seedtest-dev"), command_path("seedtest-analytics")
    dbt = command_path("dbt")
    skipped = outcome.skipped_no_user + outcome.skipped_no_topic + outcome.skipped_no_time
    s_only = outcome.with_s - outcome.with_p
    paragraphs = [
        f"Data: {data.users} synthetic students, {data.exam_results} exams, {data.attempts} "
        f"attempts, most of them {data.start_date} .. {data.end_date}: regular, fading, "
        "churned, returning, session-only students and a few long gone (about 200 days), "
        "plus some malformed rows on purpose.",
        f"features_topic_daily: {outcome.features} rows, one per (student, topic, day) with "
        f"a valid attempt, {outcome.first_day} .. {outcome.last_day}. A nightly run "
        f"recomputes the {settings.lookback_days + 1} days {settings.since} .. "
        f"{settings.anchor_date} (AGG_LOOKBACK_DAYS={settings.lookback_days}): "
        f"{outcome.window_combinations} rows here.",
        f"Skipped attempts ({skipped}): attempts of that window that no row counts, "
        f"{outcome.skipped_no_user} of an exam without a user (anonymous practice), "
        f"{outcome.skipped_no_topic} of a question without a topic, "
        f"{outcome.skipped_no_time} without a time. Attempts with a negative or "
        "over-3-hour response time do count; only their time is left out of the time "
        "statistics.",
        f"Inactive: {outcome.inactive} of the {outcome.users} students with any activity "
        f"were last seen more than {settings.threshold_days} days before the end of "
        f"{settings.anchor_date}; each was scored into weekly_kpi, on its row for the week of "
        "the anchor.",
        f"S (churn risk) needs only the activity, so all {outcome.with_s} have S. P (goal "
        "probability) needs an ability estimate as of the anchor: "
        f"{_plural(s_only, 'student has', 'students have')} S but no P, "
        f"{outcome.no_ability} without any estimate (neither ability_estimates nor "
        f"mirt_ability) and {outcome.degenerate_ability} whose estimate has a standard "
        "deviation of 0 (a degenerate fit, planted on purpose).",
    ]
    lines = ["", "Demo summary"]
    for text in paragraphs:
        lines += textwrap.wrap(text, width=96, initial_indent="  ", subsequent_indent="    ")
    lines += ["", "Look further"]
    if embedded_server:
        lines += [
            f"  {dev} db psql         # a psql prompt on the demo database, e.g.",
            f"      select * from {schema}.features_topic_daily order by date desc limit 20;",
            "      select user_id, kpis->>'P' as p, kpis->>'S' as s from weekly_kpi",
            "        where kpis ? 'S' order by (kpis->>'S')::float desc limit 20;",
            f"  {runtime} docs --serve    # the docs site and its lineage, http://127.0.0.1:8080",
            f'  eval "$({dev} db env)"     # then plain dbt works on it too, e.g.',
            f"      {dbt} build --select features_topic_daily",
            "",
            f"The embedded PostgreSQL keeps running (data in {embedded.pgdata_dir()}); stop "
            f"it with: {dev} db stop",
        ]
    else:
        lines += [
            f'  psql "$DATABASE_URL"       # the demo database ({params.redacted()}), e.g.',
            f"      select * from {schema}.features_topic_daily order by date desc limit 20;",
            f"  {runtime} docs --serve    # the docs site and its lineage, http://127.0.0.1:8080",
        ]
    return lines


def run_demo(*, users: str, days: str, seed: str) -> int:
    user_count = parse_int("--users", users, minimum=10, maximum=1_000_000)
    day_count = parse_int("--days", days, minimum=MIN_DAYS, maximum=3650)
    seed_value = parse_int("--seed", seed, maximum=2**31)
    settings = load_settings()
    on_embedded = not os.environ.get("DATABASE_URL", "").strip()
    if on_embedded:
        server = embedded.start()
        params = server.params()
        log.info(
            f"Embedded PostgreSQL running: data in {server.pgdata}, socket {server.socket_dir}, "
            f"port {server.port}"
        )
        log.info(
            f"Dropping and re-creating the demo database {params.dbname!r} on it: every demo "
            "starts from an empty database"
        )
        embedded.recreate_database(params)
    else:
        params = resolve()
    if not on_embedded:
        _ensure_empty(params, settings.source_schema)
    init_db(params, settings.source_schema)
    with connect(params) as conn:
        data = generate_demo(
            conn,
            users=user_count,
            days=day_count,
            seed=seed_value,
            end_date=settings.anchor_date,
            schema=settings.source_schema,
        )
    log.info(
        f"Demo data: {data.users} users, {data.exam_results} exams, "
        f"{data.attempts} attempts, {data.start_date} .. {data.end_date}"
    )
    log.info(
        f"Running the nightly pipeline for {settings.anchor_date}: dbt build (one line per "
        "model), then P and S"
    )
    with (
        pipeline_lock(params, target_schema(), settings.safety.lock_wait_seconds),
        progress(ModelProgress()),
    ):
        code = run_pipeline(params, settings)
    if code == 0:
        outcome = read_outcome(params, settings)
        print("\n".join(explain(data, outcome, settings, params, on_embedded)), flush=True)
        # Is S right on this data? Train the churn model on the first part of it, backtest
        # the three scorers on the rest, and say where the report is.
        from seedtest_analytics.churn.commands import demo_backtest

        # One line per model here too: dbt's own output would bury the summary above.
        with (
            pipeline_lock(params, target_schema(), settings.safety.lock_wait_seconds),
            progress(ModelProgress()),
        ):
            code = demo_backtest(
                params, settings, first_day=data.start_date, last_day=data.end_date
            )
    return code
