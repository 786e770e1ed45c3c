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
from .aggregate import run_aggregate
from .config import Settings, load_settings
from .db import init_db
from .dbt_runner import target_schema
from .docs import run_docs
from .errors import RunError, UsageError
from .inactivity import run_detect_inactivity
from .locking import lock_wait_seconds, pipeline_lock
from .pipeline import backfill_settings, run_backfill, run_pipeline


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

    init = commands.add_parser("init-db", help="create the application schema in an empty database")
    init.set_defaults(func=_init_db)

    aggregate = commands.add_parser("aggregate", help="build features_topic_daily")
    _add_common(aggregate)
    aggregate.set_defaults(func=_locked, job=run_aggregate)

    detect = commands.add_parser(
        "detect-inactivity", help="find inactive users, score P and S, write weekly_kpi"
    )
    _add_common(detect, threshold=True)
    detect.set_defaults(func=_locked, job=run_detect_inactivity)

    run = commands.add_parser("run", help="the nightly pipeline: dbt build, then P/S")
    _add_common(run, threshold=True)
    run.set_defaults(func=_locked, job=run_pipeline)

    backfill = commands.add_parser(
        "backfill", help="fill features_topic_daily for a date range in one dbt invocation"
    )
    backfill.add_argument("--start", required=True, help="first day YYYY-MM-DD")
    backfill.add_argument("--end", required=True, help="last day YYYY-MM-DD")
    backfill.set_defaults(func=_locked, job=run_backfill, settings=_backfill_settings)

    backtest = commands.add_parser(
        "backtest", help="is S right? score past anchors as the nightly run would have"
    )
    backtest.add_argument("--start", required=True, help="first anchor YYYY-MM-DD")
    backtest.add_argument("--end", required=True, help="last anchor YYYY-MM-DD")
    backtest.add_argument("--every", default="7", help="days between anchors (default 7)")
    backtest.add_argument("--output", default="backtest-report.json", help="JSON report file")
    backtest.add_argument("--html", help="also write a self-contained HTML report here")

    train = commands.add_parser(
        "train-churn", help="fit the logistic churn model on outcomes known by --until"
    )
    train.add_argument("--until", required=True, help="last day of outcomes it may learn from")
    train.add_argument("--start", help="first anchor (default: a year before the last one)")
    train.add_argument("--every", default="7", help="days between anchors (default 7)")
    for parser_ in (backtest, train):
        parser_.set_defaults(func=_backtest)

    docs = commands.add_parser("docs", help="generate the dbt docs site (and serve it)")
    docs.add_argument("--serve", action="store_true", help="serve it on localhost")
    docs.add_argument("--port", default="8080")
    docs.set_defaults(func=_docs)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(
        date=getattr(args, "date", None),
        threshold=getattr(args, "threshold", None),
        dry_run=bool(getattr(args, "dry_run", False)),
    )


def _backfill_settings(args: argparse.Namespace) -> Settings:
    return backfill_settings(load_settings(date=args.end), args.start)


def _checked_settings(args: argparse.Namespace) -> Settings:
    """The settings, and the other values that reach SQL or the lock, checked before anything
    connects."""
    settings: Settings = getattr(args, "settings", _settings)(args)
    log.set_debug(settings.debug)
    target_schema()
    lock_wait_seconds()
    return settings


def _init_db(args: argparse.Namespace) -> int:
    params = connection.resolve()
    init_db(params)
    log.info(f"Application schema ready in {params.redacted()}")
    return 0


def _docs(args: argparse.Namespace) -> int:
    settings = _checked_settings(args)
    return run_docs(connection.resolve(), settings, serve=args.serve, port=args.port)


def _locked(args: argparse.Namespace) -> int:
    """A job that writes: under the advisory lock of its database and dbt schema."""
    settings = _checked_settings(args)
    params = connection.resolve()
    if settings.churn_model == "logistic" and args.job in (run_pipeline, run_detect_inactivity):
        from .churn_model import check_trained

        check_trained(params, settings)  # no trained model: one line, exit 2, before dbt
    with pipeline_lock(params, target_schema()):
        code: int = args.job(params, settings)
    return code


def _backtest(args: argparse.Namespace) -> int:
    """backtest and train-churn: they write only their own tables, under the same lock."""
    from .backtest import run_command

    settings = _checked_settings(args)
    params = connection.resolve()
    with pipeline_lock(params, target_schema()):
        code: int = run_command(args, params, settings)
    return code


def _terminate(signum: int, frame: object) -> None:
    # As a container's first process, SIGTERM is ignored unless handled: treat it like Ctrl-C,
    # so open transactions roll back and the pod stops promptly.
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _terminate)
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except UsageError as exc:
        log.error(str(exc))
        return 2
    except RunError as exc:
        log.error(str(exc))
        return 1
    except KeyboardInterrupt:
        log.error("interrupted")
        return 1
