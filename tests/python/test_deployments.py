"""What real deployments do, through the CLI on a real database: every case ends in
exit 0 and leaves features_topic_daily, the inactive users and weekly_kpi equal to the
independent Python references (reference.py, ps_reference.py) computed from the raw rows.

Days are calendar days in Europe/Berlin (its DST change, 2025-10-26, falls in the windows)
while the database session runs in Pacific/Auckland.

- own_view: the application's own `attempt` view (not init-db's): item_id null for question
  ids that are not numbers (`q-17`), response_time_ms null for times that are not numbers,
  another column order; `run` with the dbt tests on, the null item_ids named as a warning;
- other_schema: the application tables in schema `app` (SOURCE_SCHEMA), run by a login role
  holding only the operator guide's grants, which cannot create anything there; its weekly_kpi has
  extra columns and an updated_at trigger, and rows the source checks warn about (kpis that
  is not a JSON object, a session ending before it starts); the dbt tests on;
- missing sources: all optional tables missing at once (the dbt tests on), then each one
  missing alone (models only: SEEDTEST_DBT_TESTS=false);
- nights: one database through configuration changes and anchors out of order, the dbt tests
  on: 11-01 (theta on, lookback 7, threshold 7), 10-24 (lookback 3, threshold 3), 11-01 again
  (lookback 14, threshold 10), an anchor before any data, a backfill over days already built;
  then theta off: refused without a rebuild (nothing written), `rebuild`, and 10-24 again with
  theta off. Each run leaves the days it covered equal to the reference (with that run's
  settings) and every other row exactly as it was.

Cases that need the severity rule (no error-severity test on rows other runs wrote, source
assumptions as warnings) carry "SEVERITY RULE" in their docstring: before that rule is merged
they fail with exit 1 (the own view's not_null item_id, the nights after the first).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import random
import re
import secrets
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
import yaml
from psycopg import sql
from psycopg.types.json import Jsonb

import ps_reference as ps
import reference
from conftest import create_database, drop_database, run_cli
from seedtest_analytics.db.app_schema import init_db
from seedtest_analytics.db.connection import ConnectionParams

TZ = "Europe/Berlin"
ANCHOR = dt.date(2025, 11, 1)
FIRST_DAY = ANCHOR - dt.timedelta(days=40)
TOLERANCE = 1e-9
TOPICS = ["algebra", "geometry", "probability"]
UPPER = "ABCDEF01-2345-4789-ABCD-EF0123456789"
# Active users with random exams all over the data, and users last seen at set days (so the
# inactive set differs between anchors and thresholds): name -> days before ANCHOR.
ACTIVE = ["user123", "alice", "bob@example.com", UPPER]
LAST_SEEN = {"old25": 25, "old12": 12, "old9": 9, "old5": 5, "old2": 2}
OPTIONAL = ("session", "student_topic_theta", "mirt_ability", "ability_estimates",
            "interest_goal")
OLD_TS = dt.datetime(2001, 2, 3, 4, 5, 6, tzinfo=dt.UTC)

WARNING = re.compile(r"^\[WARN\] (source check|check) (\S+)(?: (\S+))?: (\d+) rows?$", re.M)
PIPELINE = re.compile(
    r"^\[INFO\] Pipeline: models built=(\d+), tests passed=(\d+), warned=(\d+), failed=(\d+), "
    r"users scored=(\d+), duration_ms=\d+$", re.M,
)
FOUND = re.compile(r"^\[INFO\] Found (\d+) inactive users \(threshold=(\d+) days\)", re.M)

Row = tuple[Any, ...]


# --- building an application database -------------------------------------------------------

def connect(params: ConnectionParams) -> psycopg.Connection:
    return psycopg.connect(**params.psycopg_kwargs(), autocommit=True)


def local(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZoneInfo(TZ))


def exam_time(rng: random.Random, day: dt.date) -> dt.datetime:
    """A time on the local day, often next to its midnight or to the UTC/Auckland one."""
    choice = rng.random()
    if choice < 0.2:
        return local(day, 0, rng.randrange(3))
    if choice < 0.4:
        return local(day, 23, 57 + rng.randrange(3))
    if choice < 0.5:  # around UTC midnight, still on the local day (UTC+1/+2)
        return local(day, 1, rng.randrange(60))
    return local(day, rng.randrange(24), rng.randrange(60))


def question(rng: random.Random, qid: str, topic: str | None) -> dict[str, Any]:
    q: dict[str, Any] = {"question_id": qid}
    if topic is not None:
        q["topic"] = topic
    flag = rng.random()
    if flag < 0.5:
        q["is_correct"] = rng.random() < 0.6
    elif flag < 0.8:
        q["correct"] = rng.random() < 0.6  # the legacy key
    timing = rng.random()
    if timing < 0.6:
        q["time_spent_sec"] = round(rng.uniform(0.5, 120), rng.choice([0, 1, 3]))
    elif timing < 0.7:
        q["time_spent_sec"] = -3  # negative: counts, no time statistics
    elif timing < 0.78:
        q["time_spent_sec"] = 20000  # over 3 hours
    elif timing < 0.88:
        q["time_spent_sec"] = str(round(rng.uniform(1, 50), 1))  # text, not a number
    # else: missing -> 0 ms
    if rng.random() < 0.4:
        q["used_hints"] = rng.choice([0, 1, 2])
    return q


def random_questions(rng: random.Random, numeric_ids: bool) -> list[dict[str, Any]]:
    home = rng.choice(TOPICS)
    ids = rng.sample(range(1, 40), rng.randint(1, 5))
    qs = [question(rng, str(i) if numeric_ids else f"q{i}",
                   home if rng.random() < 0.7 else rng.choice(TOPICS)) for i in ids]
    extra = rng.random()
    if extra < 0.1:  # the same question twice in one exam: one attempt
        qs.append(question(rng, qs[0]["question_id"], qs[0].get("topic")))
    elif extra < 0.15:
        qs.append(question(rng, "", home))  # no question id: not an attempt
    elif extra < 0.22:
        qs.append(question(rng, "99" if numeric_ids else "q99", None))  # no topic: skipped
    return qs


@dataclass
class Builder:
    conn: psycopg.Connection
    schema: str = "public"
    sessions: int = 0

    def t(self, table: str) -> sql.Composed:
        return sql.SQL("{}").format(sql.Identifier(self.schema, table))

    def exam(self, user: str | None, questions: list[dict[str, Any]], at: dt.datetime) -> None:
        exam_id = str(uuid.uuid4())
        self.conn.execute(
            sql.SQL("insert into {} (id, session_id, user_id, result_json, created_at,"
                    " updated_at) values (%s, %s, %s, %s, %s, %s)").format(self.t("exam_results")),
            (exam_id, f"s-{exam_id}", user, Jsonb({"questions": questions}),
             at - dt.timedelta(minutes=30), at),
        )

    def session(self, user: str | None, start: dt.datetime, end: dt.datetime | None) -> None:
        self.sessions += 1
        self.conn.execute(
            sql.SQL("insert into {} (id, user_id, started_at, ended_at)"
                    " values (%s, %s, %s, %s)").format(self.t("session")),
            (f"sess-{self.sessions}", user, start, end),
        )

    def insert(self, table: str, columns: str, *values: Any) -> None:
        marks = ", ".join(["%s"] * len(values))
        self.conn.execute(
            sql.SQL(f"insert into {{}} ({columns}) values ({marks})").format(self.t(table)),
            values,
        )


def seed(b: Builder, rng: random.Random, *, numeric_ids: bool = False, exams: int = 110) -> None:
    """Exams over FIRST_DAY..ANCHOR (+ a few after it), thetas, abilities, goals, sessions and
    weekly_kpi rows with other jobs' keys, in both user-id forms."""
    days = [FIRST_DAY + dt.timedelta(days=i) for i in range((ANCHOR - FIRST_DAY).days + 1)]
    for _ in range(exams):
        user = rng.choice(ACTIVE) if rng.random() > 0.04 else None
        b.exam(user, random_questions(rng, numeric_ids), exam_time(rng, rng.choice(days)))
    b.exam("alice", random_questions(rng, numeric_ids), local(ANCHOR + dt.timedelta(days=1), 9))
    for user, days_ago in LAST_SEEN.items():
        last = ANCHOR - dt.timedelta(days=days_ago)
        b.exam(user, random_questions(rng, numeric_ids), exam_time(rng, last - dt.timedelta(9)))
        if user == "old9":  # last seen in a session only, under the uuid form
            b.session(reference.uuid_form(user), local(last, 8), local(last, 9))
        else:
            b.exam(user, random_questions(rng, numeric_ids), exam_time(rng, last))
    b.session("alice", local(ANCHOR - dt.timedelta(days=3), 10), None)
    users = [*ACTIVE, *LAST_SEEN]
    for index, user in enumerate(users):
        form = reference.uuid_form(user)
        fitted = local(ANCHOR - dt.timedelta(days=30 - index), 3)
        if index % 3 == 0:
            b.insert("ability_estimates", "user_id, mean, sd, fitted_at",
                     rng.choice([user, form]), round(rng.uniform(-1, 1), 3),
                     round(rng.uniform(0.3, 1.2), 3), fitted)
        elif index % 3 == 1:
            b.insert("mirt_ability", "user_id, theta, se, fitted_at, version", form,
                     round(rng.uniform(-1, 1), 3), round(rng.uniform(0.3, 1.2), 3), fitted, "v1")
        if index % 2 == 0:
            b.insert("interest_goal", "user_id, topic_id, target_level, priority, created_at",
                     user, "algebra", round(rng.uniform(-0.5, 1), 2), 2, fitted)
        for topic in TOPICS[: 1 + index % 3]:
            b.insert("student_topic_theta", "user_id, topic_id, theta, se, updated_at",
                     rng.choice([user, form]), topic, round(rng.uniform(-2, 2), 3),
                     round(rng.uniform(0.1, 0.9), 3),
                     local(ANCHOR - dt.timedelta(days=rng.randint(2, 35)), 4))
        if index % 2 == 1:
            for week in (ANCHOR - dt.timedelta(days=ANCHOR.weekday()),
                         dt.date(2025, 10, 20)):
                b.insert("weekly_kpi", "user_id, week_start, kpis, created_at, updated_at",
                         user, week, Jsonb({"I_t": 0.5, "E_t": index, "P": 0.01}), OLD_TS,
                         OLD_TS)


