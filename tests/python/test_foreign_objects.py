"""Other people's objects survive every run: the dry run's scratch space is provably the
project's (it builds `dry_run__<model>` relations in the project's own schema, each marked,
and drops only marked ones, by name, never with cascade), and works for a role that owns only
its schema; published marts keep their identity across nights, so a view in another schema
over them and a reader's grant survive.
"""

from __future__ import annotations

import datetime as dt
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from conftest import run_cli
from seedtest_analytics.db.connection import ConnectionParams
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


@pytest.fixture
def reader(fresh_db: ConnectionParams) -> Iterator[str]:
    role = f"bi_reader_{secrets.token_hex(4)}"
    with admin(fresh_db) as conn:
        conn.execute(sql.SQL("create role {}").format(sql.Identifier(role)))
    yield role
    with admin(fresh_db) as conn:
        conn.execute(sql.SQL("drop owned by {} cascade").format(sql.Identifier(role)))
        conn.execute(sql.SQL("drop role {}").format(sql.Identifier(role)))


def as_reader(conn: psycopg.Connection, role: str, query: str) -> list[tuple[object, ...]]:
    with conn.transaction():
        conn.execute(sql.SQL("set local role {}").format(sql.Identifier(role)))
        return list(conn.execute(query).fetchall())


MARTS = ("inactive_users", "inactive_user_scoring_inputs", "user_last_activity",
         "user_ability_as_of")


def test_marts_keep_their_views_and_grants_across_nights(
    fresh_db: ConnectionParams, reader: str, tmp_path: Path
) -> None:
    """A view in another schema over a mart and a reader's grant on every table of the
    project's schema survive the next night (the marts keep their identity, their contents
    are the new night's); a changed shape (an upgrade) with a view over it stops the run with
    one line naming the view, before anything is dropped; without the view, the table is
    rebuilt with the reader's grant."""
    env = {**UTC_ENV, **dirs(tmp_path)}
    first = ANCHOR - dt.timedelta(days=8)
    with admin(fresh_db) as conn:
        seed(conn)
    ok(run_cli(fresh_db, "run", "--date", first.isoformat(), env=env))
    who = sql.Identifier(reader)
    with admin(fresh_db) as conn:
        conn.execute("create schema reporting")
        conn.execute(
            "create view reporting.inactive_v as select user_id, last_activity_at"
            " from analytics.inactive_users"
        )
        conn.execute(sql.SQL("grant usage on schema analytics, reporting to {}").format(who))
        conn.execute(sql.SQL("grant select on all tables in schema analytics to {}").format(who))
        conn.execute(sql.SQL("grant select on reporting.inactive_v to {}").format(who))
        oids = {
            name: conn.execute("select %s::regclass::oid", (f"analytics.{name}",)).fetchone()
            for name in MARTS
        }
        first_night = as_reader(conn, reader, "select user_id from reporting.inactive_v")

    ok(run_cli(fresh_db, "run", "--date", ANCHOR.isoformat(), env=env))
    with admin(fresh_db) as conn:
        for name in MARTS:
            assert conn.execute(
                "select %s::regclass::oid", (f"analytics.{name}",)
            ).fetchone() == oids[name], name
            assert as_reader(conn, reader, f"select count(*) from analytics.{name}")
        second_night = sorted(as_reader(conn, reader, "select user_id from reporting.inactive_v"))
        table = sorted(conn.execute("select user_id from analytics.inactive_users").fetchall())
        assert second_night == table and second_night != sorted(first_night)
        assert conn.execute(
            "select obj_description('analytics.inactive_users'::regclass, 'pg_class')"
        ).fetchone() != (None,)
        # the contract's constraints are on the table, enforcing every row inserted
        row = conn.execute(
            "select count(*) from pg_constraint where contype in ('c', 'p')"
            " and conrelid = 'analytics.inactive_user_scoring_inputs'::regclass"
        ).fetchone()
        assert row is not None and row[0] >= 1
        # an upgrade that changes the mart's shape, with the view over it
        conn.execute("alter table analytics.inactive_users add column legacy int")

    result = run_cli(fresh_db, "run", "--date", ANCHOR.isoformat(), env=env)
    output = f"exit {result.returncode}\n{result.stdout[-4000:]}\n{result.stderr}"
    assert result.returncode == 1, output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "view reporting.inactive_v" in lines[0], output
    assert "nothing dropped" in lines[0], output
    with admin(fresh_db) as conn:
        assert sorted(as_reader(conn, reader, "select user_id from reporting.inactive_v")) == table
        conn.execute("drop view reporting.inactive_v")

    ok(run_cli(fresh_db, "run", "--date", ANCHOR.isoformat(), env=env))
    with admin(fresh_db) as conn:
        columns = [name for (name,) in conn.execute(
            "select column_name::text from information_schema.columns"
            " where table_schema = 'analytics' and table_name = 'inactive_users'")]
        assert "legacy" not in columns and "user_id" in columns
        assert sorted(as_reader(conn, reader, "select user_id from analytics.inactive_users")) == (
            table
        )
