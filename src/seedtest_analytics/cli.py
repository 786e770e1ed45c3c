"""The seedtest-analytics command line: a thin layer over the job modules.

Exit codes: 0 success, 1 a failure at run time (nothing half-written; a retry may succeed),
2 bad usage or configuration, a refused login or a missing privilege (a retry cannot help),
3 the source is stale (see --allow-stale). Every [ERROR] line is one line,
`[ERROR] <class>: <cause>`; the run history keeps the class and cause of the first one.
"""

from __future__ import annotations

import argparse
import gc
import signal
import sys
from collections.abc import Sequence

from . import __version__, cli_help, log, outcome
from .config import Settings, load_settings, parse_int
from .db import connection
from .db.app_schema import setup_app_schema
from .dbt import targets
from .dbt.docs import run_docs
from .dbt.paths import checked_project_root
from .dbt.retry import retry_settings, run_dbt_retry
from .dbt.runner import target_schema
from .errors import RunError, UsageError
from .jobs.features import run_aggregate
from .jobs.inactivity import run_detect_inactivity
from .jobs.pipeline import backfill_settings, run_backfill, run_pipeline
from .jobs.rebuild import run_rebuild
from .jobs.runs import execute
from .scoring.churn_scorer import churn_scorer
from .warehouse import engine


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"[ERROR] {self.prog}: {message}", file=sys.stderr, flush=True)
        raise SystemExit(2)


DRY_RUN_HELP = (
    "compute and report the same counts without touching the real tables: dbt builds "
    "dry_run__<model> relations in SEEDTEST_DBT_SCHEMA, marked as the dry run's and dropped "
    "before and after (on Spark: the scratch database <SEEDTEST_DBT_SCHEMA>_dry_run); the only "
    "other write is the run's row in seedtest_run_history"
)


def _add_common(parser: argparse.ArgumentParser, *, threshold: bool = False) -> None:
    parser.add_argument(
        "--date",
        metavar="YYYY-MM-DD",
        help="anchor date (default: ANCHOR_DATE, else yesterday in ACTIVITY_TIMEZONE)",
    )
    parser.add_argument("--dry-run", action="store_true", help=DRY_RUN_HELP)
    if threshold:
        parser.add_argument(
            "--allow-stale",
            action="store_true",
            help="score even when the source looks stale, for this run only (the same as "
            "SEEDTEST_ALLOW_STALE=true)",
        )
        parser.add_argument(
            "--threshold",
            metavar="DAYS",
            help="days without activity before a user is inactive "
            "(default: INACTIVITY_THRESHOLD_DAYS, else 7)",
        )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="seedtest-analytics",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    init = commands.add_parser(
        "init-db",
        help="create the missing parts of the application schema (for an empty database, the "
        "demo and tests); never replaces or alters an existing table, view, function or index",
    )
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
    backfill.add_argument(
        "--start",
        required=True,
        metavar="YYYY-MM-DD",
        help="first day (required); like the nightly run of that day, it also rewrites the "
        "AGG_LOOKBACK_DAYS days before it",
    )
    backfill.add_argument("--end", required=True, metavar="YYYY-MM-DD", help="last day (required)")
    backfill.add_argument("--dry-run", action="store_true", help=DRY_RUN_HELP)
    backfill.set_defaults(func=_locked, job=run_backfill, settings=_backfill_settings)

    rebuild = commands.add_parser(
        "rebuild",
        help="rebuild every model of the nightly run from all history (dbt build "
        "--full-refresh), under the run lock, recorded in the run history: after a change of "
        "ACTIVITY_TIMEZONE, AGG_LOOKBACK_DAYS or AGG_INCLUDE_THETA; weekly_kpi is not touched",
    )
    _add_common(rebuild)
    rebuild.set_defaults(func=_locked, job=run_rebuild)

    backtest = commands.add_parser(
        "backtest", help="is S right? score past anchors as the nightly run would have"
    )
    backtest.add_argument("--start", required=True, help="first anchor YYYY-MM-DD")
    backtest.add_argument("--end", required=True, help="last anchor YYYY-MM-DD")
    backtest.add_argument("--every", default="7", help="days between anchors (default 7)")
    backtest.add_argument(
        "--output",
        default="backtest-report.json",
        help="JSON report file (default: backtest-report.json)",
    )
    backtest.add_argument(
        "--html", help="also write a self-contained HTML report here (default: none)"
    )

    train = commands.add_parser(
        "train-churn", help="fit the logistic churn model on outcomes known by --until"
    )
    train.add_argument("--until", required=True, help="last day of outcomes it may learn from")
    train.add_argument("--start", help="first anchor (default: a year before the last one)")
    train.add_argument(
        "--every",
        default="1",
        help="days between anchors (default 1: daily, the rows the promotion gate needs)",
    )
    for parser_ in (backtest, train):
        parser_.set_defaults(func=_backtest)

    retry = commands.add_parser(
        "dbt-retry",
        help="dbt retry: re-run the failed and skipped dbt nodes of the last dbt invocation "
        "(its run_results.json in DBT_TARGET_PATH), with its vars, under the run lock",
    )
    retry.set_defaults(func=_locked, job=run_dbt_retry, settings=lambda args: retry_settings())

    docs = commands.add_parser("docs", help="generate the dbt docs site (and serve it)")
    docs.add_argument("--serve", action="store_true", help="serve it on 127.0.0.1")
    docs.add_argument("--port", default="8080", help="port of --serve, 1-65535 (default: 8080)")
    docs.set_defaults(func=_docs)

    status = commands.add_parser(
        "status",
        help="the last successful run of each command and the runs since that did not "
        "succeed, from the run history; with --max-age, exit 1 when the checked command's "
        "last success is older (exit 2: the history cannot be read)",
    )
    status.add_argument(
        "--max-age",
        metavar="HOURS",
        help="exit 1 when --command last succeeded more than HOURS ago (or never)",
    )
    status.add_argument(
        "--command",
        default="run",
        dest="checked_command",
        help="the command --max-age checks (default: run)",
    )
    status.set_defaults(func=_status)
    cli_help.describe(commands)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(
        date=getattr(args, "date", None),
        threshold=getattr(args, "threshold", None),
        dry_run=bool(getattr(args, "dry_run", False)),
        allow_stale=bool(getattr(args, "allow_stale", False)),
    )