# --- reading it back ------------------------------------------------------------------------

def exists(conn: psycopg.Connection, schema: str, table: str) -> bool:
    row = conn.execute("select to_regclass(%s) is not null",
                       (f"{schema}.{table}",)).fetchone()
    return bool(row and row[0])


def feature_sources(conn: psycopg.Connection, schema: str) -> reference.Sources:
    """reference.load_sources for any schema, optional tables possibly missing."""
    def rows(table: str, columns: str) -> list[Row]:
        if not exists(conn, schema, table):
            return []
        return [tuple(r) for r in conn.execute(
            sql.SQL(f"select {columns} from {{}}").format(sql.Identifier(schema, table)))]

    exams = [
        reference.Exam(id=str(r[0]), session_id=r[1], user_id=r[2],
                       result=json.loads(r[3], parse_float=Decimal, parse_int=Decimal),
                       created_at=r[4], updated_at=r[5])
        for r in rows("exam_results",
                      "id, session_id, user_id, result_json::text, created_at, updated_at")
    ]
    return reference.Sources(
        exams=exams,
        topic_theta=[reference.ThetaRow(*r) for r in rows(
            "student_topic_theta", "user_id, topic_id, theta, se, updated_at")],
        user_ability=[reference.ThetaRow(r[0], None, r[1], r[2], r[3]) for r in rows(
            "mirt_ability", "user_id, theta, se, fitted_at")],
    )


