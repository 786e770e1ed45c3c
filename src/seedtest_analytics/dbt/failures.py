"""dbt failures as one clear line when they have one cause (the run lost its lock, a lock or
statement timeout); else dbt's own error lines."""

from __future__ import annotations

import re

from .. import log, outcome
from ..db import locking
from ..db.failures import HISTORY_NOTE
from ..db.timeouts import LOCK_TIMEOUT_ENV, STATEMENT_TIMEOUT_ENV, in_effect
from .runner import BuildSummary

_LOCK_TIMEOUT = "canceling statement due to lock timeout"
_STATEMENT_TIMEOUT = "canceling statement due to statement timeout"
_LOST = "seedtest-analytics lost its run lock"
# A refusal of the project's own (macros/materializations/published_table.sql,
# macros/incremental/incremental_settings.sql, macros/run_window/): its sentence says it all.
_REFUSED = re.compile(r"(\S+ not (?:re)?built, nothing (?:dropped|written|deleted): [^\n]+)")


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
                f"{HISTORY_NOTE}"
            )
    if lock is not None and lock_gone:
        return lock.lost_message("its next write")
    for message in summary.errors:
        refused = _REFUSED.search(message)
        if refused:
            return refused.group(1).strip()
        if _LOCK_TIMEOUT in message:
            seconds = in_effect().lock_seconds
            return (
                f"{_node(message)} waited more than {seconds} s for a lock held by another "
                f"session ({LOCK_TIMEOUT_ENV}={seconds}); its transaction was rolled back"
            )
        if _STATEMENT_TIMEOUT in message:
            seconds = in_effect().statement_seconds
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
    for message in summary.errors:
        log.error(message)
    if consequence:
        # the consequence follows from the first cause: it carries that cause's class (a
        # refused privilege stays `permission` on the last line, as in the exit code)
        cause_class = outcome.classify(summary.errors[0]) if summary.errors else "failed"
        if cause_class == "failed":
            log.error(consequence)
        else:
            log.error(consequence, extra={"error_class": cause_class})
    messages = [*summary.errors, *([consequence] if consequence else [])]
    return messages[0] if messages else "dbt failed"
