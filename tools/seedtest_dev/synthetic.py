"""Synthetic SeedTest data, written the way the application writes it.

Two generators:

* `generate_demo` - a small, realistic and fully deterministic dataset (a few hundred users,
  about ten weeks) with every kind of student the pipeline has to tell apart and a sprinkle of
  malformed rows. Rows are built in Python from `random.Random(seed)` and written with COPY in
  one transaction; the same arguments always give byte-identical rows.
* `generate_bulk` - a benchmark dataset of a given number of attempt rows (1M, 10M, ...), built
  on the server with one set-based INSERT ... SELECT per table, so it goes through the real
  `exam_results` table, its indexes and the `attempt` view.

Neither reads the clock: every timestamp derives from `end_date`.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import sql

from .rules import app_user_uuid

TOPICS: tuple[str, ...] = (
    "algebra",
    "geometry",
    "probability",
    "statistics",
    "functions",
    "trigonometry",
    "calculus",
    "number_theory",
)

# Extra topic names generate_bulk draws from when asked for more topics than TOPICS has.
_MORE_TOPICS: tuple[str, ...] = ("vectors", "sequences", "logic", "combinatorics")

_OPTIONAL_TABLES = (
    "session",
    "student_topic_theta",
    "mirt_ability",
    "ability_estimates",
    "interest_goal",
)

PROFILES = ("regular", "fading", "churned", "returning", "session_only", "gone")


# --------------------------------------------------------------------------------------------
# Demo dataset
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoSummary:
    """What generate_demo wrote. `attempts` is the number of rows the attempt view shows."""

    start_date: date
    end_date: date
    users: int
    topics: tuple[str, ...]
    profiles: dict[str, int]
    exam_results: int
    attempts: int
    session: int
    student_topic_theta: int
    mirt_ability: int
    ability_estimates: int
    interest_goal: int
    weekly_kpi: int
    skipped_tables: tuple[str, ...] = ()

    def table_counts(self) -> dict[str, int]:
        return {
            "exam_results": self.exam_results,
            "session": self.session,
            "student_topic_theta": self.student_topic_theta,
            "mirt_ability": self.mirt_ability,
            "ability_estimates": self.ability_estimates,
            "interest_goal": self.interest_goal,
            "weekly_kpi": self.weekly_kpi,
        }


@dataclass
class _User:
    user_id: str
    profile: str
    theta: float
    learn_rate: float
    hour: float
    legacy_client: bool
    favourites: list[str]
    topic_offset: dict[str, float]
    exams: list[dict[str, Any]] = field(default_factory=list)


def _ts(day: date, seconds: float = 0.0) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(seconds=seconds)


def _day_end(day: date) -> datetime:
    return _ts(day + timedelta(days=1)) - timedelta(seconds=1)


def _uuid4(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _profile_counts(users: int) -> dict[str, int]:
    least = 2 if users >= 20 else 1
    gone = max(least, round(users * 0.03))
    session_only = max(least, round(users * 0.01))
    churned = max(least, round(users * 0.18))
    returning = max(least, round(users * 0.10))
    fading = max(least, round(users * 0.14))
    regular = users - gone - session_only - churned - returning - fading
    return {
        "regular": regular,
        "fading": fading,
        "churned": churned,
        "returning": returning,
        "session_only": session_only,
        "gone": gone,
    }


def _make_users(rng: random.Random, users: int) -> list[_User]:
    profiles: list[str] = []
    for name, count in _profile_counts(users).items():
        profiles.extend([name] * count)
    rng.shuffle(profiles)
    result: list[_User] = []
    for index, profile in enumerate(profiles):
        if rng.random() < 0.5:
            user_id = _uuid4(rng)
            if rng.random() < 0.25:
                user_id = user_id.upper()
        else:
            user_id = f"user{index:04d}"
        favourites = rng.sample(TOPICS, rng.randint(2, 4))
        result.append(
            _User(
                user_id=user_id,
                profile=profile,
                theta=rng.gauss(0.0, 1.0),
                learn_rate=rng.uniform(-0.2, 1.0),
                hour=rng.uniform(0.0, 24.0),
                legacy_client=rng.random() < 0.12,
                favourites=favourites,
                topic_offset={topic: rng.gauss(0.0, 0.4) for topic in TOPICS},
            )
        )
    return result


def _activity_days(rng: random.Random, user: _User, end_date: date, days: int) -> list[date]:
    """The days (oldest first) on which the user takes exams."""
    offsets: list[int] = []
    if user.profile == "gone":
        base = rng.randint(190, 215)
        return [end_date - timedelta(days=base + k) for k in sorted(rng.sample(range(6), 3))][::-1]
    if user.profile == "regular":
        rate = rng.uniform(0.35, 0.75)
        offsets = [o for o in range(days) if rng.random() < rate]
        offsets.append(rng.randint(0, 1))  # every regular student was here recently
    elif user.profile == "fading":
        for o in range(days):
            age = o / max(days - 1, 1)  # 1 = oldest day, 0 = end_date
            if rng.random() < 0.05 + 0.7 * age**1.5:
                offsets.append(o)
    elif user.profile == "churned":
        stop = rng.randint(15, min(60, days - 5))
        offsets = [o for o in range(stop + 1, days) if rng.random() < 0.5] + [stop]
    elif user.profile == "returning":
        back = rng.randint(0, 5)
        gap = rng.randint(14, min(30, days - back - 8))
        offsets = [o for o in range(days) if not back < o <= back + gap and rng.random() < 0.5] + [
            back
        ]
    elif user.profile == "session_only":
        stop = rng.randint(20, min(40, days - 5))
        offsets = [o for o in range(stop + 1, days) if rng.random() < 0.5] + [stop]
    return [end_date - timedelta(days=o) for o in sorted(set(offsets), reverse=True)]


def _question_difficulty(number: int) -> float:
    return ((number * 37) % 100) / 25.0 - 2.0


def _make_exam(
    rng: random.Random,
    user: _User,
    day: date,
    end_date: date,
    days: int,
    session_ids: set[str],
    seconds: float,
) -> dict[str, Any]:
    session_id = f"s-{rng.getrandbits(64):016x}"
    while session_id in session_ids:
        session_id = f"s-{rng.getrandbits(64):016x}"
    session_ids.add(session_id)
    exam_id = _uuid4(rng)
    primary = rng.choice(user.favourites)
    progress = max(0.0, 1.0 - (end_date - day).days / max(days, 1))
    key = "correct" if user.legacy_client else "is_correct"
    questions: list[dict[str, Any]] = []
    used: set[str] = set()
    for _ in range(rng.randint(3, 15)):
        topic = primary if rng.random() < 0.7 else rng.choice(TOPICS)
        number = rng.randint(1, 150)
        question_id = f"{topic}-{number:03d}"
        while question_id in used:
            number = rng.randint(1, 150)
            question_id = f"{topic}-{number:03d}"
        used.add(question_id)
        ability = user.theta + user.topic_offset[topic] + user.learn_rate * progress
        p_correct = 1.0 / (1.0 + math.exp(_question_difficulty(number) - ability))
        questions.append(
            {
                "question_id": question_id,
                "topic": topic,
                key: rng.random() < p_correct,
                "time_spent_sec": round(rng.lognormvariate(3.3, 0.6), 1),
                "used_hints": 0 if rng.random() < 0.8 else rng.randint(1, 3),
            }
        )
    created_at = _ts(day, seconds)
    updated_at = created_at
    if rng.random() < 0.25:
        updated_at = created_at + timedelta(seconds=rng.randint(60, 600))
    limit = _day_end(end_date)
    if updated_at > limit:
        updated_at = limit
        created_at = min(created_at, limit)
    return {
        "id": exam_id,
        "session_id": session_id,
        "user_id": user.user_id,
        "questions": questions,
        "created_at": created_at,
        "updated_at": updated_at,
    }


def _exam_seconds(rng: random.Random, user: _User, count: int) -> list[float]:
    """Times of day (seconds after 00:00 UTC) around the user's habitual hour, in order."""
    result = []
    for _ in range(count):
        hour = (user.hour + rng.gauss(0.0, 2.5)) % 24.0
        result.append(round(hour * 3600.0, 3))
    return sorted(result)


