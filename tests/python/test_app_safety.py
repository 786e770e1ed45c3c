"""The application's database is never harmed: init-db creates only what
is missing and never replaces an object; the demo checks before touching anything; the
project's schema is never the source schema and never holds a relation it did not create.

No dbt run is needed here except where the guard runs in front of one, so the module is cheap.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import psycopg
import pytest

from conftest import create_database, drop_database, run_cli
from seedtest_analytics.db.connection import ConnectionParams

# An application whose attempt view and app_user_uuid() differ from the ones init-db would
# create (another column expression, a filter, another body), and that lacks our index.
APP_FUNCTION = """
create or replace function public.app_user_uuid(p_user_id text) returns uuid
language sql immutable strict as $$ select md5('app:' || lower(p_user_id))::uuid $$
"""
APP_VIEW = """
create view public.attempt as
select 1::bigint as id, public.app_user_uuid(er.user_id) as student_id, 2::bigint as item_id,
       'app-topic'::text as topic_id, true as correct, 0 as response_time_ms,
       false as hint_used, er.created_at as completed_at, er.session_id
from public.exam_results as er where er.user_id is not null
"""


def definitions(params: ConnectionParams) -> dict[str, object]:
    """Everything init-db must leave alone, as the server prints it."""
    with psycopg.connect(**params.psycopg_kwargs()) as conn:
        row = conn.execute(
            "select pg_get_viewdef('public.attempt'::regclass),"
            " pg_get_functiondef('public.app_user_uuid(text)'::regprocedure),"
            " (select obj_description('public.attempt'::regclass, 'pg_class')),"
            " array(select indexdef from pg_indexes where schemaname = 'public'"
            "       order by indexname),"
            " array(select c.relname || ':' || c.relfilenode from pg_class as c"
            "       join pg_namespace as n on n.oid = c.relnamespace"
            "       where n.nspname = 'public' and c.relkind in ('r', 'v') order by 1)"
        ).fetchone()
    assert row is not None
    return {"view": row[0], "function": row[1], "comment": row[2], "indexes": row[3],
            "relations": row[4]}


@pytest.fixture
def app_db(server_params: ConnectionParams) -> Iterator[ConnectionParams]:
    """The application's own schema: our tables, but its own view, function and indexes, and a
    missing optional table."""
    params = create_database(server_params)
    with psycopg.connect(**params.psycopg_kwargs(), autocommit=True) as conn:
        conn.execute("drop view public.attempt")
        conn.execute(APP_FUNCTION)
        conn.execute(APP_VIEW)
        conn.execute("comment on view public.attempt is 'the application''s view'")
        conn.execute("drop index public.exam_results_activity_at_idx")
        conn.execute("drop table public.interest_goal")
    yield params
    drop_database(server_params, params)


def test_init_db_never_replaces_the_applications_objects(app_db: ConnectionParams) -> None:
    before = definitions(app_db)
    result = run_cli(app_db, "init-db")
    assert result.returncode == 0, result.stdout + result.stderr
    # The application's schema is there (its tables): nothing is created in it, what it
    # lacks is reported; everything is byte-identical (same relfilenodes too: no table was
    # rewritten), and no index was added to the application's exam_results.
    assert "created nothing in it; missing: table interest_goal" in result.stdout, result.stdout
    assert definitions(app_db) == before

    # without its own function, the application's schema does not get ours either
    with psycopg.connect(**app_db.psycopg_kwargs(), autocommit=True) as conn:
        conn.execute("drop view public.attempt")
        conn.execute("drop function public.app_user_uuid(text)")
    again = run_cli(app_db, "init-db")
    assert again.returncode == 0, again.stderr
    [line] = [line for line in again.stdout.splitlines() if "missing:" in line]
    assert "function app_user_uuid(text)" in line and "view attempt" in line, line
    with psycopg.connect(**app_db.psycopg_kwargs()) as conn:
        row = conn.execute("select to_regprocedure('public.app_user_uuid(text)')").fetchone()
        assert row == (None,)


def test_demo_on_a_database_with_data_touches_nothing(app_db: ConnectionParams) -> None:
    with psycopg.connect(**app_db.psycopg_kwargs(), autocommit=True) as conn:
        conn.execute(
            "insert into public.exam_results (id, session_id, user_id, result_json)"
            " values (gen_random_uuid(), 's1', 'u1', '{}')"
        )
    before = definitions(app_db)
    result = run_cli(app_db, "demo", module="seedtest_dev")
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == [
        f"[ERROR] the demo writes synthetic data, but {app_db.redacted()} already holds rows in"
        " exam_results; nothing was changed; point DATABASE_URL at an empty database"
    ]
    assert definitions(app_db) == before
    with psycopg.connect(**app_db.psycopg_kwargs()) as conn:
        assert conn.execute("select to_regclass('public.interest_goal')").fetchone() == (None,)


# --- the project's schema -----------------------------------------------------------------------

UNREACHABLE = "postgresql://nobody@/nodb?host=/nonexistent-seedtest-socket-dir"


def test_the_source_schema_is_refused_as_the_projects_schema() -> None:
    """Refused before connecting: the URL points at no server, so a connection attempt would
    have been exit 1."""
    for env in ({"SEEDTEST_DBT_SCHEMA": "public"},
                {"SEEDTEST_DBT_SCHEMA": "app", "SOURCE_SCHEMA": "app"},
                {"SEEDTEST_DBT_SCHEMA": "pg_catalog"},
                {"SEEDTEST_DBT_SCHEMA": "analytics", "SOURCE_SCHEMA": "analytics_dry_run"}):
        for command in ("run", "aggregate", "detect-inactivity"):
            result = run_cli(None, command, "--date", "2025-11-01",
                             env={"DATABASE_URL": UNREACHABLE, **env})
            assert result.returncode == 2, result.stdout + result.stderr
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("[ERROR] "), result.stderr
            assert "SEEDTEST_DBT_SCHEMA" in lines[0] or "SOURCE_SCHEMA" in lines[0], lines[0]


def test_a_schema_holding_somebody_elses_table_is_refused(
    fresh_db: ConnectionParams,
) -> None:
    with psycopg.connect(**fresh_db.psycopg_kwargs(), autocommit=True) as conn:
        conn.execute("create schema analytics")
        conn.execute("create table analytics.customer_notes (id int primary key, note text)")
        # A relation an earlier version of the project built is not somebody else's.
        conn.execute("create view analytics.int_attempts__windowed as select 1 as x")
    for command in ("run", "aggregate", "detect-inactivity", "backfill"):
        args = ["--start", "2025-10-30", "--end", "2025-11-01"] if command == "backfill" else [
            "--date", "2025-11-01"]
        result = run_cli(fresh_db, command, *args)
        assert result.returncode == 2, result.stdout + result.stderr
        assert result.stderr.strip().splitlines() == [
            "[ERROR] schema analytics holds the table analytics.customer_notes, which "
            "seedtest-analytics did not create; nothing was written. SEEDTEST_DBT_SCHEMA must "
            "be a schema only this project writes (move that relation, or choose another schema)"
        ]
        assert "Running with dbt" not in result.stdout
    with psycopg.connect(**fresh_db.psycopg_kwargs()) as conn:
        relations = conn.execute(
            "select c.relname from pg_class as c join pg_namespace as n"
            " on n.oid = c.relnamespace where n.nspname = 'analytics' and c.relkind in ('r', 'v')"
            " order by 1"
        ).fetchall()
    assert relations == [("customer_notes",), ("int_attempts__windowed",)]


def test_the_project_names_its_relations_after_its_model_files() -> None:
    """guards.py knows the project's relations by the models' file names: no model may set an
    alias (or a custom schema) that would make its relation differ."""
    from conftest import REPO

    for path in [REPO / "dbt_project.yml", *(REPO / "models").rglob("*.sql"),
                 *(REPO / "models").rglob("*.yml")]:
        text = path.read_text()
        assert not re.search(r"\balias\s*[:=]", text), f"{path} sets an alias"
        assert not re.search(r"^\s*\+?schema\s*:|\bschema\s*=", text, re.M) or (
            path.name.endswith("__sources.yml")
        ), f"{path} sets a custom schema"


def test_the_guard_knows_every_table_the_macros_create() -> None:
    """A table a macro creates in the project's schema (identifier='...') is one the guard
    accepts, or every run after the first would be refused."""
    from conftest import REPO
    from seedtest_analytics.dbt.guards import managed_names

    created = {
        name for path in (REPO / "macros").rglob("*.sql")
        for name in re.findall(
            r"identifier\s*=\s*(?:dry_run_alias\()?['\"](\w+)['\"]", path.read_text()
        )
    }
    assert created, "no table created by a macro found: update this test"
    assert created <= managed_names(), created - managed_names()
