"""The population generator for churn measurements: deterministic, its truth consistent, and
its rows what the application's schema holds (the attempt view shows every visit)."""

from __future__ import annotations

import datetime as dt

import psycopg

from seedtest_dev.population import WEEKLY_RHYTHM, simulate, write_population

START = dt.date(2026, 1, 5)


def test_same_seed_same_population_and_a_known_truth() -> None:
    one = simulate(600, START, 182, seed=5)
    two = simulate(600, START, 182, seed=5)
    other = simulate(600, START, 182, seed=6)
    assert one.activity_days() == two.activity_days()
    assert one.activity_days() != other.activity_days()
    dropped = [s for s in one.students if s.dropout is not None]
    assert 0.3 < len(dropped) / len(one.students) < 0.95
    for student in one.students:
        assert student.active and student.active[0] == student.joined
        if student.dropout is not None:
            assert student.active[-1] < student.dropout  # never back after dropping out
        for first, last in student.breaks:  # no visit during a break
            assert not any(first <= o <= last for o in student.active)
    returners = [s for s in one.students if any(o > b[1] for b in s.breaks for o in s.active)]
    assert returners
    calendar = one.calendar
    per_day = [0] * calendar.days
    for student in one.students:
        for offset in student.active:
            per_day[offset] += 1
    holiday = range(calendar.holiday[0], calendar.holiday[1] + 1)
    before = range(calendar.holiday[0] - 14, calendar.holiday[0])
    assert sum(per_day[o] for o in holiday) < 0.4 * sum(per_day[o] for o in before) / 2
    # weekdays busier than Saturdays
    weekday = [sum(per_day[o] for o in range(calendar.days)
                   if (START + dt.timedelta(days=o)).weekday() == w) for w in range(7)]
    assert min(weekday[:4]) > weekday[5] and WEEKLY_RHYTHM[5] < 1


def test_the_rows_are_application_rows(db_conn: psycopg.Connection) -> None:
    population = write_population(db_conn, students=150, start=START, days=60, seed=9,
                                  timezone="Asia/Seoul")
    rows = db_conn.execute(
        "select er.user_id, (coalesce(er.updated_at, er.created_at) at time zone 'Asia/Seoul')"
        "::date, count(a.id) from public.exam_results as er"
        " left join public.attempt as a on a.student_id = public.app_user_uuid(er.user_id)"
        " and a.completed_at = coalesce(er.updated_at, er.created_at)"
        " group by 1, 2").fetchall()
    days: dict[str, list[dt.date]] = {}
    for user, day, attempts in rows:
        assert attempts >= 3
        days.setdefault(user, []).append(day)
    assert {u: sorted(d) for u, d in days.items()} == population.activity_days()
    assert population.exams == sum(len(d) for d in days.values())
