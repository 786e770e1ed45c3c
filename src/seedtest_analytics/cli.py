"""The seedtest-analytics command line: a thin layer over the job modules.

Exit codes: 0 success, 1 a failure at run time (nothing half-written), 2 bad usage or
configuration (found before anything is written).
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence

from . import __version__, connection, log
from .config import Settings, load_settings, parse_int
from .dbt_runner import target_schema
from .errors import RunError, UsageError
from .locking import lock_wait_seconds


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"[ERROR] {self.prog}: {message}", file=sys.stderr, flush=True)
        raise SystemExit(2)


DRY_RUN_HELP = (
    "compute and report the same counts without touching the real tables: dbt builds into the "
    "scratch schema <SEEDTEST_DBT_SCHEMA>_dry_run, dropped before and after; the only other "
    "write is the run's row in seedtest_run_history"
)


def _add_common(parser: argparse.ArgumentParser, *, threshold: bool = False) -> None:
    parser.add_argument(
        "--date", metavar="YYYY-MM-DD",
        help="anchor date (default: ANCHOR_DATE, else yesterday in ACTIVITY_TIMEZONE)",
    )
    parser.add_argument("--dry-run", action="store_true", help=DRY_RUN_HELP)
    if threshold:
        parser.add_argument(
            "--threshold", metavar="DAYS",
            help="days without activity before a user is inactive "
            "(default: INACTIVITY_THRESHOLD_DAYS, else 7)",
        )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="seedtest-analytics", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    commands.add_parser(
        "init-db",
        help="create the missing parts of the application schema (for an empty database, the "
        "demo and tests); never replaces or alters an existing table, view, function or index",
    )

    demo = commands.add_parser("demo", help="init-db, synthetic data, then the whole pipeline")
    demo.add_argument("--users", default="300", help="synthetic users, 10 or more (default: 300)")
    demo.add_argument(
        "--days", default="70", help="days of synthetic history, 30 or more (default: 70)"
    )
    demo.add_argument("--seed", default="42", help="random seed of the data (default: 42)")

    aggregate = commands.add_parser("aggregate", help="build features_topic_daily")
    _add_common(aggregate)

    detect = commands.add_parser(
        "detect-inactivity", help="find inactive users, score P and S, write weekly_kpi"
    )
    _add_common(detect, threshold=True)

    run = commands.add_parser("run", help="the nightly pipeline: dbt build, then P/S")
    _add_common(run, threshold=True)

    backfill = commands.add_parser(
        "backfill", help="fill features_topic_daily for a date range in one dbt invocation"
    )
    backfill.add_argument(
        "--start", required=True, metavar="YYYY-MM-DD", help="first day (required)"
    )
    backfill.add_argument("--end", required=True, metavar="YYYY-MM-DD", help="last day (required)")

    commands.add_parser(
        "dbt-retry",
        help="dbt retry: re-run the failed and skipped dbt nodes of the last dbt invocation "
        "(its run_results.json in DBT_TARGET_PATH), with its vars, under the run lock",
    )

    docs = commands.add_parser("docs", help="generate the dbt docs site (and serve it)")
    docs.add_argument("--serve", action="store_true", help="serve it on 127.0.0.1")
    docs.add_argument("--port", default="8080", help="port of --serve, 1-65535 (default: 8080)")

    bench = commands.add_parser(
        "bench", help="benchmark the pipeline against the old row-at-a-time jobs"
    )
    bench.add_argument("--attempts", default="1000000",
                       help="attempt rows to generate (default: %(default)s)")
    bench.add_argument("--days", default="90", help="days of history they span (default: 90)")
    bench.add_argument("--sample", default="200",
                       help="combinations / users for the old jobs (default: 200)")
    bench.add_argument("--history", default="30,90,180",
                       help="history lengths (days), or 0 (default: %(default)s)")
    bench.add_argument("--ps-users", default="0",
                       help="inactive users for the P/S scale run (default: 0, skipped)")
    bench.add_argument("--repeat", default="3",
                       help="repetitions of the short timings (default: 3)")
    bench.add_argument("--database", default="seedtest_bench",
                       help="database to (re)create (default: %(default)s)")
    bench.add_argument("--output", default="BENCHMARKS.md",
                       help="report file (default: %(default)s)")
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(
        date=getattr(args, "date", None),
        threshold=getattr(args, "threshold", None),
        dry_run=bool(getattr(args, "dry_run", False)),
    )


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "docs":
        parse_int("--port", args.port, minimum=1, maximum=65535)  # before generating anything
    if args.command == "init-db":
        from .db import init_db

        params = connection.resolve()
        created = init_db(params)
        log.info(
            f"Application schema ready in {params.redacted()}; created: "
            f"{', '.join(created) or 'nothing'} (existing objects are never replaced)"
        )
        return 0
    if args.command == "demo":
        from .demo import run_demo

        return run_demo(users=args.users, days=args.days, seed=args.seed)
    if args.command == "bench":
        from .bench import main as run_bench

        return run_bench(args)
    if args.command == "backfill":
        from .pipeline import backfill_settings

        settings = backfill_settings(load_settings(date=args.end), args.start)
    elif args.command == "dbt-retry":
        from .retry import retry_settings

        settings = retry_settings()
    else:
        settings = _settings(args)
    log.set_debug(settings.debug)
    # The other settings that reach SQL or the lock, checked before anything connects.
    target_schema()
    lock_wait_seconds()
    if args.command == "docs":
        from .docs import run_docs

        return run_docs(connection.resolve(), settings, serve=args.serve, port=args.port)
    from .runs import execute

    command = args.command
    return execute(command, settings, lambda params, s: _run_job(command, params, s))


def _run_job(command: str, params: connection.ConnectionParams, settings: Settings) -> int:
    if command == "aggregate":
        from .aggregate import run_aggregate

        return run_aggregate(params, settings)
    if command == "detect-inactivity":
        from .inactivity import run_detect_inactivity

        return run_detect_inactivity(params, settings)
    if command == "run":
        from .pipeline import run_pipeline

        return run_pipeline(params, settings)
    if command == "backfill":
        from .pipeline import run_backfill

        return run_backfill(params, settings)
    if command == "dbt-retry":
        from .retry import run_dbt_retry

        return run_dbt_retry(params, settings)
    raise UsageError(f"unknown command {command}")


def _terminate(signum: int, frame: object) -> None:
    # As a container's first process, SIGTERM is ignored unless handled: treat it like Ctrl-C,
    # so open transactions roll back and the pod stops promptly.
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _terminate)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
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