def ps_sources(conn: psycopg.Connection, schema: str) -> ps.Sources:
    """ps_reference.load_sources, optional tables possibly missing."""
    def rows(table: str, columns: str) -> list[dict[str, Any]]:
        if not exists(conn, schema, table):
            return []
        cur = conn.execute(
            sql.SQL(f"select {columns} from {{}}").format(sql.Identifier(schema, table)))
        names = [c.name for c in cur.description or []]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    return ps.Sources(
        exam_results=rows("exam_results", "id, user_id, result_json, created_at, updated_at"),
        sessions=rows("session", "id, user_id, started_at, ended_at"),
        ability_estimates=rows("ability_estimates", "user_id, mean, sd, fitted_at"),
        mirt_ability=rows("mirt_ability", "user_id, theta, se, fitted_at"),
        interest_goals=rows("interest_goal", "user_id, target_level, priority, created_at"),
        weekly_kpi=rows("weekly_kpi", "user_id, week_start, kpis"),
    )


def features(params: ConnectionParams) -> dict[reference.Key, Row]:
    """analytics.features_topic_daily by key; the last value of a row is computed_at."""
    with connect(params) as conn:
        if not exists(conn, "analytics", "features_topic_daily"):
            return {}
        found = conn.execute(
            "select " + ", ".join(reference.COLUMNS) + ", computed_at"
            " from analytics.features_topic_daily").fetchall()
    table = {(r[0], r[1], r[2]): tuple(r) for r in found}
    assert len(table) == len(found), "duplicate keys in features_topic_daily"
    return table


def weekly_kpi(params: ConnectionParams, schema: str) -> dict[tuple[str, dt.date], Any]:
    with connect(params) as conn:
        return {
            (r[0], r[1]): r[2] for r in conn.execute(sql.SQL(
                "select user_id, week_start, kpis from {}").format(
                    sql.Identifier(schema, "weekly_kpi")))
        }


def inactive_users(params: ConnectionParams) -> set[str]:
    with connect(params) as conn:
        if not exists(conn, "analytics", "inactive_users"):  # the build failed
            return set()
        return {r[0] for r in conn.execute("select user_id from analytics.inactive_users")}


# --- comparing ------------------------------------------------------------------------------

def same(actual: Any, expected: Any) -> bool:
    if actual is None or expected is None:
        return actual is None and expected is None
    if isinstance(expected, float):
        return math.isclose(float(actual), expected, rel_tol=0.0, abs_tol=TOLERANCE)
    return bool(actual == expected)


def feature_problems(actual: dict[reference.Key, Row],
                     expected: dict[reference.Key, reference.FeatureRow | Row]) -> list[str]:
    """Differences, column by column (a Row expected is an old row: computed_at included)."""
    problems = [f"missing {k}" for k in sorted(expected.keys() - actual.keys())]
    problems += [f"unexpected {k}" for k in sorted(actual.keys() - expected.keys())]
    for key in sorted(actual.keys() & expected.keys()):
        want = expected[key]
        if isinstance(want, tuple):
            if actual[key] != want:
                problems.append(f"{key} changed: {actual[key]} != {want}")
            continue
        for index, column in enumerate(reference.COLUMNS):
            if not same(actual[key][index], want.as_tuple()[index]):
                problems.append(f"{key} {column}: {actual[key][index]!r} != "
                                f"{want.as_tuple()[index]!r}")
    return problems


def kpi_problems(actual: dict[Any, Any], expected: dict[Any, Any]) -> list[str]:
    problems = [f"missing {k}" for k in sorted(expected.keys() - actual.keys())]
    problems += [f"unexpected {k}" for k in sorted(actual.keys() - expected.keys())]
    for key in sorted(actual.keys() & expected.keys()):
        got, want = actual[key], expected[key]
        if isinstance(got, dict) and isinstance(want, dict) and got.keys() == want.keys():
            for name in want:
                if name in ("P", "S"):
                    if not math.isclose(got[name], want[name], rel_tol=0, abs_tol=1e-12):
                        problems.append(f"{key} {name}: {got[name]} != {want[name]}")
                elif got[name] != want[name]:
                    problems.append(f"{key} {name}: {got[name]!r} != {want[name]!r}")
        elif got != want:
            problems.append(f"{key}: {got!r} != {want!r}")
    return problems


