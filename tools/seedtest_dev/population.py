"""A student population with a known truth, for measuring churn scores (not the demo's data).

Each student has a latent activity rate (gamma distributed), a start day, an ability. Every
day the chance of a visit is 1 - exp(-rate * rhythm * season): a weekly rhythm (weekdays more
than weekends), a holiday week (almost nobody), exam periods (more). Each visit is one exam
with 3-8 questions answered with a chance that follows the ability, so the student's recent
results are known. Students drop out for good with a daily hazard that rises with poor recent
results, with the days since the last visit and in the weeks after an exam period; now and then
a student takes a break of 2-8 weeks and comes back (a returner).

The truth returned is per student: every activity day, the dropout day (None: never dropped
out), the breaks. Rows go to the application's exam_results table (the attempt view shows its
questions) in one COPY, so the real pipeline consumes them. Deterministic for a seed; no clock.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
import uuid
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import psycopg
from psycopg import sql

TOPICS = ("algebra", "geometry", "probability", "functions")
# Monday .. Sunday: visits per day relative to the student's rate.
WEEKLY_RHYTHM = (1.15, 1.1, 1.1, 1.05, 0.85, 0.6, 0.95)
HOLIDAY_FACTOR = 0.12
EXAM_FACTOR = 1.7
# dropout hazard: base * (1 + POOR * max(0, 0.6 - recent score)) * (1 + gap / GAP_DAYS), times
# AFTER_EXAM in the two weeks after an exam period
BASE_HAZARD = 0.0035
POOR = 6.0
GAP_DAYS = 10.0
AFTER_EXAM = 2.5
BREAK_CHANCE = 0.003  # per active day: a break of 2-8 weeks starts


@dataclass(frozen=True)
class Calendar:
    start: dt.date
    days: int
    holiday: tuple[int, int]  # [first, last] day offsets
    exams: tuple[tuple[int, int], ...]

    def season(self, offset: int) -> float:
        if self.holiday[0] <= offset <= self.holiday[1]:
            return HOLIDAY_FACTOR
        if any(a <= offset <= b for a, b in self.exams):
            return EXAM_FACTOR
        return 1.0

    def after_exam(self, offset: int) -> bool:
        return any(b < offset <= b + 14 for _, b in self.exams)


def default_calendar(start: dt.date, days: int) -> Calendar:
    """A holiday week at about 40 % of the period, exam periods of 10 days at 30 % and 75 %."""
    holiday = int(days * 0.4)
    exams = tuple((int(days * f), int(days * f) + 9) for f in (0.3, 0.75))
    return Calendar(start, days, (holiday, holiday + 6), exams)


@dataclass
class Student:
    user_id: str
    rate: float
    ability: float
    joined: int
    hour: int
    active: list[int] = field(default_factory=list)  # day offsets with a visit
    scores: list[float] = field(default_factory=list)  # share correct, one per visit
    dropout: int | None = None  # day offset from which the student never comes back
    breaks: list[tuple[int, int]] = field(default_factory=list)  # [first, last] offsets


@dataclass
class Population:
    calendar: Calendar
    timezone: str
    students: list[Student]
    exams: int = 0

    def activity_days(self) -> dict[str, list[dt.date]]:
        start = self.calendar.start
        return {
            s.user_id: [start + dt.timedelta(days=o) for o in s.active]
            for s in self.students
            if s.active
        }

    def dropout_days(self) -> dict[str, dt.date | None]:
        start = self.calendar.start
        return {
            s.user_id: None if s.dropout is None else start + dt.timedelta(days=s.dropout)
            for s in self.students
        }


def simulate(
    students: int,
    start: dt.date,
    days: int,
    seed: int,
    timezone: str = "UTC",
    calendar: Calendar | None = None,
) -> Population:
    """The population in memory (nothing written); the default calendar unless given."""
    rng = random.Random(seed)
    calendar = calendar or default_calendar(start, days)
    people: list[Student] = []
    for i in range(students):
        student = Student(
            user_id=f"p{seed}-{i:06d}" if i % 4 else str(uuid.UUID(int=rng.getrandbits(128))),
            rate=rng.gammavariate(1.3, 0.3),
            ability=rng.gauss(0.3, 1.0),
            joined=int(rng.random() ** 1.5 * days * 0.7),
            hour=rng.randint(7, 22),
        )
        _live(student, calendar, rng)
        people.append(student)
    return Population(calendar, timezone, people)


def _live(student: Student, calendar: Calendar, rng: random.Random) -> None:
    recent = 0.7  # an exponential average of the results, before the first visit: neutral
    last = student.joined
    on_break_until = -1
    for offset in range(student.joined, calendar.days):
        if offset <= on_break_until:
            continue
        gap = offset - last
        hazard = BASE_HAZARD * (1 + POOR * max(0.0, 0.6 - recent)) * (1 + gap / GAP_DAYS)
        if calendar.after_exam(offset):
            hazard *= AFTER_EXAM
        if offset != student.joined and rng.random() < hazard:
            student.dropout = offset
            return
        weekday = (calendar.start + dt.timedelta(days=offset)).weekday()
        chance = 1 - math.exp(-student.rate * WEEKLY_RHYTHM[weekday] * calendar.season(offset))
        if offset != student.joined and rng.random() >= chance:
            continue
        p = 1 / (1 + math.exp(-(student.ability + rng.gauss(0, 0.7))))
        questions = rng.randint(3, 8)
        score = sum(rng.random() < p for _ in range(questions)) / questions
        student.active.append(offset)
        student.scores.append(score)
        recent = 0.6 * recent + 0.4 * score
        last = offset
        if rng.random() < BREAK_CHANCE:
            length = rng.randint(14, 56)
            student.breaks.append((offset + 1, offset + length))
            on_break_until = offset + length


def exam_rows(population: Population, seed: int) -> list[tuple[str, str, str, str, dt.datetime]]:
    """(id, session_id, user_id, result_json, at) of every visit."""
    rng = random.Random(seed * 7919 + 1)
    zone = ZoneInfo(population.timezone)
    start = population.calendar.start
    rows = []
    for student in population.students:
        for offset, score in zip(student.active, student.scores, strict=True):
            day = start + dt.timedelta(days=offset)
            at = dt.datetime(day.year, day.month, day.day, tzinfo=zone) + dt.timedelta(
                hours=student.hour, minutes=rng.randrange(50)
            )
            count = rng.randint(3, 8)
            right = round(score * count)
            questions = [
                {
                    "question_id": f"{rng.choice(TOPICS)}-{rng.randrange(400):03d}",
                    "topic": rng.choice(TOPICS),
                    "is_correct": n < right,
                    "time_spent_sec": rng.randint(10, 90),
                    "used_hints": 0,
                }
                for n in range(count)
            ]
            key = uuid.UUID(int=rng.getrandbits(128))
            rows.append(
                (
                    str(key),
                    f"pop-{key.hex}",
                    student.user_id,
                    json.dumps({"questions": questions}, separators=(",", ":")),
                    at,
                )
            )
    return rows


def write_population(
    conn: psycopg.Connection,
    *,
    students: int,
    start: dt.date,
    days: int,
    seed: int,
    timezone: str = "UTC",
    schema: str = "public",
    calendar: Calendar | None = None,
) -> Population:
    """Simulate and write the exams to schema.exam_results in one COPY (one transaction)."""
    population = simulate(students, start, days, seed, timezone, calendar)
    rows = exam_rows(population, seed)
    statement = sql.SQL(
        "copy {} (id, session_id, user_id, result_json, created_at, updated_at) from stdin"
    ).format(sql.Identifier(schema, "exam_results"))
    with conn.transaction(), conn.cursor() as cur, cur.copy(statement) as copy:
        for key, session, user, result, at in rows:
            copy.write_row((key, session, user, result, at, at))
    population.exams = len(rows)
    return population
