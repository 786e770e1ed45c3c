"""The seedtest-analytics command line: a thin layer over the job modules.

Exit codes: 0 success, 1 a failure at run time (nothing half-written), 2 bad usage or
configuration (found before anything is written).
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence

from . import connection, log
from .config import Settings, load_settings
from .dbt_runner import target_schema
from .errors import RunError, UsageError
from .locking import lock_wait_seconds, pipeline_lock


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

    commands.add_parser(
        "init-db",
        help="create the missing parts of the application schema (for an empty database, the "
        "demo and tests); never replaces or alters an existing table, view, function or index",
    )

    demo = commands.add_parser("demo", help="init-db, synthetic data, then the whole pipeline")
    demo.add_argument("--users", default="300")
    demo.add_argument("--days", default="70")
    demo.add_argument("--seed", default="42")

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
    backfill.add_argument("--start", required=True, help="first day YYYY-MM-DD")
    backfill.add_argument("--end", required=True, help="last day YYYY-MM-DD")

    docs = commands.add_parser("docs", help="generate the dbt docs site (and serve it)")
    docs.add_argument("--serve", action="store_true", help="serve it on localhost")
    docs.add_argument("--port", default="8080")

    bench = commands.add_parser(
        "bench", help="benchmark the pipeline against the old row-at-a-time jobs"
    )
    bench.add_argument("--attempts", default="1000000", help="attempt rows to generate")
    bench.add_argument("--days", default="90", help="days of history they span")
    bench.add_argument("--sample", default="200", help="combinations / users for the old jobs")
    bench.add_argument("--history", default="30,90,180", help="history lengths (days), or 0")
    bench.add_argument("--ps-users", default="0", help="inactive users for the P/S scale run")
    bench.add_argument("--repeat", default="3", help="repetitions of the short timings")
    bench.add_argument("--database", default="seedtest_bench", help="database to (re)create")
    bench.add_argument("--output", default="BENCHMARKS.md", help="report file")
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
    else:
        settings = _settings(args)
    log.set_debug(settings.debug)
    # The other settings that reach SQL or the lock, checked before anything connects.
    scope = target_schema()
    lock_wait_seconds()
    if args.command == "docs":
        from .docs import run_docs

        return run_docs(connection.resolve(), settings, serve=args.serve, port=args.port)
    params = connection.resolve()
    with pipeline_lock(params, scope):
        return _run_job(args.command, params, settings)


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
    raise UsageError(f"unknown command {command}")


def _terminate(signum: int, frame: object) -> None:
    # As a container's first process, SIGTERM is ignored unless handled: treat it like Ctrl-C,
    # so open transactions roll back and the pod stops promptly.
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _terminate)
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
