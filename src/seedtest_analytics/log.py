"""The old jobs' log format on stdlib logging: `[LEVEL] message`, one line each (operators
grep these lines).

Every module logs through the `seedtest_analytics` logger (or a child of it,
`logging.getLogger(__name__)`); this module gives it its one handler: INFO, WARN and DEBUG
lines on stdout, ERROR lines on stderr, the streams looked up at each line (so a caller that
swaps sys.stdout, such as pytest's capture, sees them). DEBUG lines appear after
`set_debug(True)` (the DEBUG setting).
"""

from __future__ import annotations

import logging
import sys

LOGGER_NAME = "seedtest_analytics"
_LEVEL_NAMES = {logging.WARNING: "WARN", logging.CRITICAL: "ERROR"}


class OldJobFormatter(logging.Formatter):
    """`[INFO] message`, `[WARN] message`, `[ERROR] message`, `[DEBUG] message`."""

    def format(self, record: logging.LogRecord) -> str:
        level = _LEVEL_NAMES.get(record.levelno, record.levelname)
        return f"[{level}] {record.getMessage()}"


class ConsoleHandler(logging.Handler):
    """Errors to stderr, everything else to stdout, flushed at each line."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stream = sys.stderr if record.levelno >= logging.ERROR else sys.stdout
            stream.write(self.format(record) + "\n")
            stream.flush()
        except Exception:
            self.handleError(record)


logger = logging.getLogger(LOGGER_NAME)
if not any(isinstance(h, ConsoleHandler) for h in logger.handlers):
    _handler = ConsoleHandler()
    _handler.setFormatter(OldJobFormatter())
    logger.addHandler(_handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # the format is part of the interface: not the root's as well


def set_debug(enabled: bool) -> None:
    logger.setLevel(logging.DEBUG if enabled else logging.INFO)


info = logger.info
warn = logger.warning
error = logger.error
debug = logger.debug
