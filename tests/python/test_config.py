"""Bad configuration and hostile input: every bad value stops the run before it
connects anywhere, with exit code 2 and one clear line on stderr; nothing that looks like SQL
gets through a flag, an env var or a dbt var, whichever way dbt is started.

The CLI cases are cheap (no dbt), so they run a few at a time. The proof that nothing
connects first: the bad-configuration cases point DATABASE_URL at a server that does not
exist, so a connection attempt would end in exit code 1 ("cannot connect") instead of 2. The
injection cases point at a real database, which must come out untouched.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from conftest import REPO, run_cli
from seedtest_analytics.cli import main
from seedtest_analytics.config import load_settings
from seedtest_analytics.db.connection import ConnectionParams, parse_database_url
from seedtest_analytics.errors import UsageError

UNREACHABLE_URL = "postgresql://nobody:NoSuchPassw0rd@/nodb?host=/nonexistent-seedtest-socket-dir"
TODAY_UTC = dt.datetime.now(dt.UTC).date()
FUTURE = (TODAY_UTC + dt.timedelta(days=2)).isoformat()
ANCHOR = "2025-06-18"
DROP = "drop table public.weekly_kpi cascade"
PARALLEL = 4

# (id, CLI arguments, environment, a fragment the error line must contain)
BAD_CONFIG: list[tuple[str, list[str], dict[str, str], str]] = [
    ("date-not-a-day", ["aggregate", "--date", "2025-13-40"], {}, "--date"),
    ("date-feb-30", ["run", "--date", "2025-02-30"], {}, "--date"),
    ("date-no-dashes", ["detect-inactivity", "--date", "20250101"], {}, "--date"),
    ("date-empty", ["run", "--date", ""], {}, "--date"),
    ("date-future", ["run", "--date", FUTURE], {"ACTIVITY_TIMEZONE": "UTC"}, "future"),
    ("anchor-env-future", ["aggregate"], {"ANCHOR_DATE": FUTURE, "ACTIVITY_TIMEZONE": "UTC"},
     "future"),
    ("anchor-env-not-a-date", ["aggregate"], {"ANCHOR_DATE": "yesterday"}, "ANCHOR_DATE"),
    ("lookback-abc", ["aggregate", "--date", ANCHOR], {"AGG_LOOKBACK_DAYS": "abc"},
     "AGG_LOOKBACK_DAYS"),
    ("lookback-negative", ["aggregate", "--date", ANCHOR], {"AGG_LOOKBACK_DAYS": "-1"},
     "AGG_LOOKBACK_DAYS"),
    ("lookback-huge", ["run", "--date", ANCHOR], {"AGG_LOOKBACK_DAYS": "99999"},
     "AGG_LOOKBACK_DAYS"),
    ("lookback-fraction", ["run", "--date", ANCHOR], {"AGG_LOOKBACK_DAYS": "7.5"},
     "AGG_LOOKBACK_DAYS"),
    ("threshold-negative", ["detect-inactivity", "--date", ANCHOR, "--threshold", "-1"], {},
     "--threshold"),
    ("threshold-abc", ["run", "--date", ANCHOR, "--threshold", "abc"], {}, "--threshold"),
    ("threshold-env-negative", ["run", "--date", ANCHOR], {"INACTIVITY_THRESHOLD_DAYS": "-3"},
     "INACTIVITY_THRESHOLD_DAYS"),
    ("kpi-lookback-zero", ["run", "--date", ANCHOR], {"KPI_LOOKBACK_DAYS": "0"},
     "KPI_LOOKBACK_DAYS"),
    ("horizon-abc", ["run", "--date", ANCHOR], {"METRICS_CHURN_HORIZON_DAYS": "two weeks"},
     "METRICS_CHURN_HORIZON_DAYS"),
    ("target-abc", ["run", "--date", ANCHOR], {"METRICS_DEFAULT_TARGET": "abc"},
     "METRICS_DEFAULT_TARGET"),
    ("target-nan", ["run", "--date", ANCHOR], {"METRICS_DEFAULT_TARGET": "nan"},
     "METRICS_DEFAULT_TARGET"),
    ("target-inf", ["run", "--date", ANCHOR], {"METRICS_DEFAULT_TARGET": "-inf"},
     "METRICS_DEFAULT_TARGET"),
    ("bool-theta", ["aggregate", "--date", ANCHOR], {"AGG_INCLUDE_THETA": "maybe"},
     "AGG_INCLUDE_THETA"),
    ("bool-bayesian", ["run", "--date", ANCHOR], {"METRICS_USE_BAYESIAN": "2"},
     "METRICS_USE_BAYESIAN"),
    ("bool-debug", ["run", "--date", ANCHOR], {"DEBUG": "verbose"}, "DEBUG"),
    ("bool-map-ids", ["run", "--date", ANCHOR], {"MAP_USER_IDS": "perhaps"}, "MAP_USER_IDS"),
    ("tz-unknown", ["aggregate", "--date", ANCHOR], {"ACTIVITY_TIMEZONE": "Mars/Olympus_Mons"},
     "ACTIVITY_TIMEZONE"),
    ("tz-lowercase", ["aggregate", "--date", ANCHOR], {"ACTIVITY_TIMEZONE": "asia/seoul"},
     "ACTIVITY_TIMEZONE"),
    # files of the zoneinfo directory that are no zone dbt (or the database) knows
    ("tz-localtime", ["aggregate", "--date", ANCHOR], {"ACTIVITY_TIMEZONE": "localtime"},
     "ACTIVITY_TIMEZONE"),
    ("tz-posixrules", ["aggregate", "--date", ANCHOR], {"ACTIVITY_TIMEZONE": "posixrules"},
     "ACTIVITY_TIMEZONE"),
    ("tz-right", ["aggregate", "--date", ANCHOR], {"ACTIVITY_TIMEZONE": "right/UTC"},
     "ACTIVITY_TIMEZONE"),
    ("source-schema-upper", ["run", "--date", ANCHOR], {"SOURCE_SCHEMA": "Public"},
     "SOURCE_SCHEMA"),
    ("dbt-schema-dash", ["run", "--date", ANCHOR], {"SEEDTEST_DBT_SCHEMA": "analytics-2"},
     "SEEDTEST_DBT_SCHEMA"),
    ("lock-wait-abc", ["run", "--date", ANCHOR], {"SEEDTEST_LOCK_WAIT_SECONDS": "abc"},
     "SEEDTEST_LOCK_WAIT_SECONDS"),
    ("lock-wait-negative", ["run", "--date", ANCHOR], {"SEEDTEST_LOCK_WAIT_SECONDS": "-5"},
     "SEEDTEST_LOCK_WAIT_SECONDS"),
    ("lock-wait-superscript", ["run", "--date", ANCHOR], {"SEEDTEST_LOCK_WAIT_SECONDS": "\u00b2"},
     "SEEDTEST_LOCK_WAIT_SECONDS"),
    ("url-mysql", ["run", "--date", ANCHOR],
     {"DATABASE_URL": "mysql://root:Hunter2Secret@localhost/seedtest"}, "DATABASE_URL"),
    ("url-http", ["run", "--date", ANCHOR], {"DATABASE_URL": "https://example.com/db"},
     "DATABASE_URL"),
    ("url-not-a-url", ["run", "--date", ANCHOR], {"DATABASE_URL": "seedtest on prod please"},
     "DATABASE_URL"),
    ("url-port-text", ["run", "--date", ANCHOR],
     {"DATABASE_URL": "postgresql://u:Hunter2Secret@/db?host=/tmp&port=abc"}, "port"),
    ("url-port-range", ["run", "--date", ANCHOR],
     {"DATABASE_URL": "postgresql://u:Hunter2Secret@localhost:99999/db"}, "DATABASE_URL"),
    ("backfill-reversed", ["backfill", "--start", "2025-02-01", "--end", "2025-01-01"], {},
     "--start"),
    ("backfill-bad-start", ["backfill", "--start", "2025-02-31", "--end", "2025-03-01"], {},
     "--start"),
    ("backfill-too-long", ["backfill", "--start", "2000-01-01", "--end", "2025-01-01"], {},
     "--start"),
    ("unknown-flag", ["aggregate", "--date", ANCHOR, "--force"], {}, "--force"),
    ("flag-with-value", ["run", "--dry-run=yes"], {}, "--dry-run"),
    # No command at all prints the usage (exit 2): tests/python/test_commands.py.
]

# Things that look like SQL, through every flag, env var and var of the CLI.
INJECTIONS: list[tuple[str, list[str], dict[str, str]]] = [
    ("date-flag", ["run", "--date", f"2025-01-01'; {DROP}; --"], {}),
    ("date-flag-paren", ["aggregate", "--date", f"2025-01-01'::date); {DROP}; --"], {}),
    ("threshold-flag", ["detect-inactivity", "--date", ANCHOR, "--threshold", f"7; {DROP}"], {}),
    ("backfill-start", ["backfill", "--start", f"2025-01-01'; {DROP}; --", "--end", ANCHOR], {}),
    ("anchor-env", ["run"], {"ANCHOR_DATE": f"2025-01-01'; {DROP}; --"}),
    ("timezone", ["run", "--date", ANCHOR], {"ACTIVITY_TIMEZONE": f"UTC'; {DROP}; --"}),
    ("source-schema", ["run", "--date", ANCHOR], {"SOURCE_SCHEMA": "public; drop table canary"}),
    ("source-schema-quote", ["run", "--date", ANCHOR],
     {"SOURCE_SCHEMA": f'public"; {DROP}; --'}),
    ("dbt-schema-quote", ["run", "--date", ANCHOR],
     {"SEEDTEST_DBT_SCHEMA": f'x"; {DROP}; --'}),
    ("default-target", ["run", "--date", ANCHOR], {"METRICS_DEFAULT_TARGET": f"0); {DROP}; --"}),
    ("lookback", ["run", "--date", ANCHOR], {"AGG_LOOKBACK_DAYS": f"7; {DROP}"}),
    ("threshold-env", ["run", "--date", ANCHOR], {"INACTIVITY_THRESHOLD_DAYS": "7 or 1=1"}),
    ("kpi-lookback", ["run", "--date", ANCHOR], {"KPI_LOOKBACK_DAYS": f"30; {DROP}"}),
    ("horizon", ["run", "--date", ANCHOR], {"METRICS_CHURN_HORIZON_DAYS": f"14; {DROP}"}),
    ("include-theta", ["run", "--date", ANCHOR], {"AGG_INCLUDE_THETA": f"true; {DROP}"}),
    ("bayesian", ["run", "--date", ANCHOR], {"METRICS_USE_BAYESIAN": f"true'; {DROP}; --"}),
    ("map-ids", ["run", "--date", ANCHOR], {"MAP_USER_IDS": f"false); {DROP}; --"}),
    ("debug", ["run", "--date", ANCHOR], {"DEBUG": f"1; {DROP}"}),
    ("lock-wait", ["run", "--date", ANCHOR], {"SEEDTEST_LOCK_WAIT_SECONDS": f"1s'; {DROP}; --"}),
]


CONFIG_ENV = (
    "DATABASE_URL", "ANCHOR_DATE", "AGG_LOOKBACK_DAYS", "AGG_INCLUDE_THETA", "ACTIVITY_TIMEZONE",
    "INACTIVITY_THRESHOLD_DAYS", "KPI_LOOKBACK_DAYS", "METRICS_DEFAULT_TARGET",
    "METRICS_USE_BAYESIAN", "METRICS_CHURN_HORIZON_DAYS", "SOURCE_SCHEMA", "MAP_USER_IDS",
    "DEBUG", "SEEDTEST_DBT_SCHEMA", "SEEDTEST_LOCK_WAIT_SECONDS",
)


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str


def _main_in_process(
    args: list[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Outcome:
    """cli.main as the console script calls it, in this process (no interpreter start-up per
    case); an exception other than SystemExit escaping main fails the test as a traceback."""
    with monkeypatch.context() as patch:
        for key in CONFIG_ENV:
            patch.delenv(key, raising=False)
        for key, value in env.items():
            patch.setenv(key, value)
        capsys.readouterr()
        try:
            code = main(args)
        except SystemExit as exit_:
            code = int(exit_.code or 0)
        captured = capsys.readouterr()
    return Outcome(code, captured.out, captured.err)


def _run_processes(
    jobs: list[tuple[list[str], dict[str, str]]], params: ConnectionParams | None
) -> list[subprocess.CompletedProcess[str]]:
    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        futures = [pool.submit(run_cli, params, *args, env=env) for args, env in jobs]
        return [future.result() for future in futures]


def _one_clear_line(result: Outcome | subprocess.CompletedProcess[str], case: str) -> str:
    output = (
        f"[{case}] exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    assert result.returncode == 2, output
    assert "Traceback" not in result.stdout + result.stderr, output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, output
    assert lines[0].startswith("[ERROR] "), output
    assert len(lines[0]) < 400, output
    assert "cannot connect" not in lines[0], output  # it was stopped before connecting
    assert "Running with dbt" not in result.stdout, output
    assert result.stdout == "", output
    return lines[0]


def _schema_exists(conn: psycopg.Connection, name: str) -> bool:
    row = conn.execute("select count(*) from pg_namespace where nspname = %s", (name,)).fetchone()
    return bool(row and row[0])


def _relations(conn: psycopg.Connection) -> list[tuple[str, str]]:
    return [
        (row[0], row[1])
        for row in conn.execute(
            "select n.nspname, c.relname from pg_class c join pg_namespace n"
            " on n.oid = c.relnamespace where c.relkind in ('r', 'v')"
            " and n.nspname not in ('pg_catalog', 'information_schema')"
            " order by 1, 2"
        )
    ]


@pytest.fixture
def seeded(db_conn: psycopg.Connection) -> Iterator[psycopg.Connection]:
    """The application schema with a canary table and one weekly_kpi row."""
    db_conn.execute("create table public.canary (id int)")
    db_conn.execute("insert into public.canary values (1)")
    db_conn.execute(
        "insert into public.weekly_kpi (user_id, week_start, kpis) values"
        " ('u1', date '2025-06-16', '{\"I_t\": 1}')"
    )
    yield db_conn


def _assert_untouched(conn: psycopg.Connection, before: list[tuple[str, str]]) -> None:
    assert _relations(conn) == before
    assert not _schema_exists(conn, "analytics")
    row = conn.execute("select count(*) from public.canary").fetchone()
    assert row is not None and row[0] == 1
    row = conn.execute("select kpis from public.weekly_kpi").fetchone()
    assert row is not None and row[0] == {"I_t": 1}


# --- the CLI ------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("args", "env", "fragment"),
    [pytest.param(args, env, fragment, id=case) for case, args, env, fragment in BAD_CONFIG],
)
def test_bad_configuration_exits_2_with_one_line_before_connecting(
    args: list[str], env: dict[str, str], fragment: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every bad value of the settings (the old jobs' and this package's) gives exit code 2 and
    one `[ERROR]` line naming the culprit, with DATABASE_URL pointing at no server at all: a
    connection attempt first would have given exit code 1."""
    outcome = _main_in_process(
        args, {"DATABASE_URL": UNREACHABLE_URL, **env}, monkeypatch, capsys
    )
    line = _one_clear_line(outcome, " ".join(args))
    assert fragment in line, f"{line!r} does not mention {fragment!r}"
    assert "Hunter2Secret" not in outcome.stdout + outcome.stderr
    assert "NoSuchPassw0rd" not in outcome.stdout + outcome.stderr