def ok(result: subprocess.CompletedProcess[str]) -> str:
    output = f"exit {result.returncode}\n{result.stdout[-8000:]}\n{result.stderr[-3000:]}"
    assert "Traceback" not in result.stdout + result.stderr, output
    assert result.returncode == 0, output
    return result.stdout


@dataclass
class Run:
    """One CLI run and what it was expected to do, for the assertions of the tests."""

    args: tuple[str, ...]
    result: subprocess.CompletedProcess[str]
    before: dict[reference.Key, Row]
    after: dict[reference.Key, Row]
    expected_features: dict[reference.Key, Any]
    covered: tuple[dt.date, dt.date] | None = None
    expected_ps: ps.Expected | None = None
    kpi_before: dict[Any, Any] = field(default_factory=dict)
    kpi_after: dict[Any, Any] = field(default_factory=dict)
    inactive: set[str] = field(default_factory=set)


def run(
    params: ConnectionParams, command: str, anchor: dt.date, *, schema: str = "public",
    theta: bool = False, lookback: int = 7, threshold: int = 7, tests: bool = False,
    start: dt.date | None = None, job: ConnectionParams | None = None,
) -> Run:
    """Run one command and compute, from the raw rows, what it must leave behind: the days it
    covers equal to the reference with its settings, every other row as it was."""
    env = {
        "ACTIVITY_TIMEZONE": TZ, "AGG_INCLUDE_THETA": str(theta).lower(),
        "AGG_LOOKBACK_DAYS": str(lookback), "INACTIVITY_THRESHOLD_DAYS": str(threshold),
        "SEEDTEST_DBT_TESTS": str(tests).lower(), "SOURCE_SCHEMA": schema,
    }
    args: tuple[str, ...] = (command, "--date", anchor.isoformat())
    if command == "backfill":
        assert start is not None
        args = (command, "--start", start.isoformat(), "--end", anchor.isoformat())
    before = features(params)
    kpi_before = weekly_kpi(params, schema)
    with connect(params) as conn:
        sources = feature_sources(conn, schema)
        ps_src = ps_sources(conn, schema)
    result = run_cli(job or params, *args, env=env)
    first = (start or anchor) - dt.timedelta(days=lookback)
    # None: the first run and a rebuild build all days
    covered = None if not before or command == "rebuild" else (first, anchor)
    window = reference.features(sources, anchor=anchor, timezone=TZ, include_theta=theta,
                                since=covered[0] if covered else None)
    kept = {k: row for k, row in before.items() if covered and not first <= k[2] <= anchor}
    outcome = Run(args, result, before, features(params), {**kept, **window}, covered,
                  kpi_before=kpi_before, kpi_after=weekly_kpi(params, schema))
    if command == "run":
        outcome.expected_ps = ps.compute(ps_src, anchor=anchor, timezone=TZ, threshold=threshold)
        outcome.inactive = inactive_users(params)
    return outcome


def check_features(outcome: Run) -> int:
    ok(outcome.result)
    problems = feature_problems(outcome.after, outcome.expected_features)
    assert not problems, f"{len(problems)} differences:\n" + "\n".join(problems[:25])
    if outcome.covered:  # the rows of the covered days were written by this run
        first, last = outcome.covered
        old = {k for k in outcome.before if first <= k[2] <= last}
        assert all(outcome.after[k][-1] != outcome.before[k][-1]
                   for k in old if k in outcome.after)
    return len(outcome.after)


def check_scores(outcome: Run) -> None:
    ok(outcome.result)
    expected = outcome.expected_ps
    assert expected is not None
    assert outcome.inactive == expected.inactive
    found = FOUND.findall(outcome.result.stdout)
    if expected.inactive:
        assert found and int(found[0][0]) == len(expected.inactive), outcome.result.stdout
    want, not_object = ps.expected_weekly_kpi(outcome.kpi_before, expected)
    assert not_object == []
    problems = kpi_problems(outcome.kpi_after, want)
    assert not problems, "\n".join(problems[:25])


def warnings(outcome: Run) -> dict[tuple[str, str, str], int]:
    """The `[WARN] <kind> <subject> <test>: N rows` lines: (kind, subject, test) -> N."""
    lines = WARNING.findall(outcome.result.stdout)
    found = {(kind, subject, test): int(rows) for kind, subject, test, rows in lines}
    assert len(found) == len(lines), lines
    pipeline = PIPELINE.findall(outcome.result.stdout)
    if pipeline:  # the final line counts them
        assert int(pipeline[-1][2]) == len(found), (pipeline, lines)
    return found


# --- databases ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def databases(server_params: ConnectionParams) -> Iterator[list[ConnectionParams]]:
    made: list[ConnectionParams] = []
    yield made
    for params in made:
        drop_database(server_params, params)


def new_database(server: ConnectionParams, made: list[ConnectionParams], *,
                 schema: bool = True) -> ConnectionParams:
    params = create_database(server, with_schema=schema)
    made.append(params)
    return params


# --- the application's own attempt view -----------------------------------------------------

