"""Students scored earlier in the week who have come back: marked, not re-scored.

S is written for the users inactive on the night it is computed (S_as_of: that anchor date).
On each later night of the same week, a user whose row has an S computed before their latest
activity day (up to the anchor) gets `S_returned_on`: that activity day. S itself stays as
it was computed (the risk seen on S_as_of), so outreach can tell "still away" from "came
back". A new S (the user inactive again) drops the mark. One statement, in one transaction.

The last activity comes from the `user_last_activity` model: joined in place when the models
live beside weekly_kpi, else (Spark) the rows the warehouse read, passed in as arrays.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Sequence

import psycopg
from psycopg import sql

from ..config import Settings
from .locking import assert_held

LAST_ACTIVITY = "user_last_activity"


def week_start_of(settings: Settings) -> dt.date:
    return settings.anchor_date - dt.timedelta(days=settings.anchor_date.weekday())


def mark_returned(
    conn: psycopg.Connection,
    settings: Settings,
    *,
    kpi_schema: str,
    dbt_schema: str,
    last_activity: Sequence[tuple[str, float]] | None = None,
) -> int:
    """Mark the returners of the anchor's week; the number of rows marked. `last_activity`:
    (user_id, last activity as epoch seconds) read from a warehouse apart from weekly_kpi,
    instead of `dbt_schema.user_last_activity`."""
    week_start = week_start_of(settings)
    statement = sql.SQL(
        """
        update {kpi} as k
        set kpis = k.kpis || jsonb_build_object('S_returned_on', back.day),
            updated_at = now()
        from (
            select user_id, (last_activity_at at time zone %(tz)s)::date as day
            from {last}
        ) as back
        where k.week_start = %(week)s
            and back.user_id = k.user_id
            and jsonb_typeof(k.kpis) = 'object'
            and k.kpis ? 'S'
            and jsonb_typeof(k.kpis -> 'S_as_of') = 'string'
            and k.kpis ->> 'S_as_of' ~ '^\\d{{4}}-\\d{{2}}-\\d{{2}}$'
            and back.day > (k.kpis ->> 'S_as_of')::date
            and back.day <= %(anchor)s
            and (k.kpis -> 'S_returned_on') is distinct from to_jsonb(back.day)
        """
    ).format(
        kpi=sql.Identifier(kpi_schema, "weekly_kpi"),
        last=sql.SQL(
            "(select user_id, to_timestamp(epoch) as last_activity_at"
            " from unnest(%(users)s::text[], %(epochs)s::float8[]) as t (user_id, epoch))"
        )
        if last_activity is not None
        else sql.Identifier(dbt_schema, LAST_ACTIVITY),
    )
    if last_activity is None:
        found = conn.execute(
            "select to_regclass(%s) is not null",
            (sql.Identifier(dbt_schema, LAST_ACTIVITY).as_string(conn),),
        ).fetchone()
        if not (found and found[0]):  # scores written without the dbt models (nothing to read)
            conn.rollback()
            return 0
    elif not last_activity:
        return 0
    try:
        assert_held(conn, "the returners' mark in weekly_kpi")
        with conn.cursor() as cur:
            cur.execute(
                statement,
                {
                    "tz": settings.activity_timezone,
                    "week": week_start,
                    "anchor": settings.anchor_date,
                    "users": [user for user, _ in last_activity or ()],
                    "epochs": [epoch for _, epoch in last_activity or ()],
                },
            )
            marked = cur.rowcount
        conn.commit()
    except BaseException:
        with contextlib.suppress(psycopg.Error):
            conn.rollback()
        raise
    return marked