def test_sql_injection_through_the_cli_is_refused(
    fresh_db: ConnectionParams, seeded: psycopg.Connection, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Each hostile value, with DATABASE_URL pointing at a real database, is refused with exit
    2 before anything runs; the database keeps every table (weekly_kpi, the canary) and gains
    no schema."""
    before = _relations(seeded)
    for case, args, env in INJECTIONS:
        outcome = _main_in_process(
            args, {"DATABASE_URL": fresh_db.to_url(), **env}, monkeypatch, capsys
        )
        _one_clear_line(outcome, case)
    _assert_untouched(seeded, before)


def test_the_console_command_itself_prints_one_line_and_exits_2(
    fresh_db: ConnectionParams, seeded: psycopg.Connection
) -> None:
    """The same through the real process (interpreter, console entry point, exit status) for a
    sample of cases; the injection one against the real database."""
    jobs: list[tuple[list[str], dict[str, str]]] = [
        (["aggregate", "--date", "2025-13-40"], {"DATABASE_URL": UNREACHABLE_URL}),
        (["aggregate", "--date", ANCHOR], {"DATABASE_URL": UNREACHABLE_URL,
                                           "AGG_LOOKBACK_DAYS": "abc"}),
        (["detect-inactivity", "--date", ANCHOR, "--threshold", "-1"],
         {"DATABASE_URL": UNREACHABLE_URL}),
        (["run", "--date", ANCHOR], {"DATABASE_URL": "mysql://root:Hunter2Secret@db/x"}),
        (["run", "--date", f"2025-01-01'; {DROP}; --"], {}),
    ]
    before = _relations(seeded)
    results = _run_processes(jobs, fresh_db)
    for (args, _), result in zip(jobs, results, strict=True):
        _one_clear_line(result, " ".join(args))
        assert "Hunter2Secret" not in result.stdout + result.stderr
    _assert_untouched(seeded, before)


def test_hostile_database_name_cannot_connect_and_drops_nothing(
    fresh_db: ConnectionParams, seeded: psycopg.Connection
) -> None:
    """A database name carrying SQL is only ever a connection parameter: no such database,
    exit 1, one line, the real database untouched."""
    hostile = fresh_db.with_dbname(f'{fresh_db.dbname}"; {DROP}; --')
    before = _relations(seeded)
    result = run_cli(hostile, "run", "--date", ANCHOR)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("[ERROR] cannot connect"), result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    _assert_untouched(seeded, before)


# --- dbt started directly -------------------------------------------------------------------

DBT_INJECTIONS: dict[str, dict[str, Any]] = {
    "lookback_days": {"lookback_days": f"7; {DROP}"},
    "activity_timezone": {"activity_timezone": f"UTC'; {DROP}; --"},
    "default_target": {"default_target": f"0); {DROP}; --"},
    "source_schema": {"source_schema": "public; drop table canary"},
    "source_schema_quote": {"source_schema": f'public"; {DROP}; --'},
    "include_theta": {"include_theta": f"true) or (1=1); {DROP}; --"},
}
# The profile's schema, from its environment variable (no --vars at all; a var's own env
# var fallback goes through the same checks as the var).
DBT_ENV_INJECTIONS: dict[str, dict[str, str]] = {
    "env_target_schema": {"SEEDTEST_DBT_SCHEMA": f'x"; {DROP}; --'},
}

_DBT_DRIVER = """
import json, os, sys

def main():
    from dbt.cli.main import dbtRunner
    for case in json.loads(sys.argv[1]):
        args = ["build", "--project-dir", case["project"], "--profiles-dir", case["profiles"],
                "--target-path", case["target"], "--log-path", case["logs"]]
        if case["vars"] is not None:
            args += ["--vars", json.dumps(case["vars"])]
        saved = dict(os.environ)
        os.environ.update(case["env"])
        try:
            result = dbtRunner().invoke(args)
        finally:
            os.environ.clear()
            os.environ.update(saved)
        print("CASE-RESULT " + json.dumps({
            "case": case["name"], "success": bool(result.success),
            "exception": type(result.exception).__name__ if result.exception else None,
            "message": str(result.exception or "")[:2000],
        }), flush=True)

if __name__ == "__main__":  # dbt may start helper processes that import __main__
    main()
"""


def _dbt_env(params: ConnectionParams) -> dict[str, str]:
    env = {
        key: value for key, value in os.environ.items()
        if not key.startswith(("AGG_", "METRICS_", "KPI_", "INACTIVITY_", "ANCHOR_", "SEEDTEST_"))
        and key not in ("ACTIVITY_TIMEZONE", "SOURCE_SCHEMA", "MAP_USER_IDS", "DATABASE_URL")
    }
    env.update(
        SEEDTEST_PGHOST=params.host, SEEDTEST_PGPORT=str(params.port),
        SEEDTEST_PGUSER=params.user, SEEDTEST_PGDATABASE=params.dbname,
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
    )
    return env


def test_sql_injection_through_dbt_vars_stops_dbt_at_compile_time(
    fresh_db: ConnectionParams, seeded: psycopg.Connection, tmp_path: Path
) -> None:
    """`dbt build` started directly (not through the CLI) with a hostile value in a var, in
    the env var a var falls back to, or in the profile's schema: dbt stops with a compilation
    error before it runs any SQL (exit code 2 for the `dbt` executable), and the database
    keeps all its tables.

    One case runs through the `dbt` executable itself; the others run in two Python
    processes through dbt's programmatic entry point (the code path of the executable),
    to save the interpreter start-up per case."""
    env = _dbt_env(fresh_db)
    cases: list[dict[str, Any]] = []
    for name, dbt_vars in DBT_INJECTIONS.items():
        cases.append({"name": name, "vars": {"anchor_date": ANCHOR, **dbt_vars}, "env": {}})
    for name, extra in DBT_ENV_INJECTIONS.items():
        cases.append({"name": name, "vars": None, "env": extra})
    halves = [cases[0::2], cases[1::2]]
    for index, half in enumerate(halves):
        for case in half:
            case.update(
                project=str(REPO), profiles=str(REPO / "profiles"),
                target=str(tmp_path / f"target{index}"), logs=str(tmp_path / f"logs{index}"),
            )
    before = _relations(seeded)
    driver = tmp_path / "injection_driver.py"
    driver.write_text(_DBT_DRIVER)
    dbt_executable = Path(sys.executable).with_name("dbt")
    hostile_anchor = json.dumps({"anchor_date": f"2025-01-01'; {DROP}; --"})
    processes = [
        subprocess.Popen(
            [str(dbt_executable), "build", "--project-dir", str(REPO),
             "--profiles-dir", str(REPO / "profiles"), "--target-path", str(tmp_path / "t_exe"),
             "--log-path", str(tmp_path / "l_exe"), "--vars", hostile_anchor],
            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        ),
        *(
            subprocess.Popen(
                [sys.executable, str(driver), json.dumps(half)], cwd=tmp_path, env=env,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            )
            for half in halves
        ),
    ]
    outputs = [process.communicate()[0] for process in processes]

    executable = processes[0]
    assert executable.returncode == 2, outputs[0][-4000:]
    assert "Compilation Error" in outputs[0] and "var anchor_date must be" in outputs[0]
    results = {
        data["case"]: data
        for output in outputs[1:]
        for data in (
            json.loads(line.removeprefix("CASE-RESULT "))
            for line in output.splitlines() if line.startswith("CASE-RESULT ")
        )
    }
    assert set(results) == {case["name"] for case in cases}, "\n".join(outputs)[-6000:]
    for name, data in results.items():
        assert not data["success"], f"{name}: dbt did not stop"
        # A hostile SOURCE_SCHEMA stops the parse itself (the sources' yml checks it).
        stops = ("CompilationError", "ParsingError") if "source_schema" in name else (
            "CompilationError",
        )
        assert data["exception"] in stops, f"{name}: {data}"
        assert "must be" in data["message"], f"{name}: {data['message']}"
    _assert_untouched(seeded, before)


# --- valid but unusual values go all the way through -------------------------------------------

def _phi(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def test_unusual_valid_values_are_accepted_by_both_validators(
    fresh_db: ConnectionParams, db_conn: psycopg.Connection, tmp_path: Path
) -> None:
    """The CLI and the dbt project validate the same values; what the first accepts the second
    must accept too: a target Python writes as `1e-05`, a three-part zone name, `YES`, `+7`,
    another dbt schema, a lock wait of 0. The run succeeds and uses those values."""
    anchor = dt.date(2025, 6, 18)
    last = dt.datetime(2025, 6, 1, 15, tzinfo=dt.UTC)
    exam_id = uuid.uuid4()
    db_conn.execute(
        "insert into public.exam_results (id, session_id, user_id, result_json, created_at,"
        " updated_at) values (%s, %s, 'quiet', %s::jsonb, %s, %s)",
        (exam_id, f"s-{exam_id}", json.dumps({"questions": [
            {"question_id": "q1", "topic": "algebra", "is_correct": True, "time_spent_sec": 3}
        ]}), last, last),
    )
    db_conn.execute(
        "insert into public.ability_estimates (user_id, mean, sd, fitted_at)"
        " values ('quiet', 0.0, 0.001, %s)",
        (last,),
    )
    result = run_cli(
        fresh_db, "run", "--date", anchor.isoformat(), "--threshold", "+7",
        env={
            "METRICS_DEFAULT_TARGET": "0.00001",
            "ACTIVITY_TIMEZONE": "America/Argentina/Buenos_Aires",
            "AGG_INCLUDE_THETA": "YES",
            "INACTIVITY_THRESHOLD_DAYS": " 9 ",
            "METRICS_USE_BAYESIAN": "off",
            "DEBUG": "0",
            "SEEDTEST_DBT_SCHEMA": "analytics_edge",
            "SEEDTEST_LOCK_WAIT_SECONDS": "0",
            "SEEDTEST_FRESHNESS_HOURS": "+500",  # the newest exam is 17 days before the end
            "DBT_TARGET_PATH": str(tmp_path / "target"),
            "DBT_LOG_PATH": str(tmp_path / "logs"),
        },
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr
    assert "[INFO] Found 1 inactive users (threshold=7 days); dry_run=False" in result.stdout
    assert _schema_exists(db_conn, "analytics_edge") and not _schema_exists(db_conn, "analytics")
    row = db_conn.execute(
        "select kpis from public.weekly_kpi where user_id = 'quiet' and week_start = %s",
        (anchor - dt.timedelta(days=anchor.weekday()),),
    ).fetchone()
    assert row is not None
    # target 1e-5 against mu 0, sd 0.001: P = 1 - Phi(0.01), visibly different from 0.5
    assert row[0]["P"] == pytest.approx(1.0 - _phi(1e-5 / 0.001), abs=1e-12)
    assert row[0]["P"] < 0.4961


# --- in-process checks of the two validators against each other ----------------------------

def _macro_number_pattern() -> re.Pattern[str]:
    """The regular expression macros/vars/validators.sql checks decimal vars with."""
    text = (REPO / "macros" / "vars" / "validators.sql").read_text()
    block = text[text.index("macro validated_number"):]
    block = block[: block.index("endmacro")]
    match = re.search(r"fullmatch\(\s*'([^']+)'", block)
    assert match, "validated_number no longer uses modules.re.fullmatch('...')"
    return re.compile(match.group(1))


@pytest.mark.parametrize(
    "raw", ["0.00001", "1e-7", "-2.5E+3", "12345678901234567", "0.30000000000000004", "-0", "+.5"]
)
def test_every_target_the_cli_accepts_passes_the_dbt_check(raw: str) -> None:
    """METRICS_DEFAULT_TARGET as the dbt project sees it: the CLI's float, through the
    `--vars` JSON and dbt's YAML parsing, then as text."""
    settings = load_settings({"METRICS_DEFAULT_TARGET": raw}, date=ANCHOR)
    seen = yaml.safe_load(json.dumps(settings.dbt_vars()))["default_target"]
    assert _macro_number_pattern().fullmatch(str(seen)), (raw, seen)


@pytest.mark.parametrize(
    "env",
    [
        {"ACTIVITY_TIMEZONE": "Factory"},
        {"ACTIVITY_TIMEZONE": "UTC\n"},
        {"SOURCE_SCHEMA": "public\x00"},
        {"AGG_LOOKBACK_DAYS": "\u0663"},  # an Arabic-Indic digit three
        {"METRICS_DEFAULT_TARGET": "1e400"},
        {"METRICS_DEFAULT_TARGET": "0x10"},
    ],
)
def test_odd_text_is_a_usage_error_or_a_clean_value(env: dict[str, str]) -> None:
    """Odd characters either fail as a UsageError or come out as plain values the dbt
    project accepts; never anything else."""
    try:
        settings = load_settings(env, date=ANCHOR)
    except UsageError:
        return
    values = settings.dbt_vars()
    assert re.fullmatch(r"[A-Za-z0-9_+/-]+", str(values["activity_timezone"]))
    assert re.fullmatch(r"[a-z_][a-z0-9_]*", str(values["source_schema"]))
    assert isinstance(values["lookback_days"], int)
    assert math.isfinite(float(values["default_target"]))  # type: ignore[arg-type]


def test_database_url_forms() -> None:
    """The DATABASE_URL forms; a bad one is a UsageError that does not repeat the password."""
    for url in (
        "postgresql://app:pw@db.internal:6432/seedtest?sslmode=require",
        "postgresql+psycopg2://app:pw@db.internal:6432/seedtest",
        "postgres://app:pw@/seedtest?host=/var/run/postgresql",
    ):
        params = parse_database_url(url)
        assert params.user == "app" and params.password == "pw" and params.dbname == "seedtest"
        assert "pw" not in params.redacted()
    for url in (
        "mysql://app:SuperSecret1@db/seedtest",
        "postgresql://app:SuperSecret1@db:port/seedtest",
        "postgresql://app:SuperSecret1@/seedtest?port=5432x",
        "postgresql://app:SuperSecret1@/seedtest?port=0",
    ):
        with pytest.raises(UsageError) as error:
            parse_database_url(url)
        assert "SuperSecret1" not in str(error.value)



def test_database_url_tls_parameters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """sslrootcert, sslcert, sslkey and sslcrl in DATABASE_URL reach psycopg, dbt's profile
    variables and the URL handed on; a file that is not there, an unknown sslmode or an
    sslpassword (dbt cannot pass one) is a UsageError; without them libpq's PGSSL* apply."""
    for name in ("PGSSLMODE", "PGSSLROOTCERT", "PGSSLCERT", "PGSSLKEY", "PGSSLCRL"):
        monkeypatch.delenv(name, raising=False)
    names = ("sslrootcert", "sslcert", "sslkey", "sslcrl")
    files = {name: tmp_path / f"{name}.pem" for name in names}
    for path in files.values():
        path.write_text("-----BEGIN X-----\n")
    query = "&".join(f"{name}={path}" for name, path in files.items())
    url = f"postgresql://app:Pw-Secret1@db.internal:6432/seedtest?sslmode=verify-full&{query}"
    params = parse_database_url(url)
    given = {"sslmode": "verify-full", **{name: str(path) for name, path in files.items()}}
    assert params.ssl_options() == given
    kwargs = params.psycopg_kwargs()
    assert {name: kwargs[name] for name in given} == given
    env = params.dbt_env()
    assert env["SEEDTEST_PGSSLMODE"] == "verify-full"
    assert env["SEEDTEST_PGSSLROOTCERT"] == str(files["sslrootcert"])
    assert env["SEEDTEST_PGSSLCERT"] == str(files["sslcert"])
    assert env["SEEDTEST_PGSSLKEY"] == str(files["sslkey"])
    assert env["PGSSLCRL"] == str(files["sslcrl"])  # dbt-postgres has no sslcrl key
    assert parse_database_url(params.to_url()) == params
    assert "Pw-Secret1" not in params.redacted()
    system = url.replace(f"sslrootcert={files['sslrootcert']}", "sslrootcert=system")
    assert parse_database_url(system).sslrootcert == "system"

    plain = parse_database_url("postgresql://app:pw@db.internal/seedtest")
    assert plain.ssl_options() == {}
    assert not {"sslmode", "sslrootcert", "sslcert", "sslkey"} & plain.psycopg_kwargs().keys()
    plain_env = plain.dbt_env()
    for suffix in ("MODE", "ROOTCERT", "CERT", "KEY"):
        assert plain_env[f"SEEDTEST_PGSSL{suffix}"] == ""  # the profile passes none
    assert "PGSSLCRL" not in plain_env

    missing = tmp_path / "gone.crt"
    for bad, message in (
        (f"sslmode=verify-full&sslrootcert={missing}", f"sslrootcert names {missing}"),
        (f"sslkey={missing}", f"DATABASE_URL's sslkey names {missing}, which is not a file"),
        ("sslmode=verify_full", "invalid sslmode"),
        ("sslpassword=Pw-Secret1", "sslpassword is not supported"),
    ):
        with pytest.raises(UsageError, match=re.escape(message)) as error:
            parse_database_url(f"postgresql://app:Pw-Secret1@db.internal/seedtest?{bad}")
        assert "Pw-Secret1" not in str(error.value)
    monkeypatch.setenv("PGSSLROOTCERT", str(missing))
    with pytest.raises(UsageError, match=re.escape(f"PGSSLROOTCERT names {missing}")):
        parse_database_url("postgresql://app:pw@db.internal/seedtest")
    assert parse_database_url(url).sslrootcert == str(files["sslrootcert"])  # the URL's wins
