"""The seedtest-analytics command line: a thin layer over the job modules.

Exit codes: 0 success, 1 a failure at run time (nothing half-written), 2 bad usage or
configuration (found before anything is written).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import connection, log
from .config import Settings, load_settings
from .errors import RunError, UsageError


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"[ERROR] {self.prog}: {message}", file=sys.stderr, flush=True)
        raise SystemExit(2)


def _add_common(parser: argparse.ArgumentParser, *, threshold: bool = False) -> None:
    parser.add_argument("--date", help="anchor date YYYY-MM-DD (default: yesterday)")
    parser.add_argument("--dry-run", action="store_true", help="compute and report, write nothing")
    if threshold:
        parser.add_argument("--threshold", help="inactivity threshold in days (default 7)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="seedtest-analytics", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    commands.add_parser("init-db", help="create the application schema in an empty database")

    demo = commands.add_parser("demo", help="init-db, synthetic data, then the whole pipeline")
    demo.add_argument("--users", default="300")
    demo.add_argument("--days", default="70")
    demo.add_argument("--seed", default="42")

    aggregate = commands.add_parser("aggregate", help="build features_topic_daily")
    _add_common(aggregate)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(
        date=getattr(args, "date", None),
        threshold=getattr(args, "threshold", None),
        dry_run=bool(getattr(args, "dry_run", False)),
    )


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "init-db":
        from .db import init_db

        params = connection.resolve()
        init_db(params)
        log.info(f"Application schema ready in {params.redacted()}")
        return 0
    settings = _settings(args)
    log.set_debug(settings.debug)
    params = connection.resolve()
    if args.command == "aggregate":
        from .aggregate import run_aggregate

        return run_aggregate(params, settings)
    raise UsageError(f"unknown command {args.command}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _dispatch(args)
    except UsageError as exc:
        log.error(str(exc))
        return 2
    except RunError as exc:
        log.error(str(exc))
        return 1
    except KeyboardInterrupt:
        log.error("interrupted")
        return 1
