"""The application's database is never harmed (issue 16.1, 16.2, 13): init-db creates only what
is missing and never replaces an object; the demo checks before touching anything; the
project's schema is never the source schema and never holds a relation it did not create.

No dbt run is needed here except where the guard runs in front of one, so the module is cheap.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from conftest import create_database, drop_database, run_cli
from seedtest_analytics.connection import ConnectionParams

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
    assert "created: table interest_goal (existing objects are never replaced)" in result.stdout
    after = definitions(app_db)
    # The missing table was created; everything else is byte-identical (same relfilenodes too:
    # no table was rewritten), and no index was added to the application's exam_results.
    assert set(after.pop("relations")) == {*before.pop("relations"), after_interest(app_db)}
    assert after == before

    again = run_cli(app_db, "init-db")
    assert again.returncode == 0, again.stderr
    assert "created: nothing" in again.stdout
    assert definitions(app_db)["view"] == before["view"]


def after_interest(params: ConnectionParams) -> str:
    with psycopg.connect(**params.psycopg_kwargs()) as conn:
        row = conn.execute(
            "select relname || ':' || relfilenode from pg_class"
            " where oid = 'public.interest_goal'::regclass"
        ).fetchone()
    assert row is not None
    return str(row[0])


def test_demo_on_a_database_with_data_touches_nothing(app_db: ConnectionParams) -> None:
    with psycopg.connect(**app_db.psycopg_kwargs(), autocommit=True) as conn:
        conn.execute(
            "insert into public.exam_results (id, session_id, user_id, result_json)"
            " values (gen_random_uuid(), 's1', 'u1', '{}')"
        )
    before = definitions(app_db)
    result = run_cli(app_db, "demo")
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == [
        f"[ERROR] the demo writes synthetic data, but {app_db.redacted()} already holds rows in"
        " exam_results; nothing was changed; point DATABASE_URL at an empty database"
    ]
    assert definitions(app_db) == before
    with psycopg.connect(**app_db.psycopg_kwargs()) as conn:
        assert conn.execute("select to_regclass('public.interest_goal')").fetchone() == (None,)
