"""The old jobs' log format: `[LEVEL] message` on stdout, one line each (operators grep it)."""

from __future__ import annotations

import sys

_debug = False


def set_debug(enabled: bool) -> None:
    global _debug
    _debug = enabled


def info(message: str) -> None:
    print(f"[INFO] {message}", flush=True)


def warn(message: str) -> None:
    print(f"[WARN] {message}", flush=True)


def error(message: str) -> None:
    print(f"[ERROR] {message}", file=sys.stderr, flush=True)


def debug(message: str) -> None:
    if _debug:
        print(f"[DEBUG] {message}", flush=True)