def _add_edge_rows(
    rng: random.Random, exams: list[dict[str, Any]], end_date: date, session_ids: set[str]
) -> None:
    """Malformed rows the pipeline must survive, all in the last week."""
    recent_from = _ts(end_date - timedelta(days=6))
    recent = [exam for exam in exams if exam["created_at"] >= recent_from]
    if len(recent) < 8:  # very few users: the latest exams, whenever they were
        recent = sorted(exams, key=lambda exam: exam["created_at"])[-8:]
    picked = rng.sample(recent, 8)
    # Two questions without a time at all, one with an explicit JSON null.
    for question in picked[0]["questions"][:2]:
        del question["time_spent_sec"]
    picked[1]["questions"][0]["time_spent_sec"] = None
    picked[2]["questions"][0]["time_spent_sec"] = -3.5  # a negative time
    picked[3]["questions"][0]["time_spent_sec"] = 12000.0  # over three hours
    picked[4]["questions"][0]["question_id"] = ""  # dropped by the attempt view
    picked[5]["questions"][0]["topic"] = None  # a question without a topic
    # The same question twice in one exam session: one attempt id, seen twice.
    picked[6]["questions"].append(dict(picked[6]["questions"][0]))
    # Neither is_correct nor correct: reads as wrong.
    question = picked[7]["questions"][0]
    question.pop("is_correct", None)
    question.pop("correct", None)
    # An exam without a user (anonymous practice).
    anonymous = _User(
        user_id="",
        profile="",
        theta=0.0,
        learn_rate=0.0,
        hour=12.0,
        legacy_client=False,
        favourites=list(TOPICS[:2]),
        topic_offset=dict.fromkeys(TOPICS, 0.0),
    )
    day = end_date - timedelta(days=1)
    exam = _make_exam(rng, anonymous, day, end_date, 7, session_ids, 9 * 3600.0)
    exam["user_id"] = None
    exams.append(exam)