def _backfill_settings(args: argparse.Namespace) -> Settings:
    return backfill_settings(load_settings(date=args.end, dry_run=args.dry_run), args.start)


def _checked_settings(args: argparse.Namespace) -> Settings:
    """The settings (every value checked by load_settings: the run's, the guards', the
    engine's), and the other values that reach SQL, checked before anything connects."""
    checked_project_root()  # dbt-retry's settings are read from the project's target/
    settings: Settings = getattr(args, "settings", _settings)(args)
    log.set_debug(settings.debug)
    target_schema()
    engine.validate(
        settings.spark,
        getattr(args, "command", ""),
        needs_postgres_models=churn_scorer(settings).needs_postgres_models,
    )
    return settings


def _init_db(args: argparse.Namespace) -> int:
    params = connection.resolve()
    setup = setup_app_schema(params)
    if setup.missing:
        log.info(
            f"The application's schema in {params.redacted()} holds its tables: init-db "
            f"created nothing in it; missing: {', '.join(setup.missing)}"
        )
        return 0
    created = setup.created
    log.info(
        f"Application schema ready in {params.redacted()}; created: "
        f"{', '.join(created) or 'nothing'} (existing objects are never replaced)"
    )
    return 0


def _docs(args: argparse.Namespace) -> int:
    parse_int("--port", args.port, minimum=1, maximum=65535)  # before generating anything
    settings = _checked_settings(args)
    return run_docs(connection.resolve(), settings, serve=args.serve, port=args.port)


def _locked(args: argparse.Namespace) -> int:
    """A job that writes: every check, then under the advisory lock of its database and dbt
    schema, with its row in the run history (runs.py)."""
    settings = _checked_settings(args)
    if args.job in (run_pipeline, run_detect_inactivity):
        scorer = churn_scorer(settings)
        if scorer.needs_postgres_models:
            scorer.check(connection.resolve(), settings)
    return execute(args.command, settings, args.job)


def _status(args: argparse.Namespace) -> int:
    from .config import parse_float
    from .monitoring.status import run_status

    max_age = None
    if args.max_age is not None:
        max_age = parse_float("--max-age", args.max_age)
        if max_age <= 0:
            raise UsageError(f"--max-age must be a positive number of hours (got {args.max_age})")
    return run_status(
        connection.resolve(), target_schema(), max_age=max_age, command=args.checked_command
    )


def _backtest(args: argparse.Namespace) -> int:
    """backtest and train-churn: they write only their own tables, under the same lock."""
    from .churn.commands import check_args, run_command

    settings = _checked_settings(args)
    check_args(args, settings)
    return execute(args.command, settings, lambda params, s: run_command(args, params, s))


def _terminate(signum: int, frame: object) -> None:
    # As a container's first process, SIGTERM is ignored unless handled: treat it like Ctrl-C,
    # so open transactions roll back and the pod stops promptly.
    outcome.interrupted()
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    outcome.install(dbt=args.command not in ("status", "init-db"))
    targets.own_target(args.command)
    try:
        code: int = args.func(args)
        return code
    except UsageError as exc:
        log.error(str(exc), extra={"error_class": "configuration"})
        return 2
    except RunError as exc:
        error_class = outcome.classify(str(exc))
        log.error(str(exc), extra={"error_class": error_class})
        return outcome.exit_code(1, error_class)
    except KeyboardInterrupt:
        log.error("interrupted")
        return 1
    finally:
        outcome.uninstall()
        _before_exit()


def _before_exit() -> None:
    """The command is done: its output is flushed, its connections closed. With dbt loaded,
    the interpreter's last garbage collection at exit walks every object dbt made (the
    manifest, the compiled nodes), about half a second for nothing: leave them to the exit."""
    sys.stdout.flush()
    sys.stderr.flush()
    gc.disable()
    gc.freeze()
