"""seedtest-dev: the development tools of seedtest-analytics (not in the Docker image).

  seedtest-dev demo                 synthetic data on the embedded PostgreSQL, then the pipeline
  seedtest-dev generate             the demo's synthetic data into DATABASE_URL (no pipeline)
  seedtest-dev db start|stop|status the embedded PostgreSQL whose data lives in .pgdata/
  seedtest-dev db url|env|psql      its libpq URI, the `export` line for dbt/psql, a psql prompt
  seedtest-dev bench                the benchmark (docs/benchmarks.md)
  seedtest-dev config-docs [--check] docs/configuration.md from the settings table

Exit codes as seedtest-analytics: 0 success, 1 a failure at run time, 2 bad usage;
`db status` exits 3 when the server is not running (as pg_ctl status does).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence

from seedtest_analytics import log
from seedtest_analytics.dbt.runner import project_root
from seedtest_analytics.errors import RunError, UsageError

from . import embedded

NOT_RUNNING = 3


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        log.error(f"{self.prog}: {message}")
        raise SystemExit(2)


def _running() -> embedded.Server:
    server = embedded.status()
    if server is None:
        raise RunError(
            f"the embedded PostgreSQL in {embedded.pgdata_dir()} is not running; start it with: "
            "seedtest-dev db start"
        )
    return server


def _export_line(server: embedded.Server, dbname: str) -> str:
    # A plain `dbt` run from the checkout also needs the profile, which lives in profiles/.
    line = embedded.export_line(server.params(dbname))
    return f"{line} DBT_PROFILES_DIR={project_root() / 'profiles'}"


def _db_start(args: argparse.Namespace) -> int:
    server = embedded.start()
    params = server.params(args.dbname)
    embedded.ensure_database(params)
    log.info(
        f"Embedded PostgreSQL running: data in {server.pgdata}, socket {server.socket_dir}, "
        f"port {server.port}, pid {server.pid}"
    )
    print(f"URI (psql, DATABASE_URL): {params.redacted()}")
    print(f"For dbt, psql, seedtest-analytics in a shell: {_export_line(server, args.dbname)}")
    print("It keeps running until: seedtest-dev db stop")
    return 0


def _db_stop(args: argparse.Namespace) -> int:
    if embedded.stop():
        log.info(f"Embedded PostgreSQL stopped (its data stays in {embedded.pgdata_dir()})")
    else:
        log.info(f"The embedded PostgreSQL in {embedded.pgdata_dir()} was not running")
    return 0


def _db_status(args: argparse.Namespace) -> int:
    server = embedded.status()
    if server is None:
        log.info(f"The embedded PostgreSQL in {embedded.pgdata_dir()} is not running")
        return NOT_RUNNING
    log.info(
        f"Embedded PostgreSQL running: data in {server.pgdata}, pid {server.pid}, "
        f"{server.params(args.dbname).redacted()}"
    )
    return 0


def _db_url(args: argparse.Namespace) -> int:
    print(_running().params(args.dbname).redacted())
    return 0


def _db_env(args: argparse.Namespace) -> int:
    print(_export_line(_running(), args.dbname))
    return 0


def _db_psql(args: argparse.Namespace) -> int:
    url = _running().params(args.dbname).redacted()
    psql = str(embedded.psql_path())
    sys.stdout.flush()
    os.execv(psql, [psql, url, *args.psql_args])


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(users=args.users, days=args.days, seed=args.seed)


def _generate(args: argparse.Namespace) -> int:
    from .generate import run_generate

    return run_generate(users=args.users, days=args.days, seed=args.seed, end_date=args.end_date)


def _bench(args: argparse.Namespace) -> int:
    from .bench import main as run_bench

    return run_bench(args)


def _config_docs(args: argparse.Namespace) -> int:
    from .configdoc import main as write_config_docs

    return write_config_docs(check=args.check)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="seedtest-dev",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(
        dest="command", required=True, parser_class=_Parser, metavar="COMMAND"
    )

    demo = commands.add_parser(
        "demo",
        help="synthetic data on a fresh database, then the whole nightly pipeline",
        description="Without DATABASE_URL: drops and re-creates the database `seedtest` on the "
        "embedded PostgreSQL (.pgdata/), writes deterministic synthetic data ending yesterday, "
        "runs the nightly pipeline and explains its numbers. With DATABASE_URL: the same on "
        "that database, which must be empty.",
    )
    demo.add_argument("--users", default="300", help="synthetic students, 10 or more (300)")
    demo.add_argument("--days", default="70", help="days of history, 30 or more (70)")
    demo.add_argument("--seed", default="42", help="random seed: same seed, same data (42)")
    demo.set_defaults(func=_demo)

    generate = commands.add_parser(
        "generate",
        help="write the demo's synthetic population into DATABASE_URL",
        description="Writes the demo's deterministic synthetic students (exams, sessions, "
        "ability estimates, goals, weekly_kpi rows) into the database DATABASE_URL names, in "
        "SOURCE_SCHEMA, creating the missing parts of the application schema first (as "
        "init-db). Refuses (exit 2, nothing changed) a database whose application tables "
        "already hold rows. Runs no pipeline: seedtest-analytics run does that.",
    )
    generate.add_argument("--users", default="300", help="synthetic students, 10 or more (300)")
    generate.add_argument("--days", default="70", help="days of history, 30 or more (70)")
    generate.add_argument("--seed", default="42", help="random seed: same seed, same data (42)")
    generate.add_argument(
        "--end-date",
        metavar="YYYY-MM-DD",
        help="last day of the data (default: ANCHOR_DATE, else yesterday in ACTIVITY_TIMEZONE)",
    )
    generate.set_defaults(func=_generate)

    db = commands.add_parser(
        "db", help="the embedded PostgreSQL (.pgdata/): start, stop, status, url, env, psql"
    )
    actions = db.add_subparsers(
        dest="action", required=True, parser_class=_Parser, metavar="ACTION"
    )
    for name, func, text in (
        ("start", _db_start, "start it (initialising .pgdata/ the first time); it keeps running"),
        ("stop", _db_stop, "stop it; the data stays"),
        ("status", _db_status, "is it running? (exit 3 when not)"),
        ("url", _db_url, 'print its libpq URI, e.g. psql "$(seedtest-dev db url)"'),
        ("env", _db_env, 'print the export line for dbt/psql: eval "$(seedtest-dev db env)"'),
        ("psql", _db_psql, "a psql prompt on it (extra arguments go to psql)"),
    ):
        action = actions.add_parser(name, help=text, description=text)
        action.add_argument(
            "--dbname", default=embedded.DATABASE, help=f"database (default {embedded.DATABASE})"
        )
        action.set_defaults(func=func, psql_args=[])

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
    bench.add_argument(
        "--output", default="bench-report.md", help="report file (git-ignored by default)"
    )
    bench.set_defaults(func=_bench)

    config_docs = commands.add_parser(
        "config-docs",
        help="write docs/configuration.md from the settings table",
        description="Writes docs/configuration.md from SETTINGS in "
        "src/seedtest_analytics/config/ and the ConfigMap of deploy/k8s; with --check, "
        "exits 1 when the checked-in file differs instead.",
    )
    config_docs.add_argument(
        "--check", action="store_true", help="compare only; exit 1 when it is out of date"
    )
    config_docs.set_defaults(func=_config_docs)
    return parser


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _terminate)
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.func is _db_psql:
        args.psql_args = [a for a in extra if a != "--"] if extra[:1] == ["--"] else extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
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
