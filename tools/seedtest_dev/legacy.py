"""A faithful re-creation of the old row-at-a-time jobs, for the benchmark only.

The old `aggregate_features_daily` asked the attempt view for the distinct (user, topic,
date) combinations of its window, then, for EACH combination, ran its own aggregate query,
its own improvement query (and a theta query when AGG_INCLUDE_THETA was on), upserted one row
and committed. The old `detect_inactivity` did the same per inactive user:
one query per activity source, one for the ability, one for the goal, one for the activity
days, then its own weekly_kpi upsert and commit.

The strategy (and so the cost: round trips, one plan and one commit per row, the attempt view
filtered on its computed `student_id`) is the old one. The values follow today's rules
(improvement per user and topic, valid response times only, days in UTC) so that the rows it
writes can be checked against the new ones. It writes only into scratch tables of its own
schema, never into features_topic_daily or weekly_kpi.

Nothing here is used by the pipeline.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from seedtest_analytics.scoring.formulas import churn_risk, goal_probability

from .rules import app_user_uuid, improvement_index

SCRATCH_SCHEMA = "bench_legacy"
MAX_VALID_TIME_MS = 3 * 60 * 60 * 1000


@dataclass(frozen=True)
class LegacyTiming:
    """`items` rows done one at a time in `seconds` (the listing query not included)."""

    items: int
    seconds: float
    queries: int
    listing_seconds: float
    total_found: int

    @property
    def per_item(self) -> float:
        return self.seconds / self.items if self.items else float("nan")


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def _sample(items: Sequence[tuple[Any, ...]], k: int) -> list[tuple[Any, ...]]:
    """k items spread evenly over `items` (all of them when there are fewer)."""
    if k >= len(items):
        return list(items)
    step = len(items) / k
    return [items[int(i * step)] for i in range(k)]


def prepare_scratch(conn: psycopg.Connection, *, analytics_schema: str, source_schema: str) -> None:
    """(Re)create the scratch copies the old jobs write into: an empty features table with
    the features columns and key, and a copy of weekly_kpi."""
    scratch = sql.Identifier(SCRATCH_SCHEMA)
    conn.execute(sql.SQL("drop schema if exists {} cascade").format(scratch))
    conn.execute(sql.SQL("create schema {}").format(scratch))
    conn.execute(
        sql.SQL(
            "create table {} (like {} including defaults, primary key (user_id, topic_id, date))"
        ).format(
            sql.Identifier(SCRATCH_SCHEMA, "features_topic_daily"),
            sql.Identifier(analytics_schema, "features_topic_daily"),
        )
    )
    conn.execute(
        sql.SQL("create table {} (like {} including all)").format(
            sql.Identifier(SCRATCH_SCHEMA, "weekly_kpi"),
            sql.Identifier(source_schema, "weekly_kpi"),
        )
    )
    conn.execute(
        sql.SQL("insert into {} select * from {}").format(
            sql.Identifier(SCRATCH_SCHEMA, "weekly_kpi"),
            sql.Identifier(source_schema, "weekly_kpi"),
        )
    )
    conn.execute(sql.SQL("analyze {}").format(sql.Identifier(SCRATCH_SCHEMA, "weekly_kpi")))
    conn.commit()


def create_indexed_attempts(conn: psycopg.Connection, *, source_schema: str) -> tuple[str, str]:
    """The old jobs' best case: every attempt row copied into a real table with the index the
    old README recommended (student_id, topic_id, completed_at), and one on (student_id,
    completed_at) for the per-user queries. Returns its (schema, name)."""
    table = sql.Identifier(SCRATCH_SCHEMA, "attempt_indexed")
    conn.execute(sql.SQL("drop table if exists {}").format(table))
    conn.execute(
        sql.SQL("create table {} as select * from {}").format(
            table, sql.Identifier(source_schema, "attempt")
        )
    )
    conn.execute(sql.SQL("create index on {} (student_id, topic_id, completed_at)").format(table))
    conn.execute(sql.SQL("create index on {} (student_id, completed_at)").format(table))
    conn.execute(sql.SQL("analyze {}").format(table))
    conn.commit()
    return SCRATCH_SCHEMA, "attempt_indexed"


# --------------------------------------------------------------------------------------------
# aggregate_features_daily, row at a time
# --------------------------------------------------------------------------------------------


def aggregate_features_row_at_a_time(
    conn: psycopg.Connection,
    *,
    anchor: dt.date,
    lookback_days: int,
    sample: int,
    include_theta: bool = False,
    source_schema: str = "public",
    attempt_table: tuple[str, str] | None = None,
) -> LegacyTiming:
    """The old aggregate job on `sample` of its combinations (spread evenly over the list).

    `attempt_table` (schema, name): where the attempts are read, default the attempt view.
    """
    attempt = sql.Identifier(*(attempt_table or (source_schema, "attempt")))
    since = anchor - dt.timedelta(days=lookback_days)
    conn.execute("set timezone to 'UTC'")  # the old job's days followed the session (defect 8)
    conn.commit()
    started = time.perf_counter()
    combinations = conn.execute(
        sql.SQL(
            "select distinct student_id::text, topic_id, date(completed_at)"
            " from {} where completed_at >= %s and completed_at < %s"
            " and student_id is not null and topic_id is not null"
            " order by 1, 2, 3"
        ).format(attempt),
        (_day_start(since), _day_start(anchor + dt.timedelta(days=1))),
    ).fetchall()
    conn.commit()
    listing = time.perf_counter() - started

    aggregate_sql = sql.SQL(
        "select count(*), count(*) filter (where correct), count(*) filter (where hint_used),"
        " avg(response_time_ms) filter (where response_time_ms between 0 and %(max_ms)s),"
        " percentile_cont(0.5) within group (order by response_time_ms)"
        "   filter (where response_time_ms between 0 and %(max_ms)s),"
        " max(completed_at)"
        " from {} where student_id = %(sid)s::uuid and topic_id = %(topic)s"
        " and completed_at >= %(start)s and completed_at < %(end)s"
    ).format(attempt)
    improvement_sql = sql.SQL(
        "select count(*) filter (where completed_at >= %(recent)s),"
        " count(*) filter (where completed_at >= %(recent)s and correct),"
        " count(*) filter (where completed_at < %(recent)s),"
        " count(*) filter (where completed_at < %(recent)s and correct)"
        " from {} where student_id = %(sid)s::uuid and topic_id = %(topic)s"
        " and completed_at >= %(previous)s and completed_at < %(end)s"
    ).format(attempt)
    theta_sql = sql.SQL(
        "select theta, se from {} where user_id = %(sid)s and topic_id = %(topic)s"
        " and updated_at < %(end)s order by updated_at desc limit 1"
    ).format(sql.Identifier(source_schema, "student_topic_theta"))
    upsert_sql = sql.SQL(
        "insert into {} as f (user_id, topic_id, date, attempts, correct, avg_time_ms, hints,"
        " theta_estimate, theta_sd, rt_median, improvement, last_seen_at, computed_at)"
        " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now())"
        " on conflict (user_id, topic_id, date) do update set"
        " attempts = excluded.attempts, correct = excluded.correct,"
        " avg_time_ms = excluded.avg_time_ms, hints = excluded.hints,"
        " theta_estimate = excluded.theta_estimate, theta_sd = excluded.theta_sd,"
        " rt_median = excluded.rt_median, improvement = excluded.improvement,"
        " last_seen_at = excluded.last_seen_at, computed_at = excluded.computed_at"
    ).format(sql.Identifier(SCRATCH_SCHEMA, "features_topic_daily"))

    chosen = _sample(combinations, sample)
    queries = 0
    started = time.perf_counter()
    for student_id, topic_id, day in chosen:
        start = _day_start(day)
        end = start + dt.timedelta(days=1)
        args = {
            "sid": student_id,
            "topic": topic_id,
            "start": start,
            "end": end,
            "max_ms": MAX_VALID_TIME_MS,
        }
        with conn.cursor() as cur:
            cur.execute(aggregate_sql, args)
            attempts, correct, hints, avg_ms, median_ms, last_seen = _one(cur)
            cur.execute(
                improvement_sql,
                {
                    **args,
                    "recent": start - dt.timedelta(days=13),
                    "previous": start - dt.timedelta(days=27),
                },
            )
            n_r, c_r, n_p, c_p = _one(cur)
            queries += 2
            theta = theta_sd = None
            if include_theta:
                cur.execute(theta_sql, args)
                row = cur.fetchone()
                queries += 1
                if row is not None:
                    theta, theta_sd = row
            cur.execute(
                upsert_sql,
                (
                    student_id,
                    topic_id,
                    day,
                    attempts,
                    correct,
                    _round(avg_ms),
                    hints,
                    theta,
                    theta_sd,
                    _round(median_ms),
                    improvement_index(n_r, c_r, n_p, c_p),
                    last_seen,
                ),
            )
            queries += 1
        conn.commit()
    seconds = time.perf_counter() - started
    return LegacyTiming(
        items=len(chosen),
        seconds=seconds,
        queries=queries,
        listing_seconds=listing,
        total_found=len(combinations),
    )


def _one(cur: psycopg.Cursor[tuple[Any, ...]]) -> tuple[Any, ...]:
    row = cur.fetchone()
    assert row is not None  # an aggregate query always returns a row
    return row


def _round(value: object) -> int | None:
    """Half away from zero, as PostgreSQL rounds numeric."""
    if value is None:
        return None
    number = float(value)  # type: ignore[arg-type]
    return math.floor(abs(number) + 0.5) * (1 if number >= 0 else -1)


# --------------------------------------------------------------------------------------------
# detect_inactivity, user at a time
# --------------------------------------------------------------------------------------------


def _has_table(conn: psycopg.Connection, schema: str, table: str) -> bool:
    row = conn.execute("select to_regclass(%s) is not null", (f"{schema}.{table}",)).fetchone()
    return bool(row and row[0])


def score_users_one_at_a_time(
    conn: psycopg.Connection,
    user_ids: Sequence[str],
    *,
    anchor: dt.date,
    analytics_schema: str,
    source_schema: str = "public",
    kpi_lookback_days: int = 30,
    horizon_days: int = 14,
    default_target: float = 0.0,
    attempt_table: tuple[str, str] | None = None,
) -> LegacyTiming:
    """The old detect_inactivity loop for `user_ids`: per user its own queries and its own
    upsert and commit into the scratch weekly_kpi. `attempt_table` as for the aggregate."""
    src = source_schema
    attempt = sql.Identifier(*(attempt_table or (src, "attempt")))
    end = _day_start(anchor + dt.timedelta(days=1))
    window_start = _day_start(anchor - dt.timedelta(days=kpi_lookback_days - 1))
    week_start = anchor - dt.timedelta(days=anchor.weekday())
    has_session = _has_table(conn, src, "session")
    conn.commit()
    last_activity = [
        sql.SQL(
            "select max(coalesce(updated_at, created_at)) from {} where user_id = %(uid)s"
            " and coalesce(updated_at, created_at) < %(end)s"
        ).format(sql.Identifier(src, "exam_results")),
        sql.SQL(
            "select max(last_seen_at) from {} where user_id = %(uid)s and last_seen_at < %(end)s"
        ).format(sql.Identifier(analytics_schema, "features_topic_daily")),
        sql.SQL(
            "select max(completed_at) from {} where student_id = %(sid)s::uuid"
            " and completed_at < %(end)s"
        ).format(attempt),
    ]
    if has_session:
        last_activity.append(
            sql.SQL(
                "select max(coalesce(ended_at, started_at)) from {} where user_id = %(uid)s"
                " and coalesce(ended_at, started_at) < %(end)s"
            ).format(sql.Identifier(src, "session"))
        )
    ability_sql = sql.SQL(
        "select mean, sd from {} where user_id in (%(uid)s, %(sid)s) and fitted_at < %(end)s"
        " order by fitted_at desc limit 1"
    ).format(sql.Identifier(src, "ability_estimates"))
    mirt_sql = sql.SQL(
        "select theta, se from {} where user_id = %(sid)s and fitted_at < %(end)s"
        " order by fitted_at desc limit 1"
    ).format(sql.Identifier(src, "mirt_ability"))
    goal_sql = sql.SQL(
        "select target_level from {} where user_id in (%(uid)s, %(sid)s)"
        " and created_at < %(end)s and target_level is not null"
        " order by priority desc nulls last, created_at desc limit 1"
    ).format(sql.Identifier(src, "interest_goal"))
    days_sql = sql.SQL(
        "select distinct date(completed_at) from {} where student_id = %(sid)s::uuid"
        " and completed_at >= %(window)s and completed_at < %(end)s order by 1"
    ).format(attempt)
    upsert_sql = sql.SQL(
        "insert into {} as k (user_id, week_start, kpis, created_at, updated_at)"
        " values (%s, %s, %s::jsonb, now(), now())"
        " on conflict (user_id, week_start) do update"
        " set kpis = k.kpis || excluded.kpis, updated_at = excluded.updated_at"
        " where jsonb_typeof(k.kpis) = 'object'"
    ).format(sql.Identifier(SCRATCH_SCHEMA, "weekly_kpi"))

    queries = 0
    started = time.perf_counter()
    for user_id in user_ids:
        args = {"uid": user_id, "sid": app_user_uuid(user_id), "end": end, "window": window_start}
        with conn.cursor() as cur:
            times = []
            for query in last_activity:
                cur.execute(query, args)
                (value,) = _one(cur)
                if value is not None:
                    times.append(value)
            cur.execute(ability_sql, args)
            ability = cur.fetchone()
            queries += len(last_activity) + 1
            if ability is None:
                cur.execute(mirt_sql, args)
                ability = cur.fetchone()
                queries += 1
            cur.execute(goal_sql, args)
            goal = cur.fetchone()
            cur.execute(days_sql, args)
            days = [day for (day,) in cur.fetchall()]
            queries += 2
            target = float(goal[0]) if goal else default_target
            mu, sd = ability if ability else (None, None)
            p = goal_probability(mu, sd, target)
            s = None
            if times:
                last_day = max(times).astimezone(dt.UTC).date()
                gaps = [(b - a).days for a, b in itertools.pairwise(days)]
                s = churn_risk(
                    (anchor - last_day).days,
                    len(days),
                    sum(gaps) / len(gaps) if gaps else 0.0,
                    horizon_days,
                )
            kpis = {key: value for key, value in (("P", p), ("S", s)) if value is not None}
            if kpis:
                cur.execute(upsert_sql, (user_id, week_start, json.dumps(kpis)))
                queries += 1
        conn.commit()
    seconds = time.perf_counter() - started
    return LegacyTiming(
        items=len(user_ids),
        seconds=seconds,
        queries=queries,
        listing_seconds=0.0,
        total_found=len(user_ids),
    )


def sample_users(user_ids: Sequence[str], k: int) -> list[str]:
    return [u for (u,) in _sample([(u,) for u in user_ids], k)]
