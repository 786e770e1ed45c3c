"""init-db: the application schema, idempotent, and the attempt view."""

from __future__ import annotations

import json

import psycopg

from conftest import create_database, drop_database, run_cli
from seedtest_analytics.db.connection import ConnectionParams
from seedtest_dev.rules import app_user_uuid

TABLES = {
    "exam_results", "session", "student_topic_theta", "mirt_ability", "ability_estimates",
    "interest_goal", "weekly_kpi",
}


def test_init_db_creates_the_schema_and_is_idempotent(server_params: ConnectionParams) -> None:
    params = create_database(server_params, with_schema=False)
    try:
        for _ in range(2):
            result = run_cli(params, "init-db")
            assert result.returncode == 0, result.stderr
            assert "[INFO] Application schema ready" in result.stdout
        with psycopg.connect(**params.psycopg_kwargs()) as conn:
            rows = conn.execute(
                "select table_name, table_type from information_schema.tables"
                " where table_schema = 'public'"
            ).fetchall()
        kinds = dict(rows)
        assert set(kinds) >= TABLES
        assert kinds["attempt"] == "VIEW"
    finally:
        drop_database(server_params, params)


def test_attempt_view_follows_the_application_rules(db_conn: psycopg.Connection) -> None:
    upper = "3F2504E0-4F89-11D3-9A0C-0305E82C3301"
    questions = [
        {"question_id": "q1", "topic": "algebra", "is_correct": True, "time_spent_sec": 1.2345,
         "used_hints": 2},
        {"question_id": "q2", "topic": "algebra", "correct": True, "time_spent_sec": 0.0005},
        {"question_id": "q3", "topic": "geometry", "is_correct": False, "correct": True},
        {"question_id": "", "topic": "algebra", "is_correct": True},
        {"topic": "algebra", "is_correct": True},
        {"question_id": "q4", "topic": "algebra", "used_hints": 0, "time_spent_sec": 2.5},
    ]
    exams = [
        ("e1", "user123", "2025-10-01 10:00+00", None),
        ("e2", upper, "2025-10-01 10:00+00", "2025-10-02 11:00+00"),
    ]
    for session_id, user_id, created, updated in exams:
        db_conn.execute(
            "insert into exam_results (id, session_id, user_id, result_json, created_at,"
            " updated_at) values (gen_random_uuid(), %s, %s, %s, %s::timestamptz,"
            " coalesce(%s::timestamptz, %s::timestamptz))",
            (session_id, user_id, json.dumps({"questions": questions}), created, updated,
             created),
        )
    rows = db_conn.execute(
        "select a.session_id, a.student_id::text, a.topic_id, a.correct, a.response_time_ms,"
        " a.hint_used, a.completed_at = coalesce(e.updated_at, e.created_at), a.item_id,"
        " a.id from attempt as a join exam_results as e using (session_id)"
        " order by a.session_id, a.response_time_ms, a.topic_id"
    ).fetchall()
    by_exam: dict[str, list[tuple[object, ...]]] = {}
    for row in rows:
        by_exam.setdefault(str(row[0]), []).append(row)
    assert {exam: len(found) for exam, found in by_exam.items()} == {"e1": 4, "e2": 4}
    assert {row[1] for row in by_exam["e1"]} == {app_user_uuid("user123")}
    assert {row[1] for row in by_exam["e2"]} == {upper.lower()}
    # (topic, correct, response_time_ms, hint_used) per question: rounding half away from
    # zero of time_spent_sec * 1000, missing time -> 0, correct = is_correct else correct.
    expected = [
        ("geometry", False, 0, False),
        ("algebra", True, 1, False),
        ("algebra", True, 1235, True),
        ("algebra", False, 2500, False),
    ]
    for found in by_exam.values():
        assert [(r[2], r[3], r[4], r[5]) for r in found] == expected
        assert all(r[6] for r in found)
    ids = [row[8] for row in rows]
    assert len(set(ids)) == len(ids)
