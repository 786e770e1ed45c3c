"""Database errors of the Python steps as one clear line (the run lost its lock, a lock or
statement timeout, a lost connection, any other error with its SQLSTATE)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psycopg

from .. import outcome
from ..errors import RunError
from . import locking
from .timeouts import LOCK_TIMEOUT_ENV, STATEMENT_TIMEOUT_ENV, in_effect

HISTORY_NOTE = "the run's history row stays 'running' and reads as interrupted"


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
                f"was written; {HISTORY_NOTE}"
            )
    if lost is not None and lock_gone:
        return RunError(lost.lost_message(f"finishing {step}"))
    if isinstance(exc, psycopg.errors.LockNotAvailable):
        seconds = in_effect().lock_seconds
        return RunError(
            f"{step} waited more than {seconds} s for a lock held by another session "
            f"({LOCK_TIMEOUT_ENV}={seconds}); rolled back, nothing of it was written"
        )
    if isinstance(exc, psycopg.errors.QueryCanceled) and "statement timeout" in str(exc):
        seconds = in_effect().statement_seconds
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
