"""The application's migrations are never blocked by this project, and one bad
row does not poison the run.

Staging is ephemeral: between two runs nothing of ours depends on the application's tables,
so its own migrations (`alter table ability_estimates alter column mean type text`, `drop
table session`) succeed, and the next run exits 0 and works without the dropped optional
table. A view an earlier version of the project left behind (it pinned the tables) is
dropped by the first run.

An exam with a 3,200-character topic cannot be a key of features_topic_daily's unique index
(a btree key must fit in a third of a page): its attempts are skipped, counted and reported
like other invalid attempts, and the run goes on with the rest equal to the reference.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Iterator

import psycopg
import pytest

import reference
from conftest import create_database, drop_database, run_cli
from seedtest_analytics.db.connection import ConnectionParams
from seedtest_dev.synthetic import generate_demo

ANCHOR = dt.date(2025, 9, 30)
LONG_TOPIC = "t" * 3200
TOO_LONG = re.compile(
    r"^\[WARN\] Skipped (\d+) attempts with a topic or user id longer than 1000 bytes "
    r"\(too long for an index key\)$", re.M,
)
AGGREGATING = re.compile(r"^\[INFO\] Aggregating features for (\d+) ", re.M)
# views in the project's schema with the application's relations they depend on
PINNING_VIEWS = """
select distinct v.relname, t.relname
from pg_class as v
join pg_namespace as vn on vn.oid = v.relnamespace
join pg_rewrite as r on r.ev_class = v.oid
join pg_depend as d on d.classid = 'pg_rewrite'::regclass and d.objid = r.oid
    and d.refclassid = 'pg_class'::regclass and d.refobjid <> v.oid
join pg_class as t on t.oid = d.refobjid
join pg_namespace as tn on tn.oid = t.relnamespace
where vn.nspname = 'analytics' and v.relkind in ('v', 'm') and tn.nspname = 'public'
"""


def connect(params: ConnectionParams) -> psycopg.Connection:
    return psycopg.connect(**params.psycopg_kwargs(), autocommit=True)


def run(params: ConnectionParams, *args: str) -> str:
    result = run_cli(params, *args, "--date", ANCHOR.isoformat(), env={"ACTIVITY_TIMEZONE": "UTC"})
    output = f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert result.returncode == 0, output
    assert "Traceback" not in output
    return result.stdout


@pytest.fixture(scope="module")
def params(server_params: ConnectionParams) -> Iterator[ConnectionParams]:
    params = create_database(server_params)
    try:
        with connect(params) as conn:
            generate_demo(conn, users=30, days=30, seed=8, end_date=ANCHOR)
        yield params
    finally:
        drop_database(server_params, params)


def test_migrations_between_runs(params: ConnectionParams) -> None:
    with connect(params) as conn:
        # what an earlier version of the project kept: a staging view over a source table
        conn.execute("create schema analytics")
        conn.execute(
            "create view analytics.stg_seedtest__sessions as select * from public.session"
        )
        # and one under the name a staging model had before (meta former_names)
        conn.execute(
            "create view analytics.stg_seedtest__mirt_ability as select * from public.mirt_ability"
        )
        # the check below sees them as pinning the application's tables
        assert sorted(conn.execute(PINNING_VIEWS).fetchall()) == [
            ("stg_seedtest__mirt_ability", "mirt_ability"),
            ("stg_seedtest__sessions", "session"),
        ]
    first = run(params, "run")
    assert "Found" in first or "No inactive users found" in first
    with connect(params) as conn:
        left = conn.execute(
            "select viewname from pg_views where schemaname = 'analytics'"
            " and viewname in ('stg_seedtest__sessions', 'stg_seedtest__mirt_ability')"
        ).fetchall()
        assert left == [], "a view an earlier version left behind survived the run"
        # the project may keep views of its own (the run status view), but none of its
        # views reads (and so pins) a table of the application
        pinning = conn.execute(PINNING_VIEWS).fetchall()
        assert pinning == [], pinning
        sessions = conn.execute(
            "select count(*) from analytics.int_activity_daily"
            " where activity_source = 'session' and activity_date >= %s",
            (ANCHOR - dt.timedelta(days=7),),
        ).fetchone()
        assert sessions is not None and sessions[0] > 0
        # the application's own migrations
        conn.execute("alter table public.ability_estimates alter column mean type text")
        conn.execute("drop table public.session")
    second = run(params, "run")
    assert "Pipeline: " in second
    with connect(params) as conn:
        recent = conn.execute(
            "select count(*) filter (where activity_source = 'session'), count(*)"
            " from analytics.int_activity_daily where activity_date >= %s",
            (ANCHOR - dt.timedelta(days=7),),
        ).fetchone()
        abilities = conn.execute(
            "select count(*) from analytics.user_ability_as_of"
            " where ability_source = 'ability_estimates'"
        ).fetchone()
    # the window was recomputed without the session table (earlier days keep what they had)
    assert recent is not None and recent[0] == 0 and recent[1] > 0
    assert abilities is not None and abilities[0] > 0  # `mean` read from its text column


def test_a_topic_too_long_for_the_index_is_skipped(params: ConnectionParams) -> None:
    at = dt.datetime(ANCHOR.year, ANCHOR.month, ANCHOR.day, 9, tzinfo=dt.UTC)
    long_questions = [
        {"question_id": "long1", "topic": LONG_TOPIC, "is_correct": True, "time_spent_sec": 5},
        {"question_id": "long2", "topic": LONG_TOPIC + "x", "correct": False},
    ]
    good = {"question_id": "fine", "topic": "algebra", "is_correct": True, "time_spent_sec": 7}
    with connect(params) as conn:
        for questions in (long_questions, [*long_questions[:1], good]):
            exam_id = str(uuid.uuid4())
            conn.execute(
                "insert into public.exam_results (id, session_id, user_id, result_json,"
                " created_at, updated_at) values (%s, %s, 'longtopic-user', %s::jsonb, %s, %s)",
                (exam_id, f"s-{exam_id}", json.dumps({"questions": questions}), at, at),
            )
    out = run(params, "aggregate")
    assert TOO_LONG.findall(out) == ["3"], out
    with connect(params) as conn:
        sources = reference.load_sources(conn)
        rows = conn.execute(
            "select " + ", ".join(reference.COLUMNS) + " from analytics.features_topic_daily"
            " where date between %s and %s",
            (ANCHOR - dt.timedelta(days=7), ANCHOR),
        ).fetchall()
        reasons = conn.execute(
            "select invalid_reason, count(*) from analytics.int_attempts__windowed"
            " where not is_valid group by invalid_reason"
        ).fetchall()
    assert dict(reasons).get("topic_too_long") == 3
    # the reference without the questions whose topic cannot be indexed
    for exam in sources.exams:
        if isinstance(exam.result, dict) and isinstance(exam.result.get("questions"), list):
            exam.result["questions"] = [
                q for q in exam.result["questions"]
                if not (isinstance(q, dict) and isinstance(q.get("topic"), str)
                        and len(q["topic"].encode()) > 1000)
            ]
    expected = reference.features(
        sources, anchor=ANCHOR, timezone="UTC", since=ANCHOR - dt.timedelta(days=7)
    )
    actual = {(row[0], row[1], row[2]): row for row in rows}
    assert actual.keys() == expected.keys()
    assert ("longtopic-user", "algebra", ANCHOR) in actual
    assert AGGREGATING.findall(out) == [str(len(expected))]
