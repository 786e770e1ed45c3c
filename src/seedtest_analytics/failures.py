"""Failures as one clear line: database errors of the Python steps, and the dbt failures that
have one cause (the run lost its lock, a lock or statement timeout)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import psycopg

from . import locking, log, outcome
from .dbt_runner import BuildSummary
from .errors import RunError
from .timeouts import LOCK_TIMEOUT_ENV, STATEMENT_TIMEOUT_ENV, load_timeouts

_LOCK_TIMEOUT = "canceling statement due to lock timeout"
_STATEMENT_TIMEOUT = "canceling statement due to statement timeout"
_LOST = "seedtest-analytics lost its run lock"
_HISTORY_NOTE = "the run's history row stays 'running' and reads as interrupted"


def _message(exc: BaseException) -> str:
    """The server's primary message (or the exception's first non-empty line), one line."""
    primary = getattr(getattr(exc, "diag", None), "message_primary", None)
    text = primary or str(exc)
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " ".join(lines[:1]) or type(exc).__name__


def database_error(exc: psycopg.Error, step: str) -> RunError:
    """One line for a database error inside a Python step; its transaction was rolled back."""
    lost = locking.current()
    lock_gone = lost is not None and locking.is_lost()
    if lock_gone or isinstance(exc, psycopg.OperationalError):
        down = outcome.unreachable()  # the database itself, rather than a session of ours?
        if down is not None:
            return RunError(
                f"{step}: the database stopped answering ({down}); rolled back, nothing of it "
                f"was written; {_HISTORY_NOTE}"
            )
    if lost is not None and lock_gone:
        return RunError(lost.lost_message(f"finishing {step}"))
    if isinstance(exc, psycopg.errors.LockNotAvailable):
        seconds = load_timeouts().lock_seconds
        return RunError(
            f"{step} waited more than {seconds} s for a lock held by another session "
            f"({LOCK_TIMEOUT_ENV}={seconds}); rolled back, nothing of it was written"
        )
    if isinstance(exc, psycopg.errors.QueryCanceled) and "statement timeout" in str(exc):
        seconds = load_timeouts().statement_seconds
        return RunError(
            f"{step} took more than {seconds} s ({STATEMENT_TIMEOUT_ENV}={seconds}); "
            "rolled back, nothing of it was written"
        )
    if isinstance(exc, psycopg.OperationalError):
        return RunError(
            f"{step}: the database connection was lost ({_message(exc)}); rolled back, "
            "nothing of it was written"
        )
    sqlstate = getattr(exc, "sqlstate", None)
    code = f" [{sqlstate}]" if sqlstate else ""
    return RunError(f"{step} failed: {_message(exc)}{code}; rolled back, nothing of it was written")


@contextlib.contextmanager
def database_step(step: str) -> Iterator[None]:
    """Turn a database error inside the block into one RunError line."""
    try:
        yield
    except psycopg.Error as exc:
        raise database_error(exc, step) from None


def _node(message: str) -> str:
    match = re.match(r"(model|test|unit_test|hook) (\S+?):", message)
    return f"dbt {match.group(1)} {match.group(2)}" if match else "a dbt statement"


def dbt_failure(summary: BuildSummary) -> str | None:
    """The one line that explains a failed dbt invocation when it has a single cause (lost
    lock, lock timeout, statement timeout); None when dbt's own error lines say it better."""
    lock = locking.current()
    lock_gone = lock is not None and (locking.is_lost() or any(_LOST in e for e in summary.errors))
    if lock_gone or any(outcome.classify(e) == "connection_lost" for e in summary.errors):
        down = outcome.unreachable()  # the database stopped: not the lock's fault
        if down is not None:
            return (
                f"dbt stopped: the database stopped answering ({down}); nothing half-written; "
                f"{_HISTORY_NOTE}"
            )
    if lock is not None and lock_gone:
        return lock.lost_message("its next write")
    for message in summary.errors:
        if _LOCK_TIMEOUT in message:
            seconds = load_timeouts().lock_seconds
            return (
                f"{_node(message)} waited more than {seconds} s for a lock held by another "
                f"session ({LOCK_TIMEOUT_ENV}={seconds}); its transaction was rolled back"
            )
        if _STATEMENT_TIMEOUT in message:
            seconds = load_timeouts().statement_seconds
            return (
                f"{_node(message)} took more than {seconds} s ({STATEMENT_TIMEOUT_ENV}="
                f"{seconds}); its transaction was rolled back"
            )
    return None


def report_build_failure(summary: BuildSummary, consequence: str | None = None) -> str:
    """Log why a dbt invocation failed: one line when it has one cause (lost lock, timeout),
    else dbt's error lines (and `consequence`). Returns the first error line."""
    line = dbt_failure(summary)
    if line is not None:
        log.error(line)
        return line
    messages = [*summary.errors, *([consequence] if consequence else [])]
    for message in messages:
        log.error(message)
    return messages[0] if messages else "dbt failed"
