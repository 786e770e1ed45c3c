"""The synthetic data generators, against a real database with the application schema."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta

import psycopg
import pytest
from psycopg import sql

from conftest import REPO, create_database, drop_database
from seedtest_analytics.db.app_schema import init_db
from seedtest_analytics.db.connection import ConnectionParams
from seedtest_dev.rules import app_user_uuid
from seedtest_dev.synthetic import DemoSummary, generate_bulk, generate_demo

END = date(2025, 11, 1)  # a Saturday
TABLES = (
    "exam_results",
    "session",
    "student_topic_theta",
    "mirt_ability",
    "ability_estimates",
    "interest_goal",
    "weekly_kpi",
)
LOWER_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _connect(params: ConnectionParams) -> psycopg.Connection:
    return psycopg.connect(**params.psycopg_kwargs(), autocommit=True)


def _dump(conn: psycopg.Connection, schema: str = "public") -> dict[str, list[str]]:
    """Every row of every application table as text, in a stable order."""
    result = {}
    for table in TABLES:
        query = sql.SQL("select t::text from {} as t order by 1").format(
            sql.Identifier(schema, table)
        )
        result[table] = [row[0] for row in conn.execute(query).fetchall()]
    return result


def _scalar(conn: psycopg.Connection, query: str, params: tuple[object, ...] = ()) -> object:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


@pytest.fixture(scope="module")
def demo(server_params: ConnectionParams) -> Iterator[tuple[psycopg.Connection, DemoSummary]]:
    """One demo dataset with the default arguments, shared by the read-only tests."""
    params = create_database(server_params)
    try:
        with _connect(params) as conn:
            summary = generate_demo(conn, end_date=END)
            yield conn, summary
    finally:
        drop_database(server_params, params)


# ------------------------------------------------------------------------------ app_user_uuid


def _dbt_uuid_form() -> str:
    """macros/user_ids/user_ids.sql's uuid_form rendered for the query parameter %(id)s, with its
    PostgreSQL implementations (macros/cross_db/uuid_text.sql) behind a minimal
    `adapter.dispatch` that picks postgres__<name>, else default__<name>, as dbt-postgres does."""
    import jinja2

    macros = "".join(
        (REPO / "macros" / name).read_text()
        for name in ("user_ids/user_ids.sql", "cross_db/uuid_text.sql")
    )
    env = jinja2.Environment()
    module: dict[str, object] = {}

    class Adapter:
        @staticmethod
        def dispatch(name: str, package: str) -> object:
            return module.get(f"postgres__{name}") or module[f"default__{name}"]

    env.globals["adapter"] = Adapter()
    definitions = env.from_string(macros).module
    module.update(
        (name, getattr(definitions, name)) for name in dir(definitions) if not name.startswith("_")
    )
    return env.from_string(macros + "{{ uuid_form('%(id)s::text') }}").render()


def test_app_user_uuid_is_the_rule_of_the_sql(db_conn: psycopg.Connection) -> None:
    """rules.app_user_uuid against the application's SQL function (app_schema.sql) and the
    dbt project's macro (macros/user_ids/user_ids.sql)."""
    ids = [
        "user0042",
        "ABCDEF01-2345-6789-ABCD-EF0123456789",
        "abcdef01-2345-6789-abcd-ef0123456789",
        "AbCdEf01-2345-6789-aBcD-eF0123456789",
        "12345678-1234-1234-1234-123456789012\n",  # not a uuid: a trailing newline
        " 12345678-1234-1234-1234-123456789012",
        "1234567-81234-1234-1234-123456789012",
        "{12345678-1234-1234-1234-123456789012}",
        "héllo wörld",
        "",
    ]
    dbt_rule = f"select {_dbt_uuid_form()}"
    for user_id in ids:
        expected = _scalar(db_conn, "select public.app_user_uuid(%s)::text", (user_id,))
        assert app_user_uuid(user_id) == expected, user_id
        assert db_conn.execute(dbt_rule, {"id": user_id}).fetchone() == (expected,), user_id
    assert app_user_uuid("user0042") == _scalar(db_conn, "select md5('user0042')::uuid::text")


# ------------------------------------------------------------------------------ demo


