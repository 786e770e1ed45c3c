"""seedtest-dev generate: the demo's synthetic population, written into the database that
DATABASE_URL names (for trying the job, or its image, on a database of one's own).

The application schema is created first where parts of it are missing (init-db: nothing that
exists is replaced). A database whose application tables already hold rows is refused before
anything is created or written, and the rows are written in one transaction.
"""

from __future__ import annotations

import os

from seedtest_analytics import log
from seedtest_analytics.config import load_settings, parse_date, parse_int
from seedtest_analytics.db.app_schema import init_db, tables_with_rows
from seedtest_analytics.db.connection import connect, parse_database_url
from seedtest_analytics.errors import UsageError

from .synthetic import generate_demo

MIN_DAYS = 30  # the student profiles need a month of history


def run_generate(*, users: str, days: str, seed: str, end_date: str | None) -> int:
    user_count = parse_int("--users", users, minimum=10, maximum=1_000_000)
    day_count = parse_int("--days", days, minimum=MIN_DAYS, maximum=3650)
    seed_value = parse_int("--seed", seed, maximum=2**31)
    settings = load_settings()
    last_day = settings.anchor_date if end_date is None else parse_date("--end-date", end_date)
    url = os.environ.get("DATABASE_URL", "")
    if not url.strip():
        raise UsageError(
            "DATABASE_URL is not set: generate writes into the database it names "
            '(the embedded one: eval "$(seedtest-dev db env)")'
        )
    params = parse_database_url(url)
    schema = settings.source_schema
    filled = tables_with_rows(params, schema)
    if filled:
        raise UsageError(
            f"{params.redacted()} already holds rows in {schema}.{', '.join(filled)}; "
            "generate writes only into a database without application data; nothing was changed"
        )
    created = init_db(params, schema)
    with connect(params) as conn:
        data = generate_demo(
            conn,
            users=user_count,
            days=day_count,
            seed=seed_value,
            end_date=last_day,
            schema=schema,
        )
    log.info(
        f"Generated {data.users} users, {data.exam_results} exams, {data.attempts} attempts, "
        f"{data.start_date} .. {data.end_date} into {params.redacted()} (schema {schema}; "
        f"created {len(created)} missing objects of the application schema)"
    )
    return 0
