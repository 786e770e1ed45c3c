"""Other people's objects survive every run: the dry run's scratch space is provably the
project's (it builds `dry_run__<model>` relations in the project's own schema, each marked,
and drops only marked ones, by name, never with cascade), and works for a role that owns only
its schema; published marts keep their identity across nights, so a view in another schema
over them and a reader's grant survive.
"""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import psycopg

from conftest import run_cli
from seedtest_analytics.connection import ConnectionParams
from test_privileges import ANCHOR, admin, grant_least, job_params, job_role, seed

__all__ = ["job_role"]  # the fixture, shared with test_privileges

UTC_ENV = {"ACTIVITY_TIMEZONE": "UTC", "SEEDTEST_FRESHNESS_HOURS": "0"}


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    output = f"exit {result.returncode}\n{result.stdout[-4000:]}\n{result.stderr}"
    assert result.returncode == 0, output
    return result


def refused(result: subprocess.CompletedProcess[str]) -> str:
    output = f"exit {result.returncode}\n{result.stdout[-4000:]}\n{result.stderr}"
    assert result.returncode == 2, output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("[ERROR] "), output
    assert "Traceback" not in result.stdout + result.stderr, output
    return lines[0]


def relations(conn: psycopg.Connection, schema: str) -> list[str]:
    return [
        str(name)
        for (name,) in conn.execute(
            "select c.relname::text from pg_class as c join pg_namespace as n"
            " on n.oid = c.relnamespace where n.nspname = %s"
            " and c.relkind in ('r', 'p', 'v', 'm') order by 1",
            (schema,),
        )
    ]


def dirs(tmp_path: Path) -> dict[str, str]:
    return {"DBT_TARGET_PATH": str(tmp_path / "target"), "DBT_LOG_PATH": str(tmp_path / "logs")}


def test_a_dry_run_never_drops_what_it_did_not_create(
    fresh_db: ConnectionParams, tmp_path: Path
) -> None:
    """A schema named like the old scratch schema (analytics_dry_run) holding a type, a
    function and a sequence the application uses, and a table named like a dry-run relation in
    the project's schema that the project did not create: the dry run touches none of them
    (it refuses, with one line, while the unmarked table is there), and afterwards leaves no
    relation of its own behind."""
    env = {**UTC_ENV, **dirs(tmp_path)}
    with admin(fresh_db) as conn:
        seed(conn)
        conn.execute("create schema analytics_dry_run")
        conn.execute("create type analytics_dry_run.grade as enum ('a', 'b')")
        conn.execute("create sequence analytics_dry_run.ticket")
        conn.execute(
            "create function analytics_dry_run.twice(x int) returns int"
            " language sql immutable as $$ select 2 * x $$"
        )
        conn.execute("create table public.app_grades (id int, grade analytics_dry_run.grade)")
        conn.execute("insert into public.app_grades values (1, 'a'), (2, 'b')")
        conn.execute("create view public.app_twice as select analytics_dry_run.twice(21) as v")
        conn.execute("create schema analytics")
        conn.execute("create table analytics.dry_run__inactive_users (id int)")
        conn.execute("insert into analytics.dry_run__inactive_users values (7)")

    line = refused(run_cli(fresh_db, "run", "--date", ANCHOR.isoformat(), "--dry-run", env=env))
    assert "analytics.dry_run__inactive_users" in line and "did not create" in line, line
    with admin(fresh_db) as conn:
        assert conn.execute("select id from analytics.dry_run__inactive_users").fetchall() == [
            (7,)
        ]
        conn.execute("alter table analytics.dry_run__inactive_users set schema public")

    # A real night first, so the dry run copies the incremental tables too.
    ok(run_cli(fresh_db, "run", "--date", (ANCHOR - dt.timedelta(days=1)).isoformat(), env=env))
    with admin(fresh_db) as conn:
        before = relations(conn, "analytics")
        features = conn.execute(
            "select count(*) from analytics.features_topic_daily"
        ).fetchone()
        kpi = conn.execute("select * from public.weekly_kpi order by 1, 2").fetchall()
    for _ in range(2):  # the second finds the first's schema state: nothing left over
        result = ok(run_cli(fresh_db, "run", "--date", ANCHOR.isoformat(), "--dry-run", env=env))
        assert "dry_run=True" in result.stdout
    with admin(fresh_db) as conn:
        assert relations(conn, "analytics") == before
        assert conn.execute("select count(*) from analytics.features_topic_daily").fetchone() == (
            features
        )
        assert conn.execute("select * from public.weekly_kpi order by 1, 2").fetchall() == kpi
        assert conn.execute(
            "select id, grade::text from public.app_grades order by id"
        ).fetchall() == [(1, "a"), (2, "b")]
        assert conn.execute("select v from public.app_twice").fetchall() == [(42,)]
        assert conn.execute("select nextval('analytics_dry_run.ticket')").fetchone() == (1,)
        assert conn.execute(
            "select count(*) from pg_namespace where nspname = 'analytics_dry_run'"
        ).fetchone() == (1,)
        assert conn.execute("select id from public.dry_run__inactive_users").fetchall() == [(7,)]


def test_a_dry_run_as_a_role_that_owns_only_its_schema(
    fresh_db: ConnectionParams, job_role: tuple[str, str], tmp_path: Path
) -> None:
    """SELECT on the sources, SELECT/INSERT/UPDATE on weekly_kpi, ownership of its schema and
    no CREATE on the database: a dry run works before the first night and after it, reports
    what the real run then does, and writes nothing outside its scratch relations."""
    role, password = job_role
    with admin(fresh_db) as conn:
        seed(conn)
        grant_least(conn, fresh_db.dbname, role, create_schema=False)
        row = conn.execute(
            "select has_database_privilege(%s, current_database(), 'CREATE')", (role,)
        ).fetchone()
        assert row == (False,)
        kpi_before = conn.execute("select * from public.weekly_kpi order by 1, 2").fetchall()
    job = job_params(fresh_db, role, password)
    env = {**UTC_ENV, **dirs(tmp_path)}
    dry = ok(run_cli(job, "run", "--date", ANCHOR.isoformat(), "--dry-run", env=env))
    assert "[INFO] Found 2 inactive users (threshold=7 days); dry_run=True" in dry.stdout
    with admin(fresh_db) as conn:
        assert not [r for r in relations(conn, "analytics") if r.startswith("dry_run__")]
        assert "features_topic_daily" not in relations(conn, "analytics")
        assert conn.execute("select * from public.weekly_kpi order by 1, 2").fetchall() == (
            kpi_before
        )
        assert relations(conn, "analytics_dry_run") == []
    real = ok(run_cli(job, "run", "--date", ANCHOR.isoformat(), env=env))
    assert "[INFO] Found 2 inactive users (threshold=7 days); dry_run=False" in real.stdout
    with admin(fresh_db) as conn:
        after_real = relations(conn, "analytics")
        kpi_real = conn.execute("select * from public.weekly_kpi order by 1, 2").fetchall()
    again = ok(run_cli(job, "run", "--date", ANCHOR.isoformat(), "--dry-run", env=env))
    assert "[INFO] Found 2 inactive users (threshold=7 days); dry_run=True" in again.stdout
    assert "processed=2, failed=0" in again.stdout
    with admin(fresh_db) as conn:
        assert relations(conn, "analytics") == after_real
        assert conn.execute("select * from public.weekly_kpi order by 1, 2").fetchall() == kpi_real
