"""One run at a time per database and dbt schema, through a PostgreSQL advisory lock, and no
write after the lock is lost.

A CronJob retry overlapping a manual run would otherwise interleave two builds of the same
incremental tables. The lock is a session lock held by a connection of its own (released when
the process ends, however it ends, a SIGKILL included). That session can still end while the
run goes on (an administrator's pg_terminate_backend, a server-side timeout), and the lock
with it, silently. So:

- the lock session switches off the server's idle timeouts (idle_session_timeout would
  otherwise end it while the run works elsewhere);
- every write checks, in its own transaction, that the lock is still held by this run's lock
  session (pid and a per-run application_name, so a reused pid cannot pass): dbt through an
  on-run-start hook and a pre-hook on every model (macros/hooks/run_lock.sql, fed by the
  SEEDTEST_LOCK_* environment variables), the Python writes through assert_held();
- each write transaction also holds a shared "writer" lock, and a run that has just taken
  the run lock waits until no writer of an earlier holder is left (a barrier): a write that
  passed its check before the lock was lost finishes before the next run starts, and every
  later write of the old run fails its check. Two runs never write at the same time.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg

from .. import log
from ..config import LOCK_WAIT, dbt_environment
from ..errors import RunError
from .connection import ConnectionParams, connect

LOCK_WAIT_ENV = LOCK_WAIT.env
# What the dbt hooks read (macros/hooks/run_lock.sql validates each before it reaches SQL).
LOCK_PID_ENV = "SEEDTEST_LOCK_PID"
LOCK_NAME_ENV = "SEEDTEST_LOCK_NAME"
LOCK_KEY_ENV = "SEEDTEST_LOCK_KEY"
LOCK_ENV = (LOCK_PID_ENV, LOCK_NAME_ENV, LOCK_KEY_ENV)
RUN_LOCK = 1  # second half of the advisory key: the run lock (held by the lock session)
WRITER_LOCK = 2  # ... and the writers' lock (shared, per write transaction)
_APPLICATION_NAME = "seedtest-analytics lock "


# The check every write runs first, in its own transaction: the shared writer lock (kept to
# the end of the transaction), then "is the run lock still held by our lock session".
HOLDER_CHECK = """
do $seedtest_lock$
begin
    perform pg_advisory_xact_lock_shared({key}, {writer});
    if not exists (
        select from pg_locks as l
        join pg_stat_activity as a on a.pid = l.pid
        where l.locktype = 'advisory' and l.granted and l.pid = {pid}
            and l.database = (select oid from pg_database where datname = current_database())
            and a.application_name = '{name}'
    ) then
        raise exception 'seedtest-analytics lost its run lock: the lock session (pid {pid}) ended';
    end if;
end
$seedtest_lock$
"""


@dataclass(frozen=True)
class RunLock:
    """The lock a run holds: the advisory key and the lock session's pid and name."""

    key: int
    pid: int
    name: str
    scope: str
    dbname: str

    def env(self) -> dict[str, str]:
        return {LOCK_PID_ENV: str(self.pid), LOCK_NAME_ENV: self.name, LOCK_KEY_ENV: str(self.key)}

    def check_sql(self) -> str:
        # All three values are ours (ints and a hex name), never user input.
        return HOLDER_CHECK.format(key=self.key, writer=WRITER_LOCK, pid=self.pid, name=self.name)

    def lost_message(self, before: str) -> str:
        return (
            f"the run lost its lock on {self.dbname} (schema {self.scope}): its lock session "
            f"(pid {self.pid}) ended; stopped before {before}. Run it again (nothing is "
            "half-written)"
        )


_current: RunLock | None = None
_lock_conn: psycopg.Connection | None = None


def current() -> RunLock | None:
    return _current


