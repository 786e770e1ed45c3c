"""Load (slow; run with `-m slow`): the nightly run over a million attempt rows while the
application keeps inserting exams completes, and the next run picks every inserted exam up.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from pathlib import Path

import psycopg
import pytest

from conftest import create_database, drop_database
from seedtest_analytics.db.connection import ConnectionParams
from seedtest_dev.synthetic import generate_bulk
from test_reliability import (  # the helpers of the concurrency tests
    ANCHOR,
    ExamWriter,
    _advisory_locks,
    _no_leftover_processes,  # noqa: F401 - autouse: no run is left going after a failure
    connect,
    run_ok,
    start_cli,
    wait_for,
)

ATTEMPTS = 1_000_000
LATER = ANCHOR + dt.timedelta(days=5)  # the ExamWriter's exams fall on ANCHOR+1 .. ANCHOR+5
FOUND = re.compile(r"^\[INFO\] Found (\d+) inactive users \(threshold=7 days\)", re.M)
PROCESSED = re.compile(r"^\[INFO\] Summary: processed=(\d+), failed=(\d+), threshold", re.M)


def _valid_attempts_up_to(conn: psycopg.Connection, day: dt.date) -> int:
    """Distinct attempts with a user and a topic, up to the end of `day` (UTC), straight from
    the application's attempt view."""
    row = conn.execute(
        "select count(distinct id) from public.attempt where student_id is not null"
        " and coalesce(topic_id, '') <> '' and completed_at < %s",
        (dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=dt.UTC),),
    ).fetchone()
    assert row is not None
    return int(row[0])


def _feature_attempts(conn: psycopg.Connection, where: str = "true") -> int:
    row = conn.execute(
        f"select coalesce(sum(attempts), 0) from analytics.features_topic_daily where {where}"
    ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.slow
def test_a_million_attempts_with_the_application_writing(
    server_params: ConnectionParams, tmp_path: Path
) -> None:
    params = create_database(server_params)
    try:
        with connect(params) as conn:
            summary = generate_bulk(conn, attempts=ATTEMPTS, end_date=ANCHOR)
            assert summary.attempts >= ATTEMPTS
            row = conn.execute("select count(*) from public.attempt").fetchone()
            assert row is not None and row[0] >= ATTEMPTS

            started = time.monotonic()
            first = start_cli(params, tmp_path, "a", "run", "--date", ANCHOR.isoformat())
            wait_for("run A to take the lock", lambda: _advisory_locks(conn, granted=True),
                     alive=first)
            writer = ExamWriter(params)
            writer.start()
            try:
                code = first.finish()
            finally:
                writer.stop.set()
                writer.join(timeout=60)
            first_seconds = time.monotonic() - started
            assert code == 0, first.output()
            assert writer.error is None, repr(writer.error)
            assert writer.written > 0
            found = FOUND.findall(first.stdout)
            assert found and int(found[0]) > 0, first.stdout[-3000:]
            assert PROCESSED.findall(first.stdout) == [(found[0], "0")], first.stdout[-3000:]
            # every valid attempt up to the anchor is counted once, none of the new ones
            assert _feature_attempts(conn) == _valid_attempts_up_to(conn, ANCHOR)
            assert _feature_attempts(conn, "user_id like 'live%'") == 0

            run_ok(params, tmp_path, "c", "run", "--date", LATER.isoformat())
            assert _feature_attempts(conn, "user_id like 'live%'") == writer.written
            assert _feature_attempts(conn) == _valid_attempts_up_to(conn, LATER)
            print(
                f"load: {summary.attempts} attempts; the first run took {first_seconds:.0f} s"
                f" while {writer.written} exams were inserted; the next run counted them all"
            )
    finally:
        drop_database(server_params, params)