OWN_ATTEMPT_VIEW = """
drop view public.attempt;
create view public.attempt as
select
    er.session_id,
    coalesce(er.updated_at, er.created_at) as completed_at,
    case jsonb_typeof(q.item -> 'used_hints')
        when 'number' then (q.item ->> 'used_hints')::numeric > 0
        when 'boolean' then (q.item ->> 'used_hints')::boolean
        else false
    end as hint_used,
    case
        when jsonb_typeof(q.item -> 'time_spent_sec') = 'number'
            then round((q.item ->> 'time_spent_sec')::numeric * 1000)::int
        when coalesce(jsonb_typeof(q.item -> 'time_spent_sec'), 'null') = 'null' then 0
    end as response_time_ms,
    coalesce(
        case when jsonb_typeof(q.item -> 'is_correct') = 'boolean'
            then (q.item ->> 'is_correct')::boolean end,
        case when jsonb_typeof(q.item -> 'correct') = 'boolean'
            then (q.item ->> 'correct')::boolean end,
        false
    ) as correct,
    q.item ->> 'topic' as topic_id,
    case when q.item ->> 'question_id' ~ '^[0-9]{1,18}$'
        then (q.item ->> 'question_id')::bigint end as item_id,
    case when er.user_id ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
        then er.user_id::uuid else md5(er.user_id)::uuid end as student_id,
    ('x' || substr(md5((q.item ->> 'question_id') || '@' || er.id::text), 1, 15))::bit(60)::bigint
        as id
from public.exam_results as er
cross join lateral jsonb_array_elements(
    case when jsonb_typeof(er.result_json -> 'questions') = 'array'
        then er.result_json -> 'questions' else '[]'::jsonb end
) as q (item)
where coalesce(q.item ->> 'question_id', '') <> ''
"""


@dataclass
class OwnView:
    run: Run
    null_item_ids: int


@pytest.fixture(scope="module")
def own_view(server_params: ConnectionParams, databases: list[ConnectionParams]) -> OwnView:
    params = new_database(server_params, databases)
    rng = random.Random(9)
    with connect(params) as conn:
        conn.execute(OWN_ATTEMPT_VIEW)
        b = Builder(conn)
        seed(b, rng, numeric_ids=True)
        # question ids that are not numbers, inside the window
        for days_ago in (1, 3, 5):
            b.exam("alice", [question(rng, f"q-{17 + days_ago}", "algebra"),
                             question(rng, "q-x", "geometry")],
                   local(ANCHOR - dt.timedelta(days=days_ago), 15))
        null_ids = conn.execute(
            "select count(*) from public.attempt where item_id is null").fetchone()
    assert null_ids is not None
    return OwnView(run(params, "run", ANCHOR, tests=True), int(null_ids[0]))


def test_own_attempt_view_matches_the_references(own_view: OwnView) -> None:
    """SEVERITY RULE (not_null on stg_seedtest__attempts.item_id becomes a warning)."""
    assert check_features(own_view.run) > 100
    check_scores(own_view.run)
    assert own_view.run.inactive


def test_own_attempt_view_null_item_ids_do_not_stop_the_run(own_view: OwnView) -> None:
    """item_id is read by no model, so the run does not check it: null item ids (6 of them)
    neither stop the run nor raise a warning about a column nothing uses."""
    ok(own_view.run.result)
    assert own_view.null_item_ids == 6
    found = warnings(own_view.run)
    assert not any(key[1].endswith(".item_id") for key in found), found


# --- another schema, a least-privilege role, weekly_kpi of its own shape ---------------------

# init-db creates nothing in a schema that already holds one of the application's tables, so
# the fixture lets it create the whole schema and then replaces the (empty) weekly_kpi it made.
WEEKLY_KPI_WITH_EXTRAS = """
drop table app.weekly_kpi;
create table app.weekly_kpi (
    user_id text not null,
    source_job text not null default 'app',
    week_start date not null,
    kpis jsonb not null default '{}'::jsonb,
    note text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (user_id, week_start)
);
create function app.weekly_kpi_touch() returns trigger language plpgsql as $$
begin
    new.updated_at := clock_timestamp();
    new.note := 'touched';
    return new;
end
$$;
create trigger weekly_kpi_touch before update on app.weekly_kpi
    for each row execute function app.weekly_kpi_touch();
"""


@dataclass
class OtherSchema:
    run: Run
    role: str
    relations_before: set[str]
    relations_after: set[str]
    can_create: bool
    kpi_rows: dict[tuple[str, dt.date], tuple[Any, ...]]


def app_relations(params: ConnectionParams) -> set[str]:
    with connect(params) as conn:
        return {r[0] for r in conn.execute(
            "select c.relname::text || ':' || c.relkind::text from pg_class as c"
            " join pg_namespace as n on n.oid = c.relnamespace where n.nspname = 'app'")}


