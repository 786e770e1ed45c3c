"""How a run ended, in words an operator can act on: the failure classes, the exit code each
one means, and the one-line [ERROR] event.

Every [ERROR] line of a command is one line (embedded line breaks are folded) and ends with
its class, `[ERROR] <cause> [error_class=<class>]` (a usage or configuration error, exit 2, has
no suffix: its exit code says it); the run history keeps the first one's class
and cause (columns `error_class`, `error`). The classes:

- database_unreachable: the database could not be reached (or stopped during the run);
- connection_lost: the database was up but a session of the run ended;
- authentication: the database refused the credentials, or TLS failed: the server's
  certificate did not verify against the CA given, a TLS file cannot be used (exit 2: a retry
  cannot fix it);
- permission: the job's role lacks a privilege (exit 2);
- configuration: a setting or usage error (exit 2);
- stale_source: the source stopped receiving data (exit 3: not retried, see --allow-stale);
- lock_busy: another run held the run lock for longer than allowed;
- lock_lost: the run's lock session ended while the database stayed up;
- timeout: a lock or statement timeout;
- dbt_model_failed, dbt_test_failed: a dbt model or data test failed;
- write_failures: too many of the users found could not be written (SEEDTEST_MAX_FAILED_SHARE);
- interrupted: the run was stopped (SIGTERM, Ctrl-C);
- failed: anything else.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

import psycopg

from .db.connection import ConnectionParams

EXIT_OK = 0
EXIT_FAILED = 1  # a run-time failure: a retry may succeed
EXIT_CONFIG = 2  # usage, configuration, authentication, privileges: a retry cannot help
EXIT_STALE = 3  # the source is stale: a retry within the hour cannot help either

CONFIG_CLASSES = frozenset({"authentication", "permission", "configuration"})

# Checked in order: the first pattern that matches names the class.
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern, re.IGNORECASE))
    for name, pattern in (
        (
            "authentication",
            r"password authentication failed|authentication failed|no pg_hba\.conf entry"
            r"|no password supplied|\[28P01\]|\[28000\]"
            # TLS: the server's certificate does not verify, or a TLS file cannot be used
            r"|certificate verify failed|server certificate for .* does not match host name"
            r"|root certificate file .* does not exist|could not (read|load) (root certificate"
            r"|private key|SSL certificate|client certificate)|certificate present, but not"
            r"|private key file .* has (group|world) access|server does not support SSL",
        ),
        (
            "permission",
            r"permission denied|must be owner of|\[42501\]|insufficient privilege",
        ),
        ("database_unreachable", r"cannot connect to|database is unreachable"),
        ("stale_source", r"looks stale"),
        ("write_failures", r"could not be written, more than"),
        ("lock_busy", r"still in progress on|a write of an earlier seedtest-analytics run"),
        ("lock_lost", r"lost its (run )?lock"),
        (
            "timeout",
            r"waited more than \d+ s for a lock|took more than \d+ s|statement timeout"
            r"|lock timeout",
        ),
        (
            "connection_lost",
            r"connection was lost|terminating connection|server closed the connection"
            r"|connection to server .* failed|SSL SYSCALL error|consuming input failed"
            r"|the connection is (closed|lost)",
        ),
        ("interrupted", r"^interrupted"),
        ("dbt_test_failed", r"^test |dbt test |severity error"),
        ("dbt_model_failed", r"^model |dbt model |^dbt (build|run|retry) failed|^hook "),
    )
)

_SUFFIX = re.compile(r" \[error_class=([a-z_]+)\]$")
KNOWN = frozenset({name for name, _ in _PATTERNS} | {"configuration", "failed"})


def one_line(text: str) -> str:
    """`text` as one line: its non-empty lines joined with ' | ', whitespace runs folded."""
    lines = [" ".join(line.split()) for line in str(text).splitlines()]
    return " | ".join(line for line in lines if line)


def classify(message: str, default: str = "failed") -> str:
    """The failure class of an error line (already prefixed lines keep theirs)."""
    text = one_line(message)
    marked = _SUFFIX.search(text)
    if marked:
        return marked.group(1)
    for name, pattern in _PATTERNS:
        if pattern.search(text):
            return name
    return default


def strip_class(message: str) -> str:
    text = one_line(message)
    marked = _SUFFIX.search(text)
    return text[: marked.start()] if marked else text


def exit_code(code: int, error_class: str | None) -> int:
    """The command's exit code from the job's (0 or 1) and the class of its first error."""
    if code == EXIT_OK or error_class is None:
        return code
    if error_class in CONFIG_CLASSES:
        return EXIT_CONFIG
    if error_class == "stale_source":
        return EXIT_STALE
    return code


_database: ConnectionParams | None = None


def set_database(params: ConnectionParams) -> None:
    """The database of the run: what unreachable() probes."""
    global _database
    _database = params


def unreachable() -> str | None:
    """Why the run's database cannot be reached now (a fresh connection fails), or None.
    Tells "the database stopped" from "a session of ours ended" after a lost connection."""
    if _database is None:
        return None
    try:
        with psycopg.connect(**_database.psycopg_kwargs(), connect_timeout=5) as conn:
            conn.execute("select 1")
    except psycopg.Error as exc:
        text = one_line(str(exc)).removeprefix("connection failed: ")
        return f"cannot connect to {_database.redacted()}: {text}"
    return None


class OneLineErrors(logging.Filter):
    """On the package's logger: every ERROR record becomes one line, `<class>: <cause>`, and
    the first one of a run is noted in its history row."""

    # The same record reaches the filter once; a message logged twice is marked once.

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.ERROR:
            return True
        message = record.getMessage()
        error_class = getattr(record, "error_class", None) or classify(message)
        cause = strip_class(message)
        # A usage or configuration error is exit 2 and says so itself: no class to add.
        shown = cause if error_class == "configuration" else f"{cause} [error_class={error_class}]"
        record.msg, record.args = shown, None
        for sink in _sinks:
            sink(cause, error_class)
        return True


# Where a run's first error goes besides the log: the run history registers itself here.
_sinks: list[Callable[[str, str], None]] = []


def on_error(sink: Callable[[str, str], None]) -> None:
    if sink not in _sinks:
        _sinks.append(sink)


_signalled = False


def interrupted() -> None:
    """Called by the signal handlers (SIGINT, SIGTERM) before they stop the run."""
    global _signalled
    _signalled = True


def _dbt_end_of_run() -> None:
    """dbt ends a run whose on-run-end hook failed (as when the database stops) with
    "Exited because of keyboard interrupt", whatever the cause: say that only after a signal."""
    try:
        from dbt.events import types
    except ImportError:  # pragma: no cover - dbt is a dependency
        return
    summary = types.EndOfRunSummary
    if getattr(summary, "_seedtest_wrapped", False):
        return
    original = summary.message

    def message(self: Any) -> str:
        if self.keyboard_interrupt and not _signalled:
            return "Stopped before the end of the run (the [ERROR] line says why)"
        return str(original(self))

    summary.message = message  # type: ignore[method-assign]
    summary._seedtest_wrapped = True  # type: ignore[attr-defined]


def install(*, dbt: bool = True) -> None:
    logger = logging.getLogger("seedtest_analytics")
    if not any(isinstance(f, OneLineErrors) for f in logger.filters):
        logger.addFilter(OneLineErrors())
    if dbt:
        _dbt_end_of_run()


def uninstall() -> None:
    """The command is over: log lines of the same process (a caller's) are left as they are."""
    logger = logging.getLogger("seedtest_analytics")
    for found in [f for f in logger.filters if isinstance(f, OneLineErrors)]:
        logger.removeFilter(found)