def _attempt_rows(exam: dict[str, Any]) -> int:
    return sum(1 for q in exam["questions"] if q.get("question_id") not in (None, ""))


def _copy(
    cur: psycopg.Cursor,
    schema: str,
    table: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
) -> int:
    statement = sql.SQL("copy {} ({}) from stdin").format(
        sql.Identifier(schema, table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    count = 0
    with cur.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


def _existing_tables(conn: psycopg.Connection, schema: str, tables: Iterable[str]) -> set[str]:
    found = set()
    for table in tables:
        name = sql.Identifier(schema, table).as_string(conn)
        row = conn.execute("select to_regclass(%s) is not null", (name,)).fetchone()
        if row and row[0]:
            found.add(table)
    return found


def _iso_monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def generate_demo(
    conn: psycopg.Connection,
    *,
    users: int = 300,
    days: int = 70,
    seed: int = 42,
    end_date: date,
    schema: str = "public",
) -> DemoSummary:
    """Write a deterministic demo dataset ending at end_date into the application schema.

    Student profiles: regular (active to the end), fading (activity thins out), churned (stop
    15-60 days before end_date), returning (a gap of 2-4 weeks, then back), session_only
    (exams stop 20-40 days before end_date, sessions go on to the last days) and gone (a few
    exams about 200 days back). Half the users have uuid-shaped ids (a quarter of those in
    upper case), the rest `userNNNN`. Exams happen around each user's habitual hour, spread
    over the whole UTC day. Tables missing from the schema (the optional ones) are skipped.

    Everything is written in one transaction; the same arguments give byte-identical rows.
    Needs users >= 10 and days >= 30 (ValueError otherwise).
    """
    if users < 10:
        raise ValueError("generate_demo needs users >= 10")
    if days < 30:
        raise ValueError("generate_demo needs days >= 30")
    rng = random.Random(seed)
    start_date = end_date - timedelta(days=days - 1)
    people = _make_users(rng, users)
    session_ids: set[str] = set()

    exams: list[dict[str, Any]] = []
    for user in people:
        for day in _activity_days(rng, user, end_date, days):
            count = rng.choices((1, 2, 3), weights=(70, 25, 5))[0]
            for seconds in _exam_seconds(rng, user, count):
                exam = _make_exam(rng, user, day, end_date, days, session_ids, seconds)
                user.exams.append(exam)
                exams.append(exam)
    _add_edge_rows(rng, exams, end_date, session_ids)

    sessions = _demo_sessions(rng, people, exams, end_date, session_ids)
    thetas = _demo_topic_thetas(rng, people, end_date)
    mirt = _demo_mirt(rng, people, end_date)
    estimates = _demo_ability_estimates(rng, people, end_date, start_date)
    goals = _demo_goals(rng, people, end_date, start_date)
    kpis = _demo_weekly_kpi(rng, people, end_date)

    counts: dict[str, int] = dict.fromkeys(("exam_results", "weekly_kpi", *_OPTIONAL_TABLES), 0)
    tables: list[tuple[str, tuple[str, ...], list[tuple[Any, ...]]]] = [
        (
            "exam_results",
            ("id", "session_id", "user_id", "result_json", "created_at", "updated_at"),
            [
                (
                    e["id"],
                    e["session_id"],
                    e["user_id"],
                    json.dumps({"questions": e["questions"]}, separators=(",", ":")),
                    e["created_at"],
                    e["updated_at"],
                )
                for e in exams
            ],
        ),
        ("session", ("id", "user_id", "started_at", "ended_at"), sessions),
        ("student_topic_theta", ("user_id", "topic_id", "theta", "se", "updated_at"), thetas),
        ("mirt_ability", ("user_id", "theta", "se", "fitted_at", "version"), mirt),
        ("ability_estimates", ("user_id", "mean", "sd", "fitted_at"), estimates),
        ("interest_goal", ("user_id", "topic_id", "target_level", "priority", "created_at"), goals),
        ("weekly_kpi", ("user_id", "week_start", "kpis", "created_at", "updated_at"), kpis),
    ]
    with conn.transaction(), conn.cursor() as cur:
        present = _existing_tables(conn, schema, counts)
        missing = {"exam_results", "weekly_kpi"} - present
        if missing:
            raise ValueError(
                f"schema {schema!r} lacks {', '.join(sorted(missing))}: create the application"
                " schema first (init-db)"
            )
        for table, columns, rows in tables:
            if table in present:
                counts[table] = _copy(cur, schema, table, columns, rows)
    return DemoSummary(
        start_date=start_date,
        end_date=end_date,
        users=users,
        topics=TOPICS,
        profiles=_profile_counts(users),
        exam_results=counts["exam_results"],
        attempts=sum(_attempt_rows(e) for e in exams),
        session=counts["session"],
        student_topic_theta=counts["student_topic_theta"],
        mirt_ability=counts["mirt_ability"],
        ability_estimates=counts["ability_estimates"],
        interest_goal=counts["interest_goal"],
        weekly_kpi=counts["weekly_kpi"],
        skipped_tables=tuple(t for t in _OPTIONAL_TABLES if t not in present),
    )


def _demo_sessions(
    rng: random.Random,
    people: list[_User],
    exams: list[dict[str, Any]],
    end_date: date,
    session_ids: set[str],
) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    # Most exams run inside an application session of the same id.
    for exam in exams:
        if exam["user_id"] is None or rng.random() >= 0.6:
            continue
        duration = sum(q.get("time_spent_sec") or 0 for q in exam["questions"]) or 60.0
        duration = min(max(duration, 30.0), 3600.0)
        started = exam["created_at"] - timedelta(seconds=round(duration + rng.uniform(5, 120)))
        ended = None if rng.random() < 0.05 else exam["updated_at"]
        rows.append((exam["session_id"], exam["user_id"], started, ended))
    # Users whose only recent activity is a session (browsing, no exam).
    for user in people:
        if user.profile != "session_only":
            continue
        for offset in sorted(rng.sample(range(3), rng.randint(1, 3)), reverse=True):
            session_id = f"s-{rng.getrandbits(64):016x}"
            while session_id in session_ids:
                session_id = f"s-{rng.getrandbits(64):016x}"
            session_ids.add(session_id)
            started = _ts(end_date - timedelta(days=offset), round(rng.uniform(0, 80000), 3))
            ended = None if offset == 0 else started + timedelta(seconds=rng.randint(120, 1800))
            rows.append((session_id, user.user_id, started, ended))
    # An anonymous session.
    session_id = f"s-{rng.getrandbits(64):016x}"
    while session_id in session_ids:
        session_id = f"s-{rng.getrandbits(64):016x}"
    session_ids.add(session_id)
    started = _ts(end_date - timedelta(days=2), 7200.0)
    rows.append((session_id, None, started, started + timedelta(minutes=4)))
    return rows


def _last_exam_by_topic(user: _User) -> dict[str, datetime]:
    last: dict[str, datetime] = {}
    for exam in user.exams:
        for question in exam["questions"]:
            topic = question.get("topic")
            if topic and (topic not in last or exam["updated_at"] > last[topic]):
                last[topic] = exam["updated_at"]
    return last


def _demo_topic_thetas(
    rng: random.Random, people: list[_User], end_date: date
) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    limit = _day_end(end_date)
    for user in people:
        if not user.exams or rng.random() >= 0.65:
            continue
        uid = user.user_id if rng.random() < 0.7 else app_user_uuid(user.user_id)
        last = _last_exam_by_topic(user)
        for topic in TOPICS:  # a fixed order, never a set's
            if topic not in last:
                continue
            fitted = min(last[topic] + timedelta(hours=rng.randint(1, 6)), limit)
            theta = user.theta + user.topic_offset[topic] + user.learn_rate + rng.gauss(0, 0.2)
            rows.append((uid, topic, round(theta, 4), round(rng.uniform(0.15, 0.6), 4), fitted))
    return rows


def _demo_mirt(rng: random.Random, people: list[_User], end_date: date) -> list[tuple[Any, ...]]:
    """Weekly user-level fits (Sundays 03:00 UTC), uuid-form user ids."""
    rows: list[tuple[Any, ...]] = []
    last_sunday = end_date - timedelta(days=(end_date.weekday() + 1) % 7)
    for user in people:
        if not user.exams or rng.random() >= 0.7:
            continue
        first = user.exams[0]["created_at"]
        fits = rng.randint(1, 4)
        for k in range(fits - 1, -1, -1):
            if user.profile == "gone":
                fitted_at = user.exams[-1]["updated_at"] + timedelta(days=1 + 7 * (fits - 1 - k))
            else:
                fitted_at = _ts(last_sunday - timedelta(days=7 * k), 3 * 3600.0)
            if fitted_at < first:
                continue
            theta = user.theta + user.learn_rate * (1 - 0.1 * k) + rng.gauss(0, 0.1)
            se = 0.25 + 0.05 * k + rng.uniform(0, 0.15)
            rows.append(
                (
                    app_user_uuid(user.user_id),
                    round(theta, 4),
                    round(se, 4),
                    fitted_at,
                    f"2pl-v{3 - min(k, 2)}",
                )
            )
    return rows


def _demo_ability_estimates(
    rng: random.Random, people: list[_User], end_date: date, start_date: date
) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    span = (end_date - start_date).days
    zero_sd_done = False
    for user in people:
        if rng.random() >= 0.85:
            continue
        uid = user.user_id if rng.random() < 0.9 else app_user_uuid(user.user_id)
        offsets = sorted(rng.sample(range(span + 1), rng.randint(1, 3)), reverse=True)
        for n, offset in enumerate(offsets):
            fitted_at = _ts(end_date - timedelta(days=offset), 4 * 3600.0)
            if user.profile == "gone":
                fitted_at = user.exams[-1]["updated_at"] + timedelta(hours=6 + n)
            mean = user.theta + user.learn_rate * (1 - offset / max(span, 1)) + rng.gauss(0, 0.15)
            sd = round(rng.uniform(0.2, 0.9), 4)
            if not zero_sd_done and user.profile == "churned" and n == len(offsets) - 1:
                sd, zero_sd_done = 0.0, True  # a degenerate fit: no P for this user
            rows.append((uid, round(mean, 4), sd, fitted_at))
    return rows


def _demo_goals(
    rng: random.Random, people: list[_User], end_date: date, start_date: date
) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    span_seconds = ((end_date - start_date).days + 30) * 86400
    origin = _ts(start_date - timedelta(days=30))
    for user in people:
        if rng.random() >= 0.55:
            continue
        uid = user.user_id if rng.random() < 0.9 else app_user_uuid(user.user_id)
        for _ in range(rng.randint(1, 3)):
            rows.append(
                (
                    uid,
                    rng.choice(user.favourites),
                    Decimal(f"{rng.uniform(-1.0, 2.0):.2f}"),
                    rng.randint(1, 3),
                    origin + timedelta(seconds=rng.randrange(span_seconds)),
                )
            )
    return rows


def _demo_weekly_kpi(
    rng: random.Random, people: list[_User], end_date: date
) -> list[tuple[Any, ...]]:
    """Rows for the last four ISO weeks, for users active that week or the week before."""
    rows: list[tuple[Any, ...]] = []
    this_monday = _iso_monday(end_date)
    weeks = [this_monday - timedelta(days=7 * k) for k in range(3, -1, -1)]
    for week in weeks:
        window_from = _ts(week - timedelta(days=7))
        window_to = _ts(week + timedelta(days=7))
        for user in people:
            if not any(window_from <= e["created_at"] < window_to for e in user.exams):
                continue
            kpis: dict[str, Any] = {
                "I_t": round(rng.uniform(0, 1), 4),
                "E_t": round(rng.uniform(0, 1), 4),
                "R_t": round(rng.uniform(0, 1), 4),
                "A_t": round(rng.uniform(0, 1), 4),
            }
            if rng.random() < 0.1:
                kpis["streak_days"] = rng.randint(1, 14)
            created = _ts(week, 3600.0)
            updated = _ts(min(week + timedelta(days=6), end_date), 5400.0)
            rows.append(
                (user.user_id, week, json.dumps(kpis, separators=(",", ":")), created, updated)
            )
    return rows


# --------------------------------------------------------------------------------------------
# Bulk (benchmark) dataset
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BulkSummary:
    """What generate_bulk wrote. `attempts` is exactly the requested number of attempt rows."""

    start_date: date
    end_date: date
    users: int
    topics: int
    exam_results: int
    attempts: int
    users_with_activity: int
    inactive_users: int  # with activity, the last of it more than 7 days before end_date
    ability_estimates: int
    weekly_kpi: int
    seconds: float


_BULK_USERS = """
create temp table _bulk_users on commit drop as
select
    u as idx,
    case
        when u %% 2 = 1 then 'user' || lpad(u::text, 7, '0')
        when u %% 10 = 0 then upper(md5('bulk-user:' || u)::uuid::text)
        else md5('bulk-user:' || u)::uuid::text
    end as user_id,
    case
        when u < %(always)s then 0
        else least(
            %(days)s - 1,
            8 + ((u - %(always)s)::bigint * greatest(%(days)s - 9, 0))
                / greatest(%(users)s - %(always)s, 1)
        )
    end as stop_offset,
    (hashint8extended(u, %(seed)s + 1) & 65535) / 65536.0::float8 * 3.0 - 1.5 as ability,
    ((hashint8extended(u, %(seed)s + 1) & 65535) * %(bands)s / 65536)::int as band
from generate_series(0, %(users)s - 1) as u
"""

_BULK_DAYS = """
create temp table _bulk_days on commit drop as
select o, (select count(*) from _bulk_users as u where u.stop_offset <= o)::int as n_active
from generate_series(0, %(days)s - 1) as o
"""

# Building JSON per question is what costs the most on the server, so the question lists are
# built once, as templates: `templates` per ability band (and one per band for the shorter last
# exam). Each exam then takes a template of its user's band.
_BULK_TEMPLATES = """
create temp table _bulk_templates on commit drop as
select
    t.nq,
    t.band,
    t.k,
    (
        select jsonb_build_object('questions', jsonb_agg(q.question order by q.j))
        from (
            select
                j,
                jsonb_build_object(
                    'question_id', (%(topics)s::text[])[1 + x.t] || '-' || lpad(x.n::text, 4, '0'),
                    'topic', (%(topics)s::text[])[1 + x.t],
                    case when ((t.h >> 56) & 15) = 0 then 'correct' else 'is_correct' end,
                    ((x.hq >> 13) & 65535) / 65536.0::float8 < 1.0 / (
                        1.0 + exp(((x.n * 37) %% 100) / 25.0::float8 - 2.0 - t.ability)
                    ),
                    'time_spent_sec',
                    round((4.0 + 176.0 * power(((x.hq >> 29) & 1023) / 1024.0::float8, 2))::numeric,
                          1),
                    'used_hints',
                    case when ((x.hq >> 39) & 7) = 0 then 1 + ((x.hq >> 42) & 1) else 0 end
                ) as question
            from generate_series(1, t.nq) as j
            cross join lateral (
                select
                    r.hq,
                    case when (r.hq & 7) < 5 then ((t.h >> 50) & 1023) %% %(n_topics)s
                        else ((r.hq >> 3) & 1023) %% %(n_topics)s end as t,
                    (((t.h >> 20) & 1023) + j) %% %(pool)s as n
                from (select hashint8extended(t.id * 4096 + j, %(seed)s) as hq) as r
            ) as x
        ) as q
    ) as result_json
from (
    select
        s.*,
        -1.5 + (s.band + 0.5) * 3.0 / %(bands)s as ability,
        hashint8extended(s.id, %(seed)s + 9) as h
    from (
        select
            c.nq, b.band, k.k,
            (c.nq::bigint * %(bands)s + b.band) * %(templates)s + k.k as id
        from (values (%(qpe)s::int, %(templates)s::int), (%(remainder)s::int, 1)) as c (nq, n)
        cross join generate_series(0, %(bands)s - 1) as b (band)
        cross join lateral generate_series(0, c.n - 1) as k (k)
        where c.nq > 0
    ) as s
) as t
"""

# Exam i lands on day offset o, at a time spread evenly over the UTC day (plus a minute of
# jitter): rows arrive in chronological order, as the application writes them, with the same
# number of exams (+-1) every day. Each exam goes to one of the users still active that day:
# users are ordered by the day their activity ends, so the active ones are the first n_active.
_BULK_EXAMS = """
insert into {exam_results} (id, session_id, user_id, result_json, created_at, updated_at)
select
    (%(id_prefix)s || lpad(to_hex(e.i), 12, '0'))::uuid,
    'bulk-' || %(seed)s || '-' || lpad(e.i::text, 10, '0'),
    u.user_id,
    tp.result_json,
    e.created_at,
    e.created_at + case when ((e.h >> 40) & 3) = 0
        then make_interval(secs => ((e.h >> 44) & 511)) else interval '0' end
from (
    select
        g.i,
        g.h,
        g.o,
        case when g.i < %(full_exams)s then %(qpe)s else %(remainder)s end as nq,
        case when g.i < %(full_exams)s then ((g.h >> 24) & 1048575) %% %(templates)s else 0 end
            as k,
        ((%(end_date)s::date - g.o)::timestamp
            + make_interval(secs => (g.i * %(days)s %% %(n_exams)s) * 85800 / %(n_exams)s
                                    + ((g.h >> 8) & 63))) at time zone 'UTC'
            as created_at
    from (
        select
            s.i,
            hashint8extended(s.i, %(seed)s) as h,
            %(days)s - 1 - (s.i * %(days)s / %(n_exams)s)::int as o
        from generate_series(0::bigint, %(n_exams)s - 1) as s (i)
    ) as g
) as e
join _bulk_days as d on d.o = e.o
join _bulk_users as u on u.idx = ((e.h & 9223372036854775807) %% d.n_active)
join _bulk_templates as tp on tp.nq = e.nq and tp.band = u.band and tp.k = e.k
"""

_BULK_ABILITY = """
insert into {ability_estimates} (user_id, mean, sd, fitted_at)
select
    user_id,
    round(
        (ability + ((hashint8extended(idx, %(seed)s + 2) & 1023) / 1023.0 - 0.5) * 0.4)::numeric, 4
    )::float8,
    round(
        (0.2 + ((hashint8extended(idx, %(seed)s + 3) & 1023) / 1023.0) * 0.6)::numeric, 4
    )::float8,
    ((%(end_date)s::date - (idx %% 7)::int)::timestamp + interval '3 hours') at time zone 'UTC'
from _bulk_users
"""

_BULK_KPI = """
insert into {weekly_kpi} (user_id, week_start, kpis, created_at, updated_at)
select
    user_id,
    %(week_start)s::date,
    jsonb_build_object(
        'I_t', round(((hashint8extended(idx, %(seed)s + 4) & 65535) / 65535.0)::numeric, 4),
        'E_t', round(((hashint8extended(idx, %(seed)s + 5) & 65535) / 65535.0)::numeric, 4),
        'R_t', round(((hashint8extended(idx, %(seed)s + 6) & 65535) / 65535.0)::numeric, 4),
        'A_t', round(((hashint8extended(idx, %(seed)s + 7) & 65535) / 65535.0)::numeric, 4)
    ),
    (%(week_start)s::date + interval '1 hour') at time zone 'UTC',
    (%(end_date)s::date + interval '90 minutes') at time zone 'UTC'
from _bulk_users
on conflict (user_id, week_start) do nothing
"""

_BULK_ACTIVITY = """
select
    count(*),
    count(*) filter (where last_at < (%(end_date)s::date - 6)::timestamp at time zone 'UTC')
from (
    select er.user_id, max(coalesce(er.updated_at, er.created_at)) as last_at
    from {exam_results} as er
    where er.session_id like %(prefix)s
    group by er.user_id
) as s
"""


_BULK_BANDS = 5


def _topic_names(topics: int) -> list[str]:
    names = list(TOPICS) + list(_MORE_TOPICS)
    names += [f"topic_{k:02d}" for k in range(len(names), topics)]
    return names[:topics]


def generate_bulk(
    conn: psycopg.Connection,
    *,
    attempts: int,
    days: int = 90,
    users: int | None = None,
    topics: int = 8,
    questions_per_exam: int = 10,
    seed: int = 7,
    end_date: date,
    schema: str = "public",
) -> BulkSummary:
    """Write exactly `attempts` attempt rows (as exam_results) over `days` days up to end_date.

    The exams are spread evenly over the days (daily counts differ by at most one exam) and
    over each UTC day, in chronological order, each with `questions_per_exam` questions (the
    last exam takes the remainder). Question lists come from a pool of templates per ability
    band (building JSON per question is the slow part), so correctness still follows the
    user's ability. `users` defaults to one per 40 exams. A quarter of the users stop being
    active between 8 and `days` - 1 days before end_date (inactive at end_date), the others
    stay active to the end. Half the user ids are uuid-shaped (some upper case), half
    `userNNNNNNN`. Also writes one ability_estimates row per user and one weekly_kpi row per
    user for the ISO week of end_date (existing weekly_kpi rows are kept). `attempts` in the
    summary is what this call added to the attempt view.

    Everything happens on the server in one transaction, deterministically for a seed.
    """
    if attempts < 1:
        raise ValueError("attempts must be >= 1")
    if days < 1:
        raise ValueError("days must be >= 1")
    if not 1 <= questions_per_exam <= 1000:
        raise ValueError("questions_per_exam must be between 1 and 1000")
    if topics < 1:
        raise ValueError("topics must be >= 1")
    started = time.perf_counter()
    full_exams, remainder = divmod(attempts, questions_per_exam)
    n_exams = full_exams + (1 if remainder else 0)
    n_users = users if users is not None else max(10, n_exams // 40)
    if n_users < 1:
        raise ValueError("users must be >= 1")
    always = n_users - n_users // 4
    params: dict[str, Any] = {
        "seed": seed,
        "days": days,
        "users": n_users,
        "always": always,
        "topics": _topic_names(topics),
        "n_topics": topics,
        "pool": max(1000, questions_per_exam),
        "bands": _BULK_BANDS,
        "templates": max(
            1, min(1024, -(-n_exams // _BULK_BANDS), 200_000 // (_BULK_BANDS * questions_per_exam))
        ),
        "qpe": questions_per_exam,
        "full_exams": full_exams,
        "remainder": remainder,
        "n_exams": n_exams,
        "end_date": end_date,
        "week_start": _iso_monday(end_date),
        "prefix": f"bulk-{seed}-%",
        # Ids in insertion order (like time-ordered uuids): the index inserts stay local.
        "id_prefix": hashlib.md5(f"bulk:{seed}".encode()).hexdigest()[:20],
    }
    names = {
        table: sql.Identifier(schema, table)
        for table in ("exam_results", "ability_estimates", "weekly_kpi")
    }
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(_BULK_USERS, params)
        cur.execute("analyze _bulk_users")
        cur.execute(_BULK_DAYS, params)
        cur.execute("analyze _bulk_days")
        cur.execute(_BULK_TEMPLATES, params)
        cur.execute("analyze _bulk_templates")
        cur.execute(sql.SQL(_BULK_EXAMS).format(exam_results=names["exam_results"]), params)
        exams_written = cur.rowcount
        cur.execute(
            sql.SQL(_BULK_ABILITY).format(ability_estimates=names["ability_estimates"]), params
        )
        abilities = cur.rowcount
        cur.execute(sql.SQL(_BULK_KPI).format(weekly_kpi=names["weekly_kpi"]), params)
        kpi_rows = cur.rowcount
        cur.execute(sql.SQL(_BULK_ACTIVITY).format(exam_results=names["exam_results"]), params)
        row = cur.fetchone()
        with_activity, inactive = (int(row[0]), int(row[1])) if row else (0, 0)
        for table in names.values():
            cur.execute(sql.SQL("analyze {}").format(table))
    return BulkSummary(
        start_date=end_date - timedelta(days=days - 1),
        end_date=end_date,
        users=n_users,
        topics=topics,
        exam_results=exams_written,
        attempts=attempts,
        users_with_activity=with_activity,
        inactive_users=inactive,
        ability_estimates=abilities,
        weekly_kpi=kpi_rows,
        seconds=round(time.perf_counter() - started, 3),
    )
