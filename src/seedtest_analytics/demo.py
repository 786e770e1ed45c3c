"""The demo: application schema, deterministic synthetic data, the nightly pipeline, a report."""

from __future__ import annotations

import os

from psycopg import sql

from . import log
from .config import load_settings, parse_int
from .connection import ConnectionParams, embedded_params
from .db import connect, init_db, tables_with_rows
from .dbt_runner import target_schema
from .errors import UsageError
from .locking import pipeline_lock
from .pipeline import run_pipeline


def _demo_database() -> tuple[ConnectionParams, bool]:
    """DATABASE_URL's database (must be empty), else the embedded one, recreated."""
    from .connection import resolve

    if os.environ.get("DATABASE_URL", "").strip():
        return resolve(), False
    params = embedded_params()
    with connect(params.with_dbname("postgres"), autocommit=True) as conn:
        conn.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(params.dbname))
        )
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(params.dbname)))
    return params, True


def _ensure_empty(params: ConnectionParams, schema: str) -> None:
    """Checked before anything is created or written: the demo needs an empty database."""
    filled = tables_with_rows(params, schema)
    if filled:
        raise UsageError(
            f"the demo writes synthetic data, but {params.redacted()} already holds rows in "
            f"{', '.join(filled)}; nothing was changed; point DATABASE_URL at an empty database"
        )


def _report(params: ConnectionParams) -> None:
    schema = sql.Identifier(target_schema())
    query = sql.SQL(
        """
        select
            (select count(*) from {s}.features_topic_daily),
            (select min(date) from {s}.features_topic_daily),
            (select max(date) from {s}.features_topic_daily),
            (select count(*) from {s}.user_last_activity),
            (select count(*) from {s}.inactive_users)
        """
    ).format(s=schema)
    with connect(params) as conn:
        row = conn.execute(query).fetchone()
    assert row is not None
    features, first_day, last_day, users, inactive = row
    name = target_schema()
    log.info(
        f"Demo built {features} features_topic_daily rows ({first_day} .. {last_day}), "
        f"last activity for {users} users, {inactive} of them inactive and scored into "
        "weekly_kpi"
    )
    log.info(f"Database: {params.redacted()}; models in schema {name}")
    log.info(f"Look at: select * from {name}.features_topic_daily order by date desc limit 20;")
    log.info(
        "         select user_id, kpis->>'P' as p, kpis->>'S' as s from weekly_kpi "
        "where kpis ? 'S' order by (kpis->>'S')::float desc limit 20;"
    )
    log.info("Docs site: seedtest-analytics docs --serve")


def run_demo(*, users: str, days: str, seed: str) -> int:
    from .synthetic import generate_demo

    user_count = parse_int("--users", users, minimum=10, maximum=1_000_000)
    day_count = parse_int("--days", days, minimum=30, maximum=3650)
    seed_value = parse_int("--seed", seed, maximum=2**31)
    settings = load_settings()
    params, recreated = _demo_database()
    if not recreated:
        _ensure_empty(params, settings.source_schema)
    init_db(params, settings.source_schema)
    with connect(params) as conn:
        summary = generate_demo(
            conn, users=user_count, days=day_count, seed=seed_value,
            end_date=settings.anchor_date, schema=settings.source_schema,
        )
    log.info(
        f"Demo data: {summary.users} users, {summary.exam_results} exams, "
        f"{summary.attempts} attempts, {summary.start_date} .. {summary.end_date}"
    )
    with pipeline_lock(params, target_schema()):
        code = run_pipeline(params, settings)
    if code == 0:
        _report(params)
    return code