def test_demo_is_deterministic(
    demo: tuple[psycopg.Connection, DemoSummary], fresh_db: ConnectionParams
) -> None:
    """Another process (another string-hash seed) writes byte-identical rows."""
    first_conn, first = demo
    code = (
        "import sys, datetime, psycopg\n"
        "from seedtest_dev.synthetic import generate_demo\n"
        "with psycopg.connect(sys.argv[1], autocommit=True) as conn:\n"
        "    print(repr(generate_demo(conn, end_date=datetime.date.fromisoformat(sys.argv[2]))))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    done = subprocess.run(
        [sys.executable, "-c", code, fresh_db.to_url(), END.isoformat()],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == repr(first)
    with _connect(fresh_db) as conn:
        assert _dump(conn) == _dump(first_conn)


def test_demo_counts_match_the_summary(demo: tuple[psycopg.Connection, DemoSummary]) -> None:
    conn, summary = demo
    for table, count in summary.table_counts().items():
        assert _scalar(conn, f"select count(*) from {table}") == count, table
        assert count > 0, table
    assert _scalar(conn, "select count(*) from attempt") == summary.attempts
    assert summary.skipped_tables == ()
    assert sum(summary.profiles.values()) == summary.users == 300
    assert summary.start_date == END - timedelta(days=69)
    assert (
        _scalar(conn, "select count(distinct user_id) from exam_results where user_id is not null")
        == summary.users
    )


def test_demo_has_every_kind_of_student(demo: tuple[psycopg.Connection, DemoSummary]) -> None:
    conn, _ = demo
    last = """
        with activity as (
            select user_id, coalesce(updated_at, created_at) as at, 'exam' as src
            from exam_results
            union all
            select user_id, coalesce(ended_at, started_at), 'session' from session
        )
        select
            user_id,
            max(at) as last_at,
            max(at) filter (where src = 'exam') as last_exam,
            max(at) filter (where src = 'session') as last_session
        from activity
        where user_id is not null
        group by user_id
    """
    rows = conn.execute(last).fetchall()

    def day(offset: int) -> datetime:
        """Midnight UTC starting the day `offset` days before END."""
        return datetime.combine(END - timedelta(days=offset), time(), tzinfo=UTC)

    long_gone, recent, ancient = day(30), day(1), day(180)
    assert sum(1 for r in rows if r[1] < long_gone) >= 10  # churned and gone
    assert sum(1 for r in rows if r[1] >= recent) >= 50  # active in the last two days
    assert sum(1 for r in rows if r[1] < ancient) >= 2  # gone for about 200 days
    # Stale in exam_results, active in session.
    stale_exam = day(7)
    assert sum(1 for r in rows if r[2] < stale_exam and r[3] is not None and r[3] >= recent) >= 2
    ids = [r[0] for r in rows]
    assert sum(1 for i in ids if not LOWER_UUID.fullmatch(i.lower())) >= 100
    assert sum(1 for i in ids if LOWER_UUID.fullmatch(i)) >= 50
    assert sum(1 for i in ids if i != i.lower() and LOWER_UUID.fullmatch(i.lower())) >= 5
    # Nothing after the end of end_date.
    assert all(r[1] < day(-1) for r in rows)

    # Returning students: a gap of two weeks or more, then activity in the last week.
    returning = _scalar(
        conn,
        """
        with days as (
            select distinct
                user_id, (coalesce(updated_at, created_at) at time zone 'UTC')::date as d
            from exam_results where user_id is not null
        ), gaps as (
            select user_id, d, d - lag(d) over (partition by user_id order by d) as gap from days
        )
        select count(distinct user_id) from gaps where gap >= 14 and d >= %s
    """,
        (END - timedelta(days=6),),
    )
    assert returning >= 10
    # Fading students: active early in the window, rarely at the end.
    fading = _scalar(
        conn,
        """
        select count(*) from (
            select user_id,
                count(*) filter (where created_at < %s) as early,
                count(*) filter (where created_at >= %s) as late
            from exam_results where user_id is not null group by user_id
        ) s where early >= 10 and late between 1 and 3
    """,
        (day(49), day(20)),
    )
    assert fading >= 5


def test_demo_rows_look_like_the_application(
    demo: tuple[psycopg.Connection, DemoSummary],
) -> None:
    conn, summary = demo
    # Activity over the whole UTC day, so non-UTC day boundaries matter.
    hours = _scalar(
        conn,
        "select count(distinct extract(hour from completed_at at time zone 'UTC')) from attempt",
    )
    assert hours == 24
    sizes = conn.execute(
        "select min(jsonb_array_length(result_json->'questions')),"
        " max(jsonb_array_length(result_json->'questions')) from exam_results"
    ).fetchone()
    assert sizes is not None and sizes[0] == 3 and sizes[1] in (15, 16)  # 16: one duplicate
    keys = conn.execute("""
        select count(*) filter (where q ? 'is_correct'), count(*) filter (where q ? 'correct')
        from exam_results, jsonb_array_elements(result_json->'questions') as q
    """).fetchone()
    assert keys is not None and keys[0] > 3 * keys[1] > 0  # older clients send `correct`
    later = conn.execute("""
        select count(*) filter (where updated_at > created_at),
               max(updated_at - created_at),
               count(*) filter (where updated_at < created_at)
        from exam_results
    """).fetchone()
    assert later is not None and later[0] > 100
    assert later[1] <= timedelta(minutes=10) and later[2] == 0
    topics = _scalar(conn, "select count(distinct topic_id) from attempt")
    assert 5 <= topics <= 10 and topics == len(summary.topics)
    assert _scalar(conn, "select count(distinct session_id) from exam_results") == (
        summary.exam_results
    )
    assert _scalar(conn, "select count(*) from session where ended_at is null") > 0


def test_demo_has_the_edge_rows(demo: tuple[psycopg.Connection, DemoSummary]) -> None:
    conn, _ = demo
    questions = """
        select count(*) from exam_results, jsonb_array_elements(result_json->'questions') as q
        where {}
    """
    assert _scalar(conn, questions.format("not q ? 'time_spent_sec'")) >= 2
    assert _scalar(conn, questions.format("jsonb_typeof(q->'time_spent_sec') = 'null'")) >= 1
    assert _scalar(conn, questions.format("q->>'question_id' = ''")) >= 1
    assert _scalar(conn, "select count(*) from attempt where response_time_ms < 0") >= 1
    assert _scalar(conn, "select count(*) from attempt where response_time_ms > 3*3600*1000") >= 1
    assert _scalar(conn, "select count(*) from attempt where topic_id is null") >= 1
    assert _scalar(conn, "select count(*) from exam_results where user_id is null") == 1
    assert _scalar(conn, "select count(*) from session where user_id is null") >= 1
    duplicated = "select count(*) from (select id from attempt group by id having count(*) > 1) s"
    assert _scalar(conn, duplicated) >= 1
    assert _scalar(conn, "select count(*) from ability_estimates where sd = 0") == 1
    # The malformed rows are recent, inside the default 8-day window.
    week = (END - timedelta(days=6),)
    recent = "created_at >= (%s::date)::timestamp at time zone 'UTC' and "
    assert _scalar(conn, questions.format(recent + "q->>'question_id' = ''"), week) >= 1
    assert _scalar(conn, questions.format(recent + "q->'topic' = 'null'"), week) >= 1
    assert _scalar(conn, questions.format(recent + "not q ? 'time_spent_sec'"), week) >= 2


def test_demo_ids_of_the_ability_sources(demo: tuple[psycopg.Connection, DemoSummary]) -> None:
    conn, _ = demo
    app_ids = [
        r[0]
        for r in conn.execute(
            "select distinct user_id from exam_results where user_id is not null"
        ).fetchall()
    ]
    uuid_form = {app_user_uuid(i) for i in app_ids}
    assert len(uuid_form) == len(app_ids)
    app_set = set(app_ids)

    mirt = [r[0] for r in conn.execute("select user_id from mirt_ability").fetchall()]
    assert mirt and all(LOWER_UUID.fullmatch(i) and i in uuid_form for i in mirt)
    assert (
        _scalar(
            conn,
            """
        select count(*) from (select user_id from mirt_ability group by user_id
                              having count(distinct fitted_at) > 1) s
    """,
        )
        > 10
    )
    assert _scalar(conn, "select count(distinct version) from mirt_ability") > 1

    for table in ("student_topic_theta", "ability_estimates", "interest_goal"):
        ids = [r[0] for r in conn.execute(f"select distinct user_id from {table}").fetchall()]
        assert all(i in app_set or i in uuid_form for i in ids), table
        # Both forms occur: app ids, and uuid forms that differ from the app id.
        assert any(i in app_set for i in ids), table
        assert any(i not in app_set for i in ids), table

    covered = _scalar(conn, "select count(distinct user_id) from ability_estimates")
    assert covered >= 0.7 * len(app_ids)
    assert (
        _scalar(
            conn,
            """
        select count(*) from (select user_id from ability_estimates group by user_id
                              having count(*) > 1) s
    """,
        )
        > 10
    )
    goals = conn.execute("""
        select min(target_level), max(target_level), min(priority), max(priority),
               count(*) filter (where n > 1)
        from (select *, count(*) over (partition by user_id) as n from interest_goal) g
    """).fetchone()
    assert goals is not None
    assert -1 <= goals[0] < goals[1] <= 2 and 1 <= goals[2] < goals[3] and goals[4] > 10


def test_demo_weekly_kpi(demo: tuple[psycopg.Connection, DemoSummary]) -> None:
    conn, _ = demo
    rows = conn.execute("select user_id, week_start, kpis from weekly_kpi").fetchall()
    monday = END - timedelta(days=END.weekday())
    assert {r[1] for r in rows} == {monday - timedelta(days=7 * k) for k in range(4)}
    for _, _, kpis in rows:
        assert isinstance(kpis, dict)
        for key in ("I_t", "E_t", "R_t", "A_t"):
            assert isinstance(kpis[key], float | int)
        assert "P" not in kpis and "S" not in kpis
    assert any(set(r[2]) - {"I_t", "E_t", "R_t", "A_t"} for r in rows)
    app_ids = {r[0] for r in conn.execute("select user_id from exam_results").fetchall()}
    assert all(r[0] in app_ids for r in rows)
    # Inactive users both with and without a row for the current week.
    current = {r[0] for r in rows if r[1] == monday}
    stale = {
        r[0]
        for r in conn.execute(
            "select user_id from exam_results where user_id is not null group by user_id "
            "having max(coalesce(updated_at, created_at)) < %s::date - 7",
            (END,),
        ).fetchall()
    }
    assert stale & current and stale - current


def test_demo_other_schema_and_missing_optional_table(server_params: ConnectionParams) -> None:
    params = create_database(server_params, with_schema=False)
    try:
        init_db(params, schema="app")
        with _connect(params) as conn:
            conn.execute("drop table app.session")
            summary = generate_demo(conn, users=40, days=40, seed=3, end_date=END, schema="app")
            assert summary.skipped_tables == ("session",)
            assert summary.session == 0
            assert _scalar(conn, "select count(*) from app.attempt") == summary.attempts
            assert _scalar(conn, "select count(*) from app.exam_results") == summary.exam_results
            assert _scalar(conn, "select to_regclass('public.exam_results')") is None
    finally:
        drop_database(server_params, params)


def test_demo_is_one_transaction(db_conn: psycopg.Connection) -> None:
    generate_demo(db_conn, users=30, days=30, end_date=END)
    # The same seed again collides on the exam ids: nothing of the second run stays.
    before = _dump(db_conn)
    with pytest.raises(psycopg.errors.UniqueViolation):
        generate_demo(db_conn, users=30, days=30, end_date=END)
    assert _dump(db_conn) == before


def test_demo_rejects_tiny_arguments(db_conn: psycopg.Connection) -> None:
    with pytest.raises(ValueError):
        generate_demo(db_conn, users=9, end_date=END)
    with pytest.raises(ValueError):
        generate_demo(db_conn, days=10, end_date=END)


# ------------------------------------------------------------------------------ bulk


def test_bulk_gives_exactly_the_requested_attempts(db_conn: psycopg.Connection) -> None:
    summary = generate_bulk(db_conn, attempts=20_000, days=30, end_date=END)
    # Exact: the attempt view has precisely the requested number of rows (tolerance 0).
    assert summary.attempts == 20_000
    assert _scalar(db_conn, "select count(*) from attempt") == 20_000
    assert summary.exam_results == 2_000 == _scalar(db_conn, "select count(*) from exam_results")
    assert summary.start_date == END - timedelta(days=29)

    per_day = db_conn.execute("""
        select (completed_at at time zone 'UTC')::date as d, count(*)
        from attempt group by 1 order by 1
    """).fetchall()
    assert [r[0] for r in per_day] == [summary.start_date + timedelta(days=k) for k in range(30)]
    exams_per_day = db_conn.execute("""
        select min(n), max(n) from (
            select (created_at at time zone 'UTC')::date, count(*) as n from exam_results group by 1
        ) s
    """).fetchone()
    assert exams_per_day is not None and exams_per_day[1] - exams_per_day[0] <= 1
    hours = _scalar(
        db_conn,
        """
        select count(distinct extract(hour from completed_at at time zone 'UTC')) from attempt
    """,
    )
    assert hours == 24

    users = _scalar(db_conn, "select count(distinct user_id) from exam_results")
    assert users == summary.users_with_activity <= summary.users
    assert summary.users == 50
    # A realistic share of users stopped more than 7 days before end_date.
    inactive = _scalar(
        db_conn,
        """
        select count(*) from (
            select user_id from exam_results group by user_id
            having max(coalesce(updated_at, created_at)) < (%s::date - 6)::timestamp
                at time zone 'UTC'
        ) s
    """,
        (END,),
    )
    assert inactive == summary.inactive_users
    assert 0.1 * users <= inactive <= 0.4 * users
    ids = [r[0] for r in db_conn.execute("select distinct user_id from exam_results").fetchall()]
    assert any(i.startswith("user") for i in ids)
    assert any(LOWER_UUID.fullmatch(i) for i in ids)
    assert any(i != i.lower() for i in ids if not i.startswith("user"))

    assert (
        summary.ability_estimates
        == summary.users
        == _scalar(db_conn, "select count(distinct user_id) from ability_estimates")
    )
    monday = END - timedelta(days=END.weekday())
    assert (
        summary.weekly_kpi
        == summary.users
        == _scalar(db_conn, "select count(*) from weekly_kpi where week_start = %s", (monday,))
    )
    assert (
        _scalar(
            db_conn,
            "select count(*) from weekly_kpi where not kpis ?& array['I_t','E_t','R_t','A_t']",
        )
        == 0
    )
    correct = _scalar(db_conn, "select avg(correct::int) from attempt")
    assert 0.2 < correct < 0.8
    assert _scalar(db_conn, "select count(distinct topic_id) from attempt") == 8


def test_bulk_remainder_topics_and_determinism(
    db_conn: psycopg.Connection, server_params: ConnectionParams
) -> None:
    args = {
        "attempts": 12_345,
        "days": 10,
        "users": 30,
        "topics": 12,
        "questions_per_exam": 7,
        "seed": 11,
        "end_date": END,
    }
    summary = generate_bulk(db_conn, **args)
    assert _scalar(db_conn, "select count(*) from attempt") == 12_345
    assert summary.exam_results == 12_345 // 7 + 1
    assert _scalar(db_conn, "select count(distinct topic_id) from attempt") == 12
    assert _scalar(db_conn, "select count(distinct user_id) from ability_estimates") == 30
    dump = _dump(db_conn)

    other = create_database(server_params)
    try:
        with _connect(other) as conn:
            again = generate_bulk(conn, **args)
            assert _dump(conn) == dump
        assert again.exam_results == summary.exam_results
    finally:
        drop_database(server_params, other)


def test_bulk_rejects_bad_arguments(db_conn: psycopg.Connection) -> None:
    for bad in (
        {"attempts": 0},
        {"attempts": 10, "days": 0},
        {"attempts": 10, "questions_per_exam": 0},
        {"attempts": 10, "topics": 0},
    ):
        with pytest.raises(ValueError):
            generate_bulk(db_conn, end_date=END, **bad)  # type: ignore[arg-type]


def test_generators_commit_on_a_non_autocommit_connection(
    fresh_db: ConnectionParams, db_conn: psycopg.Connection
) -> None:
    with psycopg.connect(**fresh_db.psycopg_kwargs()) as conn:
        demo = generate_demo(conn, users=20, days=30, end_date=END)
        bulk = generate_bulk(conn, attempts=1_000, days=5, end_date=END)
    # Seen from another connection once the first one is closed.
    expected = demo.attempts + bulk.attempts
    assert _scalar(db_conn, "select count(*) from attempt") == expected


@pytest.mark.parametrize("users", [10, 11, 19])
def test_demo_with_few_users(db_conn: psycopg.Connection, users: int) -> None:
    summary = generate_demo(db_conn, users=users, days=30, seed=users, end_date=END)
    assert _scalar(db_conn, "select count(*) from attempt") == summary.attempts > 0
    assert sum(summary.profiles.values()) == users
    assert min(summary.profiles.values()) >= 1
    assert _scalar(db_conn, "select count(*) from exam_results where user_id is null") == 1
