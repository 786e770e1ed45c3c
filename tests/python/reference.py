"""An independent, pure-Python computation of features_topic_daily.

It reads the raw application tables (exam_results and the optional theta tables), never the
attempt view or anything dbt builds, so the tests compare two implementations written apart.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

# The id rule and the improvement index's formula, defined once for
# everything outside the dbt project; the reference applies them to raw rows on its own.
from seedtest_dev.rules import app_user_uuid as uuid_form
from seedtest_dev.rules import improvement_index as improvement
from seedtest_dev.rules import is_uuid_shaped

MAX_VALID_TIME_MS = 3 * 60 * 60 * 1000
COLUMNS = (
    "user_id", "topic_id", "date", "attempts", "correct", "avg_time_ms", "hints",
    "theta_estimate", "theta_sd", "rt_median", "improvement", "last_seen_at",
)

Key = tuple[str, str, dt.date]


# --- user ids -------------------------------------------------------------------------------

def id_map(app_ids: Iterable[str]) -> dict[str, str]:
    """uuid form -> application id; a non-uuid id wins over a uuid-shaped one."""
    mapping: dict[str, str] = {}
    for app_id in sorted(set(app_ids), key=lambda i: (is_uuid_shaped(i), i)):
        mapping.setdefault(uuid_form(app_id), app_id)
    return mapping


def map_user(user_id: str, mapping: dict[str, str], app_ids: set[str]) -> str:
    """The application id of a source's user id (either form); unmappable ids keep their text."""
    if user_id in app_ids:
        return user_id
    if is_uuid_shaped(user_id):
        return mapping.get(user_id.lower(), user_id)
    return user_id


# --- raw rows -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Exam:
    id: str
    session_id: str
    user_id: str | None
    result: Any
    created_at: dt.datetime
    updated_at: dt.datetime | None


@dataclass(frozen=True)
class ThetaRow:
    user_id: str
    topic_id: str | None
    theta: float | None
    se: float | None
    at: dt.datetime


@dataclass
class Sources:
    exams: list[Exam]
    topic_theta: list[ThetaRow] = field(default_factory=list)
    user_ability: list[ThetaRow] = field(default_factory=list)


def _table_exists(conn: psycopg.Connection, name: str) -> bool:
    row = conn.execute("select to_regclass(%s) is not null", (f"public.{name}",)).fetchone()
    return bool(row and row[0])


def load_sources(conn: psycopg.Connection) -> Sources:
    """Read the raw application tables (JSON numbers kept exact as Decimal)."""
    exams = [
        Exam(
            id=str(row[0]), session_id=row[1], user_id=row[2],
            result=json.loads(row[3], parse_float=Decimal, parse_int=Decimal),
            created_at=row[4], updated_at=row[5],
        )
        for row in conn.execute(
            "select id, session_id, user_id, result_json::text, created_at, updated_at"
            " from public.exam_results"
        )
    ]
    sources = Sources(exams=exams)
    if _table_exists(conn, "student_topic_theta"):
        sources.topic_theta = [
            ThetaRow(*row)
            for row in conn.execute(
                "select user_id, topic_id, theta, se, updated_at from public.student_topic_theta"
            )
        ]
    if _table_exists(conn, "mirt_ability"):
        sources.user_ability = [
            ThetaRow(row[0], None, row[1], row[2], row[3])
            for row in conn.execute("select user_id, theta, se, fitted_at from public.mirt_ability")
        ]
    return sources


# --- attempts -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Attempt:
    exam_id: str
    question_id: str
    user_id: str | None
    topic_id: str | None
    correct: bool
    response_time_ms: int | None
    hint_used: bool
    completed_at: dt.datetime

    @property
    def is_valid(self) -> bool:
        return self.user_id is not None and bool(self.topic_id)

    @property
    def has_valid_time(self) -> bool:
        return self.response_time_ms is not None and 0 <= self.response_time_ms <= MAX_VALID_TIME_MS


def round_half_away(value: Fraction | Decimal | int) -> int:
    value = Fraction(value)
    magnitude = math.floor(abs(value) + Fraction(1, 2))
    return magnitude if value >= 0 else -magnitude


