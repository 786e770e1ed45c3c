"""Least privilege and credentials.

The whole pipeline (`run`: dbt build, then the P/S write) runs as a role that holds only the
grants below, on a database where PUBLIC's default rights were taken away first, so nothing
is borrowed from defaults. The grants the job's role needs (copy these into the operator
guide; `seedtest_job` and `seedtest` stand for the role and the database):

    -- reach the database; TEMPORARY: the P/S write stages its rows in a temp table, and
    -- dbt's incremental models stage theirs in temp tables too
    grant connect, temporary on database seedtest to seedtest_job;
    -- either: let it create its own dbt schema (SEEDTEST_DBT_SCHEMA, default analytics) ...
    grant create on database seedtest to seedtest_job;
    -- ... or: create the schema for it (then CREATE on the database is not needed)
    -- create schema analytics authorization seedtest_job;
    -- read the application tables (every optional one that exists) and the attempt view
    grant usage on schema public to seedtest_job;
    grant select on public.exam_results, public.attempt, public.session,
        public.student_topic_theta, public.mirt_ability, public.ability_estimates,
        public.interest_goal to seedtest_job;
    -- weekly_kpi: SELECT as well, since the upsert reads the existing kpis it merges into
    grant select, insert, update on public.weekly_kpi to seedtest_job;
    -- the attempt view calls it (PUBLIC has it by default; needed if that was revoked)
    grant execute on function public.app_user_uuid(text) to seedtest_job;

Not needed: any write on the application tables other than INSERT/UPDATE on weekly_kpi (no
DELETE, no TRUNCATE), superuser, ownership of anything outside its schema. The advisory
lock (pg_try_advisory_lock) is open to every role.

Credentials: a password given in DATABASE_URL never shows in the output or in dbt's logs and
artifacts, and a wrong password, host, port or database name ends the run with exit code 1
and one line, without the password.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.types.json import Jsonb

import reference
from conftest import run_cli
from ps_reference import phi, s_churn
from seedtest_analytics.db.connection import ConnectionParams

UTC = dt.UTC
ANCHOR = dt.date(2025, 6, 18)
WEEK = ANCHOR - dt.timedelta(days=ANCHOR.weekday())
OLD_TS = dt.datetime(2001, 2, 3, 4, 5, 6, tzinfo=UTC)
READ_TABLES = (
    "exam_results", "attempt", "session", "student_topic_theta", "mirt_ability",
    "ability_estimates", "interest_goal",
)


def admin(params: ConnectionParams) -> psycopg.Connection:
    return psycopg.connect(**params.psycopg_kwargs(), autocommit=True)


def job_params(params: ConnectionParams, role: str, password: str) -> ConnectionParams:
    return ConnectionParams(
        host=params.host, port=params.port, user=role, password=password, dbname=params.dbname
    )


@pytest.fixture
def job_role(fresh_db: ConnectionParams) -> Iterator[tuple[str, str]]:
    """A login role with a password and no rights at all on a locked-down database."""
    role = f"seedtest_job_{secrets.token_hex(4)}"
    password = f"Pw-{secrets.token_hex(8)}-Visible"
    db = sql.Identifier(fresh_db.dbname)
    with admin(fresh_db) as conn:
        conn.execute(sql.SQL("create role {} login password {}").format(
            sql.Identifier(role), sql.Literal(password)))
        conn.execute(sql.SQL("revoke all on database {} from public").format(db))
        conn.execute("revoke all on schema public from public")
        conn.execute("revoke execute on function public.app_user_uuid(text) from public")
    yield role, password
    with admin(fresh_db) as conn:
        conn.execute(sql.SQL("drop owned by {} cascade").format(sql.Identifier(role)))
        conn.execute(sql.SQL("drop role {}").format(sql.Identifier(role)))


def grant_least(conn: psycopg.Connection, dbname: str, role: str, *, create_schema: bool) -> None:
    """Exactly the grants of the module docstring."""
    who, db = sql.Identifier(role), sql.Identifier(dbname)
    conn.execute(sql.SQL("grant connect, temporary on database {} to {}").format(db, who))
    if create_schema:
        conn.execute(sql.SQL("grant create on database {} to {}").format(db, who))
    else:
        conn.execute(sql.SQL("create schema analytics authorization {}").format(who))
    conn.execute(sql.SQL("grant usage on schema public to {}").format(who))
    tables = sql.SQL(", ").join(sql.Identifier("public", name) for name in READ_TABLES)
    conn.execute(sql.SQL("grant select on {} to {}").format(tables, who))
    conn.execute(sql.SQL("grant select, insert, update on public.weekly_kpi to {}").format(who))
    conn.execute(
        sql.SQL("grant execute on function public.app_user_uuid(text) to {}").format(who)
    )


def add_exam(conn: psycopg.Connection, user_id: str, topic: str, at: dt.datetime,
             *, correct: bool = True) -> None:
    exam_id = str(uuid.uuid4())
    result = {"questions": [
        {"question_id": "q1", "topic": topic, "is_correct": correct, "time_spent_sec": 20},
        {"question_id": "q2", "topic": topic, "is_correct": not correct, "time_spent_sec": 35.5},
    ]}
    conn.execute(
        "insert into public.exam_results (id, session_id, user_id, result_json, created_at,"
        " updated_at) values (%s, %s, %s, %s, %s, %s)",
        (exam_id, f"s-{exam_id}", user_id, Jsonb(result), at - dt.timedelta(minutes=20), at),
    )


def at_day(day: dt.date, hour: int = 12) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def seed(conn: psycopg.Connection) -> None:
    """Every source table in use: two inactive users (one with ability and goal), two active."""
    for days_ago in (3, 9, 16, 30):
        add_exam(conn, "amy", "algebra", at_day(ANCHOR - dt.timedelta(days=days_ago)))
    add_exam(conn, "bo", "geometry", at_day(ANCHOR), correct=False)
    add_exam(conn, "ivy", "algebra", at_day(ANCHOR - dt.timedelta(days=11)))
    add_exam(conn, "ivy", "geometry", at_day(ANCHOR - dt.timedelta(days=13)))
    add_exam(conn, "jon", "algebra", at_day(ANCHOR - dt.timedelta(days=25)))
    conn.execute(
        "insert into public.session (id, user_id, started_at, ended_at) values"
        " ('sess-1', 'bo', %s, %s)",
        (at_day(ANCHOR, 8), at_day(ANCHOR, 9)),
    )
    conn.execute(
        "insert into public.ability_estimates (user_id, mean, sd, fitted_at)"
        " values ('ivy', 0.3, 0.8, %s)",
        (at_day(ANCHOR - dt.timedelta(days=20)),),
    )
    conn.execute(
        "insert into public.interest_goal (user_id, topic_id, target_level, priority, created_at)"
        " values ('ivy', 'algebra', 0.9, 2, %s), ('ivy', 'geometry', -1, 1, %s)",
        (at_day(ANCHOR - dt.timedelta(days=40)), at_day(ANCHOR - dt.timedelta(days=40))),
    )
    conn.execute(
        "insert into public.student_topic_theta (user_id, topic_id, theta, se, updated_at)"
        " values ('amy', 'algebra', 0.4, 0.2, %s)",
        (at_day(ANCHOR - dt.timedelta(days=50)),),
    )
    conn.execute(
        "insert into public.mirt_ability (user_id, theta, se, fitted_at, version)"
        " values (%s, -0.2, 0.6, %s, 'v1')",
        (reference.uuid_form("jon"), at_day(ANCHOR - dt.timedelta(days=60))),
    )
    conn.execute(
        "insert into public.weekly_kpi (user_id, week_start, kpis, created_at, updated_at)"
        " values ('ivy', %s, %s, %s, %s)",
        (WEEK, Jsonb({"I_t": 0.7, "P": 0.01}), OLD_TS, OLD_TS),
    )


def churn(d: int, k: int, g: float, h: int = 14) -> float:
    return s_churn(d, k, g, h)


def files_containing(root: Path, needle: str) -> list[Path]:
    found = []
    for path in root.rglob("*"):
        if path.is_file():
            try:
                if needle.encode() in path.read_bytes():
                    found.append(path)
            except OSError:
                continue
    return found


def one_error_line(result: subprocess.CompletedProcess[str], *secrets_: str) -> str:
    output = f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.returncode == 1, output
    assert "Traceback" not in result.stdout + result.stderr, output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("[ERROR] "), output
    for secret in secrets_:
        assert secret not in result.stdout + result.stderr, output
    return lines[0]


# --- least privilege ------------------------------------------------------------------------

@pytest.mark.parametrize("create_schema", [True, False], ids=["creates-schema", "given-schema"])
def test_run_as_a_least_privilege_role(
    fresh_db: ConnectionParams, job_role: tuple[str, str], tmp_path: Path, create_schema: bool
) -> None:
    """The nightly `run` as a role holding only the grants of the module docstring (with
    CREATE on the database, or with a schema made for it): it succeeds, the output is right,
    and its password appears nowhere in the output, dbt's logs or dbt's artifacts."""
    role, password = job_role
    with admin(fresh_db) as conn:
        seed(conn)
        grant_least(conn, fresh_db.dbname, role, create_schema=create_schema)
        # the lock-down is real: the role cannot do what it was not granted
        for table, privilege in [("exam_results", "INSERT"), ("exam_results", "UPDATE"),
                                 ("exam_results", "DELETE"), ("weekly_kpi", "DELETE"),
                                 ("weekly_kpi", "TRUNCATE"), ("session", "INSERT")]:
            row = conn.execute("select has_table_privilege(%s, %s, %s)",
                               (role, f"public.{table}", privilege)).fetchone()
            assert row is not None and row[0] is False, (table, privilege)
        row = conn.execute("select has_schema_privilege(%s, 'public', 'CREATE')", (role,)
                           ).fetchone()
        assert row is not None and row[0] is False
        row = conn.execute("select has_database_privilege(%s, current_database(), 'CREATE')",
                           (role,)).fetchone()
        assert row is not None and row[0] is create_schema

    dbt_dirs = {"DBT_TARGET_PATH": str(tmp_path / "target"), "DBT_LOG_PATH": str(tmp_path / "logs")}
    job = job_params(fresh_db, role, password)
    result = run_cli(job, "run", "--date", ANCHOR.isoformat(),
                     env={"ACTIVITY_TIMEZONE": "UTC", **dbt_dirs})
    output = f"exit {result.returncode}\n{result.stdout[-6000:]}\n{result.stderr}"
    assert result.returncode == 0, output
    assert "[INFO] Found 2 inactive users (threshold=7 days); dry_run=False" in result.stdout
    assert "processed=2, failed=0" in result.stdout

    assert password not in result.stdout + result.stderr
    leaks = files_containing(tmp_path, password)
    assert not leaks, f"the password is written in {leaks}"

    with admin(fresh_db) as conn:
        owner = conn.execute(
            "select pg_get_userbyid(nspowner) from pg_namespace where nspname = 'analytics'"
        ).fetchone()
        assert owner is not None and owner[0] == role
        expected = reference.features(reference.load_sources(conn), anchor=ANCHOR,
                                      timezone="UTC")
        actual = {
            (row[0], row[1], row[2]): tuple(row) for row in conn.execute(
                "select " + ", ".join(reference.COLUMNS) + " from analytics.features_topic_daily"
            )
        }
        assert actual.keys() == expected.keys()
        for key, row in expected.items():
            for got, want in zip(actual[key], row.as_tuple(), strict=True):
                if isinstance(want, float):
                    assert got == pytest.approx(want, abs=1e-9), key
                else:
                    assert got == want, key
        kpis: dict[str, Any] = {
            row[0]: (row[1], row[2]) for row in conn.execute(
                "select user_id, kpis, created_at from public.weekly_kpi where week_start = %s",
                (WEEK,),
            )
        }
    assert set(kpis) == {"ivy", "jon"}
    ivy, ivy_created = kpis["ivy"]
    assert ivy_created == OLD_TS and ivy["I_t"] == 0.7
    assert ivy["P"] == pytest.approx(1.0 - phi((0.9 - 0.3) / 0.8), abs=1e-12)  # goal, priority 2
    assert ivy["S"] == pytest.approx(churn(11, 2, 2.0), abs=1e-12)
    jon, _ = kpis["jon"]
    assert jon["P"] == pytest.approx(1.0 - phi((0.0 + 0.2) / 0.6), abs=1e-12)  # mirt, default
    assert jon["S"] == pytest.approx(churn(25, 1, 0.0), abs=1e-12)


def test_temporary_is_required_for_the_write(
    fresh_db: ConnectionParams, job_role: tuple[str, str]
) -> None:
    """Why TEMPORARY is on the list: without it the role cannot create the temp table the
    P/S write stages its rows in (nor can dbt stage an incremental model)."""
    role, password = job_role
    with admin(fresh_db) as conn:
        conn.execute(sql.SQL("grant connect on database {} to {}").format(
            sql.Identifier(fresh_db.dbname), sql.Identifier(role)))
    job = job_params(fresh_db, role, password)
    with psycopg.connect(**job.psycopg_kwargs(), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("create temp table seedtest_probe (id int)")
        conn.execute("select pg_try_advisory_lock(1)")  # the run lock needs nothing


# --- credentials ----------------------------------------------------------------------------

def test_unreachable_server_or_database_is_one_line_without_the_password(
    fresh_db: ConnectionParams,
) -> None:
    """Wrong socket directory, wrong TCP port, wrong database name: exit 1, one `[ERROR]` line,
    and the password of the URL is not in it."""
    password = f"Pw-{secrets.token_hex(6)}-Visible"
    urls = [
        f"postgresql://postgres:{password}@/seedtest?host=/nonexistent-seedtest-dir&port=5432",
        f"postgresql://postgres:{password}@127.0.0.1:1/seedtest",
        fresh_db.with_dbname("no_such_database_seedtest").to_url().replace(
            "postgresql://postgres@", f"postgresql://postgres:{password}@"
        ),
    ]
    for url in urls:
        result = run_cli(None, "run", "--date", ANCHOR.isoformat(),
                         env={"DATABASE_URL": url})
        line = one_error_line(result, password)
        assert line.startswith("[ERROR] cannot connect to postgresql://postgres@"), line
    assert "does not exist" in line


def _hba_file(params: ConnectionParams) -> Path | None:
    with admin(params) as conn:
        row = conn.execute("show hba_file").fetchone()
    path = Path(str(row[0])) if row else None
    if path is None or not path.is_file() or not os.access(path, os.W_OK):
        return None
    return path


def test_wrong_password_is_one_line_without_the_password(
    fresh_db: ConnectionParams, job_role: tuple[str, str]
) -> None:
    """With password authentication switched on for the job's role only (the test server
    trusts local connections otherwise), a wrong password ends the run with exit 1 and one
    line that names the failure but neither password."""
    role, password = job_role
    hba = _hba_file(fresh_db)
    if hba is None:
        pytest.skip("the server's pg_hba.conf is not writable from here (external server)")
    original = hba.read_text()
    rules = f"local all {role} scram-sha-256\nhost all {role} all scram-sha-256\n"
    hba.write_text(rules + original)
    try:
        with admin(fresh_db) as conn:
            conn.execute(sql.SQL("grant connect on database {} to {}").format(
                sql.Identifier(fresh_db.dbname), sql.Identifier(role)))
            conn.execute("select pg_reload_conf()")
        # the right password gets in, so the rule is in force
        with psycopg.connect(**job_params(fresh_db, role, password).psycopg_kwargs()) as conn:
            conn.execute("select 1")
        wrong = f"Wrong-{secrets.token_hex(6)}-Visible"
        result = run_cli(job_params(fresh_db, role, wrong), "run", "--date", ANCHOR.isoformat())
        line = one_error_line(result, wrong, password)
        assert "password authentication failed" in line, line
        assert line.startswith(f"[ERROR] cannot connect to postgresql://{role}@"), line
    finally:
        hba.write_text(original)
        with admin(fresh_db) as conn:
            conn.execute("select pg_reload_conf()")
