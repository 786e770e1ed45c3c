"""features_topic_daily end to end: the aggregate command against a real database, compared
row by row and column by column with an independent Python computation (reference.py) made
straight from the raw exam_results rows.

Exam times sit near local midnight of the activity time zone, of UTC and of the database
session's time zone (Pacific/Auckland), so a day boundary taken in the wrong zone shows up.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
import re
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

import reference  # tests/python is on sys.path, as for conftest
from conftest import run_cli
from seedtest_analytics.db.connection import ConnectionParams
from seedtest_dev.rules import app_user_uuid as md5_uuid

UTC = dt.UTC
FLOAT_TOLERANCE = 1e-9
SELECT_FEATURES = (
    "select " + ", ".join(reference.COLUMNS) + ", computed_at"
    " from analytics.features_topic_daily"
)
UPPER_UUID_USER = "ABCDEF01-2345-4789-ABCD-EF0123456789"
LOWER_UUID_USER = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
USERS = ["user123", "alice", "bob@example.com", UPPER_UUID_USER, LOWER_UUID_USER]
TOPICS = ["algebra", "geometry", "probability"]

Row = tuple[Any, ...]


# --- database helpers -----------------------------------------------------------------------

@pytest.fixture
def conn(fresh_db: ConnectionParams) -> Iterator[psycopg.Connection]:
    with psycopg.connect(**fresh_db.psycopg_kwargs(), autocommit=True) as connection:
        yield connection


def insert_exam(
    conn: psycopg.Connection,
    user_id: str | None,
    questions: list[dict[str, Any]],
    at: dt.datetime,
    *,
    created_at: dt.datetime | None = None,
    exam_id: str | None = None,
) -> str:
    """One exam_results row; `at` becomes updated_at (the attempt time of its questions)."""
    exam_id = exam_id or str(uuid.uuid4())
    conn.execute(
        "insert into public.exam_results"
        " (id, session_id, user_id, result_json, created_at, updated_at)"
        " values (%s, %s, %s, %s::jsonb, %s, %s)",
        (
            exam_id, f"s-{exam_id}", user_id, json.dumps({"questions": questions}),
            created_at or at - dt.timedelta(minutes=20), at,
        ),
    )
    return exam_id


def features_table(conn: psycopg.Connection) -> dict[reference.Key, Row]:
    """features_topic_daily keyed by (user_id, topic_id, date); last value is computed_at."""
    rows = conn.execute(SELECT_FEATURES).fetchall()
    table = {(row[0], row[1], row[2]): tuple(row) for row in rows}
    assert len(table) == len(rows), "duplicate (user_id, topic_id, date) rows"
    return table


def table_exists(conn: psycopg.Connection, name: str) -> bool:
    row = conn.execute("select to_regclass(%s) is not null", (name,)).fetchone()
    return bool(row and row[0])


def schema_exists(conn: psycopg.Connection, name: str) -> bool:
    row = conn.execute(
        "select exists (select 1 from pg_namespace where nspname = %s)", (name,)
    ).fetchone()
    return bool(row and row[0])


def local(day: dt.date, hh: int, mm: int = 0, ss: int = 0, us: int = 0, *, tz: str) -> dt.datetime:
    """A wall-clock time of `day` in `tz`, as an aware UTC datetime."""
    wall = dt.datetime(day.year, day.month, day.day, hh, mm, ss, us, tzinfo=ZoneInfo(tz))
    return wall.astimezone(UTC)


# --- comparison -----------------------------------------------------------------------------

def _same(column: str, actual: Any, expected: Any) -> bool:
    if actual is None or expected is None:
        return actual is None and expected is None
    if isinstance(expected, float):
        return math.isclose(float(actual), expected, rel_tol=0.0, abs_tol=FLOAT_TOLERANCE)
    return bool(actual == expected)


def mismatches(
    actual: dict[reference.Key, Row], expected: dict[reference.Key, reference.FeatureRow]
) -> list[str]:
    problems = [f"missing row {key}" for key in sorted(expected.keys() - actual.keys())]
    problems += [f"unexpected row {key}" for key in sorted(actual.keys() - expected.keys())]
    for key in sorted(actual.keys() & expected.keys()):
        want = expected[key].as_tuple()
        for index, column in enumerate(reference.COLUMNS):
            if not _same(column, actual[key][index], want[index]):
                problems.append(f"{key} {column}: got {actual[key][index]!r}, want {want[index]!r}")
    return problems


def assert_matches(
    actual: dict[reference.Key, Row], expected: dict[reference.Key, reference.FeatureRow]
) -> int:
    problems = mismatches(actual, expected)
    assert not problems, f"{len(problems)} differences, first ones:\n" + "\n".join(problems[:25])
    return len(actual)


def without_computed_at(table: dict[reference.Key, Row]) -> dict[reference.Key, Row]:
    return {key: row[:-1] for key, row in table.items()}


# --- the command ----------------------------------------------------------------------------

AGGREGATING = re.compile(
    r"^\[INFO\] Aggregating features for (\d+) \(user, topic, date\) combinations; "
    r"since=(\S+), anchor=(\S+), dry_run=(True|False)$",
    re.M,
)
SUMMARY = re.compile(r"^\[INFO\] Summary: processed=(\d+), failed=(\d+), duration_ms=\d+$", re.M)
SKIPPED = re.compile(r"^\[WARN\] Skipped (\d+) attempts with a null user, topic or time$", re.M)


def aggregate(
    params: ConnectionParams, anchor: dt.date, *, timezone: str, lookback: int | None = None,
    theta: bool = False, dry_run: bool = False,
) -> subprocess.CompletedProcess[str]:
    env = {"ACTIVITY_TIMEZONE": timezone, "AGG_INCLUDE_THETA": "true" if theta else "false"}
    if lookback is not None:
        env["AGG_LOOKBACK_DAYS"] = str(lookback)
    args = ["aggregate", "--date", anchor.isoformat(), *(["--dry-run"] if dry_run else [])]
    result = run_cli(params, *args, env=env)
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stdout + result.stderr
    return result


def check_report(
    result: subprocess.CompletedProcess[str], *, combinations: int, skipped: int,
    anchor: dt.date, lookback: int = 7, dry_run: bool = False,
) -> None:
    """The old job's log lines, with N = the reference's combinations in the window."""
    assert combinations > 0
    found = AGGREGATING.findall(result.stdout)
    assert found == [
        (
            str(combinations), (anchor - dt.timedelta(days=lookback)).isoformat(),
            anchor.isoformat(), str(dry_run),
        )
    ], result.stdout
    assert SUMMARY.findall(result.stdout) == [(str(combinations), "0")], result.stdout
    assert [int(n) for n in SKIPPED.findall(result.stdout)] == ([skipped] if skipped else []), (
        result.stdout
    )


def window_rows(
    rows: dict[reference.Key, Any], since: dt.date, anchor: dt.date
) -> dict[reference.Key, Any]:
    return {key: row for key, row in rows.items() if since <= key[2] <= anchor}


def outside_rows(
    rows: dict[reference.Key, Any], since: dt.date, anchor: dt.date
) -> dict[reference.Key, Any]:
    return {key: row for key, row in rows.items() if not since <= key[2] <= anchor}


# --- synthetic exams ------------------------------------------------------------------------

def exam_time(rng: random.Random, day: dt.date, timezone: str) -> dt.datetime:
    """A time on local `day`, mostly next to a midnight (local, UTC or the session's)."""
    choice = rng.random()
    if choice < 0.15:
        return local(day, 0, tz=timezone)  # the first instant of the day
    if choice < 0.3:
        return local(day, 23, 59, 59, 999_999, tz=timezone)  # the last one
    if choice < 0.45:
        return local(day, 0, rng.randrange(60), rng.randrange(60), tz=timezone)
    if choice < 0.6:
        return local(day, 23, rng.randrange(60), rng.randrange(60), tz=timezone)
    if choice < 0.8:  # around a midnight of another zone, kept on the same local day
        zone = rng.choice(["UTC", "Pacific/Auckland"])
        start = reference.local_midnight(day, timezone)
        end = reference.local_midnight(day + dt.timedelta(days=1), timezone)
        for offset in (0, 1):
            other = reference.local_midnight(
                start.astimezone(ZoneInfo(zone)).date() + dt.timedelta(days=offset), zone
            )
            candidate = other + dt.timedelta(seconds=rng.choice([-1, 0, 1, -90, 90]))
            if start <= candidate < end:
                return candidate.astimezone(UTC)
    return local(day, rng.randrange(24), rng.randrange(60), rng.randrange(60), tz=timezone)


def random_question(rng: random.Random, question_id: str, topic: str) -> dict[str, Any]:
    question: dict[str, Any] = {"question_id": question_id, "topic": topic}
    correct = rng.random() < 0.55
    style = rng.random()
    if style < 0.5:
        question["is_correct"] = correct
    elif style < 0.75:
        question["correct"] = correct  # the legacy key
    elif style < 0.85:
        question["is_correct"] = correct
        question["correct"] = not correct  # is_correct wins
    elif style < 0.92:
        question["is_correct"] = None  # not a boolean: falls through to correct
        question["correct"] = correct
    # else: neither key -> false
    timing = rng.random()
    if timing < 0.7:
        question["time_spent_sec"] = round(rng.uniform(0.5, 180.0), rng.choice([0, 1, 3, 4]))
    elif timing < 0.76:
        question["time_spent_sec"] = rng.choice([2.0005, 0.0015, 7.2495])  # halves at the ms
    elif timing < 0.84:
        pass  # missing -> 0 ms
    elif timing < 0.9:
        question["time_spent_sec"] = -rng.uniform(0.5, 30.0)  # negative: not in time stats
    elif timing < 0.95:
        question["time_spent_sec"] = rng.choice([10800.001, 20000, 99999.5])  # > 3 hours
    else:
        question["time_spent_sec"] = 10800  # exactly 3 hours: still valid
    hints = rng.random()
    if hints < 0.45:
        question["used_hints"] = 0
    elif hints < 0.75:
        question["used_hints"] = rng.choice([1, 2, 3])
    return question


def random_exam(rng: random.Random, user_id: str | None) -> list[dict[str, Any]]:
    count = rng.randint(1, 6)
    ids = rng.sample(range(1, 40), count)
    home = rng.choice(TOPICS)
    questions = [
        random_question(rng, f"q{i}", home if rng.random() < 0.7 else rng.choice(TOPICS))
        for i in ids
    ]
    extra = rng.random()
    if extra < 0.12:  # the same question twice in one exam: counts once
        copy = dict(rng.choice(questions))
        copy.update(random_question(rng, copy["question_id"], copy["topic"]))
        if rng.random() < 0.3:
            copy["topic"] = rng.choice(TOPICS)
        questions.insert(rng.randrange(len(questions) + 1), copy)
    elif extra < 0.17:
        questions.append(random_question(rng, "", home))  # empty question_id: dropped
    elif extra < 0.20:
        question = random_question(rng, f"q{rng.randint(40, 60)}", home)
        del question["question_id"]  # no question_id: dropped
        questions.append(question)
    elif extra < 0.25:
        questions.append(random_question(rng, f"q{rng.randint(40, 60)}", home))
        questions[-1]["topic"] = None  # null topic: skipped
    elif extra < 0.28:
        questions.append(random_question(rng, f"q{rng.randint(40, 60)}", home))
        del questions[-1]["topic"]
    return questions


def insert_random_exams(
    conn: psycopg.Connection, rng: random.Random, *, days: list[dt.date], count: int,
    timezone: str,
) -> None:
    for _ in range(count):
        day = rng.choice(days)
        at = exam_time(rng, day, timezone)
        user: str | None = rng.choice(USERS) if rng.random() > 0.04 else None
        # created_at is sometimes on the previous day: completed_at follows updated_at
        created = at - dt.timedelta(hours=rng.choice([0, 0.5, 3, 30]))
        insert_exam(conn, user, random_exam(rng, user), at, created_at=created)


def insert_thetas(conn: psycopg.Connection, anchor: dt.date, timezone: str) -> None:
    """Topic thetas and user-level fits around local midnights, in both id forms."""
    midnight = reference.local_midnight
    topic_rows = [
        # user id as the application spells it
        ("user123", "algebra", 0.5, 0.2, midnight(anchor - dt.timedelta(days=20), timezone)),
        # fitted at the very start of a day: not yet known on the day before
        ("alice", "geometry", -0.3, None, midnight(anchor - dt.timedelta(days=5), timezone)),
        # in uuid form (md5 of a non-uuid id) and lowercase form of an uppercase uuid id
        (md5_uuid("bob@example.com"), "algebra", 1.25, 0.4,
         midnight(anchor - dt.timedelta(days=9), timezone) - dt.timedelta(microseconds=1)),
        (UPPER_UUID_USER.lower(), "probability", 0.75, 0.3,
         midnight(anchor - dt.timedelta(days=30), timezone)),
        # ... and the uppercase form of a lowercase uuid id (sorts first in byte order)
        (LOWER_UUID_USER.upper(), "geometry", -1.5, 0.5,
         midnight(anchor - dt.timedelta(days=3), timezone)),
        # fitted after the anchor: never used
        ("alice", "algebra", 2.0, 0.1, midnight(anchor + dt.timedelta(days=1), timezone)),
    ]
    for row in topic_rows:
        conn.execute(
            "insert into public.student_topic_theta (user_id, topic_id, theta, se, updated_at)"
            " values (%s, %s, %s, %s, %s)",
            row,
        )
    ability_rows = [
        (md5_uuid("user123"), 0.1, 0.9, midnight(anchor - dt.timedelta(days=25), timezone)),
        (md5_uuid("user123"), 0.2, 0.8, midnight(anchor - dt.timedelta(days=10), timezone)),
        (md5_uuid("alice"), -0.4, 0.7,
         midnight(anchor - dt.timedelta(days=12), timezone) - dt.timedelta(seconds=1)),
        (UPPER_UUID_USER.lower(), 0.9, 0.6, midnight(anchor - dt.timedelta(days=15), timezone)),
        (md5_uuid("bob@example.com"), -2.0, 1.1, midnight(anchor - dt.timedelta(40), timezone)),
        (md5_uuid("nobody-known"), 3.0, 0.1, midnight(anchor - dt.timedelta(40), timezone)),
    ]
    for row in ability_rows:
        conn.execute(
            "insert into public.mirt_ability (user_id, theta, se, fitted_at, version)"
            " values (%s, %s, %s, %s, 'v1')",
            row,
        )


def day_range(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def assert_data_has_every_case(sources: reference.Sources) -> None:
    """The synthetic data really holds the edge cases the comparison is meant to cover."""
    questions = [
        q for exam in sources.exams for q in exam.result["questions"]
    ]
    per_exam = [
        [q.get("question_id") for q in exam.result["questions"] if q.get("question_id")]
        for exam in sources.exams
    ]
    users = {exam.user_id for exam in sources.exams}
    assert {None, UPPER_UUID_USER, "user123"} <= users
    assert any("is_correct" in q for q in questions)
    assert any("correct" in q and "is_correct" not in q for q in questions)
    assert any("time_spent_sec" not in q for q in questions)
    assert any(q.get("time_spent_sec", 0) < 0 for q in questions)
    assert any(q.get("time_spent_sec", 0) > 10800 for q in questions)
    assert any(q.get("used_hints") == 0 for q in questions)
    assert any(q.get("used_hints") == 2 for q in questions)
    assert any(q.get("question_id") == "" for q in questions)
    assert any(q.get("topic") is None for q in questions)
    assert any(len(ids) != len(set(ids)) for ids in per_exam)


# --- tests ----------------------------------------------------------------------------------

def only_exam(
    conn: psycopg.Connection, day: dt.date, topic: str, question_id: str, correct: bool,
    timezone: str,
) -> str:
    """The one exam of user `solo` on that topic and local day, at its last second."""
    question = {"question_id": question_id, "topic": topic, "is_correct": correct,
                "time_spent_sec": 12.5, "used_hints": 2}
    return insert_exam(conn, "solo", [question], local(day, 23, 59, 59, tz=timezone))


def test_runs_match_the_reference_through_late_deleted_and_corrected_exams(
    fresh_db: ConnectionParams, conn: psycopg.Connection
) -> None:
    """Every row and column equals the reference, days in America/New_York, theta on:

    1. a dry run on a fresh database reports N and creates no features table;
    2. the first run builds all history up to the anchor;
    3. exams arrive for later days and late for days already built, are deleted or corrected;
       a dry run reports the new N and changes nothing;
    4. an incremental run for a later anchor (lookback 6, its window holds the 23-hour day of
       2025-03-09) makes its window equal a rebuild from the current sources, rows included
       that must disappear, and leaves every earlier day exactly as it was (computed_at too),
       even where its exams were deleted or arrived late;
    5. running that anchor again gives the same rows (only computed_at moves).
    """
    timezone = "America/New_York"
    rng = random.Random(20250306)
    first_anchor = dt.date(2025, 3, 6)
    first_since = first_anchor - dt.timedelta(days=7)
    second_anchor = first_anchor + dt.timedelta(days=4)
    lookback = 6
    second_since = second_anchor - dt.timedelta(days=lookback)
    insert_random_exams(
        conn, rng, days=day_range(first_anchor - dt.timedelta(days=45), first_anchor),
        count=380, timezone=timezone,
    )
    # already in the table but after the first anchor: ignored by the first run
    insert_random_exams(
        conn, rng, days=[first_anchor + dt.timedelta(days=1)], count=5, timezone=timezone
    )
    deleted_inside = only_exam(conn, second_since + dt.timedelta(days=1), "algebra", "x", True,
                               timezone)
    deleted_outside = only_exam(conn, second_since - dt.timedelta(days=3), "algebra", "y", True,
                                timezone)
    corrected = only_exam(conn, first_anchor - dt.timedelta(days=1), "geometry", "z", False,
                          timezone)
    only_exam(conn, first_anchor - dt.timedelta(days=20), "geometry", "w", True, timezone)
    insert_thetas(conn, first_anchor, timezone)
    first_sources = reference.load_sources(conn)
    assert_data_has_every_case(first_sources)
    expected_first = reference.features(
        first_sources, anchor=first_anchor, timezone=timezone, include_theta=True
    )
    first_report = {
        "combinations": len(window_rows(expected_first, first_since, first_anchor)),
        "skipped": reference.skipped(
            first_sources, anchor=first_anchor, since=first_since, timezone=timezone
        ),
        "anchor": first_anchor,
    }

    assert first_report["skipped"] > 0
    # 1. dry run on a fresh database
    dry = aggregate(fresh_db, first_anchor, timezone=timezone, theta=True, dry_run=True)
    check_report(dry, **first_report, dry_run=True)
    assert not table_exists(conn, "analytics.features_topic_daily")

    # 2. first run: all history
    first = aggregate(fresh_db, first_anchor, timezone=timezone, theta=True)
    check_report(first, **first_report)
    after_first = features_table(conn)
    compared_first = assert_matches(after_first, expected_first)
    # the scenario exercises what it should
    assert min(key[2] for key in after_first) <= first_anchor - dt.timedelta(days=40)
    assert max(key[2] for key in after_first) == first_anchor
    values = list(expected_first.values())
    assert any(r.improvement is not None and r.improvement > 0 for r in values)
    assert any(r.improvement is not None and r.improvement < 0 for r in values)
    assert any(r.improvement is None for r in values)
    assert any(r.avg_time_ms is None for r in values)
    assert {r.user_id for r in values} == {*USERS, "solo"}
    thetas = {r.theta_estimate for r in values}
    assert {None, 0.5, -0.3, 1.25, 0.75, -1.5, 0.1, 0.2, -0.4, 0.9, -2.0} <= thetas
    assert 2.0 not in thetas and 3.0 not in thetas

    # 3. the sources change
    insert_random_exams(
        conn, rng, days=day_range(first_anchor + dt.timedelta(days=1), second_anchor),
        count=60, timezone=timezone,
    )
    insert_random_exams(  # late, inside the next window
        conn, rng, days=day_range(second_since, first_anchor), count=15, timezone=timezone
    )
    late_day = second_since - dt.timedelta(days=3)
    insert_random_exams(  # late, before the next window: those days are not recomputed
        conn, rng, days=[late_day], count=8, timezone=timezone
    )
    window_start = reference.local_midnight(second_since, timezone)
    for user, topic, question_id, at in [
        ("late", "algebra", "l1", local(dt.date(2025, 3, 9), 23, 30, tz=timezone)),
        ("solo", "geometry", "l2", window_start),  # the window's first instant
        ("late", "algebra", "l3", window_start - dt.timedelta(microseconds=1)),
        ("late", "algebra", "l4",  # the first instant after the anchor
         reference.local_midnight(second_anchor + dt.timedelta(days=1), timezone)),
    ]:
        insert_exam(conn, user, [{"question_id": question_id, "topic": topic, "correct": True}],
                    at)
    conn.execute("delete from public.exam_results where id in (%s, %s)",
                 (deleted_inside, deleted_outside))
    conn.execute(  # corrected without touching updated_at
        "update public.exam_results set result_json = jsonb_set(result_json,"
        " '{questions,0,is_correct}', 'true') where id = %s",
        (corrected,),
    )
    conn.execute(
        "insert into public.mirt_ability (user_id, theta, se, fitted_at, version)"
        " values (%s, 0.33, 0.44, %s, 'v2')",
        (md5_uuid("alice"), reference.local_midnight(first_anchor, timezone)),
    )
    second_sources = reference.load_sources(conn)
    expected_window = reference.features(
        second_sources, anchor=second_anchor, timezone=timezone, include_theta=True,
        since=second_since,
    )
    second_report = {
        "combinations": len(expected_window),
        "skipped": reference.skipped(
            second_sources, anchor=second_anchor, since=second_since, timezone=timezone
        ),
        "anchor": second_anchor,
        "lookback": lookback,
    }
    dry = aggregate(
        fresh_db, second_anchor, timezone=timezone, lookback=lookback, theta=True, dry_run=True
    )
    check_report(dry, **second_report, dry_run=True)
    assert features_table(conn) == after_first, "a dry run must not write features_topic_daily"

    # 4. incremental run
    second = aggregate(fresh_db, second_anchor, timezone=timezone, lookback=lookback, theta=True)
    check_report(second, **second_report)
    after_second = features_table(conn)
    expected_second = {
        **outside_rows(expected_first, second_since, second_anchor), **expected_window
    }
    compared_second = assert_matches(after_second, expected_second)
    assert outside_rows(after_second, second_since, second_anchor) == outside_rows(
        after_first, second_since, second_anchor
    )
    deleted_key = ("solo", "algebra", second_since + dt.timedelta(days=1))
    kept_key = ("solo", "algebra", second_since - dt.timedelta(days=3))
    assert deleted_key in after_first and deleted_key not in after_second
    assert kept_key in after_second and after_second[kept_key] == after_first[kept_key]
    correct = reference.COLUMNS.index("correct")
    assert after_second[("solo", "geometry", first_anchor - dt.timedelta(days=1))][correct] == 1
    assert ("solo", "geometry", second_since) in after_second
    assert ("late", "algebra", dt.date(2025, 3, 9)) in after_second
    assert ("late", "algebra", second_since - dt.timedelta(days=1)) not in after_second
    assert ("late", "algebra", second_anchor + dt.timedelta(days=1)) not in after_second
    rebuilt = reference.features(
        second_sources, anchor=second_anchor, timezone=timezone, include_theta=True,
        since=late_day,
    )
    assert mismatches(
        {k: v for k, v in after_second.items() if k[2] == late_day},
        {k: v for k, v in rebuilt.items() if k[2] == late_day},
    ), "the late exams before the window should have changed that day, had it been rebuilt"
    assert any(r.theta_estimate == 0.33 for r in expected_window.values())

    # 5. the same anchor again
    again = aggregate(fresh_db, second_anchor, timezone=timezone, lookback=lookback, theta=True)
    check_report(again, **second_report)
    rerun = features_table(conn)
    assert without_computed_at(rerun) == without_computed_at(after_second)
    in_window = window_rows(rerun, second_since, second_anchor)
    assert all(row[-1] > after_second[key][-1] for key, row in in_window.items())
    assert outside_rows(rerun, second_since, second_anchor) == outside_rows(
        after_second, second_since, second_anchor
    )
    print(
        f"features_topic_daily: compared {compared_first} rows after the first run and "
        f"{compared_second} rows ({len(expected_window)} in the window) after the incremental run"
    )


def test_spec_improvement_example_theta_off_and_an_empty_window(
    fresh_db: ConnectionParams, conn: psycopg.Connection
) -> None:
    """Recent 10/20 against previous 5/20 gives 0.25 * 20/30 * (1 - 1.96 sqrt(.25/20)); the
    window edges are the first and last instants of UTC days (the session is in Auckland).
    Theta tables are filled but include_theta is off. A later anchor with no data in its
    window (beyond the catch-up bound) reports so, exits 0 and leaves the table as it was."""
    timezone = "UTC"
    anchor = dt.date(2025, 6, 30)

    def day(offset: int) -> dt.date:
        return anchor + dt.timedelta(days=offset)

    def questions(n: int, correct: int, prefix: str) -> list[dict[str, Any]]:
        return [
            {"question_id": f"{prefix}{i}", "topic": "algebra", "is_correct": i < correct,
             "time_spent_sec": 10 + i, "used_hints": i % 2}
            for i in range(n)
        ]

    last_instant = dt.timedelta(days=1, microseconds=-1)
    start = reference.local_midnight
    insert_exam(conn, "learner", questions(5, 5, "a"), start(day(-28), timezone) + last_instant)
    insert_exam(conn, "learner", questions(10, 2, "b"), start(day(-27), timezone))
    insert_exam(conn, "learner", questions(10, 3, "c"), start(day(-14), timezone) + last_instant)
    insert_exam(conn, "learner", questions(10, 5, "d"), start(day(-13), timezone))
    insert_exam(conn, "learner", questions(10, 5, "e"), start(day(0), timezone) + last_instant)
    insert_exam(conn, "learner", questions(10, 0, "f"), start(day(1), timezone))  # after anchor
    insert_thetas(conn, anchor, timezone)  # present, but include_theta is off

    result = aggregate(fresh_db, anchor, timezone=timezone)
    sources = reference.load_sources(conn)
    expected = reference.features(sources, anchor=anchor, timezone=timezone)
    check_report(result, combinations=1, skipped=0, anchor=anchor)
    table = features_table(conn)
    assert_matches(table, expected)
    assert sorted(key[2] for key in table) == [day(-28), day(-27), day(-14), day(-13), day(0)]

    p_r, p_p, n_r = 10 / 20, 5 / 20, 20
    penalty = 1 - min(0.5, 1.96 * math.sqrt(p_r * (1 - p_r) / n_r))
    exact = (p_r - p_p) * min(1.0, n_r / 30) * penalty
    improvement = table[("learner", "algebra", anchor)][reference.COLUMNS.index("improvement")]
    assert improvement == pytest.approx(exact, abs=1e-12)
    assert improvement == pytest.approx(0.1301442230341701, abs=1e-12)
    assert round(improvement, 4) == 0.1301
    assert all(
        row[reference.COLUMNS.index("theta_estimate")] is None
        and row[reference.COLUMNS.index("theta_sd")] is None
        for row in table.values()
    )

    # More than the 60 days a night catches up after the last anchor built: the usual window,
    # which holds no data (a nearer anchor would catch up from day(1) and find its exam).
    empty = aggregate(fresh_db, day(75), timezone=timezone)
    assert (
        "[INFO] No (user_id, topic_id, date) combinations found (lookback=7 days); exiting."
        in empty.stdout.splitlines()
    ), empty.stdout
    assert not AGGREGATING.search(empty.stdout)
    assert features_table(conn) == table


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--date", "2025-13-40"], {}),
        (["--date", "2025-11-01"], {"AGG_LOOKBACK_DAYS": "abc"}),
        ("future", {}),
    ],
    ids=["bad-date", "bad-lookback", "future-date"],
)
def test_bad_input_stops_before_anything_is_written(
    fresh_db: ConnectionParams, conn: psycopg.Connection, args: Any, env: dict[str, str]
) -> None:
    if args == "future":
        future = dt.datetime.now(ZoneInfo("Pacific/Kiritimati")).date() + dt.timedelta(days=2)
        args = ["--date", future.isoformat()]
    result = run_cli(fresh_db, "aggregate", *args, env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("[ERROR]"), result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert not schema_exists(conn, "analytics")
