"""detect-inactivity end to end: the command against a real database, compared with an
independent Python computation (ps_reference.py) made straight from the raw application rows.

One scenario holds a case for each defect of the old job:
- a user stale in exam_results but active in session (7.1: must not be inactive);
- features last_seen_at equal to the real attempt time, never the run time (7.2);
- weekly_kpi rows holding I_t/E_t/R_t/A_t and other keys (7.3: kept, P and S land);
- `user123`, whose attempts, mirt_ability row and one session carry the derived uuid, a user
  whose exam_results rows use both spellings, and an upper-case uuid user id (7.4: one person,
  P/S on the application's row);
- a user gone for 200 days and activity after the anchor (7.5: S from the anchor, not null);
- interest_goal rows, a non-default KPI_LOOKBACK_DAYS and target (7.6);
- activity next to local midnight of ACTIVITY_TIMEZONE=Asia/Seoul while the database session
  runs in Pacific/Auckland (7.8);
- a weekly_kpi row whose kpis is a JSON array (left untouched, reported, exit code 1).

The scenario is built once in a template database; every run works on its own copy of it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import random
import re
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from psycopg.types.json import Jsonb

import ps_reference as ref
from conftest import create_database, drop_database, run_cli
from seedtest_analytics.config import Settings
from seedtest_analytics.db.connection import ConnectionParams
from seedtest_analytics.jobs import inactivity
from seedtest_analytics.scoring.formulas import score_users
from seedtest_analytics.warehouse import postgres
from seedtest_analytics.warehouse.scoring_inputs import ScoringInput

TZ = "Asia/Seoul"
ANCHOR = dt.date(2025, 11, 5)  # a Wednesday
WEEK = dt.date(2025, 11, 3)
KPI_LOOKBACK = 21
HORIZON = 10
DEFAULT_TARGET = 0.2
ENV = {
    "ACTIVITY_TIMEZONE": TZ,
    "KPI_LOOKBACK_DAYS": str(KPI_LOOKBACK),
    "METRICS_CHURN_HORIZON_DAYS": str(HORIZON),
    "METRICS_DEFAULT_TARGET": str(DEFAULT_TARGET),
}
TOLERANCE = 1e-12
OLD = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)

ALICE = "alice"  # stale in exam_results, active in session
USER123 = "user123"  # attempts / mirt_ability / one session in the derived uuid form
BOB = "bob"  # gone for 200 days
CAROL = "carol"  # weekly_kpi kpis is a JSON array
DAVE = "dave"  # no ability at all
ERIN = "erin"  # interest goals
UPPER = "ABCDEF01-2345-4789-ABCD-EF0123456789"  # uuid-shaped, upper case, in exam_results
FRANK = "frank"  # last seen one second before the local cutoff midnight
GRACE = "grace"  # last seen just after it
HEIDI = "heidi"  # an exam and a session after the anchor day
IVAN = "ivan"  # active late on the anchor day (local time)
JUDY = "judy"  # activity days next to local midnights and the window's first day
KATE = "kate"  # sd = 0: no P
LEO = "leo"  # exam_results rows under both `leo` and its uuid form
MALLORY = "mallory"  # active, with an ability (part of the Bayesian population)
GHOST = "ghost"  # an ability, no activity at all (part of the population too)

FOUND = re.compile(
    r"^\[INFO\] Found (\d+) inactive users \(threshold=(\d+) days\); dry_run=(True|False)$", re.M
)
SUMMARY = re.compile(
    r"^\[INFO\] Summary: processed=(\d+), failed=(\d+), threshold=(\d+) days, duration_ms=\d+$",
    re.M,
)
NOT_OBJECT = re.compile(
    r"^\[WARN\] kpis of user=(.+) week=(\S+) is not a JSON object; left untouched$", re.M
)


# --- the scenario ---------------------------------------------------------------------------

def kst(y: int, m: int, d: int, hh: int = 12, mm: int = 0, ss: int = 0) -> dt.datetime:
    return dt.datetime(y, m, d, hh, mm, ss, tzinfo=ZoneInfo(TZ))


def day_at(day: dt.date, hh: int = 12, mm: int = 0, ss: int = 0) -> dt.datetime:
    return kst(day.year, day.month, day.day, hh, mm, ss)


class Builder:
    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn
        self.sessions = 0

    def exam(self, user_id: str | None, at: dt.datetime, *, questions: bool = True,
             topic: str = "algebra") -> None:
        exam_id = str(uuid.uuid4())
        items = (
            [
                {"question_id": f"q-{exam_id[:6]}-1", "topic": topic, "is_correct": True,
                 "time_spent_sec": 12.5, "used_hints": 0},
                {"question_id": f"q-{exam_id[:6]}-2", "topic": topic, "correct": False,
                 "time_spent_sec": 30, "used_hints": 1},
                {"question_id": "", "topic": topic},  # not an attempt
            ]
            if questions else [{"question_id": "", "topic": topic}]
        )
        self.conn.execute(
            "insert into public.exam_results"
            " (id, session_id, user_id, result_json, created_at, updated_at)"
            " values (%s, %s, %s, %s, %s, %s)",
            (exam_id, f"es-{exam_id}", user_id, Jsonb({"questions": items}),
             at - dt.timedelta(minutes=25), at),
        )

    def session(self, user_id: str | None, started: dt.datetime,
                ended: dt.datetime | None = None) -> None:
        self.sessions += 1
        self.conn.execute(
            "insert into public.session (id, user_id, started_at, ended_at)"
            " values (%s, %s, %s, %s)",
            (f"sess-{self.sessions}", user_id, started, ended),
        )

    def estimate(self, user_id: str, mean: float, sd: float, fitted: dt.datetime) -> None:
        self.conn.execute(
            "insert into public.ability_estimates (user_id, mean, sd, fitted_at)"
            " values (%s, %s, %s, %s)", (user_id, mean, sd, fitted),
        )

    def mirt(self, user_id: str, theta: float, se: float, fitted: dt.datetime) -> None:
        self.conn.execute(
            "insert into public.mirt_ability (user_id, theta, se, fitted_at, version)"
            " values (%s, %s, %s, %s, 'v2')", (user_id, theta, se, fitted),
        )

    def goal(self, user_id: str, target: float | None, priority: int | None,
             created: dt.datetime, topic: str = "algebra") -> None:
        self.conn.execute(
            "insert into public.interest_goal"
            " (user_id, topic_id, target_level, priority, created_at)"
            " values (%s, %s, %s, %s, %s)", (user_id, topic, target, priority, created),
        )

    def kpi(self, user_id: str, kpis: Any, week: dt.date = WEEK) -> None:
        self.conn.execute(
            "insert into public.weekly_kpi (user_id, week_start, kpis, created_at, updated_at)"
            " values (%s, %s, %s, %s, %s)", (user_id, week, Jsonb(kpis), OLD, OLD),
        )


def build_scenario(conn: psycopg.Connection) -> None:
    b = Builder(conn)
    uuid123 = ref.uuid_form(USER123)
    after_anchor = kst(2025, 11, 6, 0, 0, 30)  # 2025-11-05 15:00:30 UTC: after the local day

    b.exam(ALICE, kst(2025, 9, 1, 10))
    b.session(ALICE, kst(2025, 11, 4, 9), kst(2025, 11, 4, 9, 40))
    b.estimate(ALICE, 0.1, 0.5, kst(2025, 10, 1))

    b.exam(USER123, kst(2025, 10, 10, 20))
    b.exam(USER123, kst(2025, 10, 20, 23, 30), topic="geometry")
    b.session(uuid123, kst(2025, 10, 21, 0, 20))  # uuid form, no end: started_at counts
    b.mirt(uuid123, -0.3, 0.6, kst(2025, 9, 15))
    b.mirt(uuid123, 0.4, 0.5, kst(2025, 10, 25))
    b.mirt(uuid123, 3.0, 0.1, kst(2025, 11, 6, 0, 10))  # fitted after the anchor day
    b.kpi(USER123, {"I_t": 0.4, "E_t": 0.7, "R_t": 0.2, "A_t": 0.9,
                    "extra": {"src": "other-job", "n": [1, 2]}, "P": 0.01, "S": 0.02})
    b.kpi(USER123, {"I_t": 0.1, "P": 0.5}, week=WEEK - dt.timedelta(days=7))

    b.exam(BOB, day_at(ANCHOR - dt.timedelta(days=200), 11))
    b.estimate(BOB, 0.8, 0.3, kst(2025, 5, 1))
    b.estimate(BOB, -2.0, 0.2, kst(2025, 11, 6, 0, 5))  # after the anchor day
    b.mirt(ref.uuid_form(BOB), 1.9, 0.2, kst(2025, 10, 1))  # estimates win over mirt

    b.exam(CAROL, kst(2025, 10, 1, 8))
    b.estimate(CAROL, -0.2, 0.9, kst(2025, 10, 2))
    b.kpi(CAROL, [1, 2, 3])

    b.exam(DAVE, kst(2025, 10, 2, 9), questions=False)
    b.session(DAVE, kst(2025, 10, 12, 7), kst(2025, 10, 12, 8))
    b.kpi(DAVE, {"P": 0.123, "I_t": 1})

    b.exam(ERIN, kst(2025, 10, 18, 16))
    b.estimate(ref.uuid_form(ERIN), 0.6, 0.7, kst(2025, 10, 3))
    b.goal(ERIN, 0.5, 1, kst(2025, 9, 1))
    b.goal(ERIN, 1.2, 3, kst(2025, 9, 2))
    b.goal(ERIN, 0.9, 3, kst(2025, 9, 5), topic="geometry")  # same priority, later: wins
    b.goal(ERIN, None, 10, kst(2025, 9, 6))  # no target level
    b.goal(ERIN, 2.0, 9, kst(2025, 11, 6, 0, 30))  # created after the anchor day

    b.exam(UPPER, kst(2025, 10, 25, 13))
    b.estimate(UPPER.lower(), 0.3, 0.4, kst(2025, 10, 26))
    b.goal(UPPER.lower(), 0.5, 2, kst(2025, 10, 1))
    b.kpi(UPPER, {"A_t": 0.5})

    b.session(FRANK, kst(2025, 10, 15, 10))
    b.exam(FRANK, kst(2025, 10, 29, 23, 59, 30))  # 03:59 on the 30th in Auckland
    b.mirt(ref.uuid_form(FRANK), -0.5, 0.8, kst(2025, 10, 20))

    b.exam(GRACE, kst(2025, 10, 1))
    b.session(GRACE, kst(2025, 10, 29, 23, 30), kst(2025, 10, 30, 0, 0, 30))

    b.exam(HEIDI, kst(2025, 10, 1, 9))
    b.exam(HEIDI, after_anchor)
    b.session(HEIDI, kst(2025, 11, 8, 0, 10), kst(2025, 11, 8, 1))
    b.estimate(HEIDI, 1.0, 0.5, kst(2025, 10, 2))

    b.exam(IVAN, kst(2025, 10, 1))
    b.exam(IVAN, kst(2025, 11, 5, 23, 59))  # 03:59 on the 6th in Auckland

    b.exam(JUDY, kst(2025, 10, 15, 23, 50))  # the day before the 21-day window
    b.session(JUDY, kst(2025, 10, 16, 0, 10))  # its first day (still the 15th in UTC)
    b.exam(JUDY, kst(2025, 10, 20, 23, 30))
    b.exam(JUDY, kst(2025, 10, 21, 0, 30))  # same UTC day as the previous one
    b.session(JUDY, kst(2025, 10, 28, 11), kst(2025, 10, 28, 12))
    b.estimate(JUDY, -1.0, 0.6, kst(2025, 10, 9))
    b.goal(JUDY, -0.5, None, kst(2025, 10, 1))
    b.kpi(JUDY, {"I_t": 0.3, "E_t": 0.2, "R_t": 0.1, "A_t": 0.05})

    b.exam(KATE, kst(2025, 10, 5))
    b.estimate(KATE, 0.2, 0.0, kst(2025, 10, 6))

    b.exam(LEO, kst(2025, 10, 1))
    b.exam(ref.uuid_form(LEO), kst(2025, 10, 6, 18))

    b.exam(MALLORY, kst(2025, 11, 3))
    b.estimate(MALLORY, 1.5, 0.4, kst(2025, 10, 30))
    b.kpi(MALLORY, {"I_t": 0.9, "P": 0.8, "S": 0.1})
    b.estimate(GHOST, 2.5, 0.3, kst(2025, 10, 4))

    b.exam(None, kst(2025, 10, 1))  # an anonymous exam counts for nobody
    b.session(None, kst(2025, 10, 2))
    build_background(b, random.Random(20251105))


def build_background(b: Builder, rng: random.Random) -> None:
    """Users with random activity over 90 days around the anchor, abilities, goals and rows."""
    for i in range(36):
        if i % 6 == 0:
            user = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            user = user.upper() if i % 12 == 0 else user
        else:
            user = f"bg{i:02d}"
        form = ref.uuid_form(user)
        for _ in range(rng.randint(1, 6)):
            day = ANCHOR - dt.timedelta(days=rng.randint(-3, 90))
            hh, mm = rng.choice([(0, 0), (0, 1), (23, 59), (8, 30), (15, 0), (20, 10)])
            at = day_at(day, hh, mm, rng.randint(0, 59))
            kind = rng.random()
            if kind < 0.5:
                b.exam(user, at, questions=rng.random() < 0.8)
            elif kind < 0.6:
                b.exam(form, at)  # the exam stored under the uuid form
            elif kind < 0.85:
                b.session(user, at - dt.timedelta(minutes=30),
                          at if rng.random() < 0.7 else None)
            else:
                b.session(form, at)
        which = rng.random()
        if which < 0.4:
            for n in range(rng.randint(1, 3)):
                b.estimate(rng.choice([user, form]), round(rng.uniform(-2, 2), 3),
                           round(rng.uniform(0.2, 1.5), 3),
                           day_at(ANCHOR - dt.timedelta(days=60 - 25 * n), 3))
        elif which < 0.75:
            for n in range(rng.randint(1, 2)):
                b.mirt(form, round(rng.uniform(-2, 2), 3), round(rng.uniform(0.2, 1.5), 3),
                       day_at(ANCHOR - dt.timedelta(days=50 - 30 * n), 4))
        for n in range(rng.randint(0, 3)):
            b.goal(rng.choice([user, user, form]), round(rng.uniform(-1, 1.5), 2),
                   rng.randint(1, 3), day_at(ANCHOR - dt.timedelta(days=40 - 20 * n), 5))
        if rng.random() < 0.5:
            b.kpi(user, {"I_t": round(rng.random(), 3), "A_t": round(rng.random(), 3),
                         "custom": f"x{i}"},
                  week=rng.choice([WEEK, WEEK, WEEK - dt.timedelta(days=7)]))


# --- databases and runs ---------------------------------------------------------------------

def connect(params: ConnectionParams) -> psycopg.Connection:
    return psycopg.connect(**params.psycopg_kwargs(), autocommit=True)


def weekly_kpi(params: ConnectionParams, *, timestamps: bool = False) -> dict[Any, Any]:
    """The whole table: (user_id, week_start) -> kpis (with created_at, updated_at)."""
    with connect(params) as conn:
        rows = conn.execute(
            "select user_id, week_start, kpis, created_at, updated_at from public.weekly_kpi"
        ).fetchall()
    return {(u, w): (k, c, t) if timestamps else k for u, w, k, c, t in rows}


def table(params: ConnectionParams, query: str) -> list[tuple[Any, ...]]:
    with connect(params) as conn:
        return conn.execute(query).fetchall()


def detect(params: ConnectionParams, *args: str, env: dict[str, str] | None = None
           ) -> subprocess.CompletedProcess[str]:
    result = run_cli(params, "detect-inactivity", "--date", ANCHOR.isoformat(), *args,
                     env={**ENV, **(env or {})})
    assert "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr
    return result


def expected_for(params: ConnectionParams, **kwargs: Any) -> ref.Expected:
    with connect(params) as conn:
        sources = ref.load_sources(conn)
    options: dict[str, Any] = {
        "anchor": ANCHOR, "timezone": TZ, "kpi_lookback_days": KPI_LOOKBACK,
        "horizon_days": HORIZON, "default_target": DEFAULT_TARGET,
    }
    return ref.compute(sources, **{**options, **kwargs})


@dataclass
class Outcome:
    params: ConnectionParams
    result: subprocess.CompletedProcess[str]
    before: dict[Any, Any]
    after: dict[Any, Any]
    expected: ref.Expected

    @property
    def output(self) -> str:
        return f"exit {self.result.returncode}\n{self.result.stdout}\n{self.result.stderr}"


@pytest.fixture(scope="module")
def template(server_params: ConnectionParams) -> Iterator[ConnectionParams]:
    params = create_database(server_params)
    with connect(params) as conn:
        build_scenario(conn)
    yield params
    drop_database(server_params, params)


@pytest.fixture(scope="module")
def copies(server_params: ConnectionParams, template: ConnectionParams
           ) -> Iterator[list[ConnectionParams]]:
    made: list[ConnectionParams] = []
    yield made
    for params in made:
        drop_database(server_params, params)


def run_on_copy(server: ConnectionParams, template: ConnectionParams,
                copies: list[ConnectionParams], *args: str, env: dict[str, str] | None = None,
                **reference: Any) -> Outcome:
    params = create_database(server, template=template)
    copies.append(params)
    before = weekly_kpi(params, timestamps=True)
    result = detect(params, *args, env=env)
    return Outcome(params, result, before, weekly_kpi(params, timestamps=True),
                   expected_for(params, **reference))


@pytest.fixture(scope="module")
def main(server_params: ConnectionParams, template: ConnectionParams,
         copies: list[ConnectionParams]) -> Outcome:
    """detect-inactivity with the default threshold (7) on a copy of the scenario."""
    return run_on_copy(server_params, template, copies)


def kpis(snapshot: dict[Any, Any]) -> dict[Any, Any]:
    return {key: value[0] for key, value in snapshot.items()}


def compare_kpis(actual: dict[Any, Any], expected: dict[Any, Any]) -> list[str]:
    """Differences between two weekly_kpi tables (key -> kpis); P and S within TOLERANCE."""
    problems = [f"missing row {key}" for key in sorted(expected.keys() - actual.keys())]
    problems += [f"unexpected row {key}" for key in sorted(actual.keys() - expected.keys())]
    for key in sorted(actual.keys() & expected.keys()):
        got, want = actual[key], expected[key]
        if isinstance(want, dict) and isinstance(got, dict):
            if got.keys() != want.keys():
                problems.append(f"{key}: keys {sorted(got)} != {sorted(want)}")
                continue
            for name in want:
                if name in ("P", "S"):
                    same = math.isclose(got[name], want[name], rel_tol=0, abs_tol=TOLERANCE)
                else:
                    same = got[name] == want[name]
                if not same:
                    problems.append(f"{key} {name}: got {got[name]!r}, want {want[name]!r}")
        elif got != want:
            problems.append(f"{key}: got {got!r}, want {want!r}")
    return problems


def check_weekly_kpi(outcome: Outcome) -> int:
    want, not_object = ref.expected_weekly_kpi(kpis(outcome.before), outcome.expected)
    assert not_object == [CAROL]
    problems = compare_kpis(kpis(outcome.after), want)
    assert not problems, f"{len(problems)} differences:\n" + "\n".join(problems[:30])
    return len(want)


# --- the main run ---------------------------------------------------------------------------

def test_log_lines_and_exit_code(main: Outcome) -> None:
    n = len(main.expected.inactive)
    scored = [s for s in main.expected.scores.values() if s.p is not None or s.s is not None]
    assert n >= 20 and len(scored) == n
    # carol's row is not an object: a warning counted in failed=, not a failed run
    assert main.result.returncode == 0, main.output
    assert FOUND.findall(main.result.stdout) == [(str(n), "7", "False")], main.output
    assert SUMMARY.findall(main.result.stdout) == [(str(n - 1), "1", "7")], main.output
    assert NOT_OBJECT.findall(main.result.stdout) == [(CAROL, WEEK.isoformat())], main.output
    assert (
        f"[WARN] kpis of user={CAROL} week={WEEK.isoformat()} is not a JSON object; "
        "left untouched"
    ) in main.result.stdout.splitlines()
    assert "Could not calculate P/S" not in main.result.stdout  # every inactive user has S


def test_inactive_users_match_reference(main: Outcome) -> None:
    actual = [u for (u,) in table(main.params, "select user_id from analytics.inactive_users")]
    assert len(actual) == len(set(actual))
    assert set(actual) == main.expected.inactive
    named_inactive = {USER123, BOB, CAROL, DAVE, ERIN, UPPER, FRANK, HEIDI, JUDY, KATE, LEO}
    assert named_inactive <= set(actual)
    # active in session though stale in exam_results; active by one second; late on the anchor
    # day in Seoul (already the next day in the database session's zone)
    assert not {ALICE, GRACE, IVAN, MALLORY, GHOST} & set(actual)
    assert not {ref.uuid_form(USER123), UPPER.lower(), ref.uuid_form(LEO)} & set(actual)


def test_user_last_activity_one_row_per_person(main: Outcome) -> None:
    rows = table(
        main.params,
        "select user_id, last_activity_at, exam_results_last_at, attempt_last_at,"
        " session_last_at, features_last_at from analytics.user_last_activity",
    )
    ids = [row[0] for row in rows]
    assert len(ids) == len(set(ids)), "a user has more than one row"
    forms = [ref.uuid_form(u) for u in ids]
    assert len(forms) == len(set(forms)), "the same person under two ids"
    assert set(ids) == set(main.expected.activity)
    problems = []
    for user_id, last_at, exam_at, attempt_at, session_at, features_at in rows:
        want = main.expected.activity[user_id]
        got = {"exam_results": exam_at, "attempt": attempt_at, "session": session_at,
               "features_topic_daily": features_at}
        if last_at != want.last_at:
            problems.append(f"{user_id}: last {last_at} != {want.last_at}")
        for source in ref.SOURCES:
            wanted = want.per_source.get(source)
            if got[source] != wanted:
                problems.append(f"{user_id} {source}: {got[source]} != {wanted}")
    assert not problems, "\n".join(problems)
    by_user = {row[0]: row for row in rows}
    assert by_user[ALICE][1] == kst(2025, 11, 4, 9, 40)
    assert by_user[HEIDI][1] == kst(2025, 10, 1, 9)  # nothing after the anchor day counts
    assert by_user[IVAN][1] == kst(2025, 11, 5, 23, 59)
    assert by_user[USER123][4] == kst(2025, 10, 21, 0, 20)  # the uuid-form session, mapped
    assert by_user[UPPER][3] == kst(2025, 10, 25, 13)  # the attempt's lower-case uuid, mapped


def test_scoring_inputs_match_reference(main: Outcome) -> None:
    rows = table(
        main.params,
        "select user_id, week_start, days_inactive, active_days, mean_gap_days::float8,"
        " ability_mean, ability_sd, target::float8"
        " from analytics.inactive_user_scoring_inputs",
    )
    assert len(rows) == len(main.expected.scores)
    problems = []
    for user_id, week, d, k, g, mu, sd, target in rows:
        want = main.expected.scores[user_id]
        got_tuple = (week, d, k, mu, sd)
        want_tuple = (WEEK, want.d, want.k, want.mu, want.sd)
        if got_tuple != want_tuple or not (
            math.isclose(g, want.g, abs_tol=1e-12) and math.isclose(target, want.target)
        ):
            problems.append(f"{user_id}: got {(*got_tuple, g, target)}, "
                            f"want {(*want_tuple, want.g, want.target)}")
    assert not problems, "\n".join(problems)
    scores = main.expected.scores
    assert (scores[JUDY].d, scores[JUDY].k, scores[JUDY].g) == (8, 4, 4.0)
    assert (scores[FRANK].d, scores[HEIDI].d, scores[BOB].d) == (7, 35, 200)
    assert scores[ERIN].target == 0.9
    assert scores[UPPER].target == 0.5 and scores[UPPER].mu == 0.3
    assert scores[DAVE].target == DEFAULT_TARGET
    assert (scores[USER123].mu, scores[USER123].sd) == (0.4, 0.5)
    assert (scores[BOB].mu, scores[BOB].sd) == (0.8, 0.3)


def test_abilities_as_of_the_anchor_match_reference(main: Outcome) -> None:
    """user_ability_as_of (the P input and the Bayesian population): one row per application
    id, the latest ability_estimates fit by the end of the anchor day, else mirt_ability."""
    rows = table(main.params,
                 "select user_id, ability_mean, ability_sd from analytics.user_ability_as_of")
    assert len(rows) == len({row[0] for row in rows})
    with connect(main.params) as conn:
        want = ref.abilities(ref.load_sources(conn), ANCHOR, TZ)
    assert {row[0]: (row[1], row[2]) for row in rows} == want
    assert want[USER123] == (0.4, 0.5) and want[BOB] == (0.8, 0.3) and want[GHOST] == (2.5, 0.3)
    assert want[UPPER] == (0.3, 0.4) and want[ERIN] == (0.6, 0.7)
    assert DAVE not in want


def test_weekly_kpi_matches_reference(main: Outcome) -> None:
    compared = check_weekly_kpi(main)
    assert compared > len(main.expected.scores)
    after = kpis(main.after)
    scores = main.expected.scores
    as_of = main.expected.anchor.isoformat()  # the date S was computed for
    # the other jobs' keys stay, P and S are replaced
    assert after[(USER123, WEEK)] == {
        "I_t": 0.4, "E_t": 0.7, "R_t": 0.2, "A_t": 0.9, "extra": {"src": "other-job", "n": [1, 2]},
        "P": scores[USER123].p, "S": scores[USER123].s, "S_as_of": as_of,
    }
    assert scores[USER123].p is not None  # from the uuid-form mirt_ability row
    assert after[(USER123, WEEK - dt.timedelta(days=7))] == {"I_t": 0.1, "P": 0.5}
    assert after[(CAROL, WEEK)] == [1, 2, 3]
    assert main.after[(CAROL, WEEK)] == main.before[(CAROL, WEEK)]  # updated_at did not move
    # no ability: S lands, the old P stays
    assert scores[DAVE].p is None and after[(DAVE, WEEK)] == {"P": 0.123, "I_t": 1,
                                                              "S": scores[DAVE].s,
                                                              "S_as_of": as_of}
    assert scores[KATE].p is None and set(after[(KATE, WEEK)]) == {"S", "S_as_of"}
    # gone for 200 days: S is computed (d/h and the empty window saturate)
    assert after[(BOB, WEEK)] == {"P": scores[BOB].p, "S": scores[BOB].s, "S_as_of": as_of}
    assert scores[BOB].s == pytest.approx(0.75, abs=TOLERANCE)
    assert (UPPER, WEEK) in after and (UPPER.lower(), WEEK) not in after
    assert set(after[(UPPER, WEEK)]) == {"A_t", "P", "S", "S_as_of"}
    for user in (ALICE, MALLORY, GRACE, IVAN):  # active users' rows are not touched
        assert main.after.get((user, WEEK)) == main.before.get((user, WEEK))
    moved = {key for key in main.after if main.after[key][2] != main.before.get(key, (0, 0, 0))[2]}
    assert moved == {(u, WEEK) for u in scores if u != CAROL}


# --- other runs -----------------------------------------------------------------------------

def test_rerun_gives_the_same_weekly_kpi(main: Outcome) -> None:
    first = main.after
    result = detect(main.params)
    assert result.returncode == 0, result.stdout + result.stderr
    assert FOUND.findall(result.stdout) == FOUND.findall(main.result.stdout)
    assert SUMMARY.findall(result.stdout) == SUMMARY.findall(main.result.stdout)
    second = weekly_kpi(main.params, timestamps=True)
    assert {k: v[:2] for k, v in second.items()} == {k: v[:2] for k, v in first.items()}
    assert all(second[key][2] > first[key][2] for key in first if first[key][2] != OLD)


def test_dry_run_writes_nothing(server_params: ConnectionParams, template: ConnectionParams,
                               copies: list[ConnectionParams], main: Outcome) -> None:
    dry = run_on_copy(server_params, template, copies, "--dry-run")
    assert dry.after == dry.before
    n = len(dry.expected.inactive)
    assert FOUND.findall(dry.result.stdout) == [(str(n), "7", "True")], dry.output
    assert FOUND.findall(dry.result.stdout)[0][:2] == FOUND.findall(main.result.stdout)[0][:2]
    # the same counts as a real run: carol's row would be left untouched
    assert SUMMARY.findall(dry.result.stdout) == SUMMARY.findall(main.result.stdout), dry.output
    assert NOT_OBJECT.findall(dry.result.stdout) == [(CAROL, WEEK.isoformat())], dry.output
    assert dry.result.returncode == main.result.returncode
    # Built in a scratch schema, dropped afterwards: the project's schema holds only the
    # run history and its status view, so the next real run sees nothing of the dry run.
    assert table(dry.params, "select c.relname::text from pg_class as c join pg_namespace as n"
                 " on n.oid = c.relnamespace where n.nspname like 'analytics%%'"
                 " and c.relkind in ('r', 'v') order by 1") == [
        ("seedtest_run_history",), ("seedtest_run_status",)]


@pytest.fixture(scope="module")
def bayes30(server_params: ConnectionParams, template: ConnectionParams,
            copies: list[ConnectionParams]) -> Outcome:
    """--threshold 30 with METRICS_USE_BAYESIAN=true on a fresh copy of the scenario."""
    return run_on_copy(server_params, template, copies, "--threshold", "30",
                       env={"METRICS_USE_BAYESIAN": "true"}, threshold=30, bayesian=True)


def test_threshold_30_changes_the_set(bayes30: Outcome, main: Outcome) -> None:
    expected = bayes30.expected.inactive
    assert expected and expected < main.expected.inactive
    assert {BOB, CAROL, HEIDI, KATE, LEO} <= expected
    assert not {USER123, FRANK, JUDY, DAVE, ERIN, UPPER} & expected
    n = len(expected)
    assert bayes30.result.returncode == 0, bayes30.output
    assert FOUND.findall(bayes30.result.stdout) == [(str(n), "30", "False")], bayes30.output
    assert SUMMARY.findall(bayes30.result.stdout) == [(str(n - 1), "1", "30")], bayes30.output
    inactive = {u for (u,) in table(bayes30.params, "select user_id from analytics.inactive_users")}
    assert inactive == expected


def test_bayesian_mode_matches_reference(bayes30: Outcome, main: Outcome) -> None:
    # the prior is over every user with an ability as of the anchor: active users and users
    # with no activity at all included, not only the scored ones
    population = bayes30.expected.population
    scored = [s for s in bayes30.expected.scores.values() if s.mu is not None]
    assert len(population) > 2 * len(scored)
    assert 2.5 in population and 1.5 in population
    check_weekly_kpi(bayes30)  # P (Bayesian) and S of the threshold-30 users, the rest as it was
    with_p = [user for user, score in bayes30.expected.scores.items() if score.p is not None]
    assert len(with_p) >= 6
    for user, score in bayes30.expected.scores.items():
        normal = main.expected.scores[user]
        assert score.s == normal.s
        assert (score.p is None) == (normal.p is None)
        if score.p is not None:
            assert abs(score.p - normal.p) > 1e-6, user  # shrinkage moved every P
    # only the threshold-30 users' rows were written
    moved = {key for key in bayes30.after
             if bayes30.after[key][2] != bayes30.before.get(key, (0, 0, 0))[2]}
    assert moved == {(u, WEEK) for u in bayes30.expected.scores if u != CAROL}


# --- neither P nor S ------------------------------------------------------------------------
# Through the command this cannot happen: a user is inactive only with a last activity, so d
# (and S) always exists. It is tested on the P/S step itself, with an input row as a model
# change could produce it (no last activity and no ability).

def test_user_without_p_and_s_is_reported_and_the_rest_written(
    fresh_db: ConnectionParams, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows = [
        ScoringInput("nobody", WEEK, None, 0, 0.0, None, None, None),
        ScoringInput("only-s", WEEK, 9, 2, 3.0, None, None, 0.0),
        ScoringInput("both", WEEK, 8, 1, 0.0, 0.5, 1.0, None),
    ]
    scores, failed = score_users(rows, default_target=0.0, use_bayesian=False, horizon_days=14)
    assert failed == ["nobody"]
    assert [(s.user_id, s.p is None, s.s is None) for s in scores] == [
        ("only-s", True, False), ("both", False, False)
    ]
    assert scores[1].p == pytest.approx(ref.p_normal(0.5, 1.0, 0.0), abs=TOLERANCE)
    assert scores[0].s == pytest.approx(ref.s_churn(9, 2, 3.0, 14), abs=TOLERANCE)

    monkeypatch.setattr(postgres, "read_scoring_inputs", lambda *args: rows)
    settings = Settings(anchor_date=ANCHOR)
    result = inactivity.score_and_write(fresh_db, settings)
    out = capsys.readouterr().out
    assert "[WARN] Could not calculate P/S for user=nobody" in out.splitlines()
    assert (result.found, result.processed, result.failed) == (3, 2, 1)
    with connect(fresh_db) as conn:
        written = dict(conn.execute("select user_id, kpis from public.weekly_kpi").fetchall())
    day = ANCHOR.isoformat()
    assert written == {"only-s": {"S": scores[0].s, "S_as_of": day},
                       "both": {"P": scores[1].p, "S": scores[1].s, "S_as_of": day}}


def test_reference_examples() -> None:
    """The reference reproduces the worked examples of the P/S formulas and the user id rule."""
    assert ref.s_churn(4, 1, 3, 14) == pytest.approx(0.4136, abs=5e-5)
    assert ref.s_churn(7, 2, 2, 7) == pytest.approx(0.7914, abs=5e-5)
    assert ref.s_churn(0, 12, 0, 14) == 0.0
    assert ref.p_normal(0.0, 1.0, 0.0) == 0.5
    assert ref.p_normal(0.0, 0.0, 0.0) is None
    assert ref.prior_of([1.0, 1.0]) is None
    assert ref.uuid_form(USER123) == str(uuid.UUID(hex=hashlib.md5(b"user123").hexdigest()))
    assert ref.uuid_form(UPPER) == UPPER.lower()
    ids = ref.IdMap(ref.build_id_map([USER123, UPPER], [UPPER.lower()]))
    assert ids(ref.uuid_form(USER123)) == USER123
    assert ids(UPPER.lower()) == UPPER
    assert ids(USER123) == USER123