@pytest.fixture(scope="module")
def other_schema(server_params: ConnectionParams, databases: list[ConnectionParams]
                 ) -> Iterator[OtherSchema]:
    params = new_database(server_params, databases, schema=False)
    role = f"seedtest_job_{secrets.token_hex(4)}"
    password = secrets.token_hex(12)
    who, db = sql.Identifier(role), sql.Identifier(params.dbname)
    assert "table weekly_kpi" in init_db(params, "app")
    with connect(params) as conn:
        conn.execute(WEEKLY_KPI_WITH_EXTRAS)
    rng = random.Random(16)
    with connect(params) as conn:
        b = Builder(conn, "app")
        seed(b, rng)
        # what the source checks warn about: a kpis that is not an object (a user without activity,
        # in the anchor's week, the week the run writes), a session that ends before it starts
        # (no output depends on its order: no check)
        b.insert("weekly_kpi", "user_id, week_start, kpis", "zoe-no-activity",
                 ANCHOR - dt.timedelta(days=ANCHOR.weekday()), Jsonb([1, 2]))
        b.session("bob@example.com", local(ANCHOR - dt.timedelta(days=20), 10),
                  local(ANCHOR - dt.timedelta(days=20), 9))
        conn.execute(sql.SQL("create role {} login password {}").format(
            who, sql.Literal(password)))
        conn.execute(sql.SQL("revoke all on database {} from public").format(db))
        conn.execute("revoke all on schema public from public")
        conn.execute("revoke execute on function app.app_user_uuid(text) from public")
        # docs/operations.md "Least-privilege grants", with app for public
        conn.execute(sql.SQL("grant connect, temporary on database {} to {}").format(db, who))
        conn.execute(sql.SQL("grant create on database {} to {}").format(db, who))
        conn.execute(sql.SQL("grant usage on schema app to {}").format(who))
        conn.execute(sql.SQL(
            "grant select on app.exam_results, app.attempt, app.session, app.student_topic_theta,"
            " app.mirt_ability, app.ability_estimates, app.interest_goal to {}").format(who))
        conn.execute(sql.SQL("grant select, insert, update on app.weekly_kpi to {}").format(who))
        conn.execute(sql.SQL("grant execute on function app.app_user_uuid(text) to {}"
                             ).format(who))
        row = conn.execute("select has_schema_privilege(%s, 'app', 'CREATE')"
                           " or has_schema_privilege(%s, 'public', 'CREATE')",
                           (role, role)).fetchone()
    job = ConnectionParams(host=params.host, port=params.port, user=role, password=password,
                           dbname=params.dbname)
    relations_before = app_relations(params)
    outcome = run(params, "run", ANCHOR, schema="app", theta=True, tests=True, job=job)
    with connect(params) as conn:
        kpi_rows = {(r[0], r[1]): tuple(r[2:]) for r in conn.execute(
            "select user_id, week_start, source_job, note, updated_at from app.weekly_kpi")}
    yield OtherSchema(outcome, role, relations_before, app_relations(params),
                      bool(row and row[0]), kpi_rows)
    drop_database(server_params, params)
    databases.remove(params)
    with connect(server_params) as conn:
        conn.execute(sql.SQL("drop role {}").format(who))


def test_other_schema_and_least_privilege_role_match_the_references(
    other_schema: OtherSchema,
) -> None:
    assert not other_schema.can_create
    check_features(other_schema.run)
    check_scores(other_schema.run)
    assert any(r.theta_estimate is not None for r in other_schema.run.expected_features.values())
    assert other_schema.relations_after == other_schema.relations_before


def test_weekly_kpi_extra_columns_and_trigger(other_schema: OtherSchema) -> None:
    """Rows the write updated went through the application's trigger and kept its columns;
    rows it inserted got the columns' defaults; other rows are as they were."""
    ok(other_schema.run.result)
    expected = other_schema.run.expected_ps
    assert expected is not None and expected.scores
    week = expected.week_start
    before = other_schema.run.kpi_before
    for (user, week_start), (source_job, note, updated_at) in other_schema.kpi_rows.items():
        scored = week_start == week and user in expected.scores
        assert source_job == "app"
        if scored and (user, week_start) in before:
            assert note == "touched" and updated_at > OLD_TS, user
        else:
            assert note is None, (user, week_start)
    assert any(key not in before for key in other_schema.kpi_rows)  # inserted rows too
    assert any(key in before and key[0] in expected.scores and key[1] == week
               for key in other_schema.kpi_rows)


def test_source_checks_warn_name_and_count(other_schema: OtherSchema) -> None:
    """Assumptions about the application's data that fail are warnings: named with their
    row count, counted in the final line, and the run goes on (exit 0)."""
    found = warnings(other_schema.run)
    assert found.get(("source check", "stg_seedtest__weekly_kpis.kpis", "is_object")) == 1, found


# --- optional sources missing ---------------------------------------------------------------
# One database: a table is "missing" while it is renamed away, and each case starts without
# the dbt schema (a first run: the incremental models would otherwise keep what an earlier
# case built), so the runs after the first one reuse dbt's parse (same profile, same vars).

@pytest.fixture(scope="module")
def sources_db(server_params: ConnectionParams, databases: list[ConnectionParams]
               ) -> ConnectionParams:
    params = new_database(server_params, databases)
    with connect(params) as conn:
        seed(Builder(conn), random.Random(20), exams=60)
    return params


@contextmanager
def missing(params: ConnectionParams, tables: tuple[str, ...]) -> Iterator[None]:
    with connect(params) as conn:
        conn.execute("drop schema if exists analytics cascade")
        for table in tables:
            conn.execute(sql.SQL("alter table {} rename to {}").format(
                sql.Identifier("public", table), sql.Identifier(f"{table}_away")))
    try:
        yield
    finally:
        with connect(params) as conn:
            for table in tables:
                conn.execute(sql.SQL("alter table {} rename to {}").format(
                    sql.Identifier("public", f"{table}_away"), sql.Identifier(table)))


