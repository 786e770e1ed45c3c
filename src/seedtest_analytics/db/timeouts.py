"""Every statement of a run has a lock timeout and a statement timeout.

A write that waits on another session's lock (a `lock table weekly_kpi`, a long transaction
of another job) or a statement that never ends would otherwise hold the run until the
CronJob's activeDeadlineSeconds kills it, without a word in the log. The values reach every
session of the run, dbt's and the package's, through libpq's PGOPTIONS (appended to any the
operator set), and a timeout ends the run with one clear line and exit code 1; the statement's
transaction is rolled back, so nothing is half-written.

Defaults:
- SEEDTEST_LOCK_TIMEOUT_SECONDS = 120: longer than any lock another job or the application
  should hold on weekly_kpi or on the project's tables (their transactions take seconds), and
  short enough that a stuck night fails early enough for the Job's retries.
- SEEDTEST_STATEMENT_TIMEOUT_SECONDS = 3600: the slowest statement measured (the full build
  of features_topic_daily at 10M attempts) takes under 3 minutes, so an hour means something
  is stuck; it fires before the CronJob's activeDeadlineSeconds (2 h), so the log says why.

The sessions also switch idle_session_timeout off: dbt keeps connections open between
models, and a server-side idle timeout would end them (and the run lock's session) mid-run.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import LOCK_TIMEOUT, STATEMENT_TIMEOUT, Safety

LOCK_TIMEOUT_ENV = LOCK_TIMEOUT.env
STATEMENT_TIMEOUT_ENV = STATEMENT_TIMEOUT.env


@dataclass(frozen=True)
class Timeouts:
    lock_seconds: int
    statement_seconds: int

    def pgoptions(self, existing: str = "") -> str:
        ours = (
            f"-c lock_timeout={self.lock_seconds}s -c statement_timeout={self.statement_seconds}s"
            " -c idle_session_timeout=0"
        )
        return f"{existing.strip()} {ours}".strip()


def load_timeouts(safety: Safety) -> Timeouts:
    """The configured timeouts (checked by config.load_settings: a bad value is exit 2,
    before connecting)."""
    return Timeouts(
        lock_seconds=safety.lock_timeout_seconds,
        statement_seconds=safety.statement_timeout_seconds,
    )


# The timeouts the sessions of the running command have (set by jobs/runs.py for the run),
# for the line that says which one fired; the defaults outside a run.
_in_effect: list[Timeouts] = []


def set_in_effect(timeouts: Timeouts | None) -> None:
    _in_effect[:] = [timeouts] if timeouts is not None else []


def in_effect() -> Timeouts:
    return _in_effect[0] if _in_effect else load_timeouts(Safety())
