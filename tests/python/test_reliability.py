"""Reliability under faults, concurrency and bad data: the pipeline keeps its promises.

- A run killed with SIGKILL in the middle of a write leaves the table as it was (the write is
  one transaction), and the next run completes normally with the right result. The test makes
  the writer stop inside its transaction by holding a row it is about to write, checks in
  pg_stat_activity / pg_blocking_pids that the writer really is waiting inside that statement,
  and only then kills the process.
- Two runs at once cannot interleave: the second waits for the advisory lock, or gives up
  with a clear message after SEEDTEST_LOCK_WAIT_SECONDS without writing anything; exams the
  application inserts while a run is going are all picked up by the next run.
- Bad data (malformed result_json, odd question fields, null and empty ids, future times,
  kpis that are not an object) does not stop the run; what is skipped is counted and logged.

Expected values come from tests/python/reference.py (features, computed from the raw rows)
and from the P/S formulas written out here for simple data.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import random
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

import background
import reference  # tests/python is on sys.path, as for conftest
from background import Background, wait_for
from ps_reference import phi, s_churn
from seedtest_analytics.db.connection import ConnectionParams

UTC = dt.UTC
ANCHOR = dt.date(2025, 6, 18)  # a Wednesday
WEEK = ANCHOR - dt.timedelta(days=ANCHOR.weekday())  # 2025-06-16
SINCE = ANCHOR - dt.timedelta(days=7)
OLD_TS = dt.datetime(2001, 2, 3, 4, 5, 6, tzinfo=UTC)
FEATURE_COLUMNS = ", ".join(reference.COLUMNS)
SELECT_FEATURES = f"select {FEATURE_COLUMNS}, computed_at from analytics.features_topic_daily"
SELECT_KPI = (
    "select user_id, week_start, kpis, created_at, updated_at from public.weekly_kpi"
    " order by user_id, week_start"
)



# --- running the CLI in the background ----------------------------------------------------------

def cli_env(params: ConnectionParams, tmp: Path, extra: dict[str, str] | None = None
            ) -> dict[str, str]:
    """The environment run_cli gives the command, plus dbt's paths outside the checkout."""
    env = {
        key: value for key, value in os.environ.items()
        if not key.startswith(("AGG_", "METRICS_", "KPI_", "INACTIVITY_", "ANCHOR_"))
        and key not in ("DATABASE_URL", "ACTIVITY_TIMEZONE", "SOURCE_SCHEMA", "MAP_USER_IDS",
                        "SEEDTEST_DBT_SCHEMA", "SEEDTEST_LOCK_WAIT_SECONDS")
    }
    env.update(
        DATABASE_URL=params.to_url(), ACTIVITY_TIMEZONE="UTC",
        DBT_TARGET_PATH=str(tmp / "target"), DBT_LOG_PATH=str(tmp / "logs"),
    )
    env.update(extra or {})
    return env


@pytest.fixture(autouse=True)
def _no_leftover_processes() -> Iterator[None]:
    yield
    background.kill_leftovers()


def start_cli(params: ConnectionParams, tmp: Path, name: str, *args: str,
              env: dict[str, str] | None = None) -> Background:
    return background.start(tmp, name, args, cli_env(params, tmp, env))


def run_ok(params: ConnectionParams, tmp: Path, name: str, *args: str,
           env: dict[str, str] | None = None, expect: int = 0) -> Background:
    run = start_cli(params, tmp, name, *args, env=env)
    code = run.finish()
    assert code == expect, run.output()
    assert "Traceback" not in run.stdout + run.stderr, run.output()
    return run


# --- the database ---------------------------------------------------------------------------

def connect(params: ConnectionParams, *, autocommit: bool = True) -> psycopg.Connection:
    return psycopg.connect(**params.psycopg_kwargs(), autocommit=autocommit)


@pytest.fixture
def conn(fresh_db: ConnectionParams) -> Iterator[psycopg.Connection]:
    with connect(fresh_db) as connection:
        yield connection


def question(qid: str, topic: str | None, *, correct: bool = True, seconds: Any = 12.5,
             hints: int = 0) -> dict[str, Any]:
    return {"question_id": qid, "topic": topic, "is_correct": correct,
            "time_spent_sec": seconds, "used_hints": hints}