def _json_text(value: Any) -> str | None:
    """What PostgreSQL's ->> gives for a JSON value (None for a missing key or JSON null)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(", ", ": "))


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _correct(question: dict[str, Any]) -> bool:
    for key in ("is_correct", "correct"):
        if _is_bool(question.get(key)):
            return bool(question[key])
    return False


def _response_time_ms(question: dict[str, Any]) -> int | None:
    value = question.get("time_spent_sec")
    if value is None:
        return 0
    if isinstance(value, Decimal):
        return round_half_away(value * 1000)
    return None  # a non-number is not a time


def _hint_used(question: dict[str, Any]) -> bool:
    value = question.get("used_hints")
    if isinstance(value, bool):
        return value
    if isinstance(value, Decimal):
        return value > 0
    return False


def expand_exam(exam: Exam) -> list[Attempt]:
    """One attempt per question with a non-empty question_id (copies of a question kept)."""
    questions = exam.result.get("questions") if isinstance(exam.result, dict) else None
    if not isinstance(questions, list):
        return []
    completed_at = exam.updated_at if exam.updated_at is not None else exam.created_at
    attempts = []
    for question in questions:
        if not isinstance(question, dict):
            continue
        question_id = _json_text(question.get("question_id"))
        if not question_id:
            continue
        attempts.append(
            Attempt(
                exam_id=exam.id,
                question_id=question_id,
                # An empty user_id is no user (the view shows it as md5('') in uuid form).
                user_id=exam.user_id or None,
                topic_id=_json_text(question.get("topic")),
                correct=_correct(question),
                response_time_ms=_response_time_ms(question),
                hint_used=_hint_used(question),
                completed_at=completed_at,
            )
        )
    return attempts


def _copy_rank(attempt: Attempt) -> tuple[Any, ...]:
    """Sort key: the copy of a repeated question that counts comes first (a valid copy, then
    the latest, then correct, slower, with a hint, and the first topic)."""
    return (
        not attempt.is_valid,
        -attempt.completed_at.timestamp(),
        not attempt.correct,
        (attempt.response_time_ms is None, -(attempt.response_time_ms or 0)),
        not attempt.hint_used,
        (attempt.topic_id is None, attempt.topic_id or ""),
    )


def attempts(sources: Sources) -> list[Attempt]:
    """Every attempt once: one per (exam, question_id), the best copy of a repeated question."""
    best: dict[tuple[str, str], Attempt] = {}
    for exam in sources.exams:
        for attempt in expand_exam(exam):
            key = (attempt.exam_id, attempt.question_id)
            if key not in best or _copy_rank(attempt) < _copy_rank(best[key]):
                best[key] = attempt
    return list(best.values())


# --- features -------------------------------------------------------------------------------

@dataclass
class FeatureRow:
    user_id: str
    topic_id: str
    date: dt.date
    attempts: int
    correct: int
    avg_time_ms: int | None
    hints: int
    theta_estimate: float | None
    theta_sd: float | None
    rt_median: int | None
    improvement: float | None
    last_seen_at: dt.datetime

    def as_tuple(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in COLUMNS)


def local_day(ts: dt.datetime, timezone: str) -> dt.date:
    return ts.astimezone(ZoneInfo(timezone)).date()


def local_midnight(day: dt.date, timezone: str) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), tzinfo=ZoneInfo(timezone))


def median(values: list[int]) -> Fraction:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return Fraction(ordered[middle])
    return Fraction(ordered[middle - 1] + ordered[middle], 2)


def _theta(
    sources: Sources, user_id: str, topic_id: str, day: dt.date, timezone: str,
    mapping: dict[str, str], app_ids: set[str],
) -> tuple[float | None, float | None]:
    cutoff = local_midnight(day + dt.timedelta(days=1), timezone)
    by_topic = [
        row for row in sources.topic_theta
        if map_user(row.user_id, mapping, app_ids) == user_id
        and row.topic_id == topic_id and row.at < cutoff
    ]
    if by_topic:
        row = max(by_topic, key=lambda r: r.at)
        return row.theta, row.se
    overall = [
        row for row in sources.user_ability
        if map_user(row.user_id, mapping, app_ids) == user_id and row.at < cutoff
    ]
    if overall:
        row = max(overall, key=lambda r: r.at)
        return row.theta, row.se
    return None, None


def features(
    sources: Sources,
    *,
    anchor: dt.date,
    timezone: str = "UTC",
    include_theta: bool = False,
    since: dt.date | None = None,
) -> dict[Key, FeatureRow]:
    """features_topic_daily rows for the days [since, anchor] (all days up to anchor if None)."""
    app_ids = {exam.user_id for exam in sources.exams if exam.user_id}
    mapping = id_map(app_ids)
    by_key: dict[Key, list[Attempt]] = defaultdict(list)
    for attempt in attempts(sources):
        if not attempt.is_valid:
            continue
        day = local_day(attempt.completed_at, timezone)
        if day > anchor:
            continue
        assert attempt.user_id is not None and attempt.topic_id is not None
        by_key[(attempt.user_id, attempt.topic_id, day)].append(attempt)

    daily_counts: dict[tuple[str, str], dict[dt.date, tuple[int, int]]] = defaultdict(dict)
    for (user_id, topic_id, day), group in by_key.items():
        daily_counts[(user_id, topic_id)][day] = (len(group), sum(a.correct for a in group))

    def window_sums(user_id: str, topic_id: str, first: dt.date, last: dt.date) -> tuple[int, int]:
        n = c = 0
        for day, (day_n, day_c) in daily_counts[(user_id, topic_id)].items():
            if first <= day <= last:
                n += day_n
                c += day_c
        return n, c

    rows: dict[Key, FeatureRow] = {}
    for (user_id, topic_id, day), group in by_key.items():
        if since is not None and day < since:
            continue
        times = [a.response_time_ms for a in group if a.has_valid_time]
        assert all(t is not None for t in times)
        valid_times = [t for t in times if t is not None]
        n_r, c_r = window_sums(user_id, topic_id, day - dt.timedelta(days=13), day)
        n_p, c_p = window_sums(
            user_id, topic_id, day - dt.timedelta(days=27), day - dt.timedelta(days=14)
        )
        theta = (
            _theta(sources, user_id, topic_id, day, timezone, mapping, app_ids)
            if include_theta else (None, None)
        )
        rows[(user_id, topic_id, day)] = FeatureRow(
            user_id=user_id,
            topic_id=topic_id,
            date=day,
            attempts=len(group),
            correct=sum(a.correct for a in group),
            avg_time_ms=(
                round_half_away(Fraction(sum(valid_times), len(valid_times)))
                if valid_times else None
            ),
            hints=sum(a.hint_used for a in group),
            theta_estimate=theta[0],
            theta_sd=theta[1],
            rt_median=round_half_away(median(valid_times)) if valid_times else None,
            improvement=improvement(n_r, c_r, n_p, c_p),
            last_seen_at=max(a.completed_at for a in group),
        )
    return rows


def skipped(sources: Sources, *, anchor: dt.date, since: dt.date, timezone: str = "UTC") -> int:
    """Attempts in the days [since, anchor] left out for a null user or topic."""
    return sum(
        1 for attempt in attempts(sources)
        if not attempt.is_valid
        and since <= local_day(attempt.completed_at, timezone) <= anchor
    )
