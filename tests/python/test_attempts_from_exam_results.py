"""Var attempts_from_exam_results: stg_seedtest__attempts derived from exam_results by the
attempt view's rules gives exactly the rows of the application's attempt view.

The same compiled model (dbt compile, real dbt) is run against a real database twice, once
per value of the var, over exams that hold every shape the view has a rule for (both
correctness keys, JSON nulls and wrong JSON types, times missing, negative, huge or not a
number, hints as numbers and booleans, empty and missing question ids, questions that are not
objects, `questions` that is not an array, a result that is not an object, repeated question
ids, null, empty, upper- and lower-case uuid user ids, updated_at null): the two
results are equal as multisets, row for row and column for column. Then features_topic_daily
built with the var equals the reference.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

import reference
from conftest import create_database, drop_database
from seedtest_analytics.db.connection import ConnectionParams
from seedtest_analytics.dbt.runner import dbt_env
from seedtest_analytics.paths import project_root
from test_features import insert_random_exams

ANCHOR = dt.date(2025, 5, 20)
TZ = "Europe/Berlin"
COLUMNS = (
    "attempt_id, student_id, item_id, topic_id, is_correct, response_time_ms, hint_used,"
    " completed_at, session_id"
)

ODD_QUESTIONS: list[Any] = [
    {"question_id": "a1", "topic": "t", "is_correct": None, "correct": True},
    {"question_id": "a2", "topic": "t", "is_correct": "yes", "correct": "no"},
    {"question_id": "a3", "topic": "t", "correct": 1},
    {"question_id": "a4", "topic": "t", "time_spent_sec": None},
    {"question_id": "a5", "topic": "t", "time_spent_sec": "12"},
    {"question_id": "a6", "topic": "t", "time_spent_sec": 1999999.9995},
    {"question_id": "a7", "topic": "t", "time_spent_sec": 2000000},
    {"question_id": "a8", "topic": "t", "time_spent_sec": -0.0005},
    {"question_id": "a9", "topic": "t", "used_hints": True},
    {"question_id": "a10", "topic": "t", "used_hints": False},
    {"question_id": "a11", "topic": "t", "used_hints": "3"},
    {"question_id": "a12", "topic": "t", "used_hints": -1},
    {"question_id": "a13", "topic": "t", "used_hints": 0.5},
    {"question_id": 14, "topic": "t"},
    {"question_id": None, "topic": "t"},
    {"question_id": "", "topic": "t"},
    {"topic": "t"},
    {"question_id": "a15", "topic": None},
    {"question_id": "a16"},
    {"question_id": "a17", "topic": 7},
    {"question_id": "a1", "topic": "u", "is_correct": False},
    "not an object",
    42,
    None,
    [1, 2],
]


def connect(params: ConnectionParams) -> psycopg.Connection:
    return psycopg.connect(**params.psycopg_kwargs(), autocommit=True)


def dbt(params: ConnectionParams, *args: str, from_exams: bool) -> Any:
    from dbt.cli.main import dbtRunner

    os.environ.update(dbt_env(params))
    root = project_root()
    variables = {"anchor_date": ANCHOR.isoformat(), "activity_timezone": TZ,
                 "attempts_from_exam_results": from_exams}
    result = dbtRunner().invoke([
        *args, "--project-dir", str(root), "--profiles-dir", str(root / "profiles"),
        "--vars", json.dumps(variables), "--quiet",
    ])
    assert result.success, result.exception or [str(r.message) for r in result.result]
    return result


def insert(conn: psycopg.Connection, user_id: str | None, result: Any, created: dt.datetime,
           updated: dt.datetime | None) -> None:
    exam_id = str(uuid.uuid4())
    conn.execute(
        "insert into public.exam_results (id, session_id, user_id, result_json, created_at,"
        " updated_at) values (%s, %s, %s, %s::jsonb, %s, coalesce(%s, %s))",
        (exam_id, f"s-{exam_id}", user_id, json.dumps(result), created, updated, created),
    )


@pytest.fixture(scope="module")
def params(server_params: ConnectionParams) -> Iterator[ConnectionParams]:
    params = create_database(server_params)
    try:
        with connect(params) as conn:
            rng = random.Random(5)
            days = [ANCHOR - dt.timedelta(days=i) for i in range(40)]
            insert_random_exams(conn, rng, days=days, count=250, timezone=TZ)
            at = dt.datetime(2025, 5, 18, 21, 30, tzinfo=dt.UTC)
            users = [None, "", "user123", "ABCDEF01-2345-4789-ABCD-EF0123456789",
                     "3f2504e0-4f89-41d3-9a0c-0305e82c3301", "  spaced  "]
            for index, user in enumerate(users):
                insert(conn, user, {"questions": ODD_QUESTIONS}, at, None if index % 2 else at)
            for odd in ({"questions": {"question_id": "x"}}, {"questions": None}, [1, 2],
                        "text", {"other": []}):
                insert(conn, "user123", odd, at, at)
        yield params
    finally:
        drop_database(server_params, params)


def staged_rows(params: ConnectionParams, *, from_exams: bool) -> list[tuple[Any, ...]]:
    result = dbt(params, "compile", "--select", "stg_seedtest__attempts", from_exams=from_exams)
    (node,) = [r.node for r in result.result.results if r.node.name == "stg_seedtest__attempts"]
    compiled = node.compiled_code
    assert ('"public"."exam_results"' in compiled) == from_exams
    assert ('"public"."attempt"' in compiled) != from_exams
    with connect(params) as conn:
        rows = conn.execute(f"select {COLUMNS} from ({compiled}) as staged").fetchall()
    return sorted(rows, key=repr)


def test_derivation_equals_the_attempt_view(params: ConnectionParams) -> None:
    from_view = staged_rows(params, from_exams=False)
    from_exams = staged_rows(params, from_exams=True)
    assert len(from_view) > 600
    assert from_exams == from_view
    # the odd shapes are really there
    assert any(row[1] is None for row in from_view)  # no user
    assert any(row[5] is None for row in from_view)  # a time the view cannot read
    assert any(row[3] is None for row in from_view)  # no topic


def test_features_built_from_exam_results_match_the_reference(params: ConnectionParams) -> None:
    dbt(params, "run", "--select", "+features_topic_daily", from_exams=True)
    with connect(params) as conn:
        sources = reference.load_sources(conn)
        rows = conn.execute(
            "select " + ", ".join(reference.COLUMNS) + " from analytics.features_topic_daily"
        ).fetchall()
    expected = reference.features(sources, anchor=ANCHOR, timezone=TZ)
    actual = {(row[0], row[1], row[2]): row for row in rows}
    assert actual.keys() == expected.keys()
    for key, row in actual.items():
        want = expected[key].as_tuple()
        for got, wanted in zip(row, want, strict=True):
            if isinstance(wanted, float) and got is not None:
                assert abs(float(got) - wanted) < 1e-9, key
            else:
                assert got == wanted, key