def assert_held(conn: psycopg.Connection, before: str) -> None:
    """In `conn`'s current transaction: take the shared writer lock and check that this run
    still holds its lock; RunError otherwise. A no-op outside a locked run (in-process use)."""
    lock = _current
    if lock is None:
        return
    try:
        conn.execute(lock.check_sql())
    except psycopg.errors.RaiseException:
        raise RunError(lock.lost_message(before)) from None


def is_lost() -> bool:
    """True when this run held a lock and its lock session is gone."""
    if _current is None or _lock_conn is None:
        return False
    try:
        _lock_conn.execute("select 1")
    except psycopg.Error:
        return True
    return False


def raise_if_lost(before: str) -> None:
    if is_lost():
        assert _current is not None
        raise RunError(_current.lost_message(before))


@contextlib.contextmanager
def pipeline_lock(
    params: ConnectionParams, scope: str, wait: int = int(LOCK_WAIT.default)
) -> Iterator[RunLock]:
    """Hold the advisory lock of `scope` (the dbt schema) for the duration of the block,
    waiting up to `wait` s (SEEDTEST_LOCK_WAIT_SECONDS, checked by config.load_settings: a bad
    value never reaches the `set lock_timeout` below) for another run's."""
    global _current, _lock_conn
    name = _APPLICATION_NAME + uuid.uuid4().hex
    label = f"seedtest-analytics:{params.dbname}:{scope}"
    with connect(params, autocommit=True) as conn:
        # The lock session must outlive idle periods, and waits only as long as it is told.
        conn.execute("set idle_session_timeout = 0")
        conn.execute("set idle_in_transaction_session_timeout = 0")
        conn.execute("set statement_timeout = 0")
        conn.execute("select set_config('application_name', %s, false)", (name,))
        row = conn.execute("select hashtext(%s), pg_backend_pid()", (label,)).fetchone()
        assert row is not None
        key, pid = int(row[0]), int(row[1])
        acquired = conn.execute("select pg_try_advisory_lock(%s, %s)", (key, RUN_LOCK)).fetchone()
        if not (acquired and acquired[0]):
            log.info(
                f"Another seedtest-analytics run holds the lock on {params.dbname} "
                f"(schema {scope}); waiting up to {wait} s"
            )
            if not (wait > 0 and _wait_for(conn, key, RUN_LOCK, wait, exclusive_hold=True)):
                raise RunError(
                    f"another seedtest-analytics run is still in progress on {params.dbname} "
                    f"(schema {scope}) after {wait} s; nothing was written"
                )
        # The barrier: writes of an earlier holder that are still going finish first.
        if not _wait_for(conn, key, WRITER_LOCK, max(wait, 1), exclusive_hold=False):
            raise RunError(
                f"a write of an earlier seedtest-analytics run on {params.dbname} (schema "
                f"{scope}) is still going after {max(wait, 1)} s; nothing was written"
            )
        lock = RunLock(key=key, pid=pid, name=name, scope=scope, dbname=params.dbname)
        saved = dbt_environment(lock.env())
        _current, _lock_conn = lock, conn
        try:
            yield lock
        finally:
            _current, _lock_conn = None, None
            dbt_environment(saved)
            with contextlib.suppress(psycopg.Error):
                conn.execute("select pg_advisory_unlock(%s, %s)", (key, RUN_LOCK))


def _wait_for(
    conn: psycopg.Connection, key: int, part: int, wait: int, *, exclusive_hold: bool
) -> bool:
    """Wait up to `wait` s for the advisory lock (key, part); keep it (exclusive_hold) or let
    it go at once (a barrier). False when the wait ran out."""
    try:
        conn.execute(f"set lock_timeout = '{int(wait)}s'")
        conn.execute("select pg_advisory_lock(%s, %s)", (key, part))
    except psycopg.errors.LockNotAvailable:
        return False
    finally:
        with contextlib.suppress(psycopg.Error):
            conn.execute("set lock_timeout = 0")
    if not exclusive_hold:
        conn.execute("select pg_advisory_unlock(%s, %s)", (key, part))
    return True