def add_exam(conn: psycopg.Connection, user_id: str | None, result: Any, at: dt.datetime,
             *, exam_id: str | None = None) -> str:
    """One exam_results row; `result` is stored as the whole result_json (any JSON)."""
    exam_id = exam_id or str(uuid.uuid4())
    conn.execute(
        "insert into public.exam_results"
        " (id, session_id, user_id, result_json, created_at, updated_at)"
        " values (%s, %s, %s, %s, %s, %s)",
        (exam_id, f"s-{exam_id}", user_id, Jsonb(result), at - dt.timedelta(minutes=30), at),
    )
    return exam_id


def at_day(day: dt.date, hour: int = 12, minute: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def random_exams(conn: psycopg.Connection, rng: random.Random, users: list[str],
                 first: dt.date, last: dt.date, count: int) -> None:
    days = (last - first).days
    for number in range(count):
        day = first + dt.timedelta(days=rng.randint(0, days))
        topic = rng.choice(["algebra", "geometry", "probability"])
        questions = [
            question(f"q{number}-{k}", topic if rng.random() < 0.8 else "algebra",
                     correct=rng.random() < 0.6, seconds=round(rng.uniform(1, 90), 2),
                     hints=rng.choice([0, 0, 1]))
            for k in range(rng.randint(1, 4))
        ]
        add_exam(conn, rng.choice(users), {"questions": questions},
                 at_day(day, rng.randrange(24), rng.randrange(60)))


def features_rows(conn: psycopg.Connection) -> dict[reference.Key, tuple[Any, ...]]:
    rows = conn.execute(SELECT_FEATURES).fetchall()
    table = {(row[0], row[1], row[2]): tuple(row) for row in rows}
    assert len(table) == len(rows), "duplicate (user_id, topic_id, date) rows"
    return table


def assert_features_match(conn: psycopg.Connection, *, since: dt.date | None = None,
                          anchor: dt.date = ANCHOR) -> int:
    """features_topic_daily equals the reference computed from the raw rows right now."""
    expected = reference.features(reference.load_sources(conn), anchor=anchor, timezone="UTC")
    actual = features_rows(conn)
    if since is not None:
        expected = {key: row for key, row in expected.items() if key[2] >= since}
        actual = {key: row for key, row in actual.items() if key[2] >= since}
    problems = [f"missing {key}" for key in sorted(expected.keys() - actual.keys())]
    problems += [f"unexpected {key}" for key in sorted(actual.keys() - expected.keys())]
    for key in sorted(expected.keys() & actual.keys()):
        for index, column in enumerate(reference.COLUMNS):
            want, got = expected[key].as_tuple()[index], actual[key][index]
            same = (
                math.isclose(got, want, rel_tol=0.0, abs_tol=1e-9)
                if isinstance(want, float) and got is not None else got == want
            )
            if not same:
                problems.append(f"{key} {column}: got {got!r}, want {want!r}")
    assert not problems, f"{len(problems)} differences:\n" + "\n".join(problems[:30])
    return len(actual)


def blocked_by(conn: psycopg.Connection, blocker_pid: int, table: str
               ) -> tuple[int, str] | None:
    """(pid, query) of a backend of this database waiting on `blocker_pid` in a statement that
    writes `table`, if there is one."""
    row = conn.execute(
        "select pid, query from pg_stat_activity"
        " where datname = current_database() and %s = any(pg_blocking_pids(pid))"
        " and query ilike %s",
        (blocker_pid, f"%insert into%{table}%"),
    ).fetchone()
    return (int(row[0]), str(row[1])) if row else None


def wait_until_gone(conn: psycopg.Connection, pid: int) -> None:
    def gone() -> bool:
        row = conn.execute("select count(*) from pg_stat_activity where pid = %s", (pid,)
                           ).fetchone()
        return bool(row and row[0] == 0)

    wait_for(f"backend {pid} to end", gone, timeout=120)


def churn(d: int, k: int, g: float, h: int = 14) -> float:
    return s_churn(d, k, g, h)


# --- crash safety -------------------------------------------------------------------------------

def test_kill_inside_the_features_write_keeps_the_old_table(
    fresh_db: ConnectionParams, conn: psycopg.Connection, tmp_path: Path
) -> None:
    """SIGKILL while dbt is inside the incremental delete+insert of features_topic_daily (the
    delete done, the insert waiting): the table keeps its old rows exactly, computed_at
    included; the next run completes and equals a recomputation from the raw rows."""
    rng = random.Random(5)
    users = ["ann", "ben", "cho", "dee"]
    random_exams(conn, rng, users, ANCHOR - dt.timedelta(days=40), ANCHOR, 90)
    run_ok(fresh_db, tmp_path, "first", "aggregate", "--date", ANCHOR.isoformat())
    assert_features_match(conn)
    before = features_rows(conn)

    # The sources change inside the window: new exams, one deleted, one corrected.
    in_window = conn.execute(
        "select id from public.exam_results where updated_at >= %s order by id limit 2",
        (at_day(SINCE, 0),),
    ).fetchall()
    conn.execute("delete from public.exam_results where id = %s", (in_window[0][0],))
    conn.execute(
        "update public.exam_results set result_json = jsonb_set(result_json,"
        " '{questions,0,is_correct}', 'false'), updated_at = updated_at + interval '1 second'"
        " where id = %s",
        (in_window[1][0],),
    )
    new_key = ("eve", "statistics", ANCHOR - dt.timedelta(days=2))
    add_exam(conn, "eve", {"questions": [question("n1", "statistics"), question("n2", "algebra")]},
             at_day(new_key[2], 9))
    random_exams(conn, rng, users, SINCE, ANCHOR, 10)
    assert new_key not in before

    with connect(fresh_db, autocommit=False) as blocker:
        # An uncommitted row with a key the run is about to insert: its insert has to wait
        # for this transaction, after its delete of the window already ran.
        blocker.execute(
            "insert into analytics.features_topic_daily (user_id, topic_id, date, attempts,"
            " correct, hints, last_seen_at, computed_at)"
            " values (%s, %s, %s, 1, 0, 0, now(), now())",
            new_key,
        )
        blocker_pid = blocker.info.backend_pid
        killed = start_cli(fresh_db, tmp_path, "killed", "aggregate", "--date", ANCHOR.isoformat())
        writer_pid, query = wait_for(
            "the features write to block", lambda: blocked_by(conn, blocker_pid,
                                                               "features_topic_daily"),
            alive=killed,
        )
        assert "delete from" in query.lower(), query  # one statement batch: delete, then insert
        killed.kill()
        blocker.rollback()
    wait_until_gone(conn, writer_pid)
    assert killed.proc.returncode == -signal.SIGKILL

    assert features_rows(conn) == before, "a killed run changed features_topic_daily"
    final = run_ok(fresh_db, tmp_path, "final", "aggregate", "--date", ANCHOR.isoformat())
    assert "[INFO] Summary: processed=" in final.stdout
    assert_features_match(conn)
    after = features_rows(conn)
    assert new_key in after
    # days before the window were left alone
    assert {k: v for k, v in after.items() if k[2] < SINCE} == {
        k: v for k, v in before.items() if k[2] < SINCE
    }


def test_kill_inside_the_weekly_kpi_write_keeps_the_old_rows(
    fresh_db: ConnectionParams, conn: psycopg.Connection, tmp_path: Path
) -> None:
    """SIGKILL while the P/S upsert is inside its one statement (some rows possibly done, one
    waiting): weekly_kpi keeps every old row as it was and gains none; the next run writes P
    and S of every inactive user, keeping the other keys."""
    inactive = [f"u{number:02d}" for number in range(12)]
    for number, user in enumerate(inactive):
        last = ANCHOR - dt.timedelta(days=10 + number)
        add_exam(conn, user, {"questions": [question("q1", "algebra")]}, at_day(last, 10))
        conn.execute(
            "insert into public.ability_estimates (user_id, mean, sd, fitted_at)"
            " values (%s, %s, 1.0, %s)",
            (user, 0.1 * number - 0.5, at_day(ANCHOR - dt.timedelta(days=30))),
        )
    add_exam(conn, "active", {"questions": [question("q1", "algebra")]}, at_day(ANCHOR, 8))
    for number, user in enumerate(inactive[:8]):
        conn.execute(
            "insert into public.weekly_kpi (user_id, week_start, kpis, created_at, updated_at)"
            " values (%s, %s, %s, %s, %s)",
            (user, WEEK, Jsonb({"I_t": number, "E_t": [1, 2], "P": 0.01, "S": 0.02}),
             OLD_TS, OLD_TS),
        )
    conn.execute(
        "insert into public.weekly_kpi (user_id, week_start, kpis, created_at, updated_at)"
        " values ('u00', %s, '{\"P\": 0.5}', %s, %s)",
        (WEEK - dt.timedelta(days=7), OLD_TS, OLD_TS),
    )
    before = conn.execute(SELECT_KPI).fetchall()

    with connect(fresh_db, autocommit=False) as blocker:
        blocker.execute(
            "select 1 from public.weekly_kpi where user_id = 'u05' and week_start = %s for update",
            (WEEK,),
        )
        blocker_pid = blocker.info.backend_pid
        killed = start_cli(fresh_db, tmp_path, "killed", "run", "--date", ANCHOR.isoformat())
        writer_pid, _ = wait_for(
            "the weekly_kpi write to block",
            lambda: blocked_by(conn, blocker_pid, "weekly_kpi"), alive=killed,
        )
        killed.kill()
        blocker.rollback()
    wait_until_gone(conn, writer_pid)
    assert "Found 12 inactive users" in killed.stdout, killed.output()

    assert conn.execute(SELECT_KPI).fetchall() == before, "a killed run changed weekly_kpi"
    final = run_ok(fresh_db, tmp_path, "final", "run", "--date", ANCHOR.isoformat())
    assert "[INFO] Found 12 inactive users (threshold=7 days); dry_run=False" in final.stdout
    assert "processed=12, failed=0" in final.stdout

    rows = {(row[0], row[1]): row for row in conn.execute(SELECT_KPI).fetchall()}
    assert set(rows) == {(user, WEEK) for user in inactive} | {("u00", WEEK - dt.timedelta(7))}
    assert rows[("u00", WEEK - dt.timedelta(days=7))][2] == {"P": 0.5}
    for number, user in enumerate(inactive):
        kpis, created_at, updated_at = rows[(user, WEEK)][2:]
        d = 10 + number
        assert kpis["P"] == pytest.approx(phi(0.1 * number - 0.5), abs=1e-12), user
        assert kpis["S"] == pytest.approx(churn(d, 1, 0.0), abs=1e-12), user
        assert updated_at > OLD_TS
        if number < 8:
            assert kpis["I_t"] == number and kpis["E_t"] == [1, 2], user
            assert created_at == OLD_TS
        else:
            assert set(kpis) == {"P", "S", "S_as_of"}, user


# --- concurrency --------------------------------------------------------------------------------

def _advisory_locks(conn: psycopg.Connection, *, granted: bool) -> list[int]:
    return [
        int(row[0]) for row in conn.execute(
            "select l.pid from pg_locks l join pg_database d on d.oid = l.database"
            " where l.locktype = 'advisory' and d.datname = current_database()"
            " and l.granted = %s",
            (granted,),
        )
    ]


class ExamWriter(threading.Thread):
    """The application: inserts exams until told to stop, stamped after the anchor of the
    run going on (the nightly run works on yesterday while today's exams come in)."""

    def __init__(self, params: ConnectionParams) -> None:
        super().__init__(daemon=True)
        self.params = params
        self.stop = threading.Event()
        self.written = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with connect(self.params) as conn:
                while not self.stop.is_set():
                    day = ANCHOR + dt.timedelta(days=1 + self.written % 5)
                    add_exam(conn, f"live{self.written % 7}",
                             {"questions": [question(f"w{self.written}", "algebra")]},
                             at_day(day, 6, self.written % 60))
                    self.written += 1
                    time.sleep(0.05)
        except BaseException as exc:  # reported by the test
            self.error = exc


def test_two_runs_never_interleave_and_late_exams_are_picked_up(
    fresh_db: ConnectionParams, conn: psycopg.Connection, tmp_path: Path
) -> None:
    """Run A holds the advisory lock while the application keeps inserting exams. Run B, told
    to wait 1 s, gives up with exit 1 and a clear line, without starting dbt. Run C (the next
    night's, anchor 5 days later), with the default wait, queues on the lock while A is still
    going, then runs after it. Both A and C succeed, and C's result holds every exam,
    including all those written during A."""
    later = ANCHOR + dt.timedelta(days=5)
    rng = random.Random(9)
    random_exams(conn, rng, ["ann", "ben", "cho"], ANCHOR - dt.timedelta(days=30), ANCHOR, 40)
    for user in ("ann", "ben", "cho"):  # all active at the anchor
        add_exam(conn, user, {"questions": [question("last", "geometry")]}, at_day(ANCHOR, 20))
    add_exam(conn, "gone", {"questions": [question("q1", "algebra")]},
             at_day(ANCHOR - dt.timedelta(days=20)))

    first = start_cli(fresh_db, tmp_path, "a", "run", "--date", ANCHOR.isoformat())
    wait_for("run A to take the lock", lambda: _advisory_locks(conn, granted=True), alive=first)
    writer = ExamWriter(fresh_db)
    writer.start()
    try:
        second = run_ok(fresh_db, tmp_path, "b", "run", "--date", ANCHOR.isoformat(),
                        env={"SEEDTEST_LOCK_WAIT_SECONDS": "1"}, expect=1)
        assert first.proc.poll() is None, "run A ended before run B tried: nothing was tested"
        errors = second.stderr.strip().splitlines()
        assert len(errors) == 1, second.output()
        assert errors[0].startswith("[ERROR] another seedtest-analytics run is still in progress")
        assert "nothing was written" in errors[0]
        assert "Running with dbt" not in second.stdout, "run B started dbt"
        assert "waiting up to 1 s" in second.stdout

        third = start_cli(fresh_db, tmp_path, "c", "run", "--date", later.isoformat())
        wait_for("run C to queue on the lock",
                 lambda: _advisory_locks(conn, granted=False), alive=third)
        assert first.proc.poll() is None, "run A ended before run C queued: nothing was tested"
        while first.proc.poll() is None:
            # C cannot start dbt while A holds the lock (checked while A is still there)
            c_output = third.stdout
            if first.proc.poll() is None:
                assert "Running with dbt" not in c_output, "run C started while run A ran"
            time.sleep(0.2)
        assert first.finish() == 0, first.output()
    finally:
        writer.stop.set()
        writer.join(timeout=30)
    assert writer.error is None, repr(writer.error)
    assert writer.written > 0
    assert third.finish() == 0, third.output()
    assert "Another seedtest-analytics run holds the lock" in third.stdout
    assert "waiting up to 300 s" in third.stdout

    assert_features_match(conn, anchor=later)
    live = conn.execute(
        "select count(*) from analytics.features_topic_daily where user_id like 'live%%'"
    ).fetchone()
    assert live is not None and live[0] > 0
    total = conn.execute(
        "select coalesce(sum(attempts), 0) from analytics.features_topic_daily"
        " where user_id like 'live%%'"
    ).fetchone()
    assert total is not None and total[0] == writer.written, "an exam written during run A is lost"
    kpi = conn.execute(
        "select user_id, week_start, kpis ? 'P', kpis ? 'S' from public.weekly_kpi"
        " order by user_id, week_start"
    ).fetchall()
    later_week = later - dt.timedelta(days=later.weekday())
    assert kpi == [("gone", WEEK, False, True), ("gone", later_week, False, True)]
    assert _advisory_locks(conn, granted=True) == []


# --- bad data -------------------------------------------------------------------------------------

def test_bad_data_is_skipped_counted_and_logged(
    fresh_db: ConnectionParams, conn: psycopg.Connection, tmp_path: Path
) -> None:
    """Malformed exams and kpis do not stop the run: features equal the reference (which
    skips the same things), the log counts the skipped attempts, rows whose kpis is not a JSON
    object are left untouched and reported one by one, and the good users get their P/S."""
    day = ANCHOR - dt.timedelta(days=2)
    old_day = ANCHOR - dt.timedelta(days=12)
    good = [question("g1", "algebra"), question("g2", "geometry", correct=False, seconds=40)]
    add_exam(conn, "good", {"questions": good}, at_day(day, 9))
    add_exam(conn, "gone", {"questions": good}, at_day(old_day, 9))
    conn.execute(
        "insert into public.ability_estimates (user_id, mean, sd, fitted_at)"
        " values ('gone', 0.25, 0.5, %s)",
        (at_day(old_day),),
    )
    odd_questions = [
        question("", "algebra"),                      # empty question id: not an attempt
        {"topic": "algebra", "is_correct": True},      # no question id: not an attempt
        {"question_id": None, "topic": "algebra"},     # null question id: not an attempt
        question("n1", None),                          # null topic: skipped, counted
        question("n2", ""),                            # empty topic: skipped, counted
        {"question_id": "n3", "is_correct": True},     # no topic: skipped, counted
        question("t1", "algebra", seconds="abc"),      # non-numeric time: no time
        question("t2", "algebra", seconds=-5),         # negative time: not in time stats
        question("t3", "algebra", seconds=1e12),       # huge time: not in time stats
        question("t4", "algebra", seconds=20000),      # over 3 hours: not in time stats
        question("t5", "algebra", seconds=True),       # a boolean time: no time
        {"question_id": "t6", "topic": "algebra", "is_correct": "true",
         "time_spent_sec": "12", "used_hints": "yes"},  # strings where numbers/booleans go
        {"question_id": 7, "topic": 8, "correct": True},  # numbers as ids
        1, "text", None, [],                            # questions that are not objects
    ]
    add_exam(conn, "odd", {"questions": odd_questions}, at_day(day, 10))
    add_exam(conn, None, {"questions": good}, at_day(day, 11))            # null user: counted
    add_exam(conn, "future", {"questions": good}, at_day(ANCHOR + dt.timedelta(days=400)))
    for number, result in enumerate([
        [{"question_id": "x", "topic": "algebra"}],   # an array, not an object
        "just a string",
        None,                                         # JSON null
        42,
        {},                                           # no questions key
        {"questions": "not an array"},
        {"questions": {"question_id": "x", "topic": "algebra"}},
        {"questions": None},
        {"answers": good},
    ]):
        add_exam(conn, f"malformed{number}", result, at_day(day, 12, number))
    # weekly_kpi rows of inactive users whose kpis is not an object, and a good one
    bad_kpis = {"kpi_string": "a string", "kpi_array": [1, 2], "kpi_null": None}
    for user, kpis in bad_kpis.items():
        add_exam(conn, user, {"questions": good}, at_day(old_day, 8))
        conn.execute(
            "insert into public.weekly_kpi (user_id, week_start, kpis, created_at, updated_at)"
            " values (%s, %s, %s, %s, %s)",
            (user, WEEK, Jsonb(kpis), OLD_TS, OLD_TS),
        )
    conn.execute(
        "insert into public.weekly_kpi (user_id, week_start, kpis, created_at, updated_at)"
        " values ('gone', %s, '{\"A_t\": 3}', %s, %s)",
        (WEEK, OLD_TS, OLD_TS),
    )
    sources = reference.load_sources(conn)
    skipped = reference.skipped(sources, anchor=ANCHOR, since=SINCE, timezone="UTC")
    assert skipped == 5  # null, empty and missing topic; the two questions of the null user
    before = {(row[0], row[1]): row for row in conn.execute(SELECT_KPI).fetchall()}

    # The newest exam is 2 days before the anchor: off the freshness guard (not the point here).
    # Three unwritable users are warnings counted in failed=, not a failed night: fewer than
    # SEEDTEST_MAX_FAILED_USERS (10), whatever their share.
    result = run_ok(fresh_db, tmp_path, "bad", "run", "--date", ANCHOR.isoformat(), expect=0,
                    env={"SEEDTEST_FRESHNESS_HOURS": "0"})
    out = result.stdout
    assert f"[WARN] Skipped {skipped} attempts with a null user, topic or time" in out, out[-4000:]
    for user in bad_kpis:
        assert (
            f"[WARN] kpis of user={user} week={WEEK.isoformat()} is not a JSON object; "
            "left untouched"
        ) in out
    inactive = {"gone", *bad_kpis}
    assert f"Found {len(inactive)} inactive users" in out
    assert f"processed=1, failed={len(bad_kpis)}" in out
    assert "dbt build failed" not in result.stderr

    assert_features_match(conn)
    rows = {(row[0], row[1]): row for row in conn.execute(SELECT_KPI).fetchall()}
    for user in bad_kpis:
        assert rows[(user, WEEK)] == before[(user, WEEK)], user
    gone = rows[("gone", WEEK)][2]
    assert gone["A_t"] == 3
    assert gone["P"] == pytest.approx(1.0 - phi((0.0 - 0.25) / 0.5), abs=1e-12)
    assert gone["S"] == pytest.approx(churn(12, 1, 0.0), abs=1e-12)
    assert set(rows) == set(before), "a row appeared for a user that is not inactive"