def test_every_optional_source_missing(sources_db: ConnectionParams) -> None:
    """All optional tables missing at once, the dbt tests on: theta and P are null (only S is
    written), sessions do not count as activity."""
    with missing(sources_db, OPTIONAL):
        outcome = run(sources_db, "run", ANCHOR, theta=True, tests=True)
    check_features(outcome)
    check_scores(outcome)
    assert all(r.theta_estimate is None for r in outcome.expected_features.values())
    assert outcome.expected_ps is not None and outcome.expected_ps.scores
    assert all(s.p is None for s in outcome.expected_ps.scores.values())


@pytest.mark.parametrize("table", OPTIONAL)
def test_one_optional_source_missing(sources_db: ConnectionParams, table: str) -> None:
    """Each optional table missing alone (models only, SEEDTEST_DBT_TESTS=false)."""
    with missing(sources_db, (table,)):
        outcome = run(sources_db, "run", ANCHOR, theta=True)
    check_features(outcome)
    check_scores(outcome)


# --- nights: configuration changes, anchors out of order, a backfill ------------------------

BEFORE_ANY_DATA = FIRST_DAY - dt.timedelta(days=30)
# The first night builds the history the others change: its dbt tests are not the point.
# AGG_INCLUDE_THETA shapes the rows (recorded in incremental_settings): the nights change it
# only through a rebuild; a night that changes it alone is refused before writing.
NIGHTS: list[dict[str, Any]] = [
    {"command": "run", "anchor": ANCHOR, "theta": True, "lookback": 7, "threshold": 7,
     "tests": False},
    {"command": "run", "anchor": dt.date(2025, 10, 24), "theta": True, "lookback": 3,
     "threshold": 3},
    {"command": "run", "anchor": ANCHOR, "theta": True, "lookback": 14, "threshold": 10},
    {"command": "aggregate", "anchor": BEFORE_ANY_DATA, "theta": True, "lookback": 7},
    {"command": "backfill", "start": dt.date(2025, 10, 20), "anchor": dt.date(2025, 10, 28),
     "theta": True, "lookback": 7},
    {"command": "run", "anchor": ANCHOR, "theta": False, "lookback": 7, "threshold": 7},
    {"command": "rebuild", "anchor": ANCHOR, "theta": False, "lookback": 7},
    {"command": "run", "anchor": dt.date(2025, 10, 24), "theta": False, "lookback": 3,
     "threshold": 3},
]


@pytest.fixture(scope="module")
def nights(server_params: ConnectionParams, databases: list[ConnectionParams]) -> list[Run]:
    params = new_database(server_params, databases)
    with connect(params) as conn:
        seed(Builder(conn), random.Random(11))
    return [run(params, **{"tests": True, **night}) for night in NIGHTS]


def test_first_night_builds_all_history(nights: list[Run]) -> None:
    """11-01, theta on, lookback 7, threshold 7 (the first run: every day up to the anchor)."""
    first = nights[0]
    assert first.covered is None
    assert min(k[2] for k in first.after) <= FIRST_DAY + dt.timedelta(days=5)
    check_features(first)
    check_scores(first)
    assert any(r.theta_estimate is not None for r in first.expected_features.values())


@pytest.mark.parametrize("night", [1, 2, 7], ids=["10-24-theta-on-lookback-3-threshold-3",
                                                   "11-01-again-theta-on-lookback-14-threshold-10",
                                                   "10-24-after-rebuild-theta-off-lookback-3"])
def test_later_nights_change_only_their_window(nights: list[Run], night: int) -> None:
    """SEVERITY RULE (theta and anchor tests must look only at the run's window). An older
    anchor, then the newest again, each with other settings (and, after the rebuild, theta
    off): the covered days equal the reference with that night's settings, every other row
    (later days too) is untouched."""
    outcome = nights[night]
    check_features(outcome)
    check_scores(outcome)
    assert outcome.covered is not None
    first, last = outcome.covered
    assert any(k[2] > last for k in outcome.after) or last == ANCHOR
    assert any(k[2] < first for k in outcome.after)
    theta = NIGHTS[night]["theta"]
    in_window = [r for k, r in outcome.after.items() if first <= k[2] <= last]
    outside = [r for k, r in outcome.after.items() if not first <= k[2] <= last]
    theta_index = reference.COLUMNS.index("theta_estimate")
    assert any(r[theta_index] is not None for r in in_window) == theta
    assert any(r[theta_index] is not None for r in outside) == theta  # one setting per table


def test_anchor_before_any_data_changes_nothing(nights: list[Run]) -> None:
    """SEVERITY RULE. No data in the window: the old job's line, exit 0, the table as it was."""
    outcome = nights[3]
    check_features(outcome)
    assert outcome.after == outcome.before
    assert ("[INFO] No (user_id, topic_id, date) combinations found (lookback=7 days); exiting."
            in outcome.result.stdout.splitlines())


def test_backfill_over_days_already_built(nights: list[Run]) -> None:
    """SEVERITY RULE. backfill 10-20..10-28 after the nights: the days daily runs over that
    range would recompute ([10-13, 10-28]) equal the reference, later days are untouched."""
    outcome = nights[4]
    check_features(outcome)
    assert outcome.covered == (dt.date(2025, 10, 13), dt.date(2025, 10, 28))
    later = {k: r for k, r in outcome.after.items() if k[2] > dt.date(2025, 10, 28)}
    assert later and all(outcome.before[k] == r for k, r in later.items())


