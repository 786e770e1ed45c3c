"""One run at a time per database and dbt schema, through a PostgreSQL advisory lock.

A CronJob retry overlapping a manual run would otherwise interleave two builds of the same
incremental tables. The lock is session-level on a connection of its own, so it is released
when the process ends, however it ends (a SIGKILL included).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import psycopg

from . import log
from .config import parse_int
from .connection import ConnectionParams
from .db import connect
from .errors import RunError

LOCK_WAIT_ENV = "SEEDTEST_LOCK_WAIT_SECONDS"


def lock_wait_seconds() -> int:
    """SEEDTEST_LOCK_WAIT_SECONDS (default 300); a bad value is a usage error, not a silent
    default (and never reaches the `set lock_timeout` below unchecked)."""
    raw = os.environ.get(LOCK_WAIT_ENV, "").strip() or "300"
    return parse_int(LOCK_WAIT_ENV, raw, maximum=86_400)


@contextlib.contextmanager
def pipeline_lock(params: ConnectionParams, scope: str) -> Iterator[None]:
    """Hold the advisory lock of `scope` (the dbt schema) for the duration of the block."""
    key = f"seedtest-analytics:{params.dbname}:{scope}"
    with connect(params, autocommit=True) as conn:
        acquired = conn.execute("select pg_try_advisory_lock(hashtext(%s))", (key,)).fetchone()
        if not (acquired and acquired[0]):
            wait = lock_wait_seconds()
            log.info(
                f"Another seedtest-analytics run holds the lock on {params.dbname} "
                f"(schema {scope}); waiting up to {wait} s"
            )
            got_it = False
            if wait > 0:  # lock_timeout 0 would mean: wait forever
                try:
                    conn.execute(f"set lock_timeout = '{wait}s'")
                    conn.execute("select pg_advisory_lock(hashtext(%s))", (key,))
                    got_it = True
                except psycopg.errors.LockNotAvailable:
                    pass
            if not got_it:
                raise RunError(
                    f"another seedtest-analytics run is still in progress on {params.dbname} "
                    f"(schema {scope}) after {wait} s; nothing was written"
                )
        try:
            yield
        finally:
            with contextlib.suppress(psycopg.Error):
                conn.execute("select pg_advisory_unlock(hashtext(%s))", (key,))