def test_theta_change_without_rebuild_writes_nothing(nights: list[Run]) -> None:
    """A night with AGG_INCLUDE_THETA=false on a table built with theta on: one line naming
    the setting and the rebuild command, exit 1, features and weekly_kpi as they were."""
    outcome = nights[5]
    assert outcome.result.returncode == 1, outcome.result.stdout[-3000:]
    assert "Traceback" not in outcome.result.stdout + outcome.result.stderr
    output = outcome.result.stdout + outcome.result.stderr
    errors = [line for line in output.splitlines() if line.startswith("[ERROR]")]
    assert len(errors) == 1, errors
    assert "features_topic_daily not built, nothing written" in errors[0]
    assert "AGG_INCLUDE_THETA=true, this run has AGG_INCLUDE_THETA=false" in errors[0]
    assert "seedtest-analytics rebuild" in errors[0]
    assert outcome.after == outcome.before
    assert outcome.kpi_after == outcome.kpi_before


def test_rebuild_with_theta_off_recomputes_every_day(nights: list[Run]) -> None:
    """`rebuild` with theta off after the nights with theta on: every day up to the anchor
    equals the reference computed from scratch with theta off (none of the old rows kept)."""
    outcome = nights[6]
    assert outcome.covered is None
    check_features(outcome)
    assert outcome.after.keys() >= outcome.before.keys()
    assert all(outcome.after[k][-1] != r[-1] for k, r in outcome.before.items())
    theta_index = reference.COLUMNS.index("theta_estimate")
    assert not any(r[theta_index] is not None for r in outcome.after.values())


# --- the one-off Jobs of deploy/k8s, their arguments as shipped ------------------------------

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"


def job_args(name: str) -> list[str]:
    job = yaml.safe_load((K8S / name).read_text(encoding="utf-8"))
    args: list[str] = job["spec"]["template"]["spec"]["containers"][0]["args"]
    return args


def cli_commands() -> set[str]:
    from seedtest_analytics.cli import build_parser

    parser = build_parser()
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return set(actions[0].choices)


@dataclass
class Manual:
    backfill: Run
    night: Run
    retry: subprocess.CompletedProcess[str]
    after_retry: dict[reference.Key, Row]
    rebuild: subprocess.CompletedProcess[str] | None
    after_rebuild: dict[reference.Key, Row]
    sources: reference.Sources


@pytest.fixture(scope="module")
def manual(server_params: ConnectionParams, databases: list[ConnectionParams],
           tmp_path_factory: pytest.TempPathFactory) -> Manual:
    """backfill-job.yaml's range on a new database, a night, then retry-job.yaml and (once the
    CLI has it) rebuild-job.yaml, each with its arguments exactly as shipped, all sharing one
    dbt target/ as the Jobs share the artifacts volume."""
    params = new_database(server_params, databases)
    with connect(params) as conn:
        seed(Builder(conn), random.Random(23))
    target = tmp_path_factory.mktemp("artifacts") / "target"
    env = {"ACTIVITY_TIMEZONE": TZ, "SEEDTEST_DBT_TESTS": "false", "DBT_TARGET_PATH": str(target)}
    args = job_args("backfill-job.yaml")
    start = dt.date.fromisoformat(args[args.index("--start") + 1])
    end = dt.date.fromisoformat(args[args.index("--end") + 1])
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DBT_TARGET_PATH", str(target))
        backfill = run(params, "backfill", end, start=start)
        assert list(backfill.args) == args
        night = run(params, "run", ANCHOR)
    retry = run_cli(params, *job_args("retry-job.yaml"), env=env)
    after_retry = features(params)
    rebuild = None
    if "rebuild" in cli_commands():
        rebuild = run_cli(params, *job_args("rebuild-job.yaml"), env=env)
    with connect(params) as conn:
        sources = feature_sources(conn, "public")
    return Manual(backfill, night, retry, after_retry, rebuild, features(params), sources)


def test_backfill_job_range_matches_the_reference(manual: Manual) -> None:
    """The backfill Job's range as shipped, on a database no night has run on: every day up
    to its end equals the reference."""
    check_features(manual.backfill)
    assert manual.backfill.after
    assert max(k[2] for k in manual.backfill.after) <= dt.date.fromisoformat(
        job_args("backfill-job.yaml")[-1])


def test_retry_job_after_a_good_night_changes_nothing(manual: Manual) -> None:
    """dbt-retry after a night that succeeded: nothing failed, nothing to redo; exit 0 and
    the table exactly as the night left it."""
    check_features(manual.night)
    ok(manual.retry)
    assert manual.after_retry == manual.night.after


def test_rebuild_job_recomputes_every_day(manual: Manual) -> None:
    """The full refresh: every day equals the reference computed from scratch with the
    current settings."""
    if manual.rebuild is None:
        pytest.skip("this seedtest-analytics has no rebuild command")
    ok(manual.rebuild)
    last = max(k[2] for k in manual.after_rebuild)
    expected = reference.features(manual.sources, anchor=last, timezone=TZ,
                                  include_theta=False, since=None)
    problems = feature_problems(manual.after_rebuild, expected)
    assert not problems, f"{len(problems)} differences:\n" + "\n".join(problems[:25])
