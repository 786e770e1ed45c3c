"""The weekly_kpi write: P and S merged into `kpis` for every scored user, in one transaction.

Other jobs own the other keys of `kpis` (I_t, E_t, R_t, A_t, ...), so the write merges
instead of replacing, never writes a null, and leaves alone a row whose `kpis` is not a JSON
object (merging into an array or a scalar would destroy it).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from ..scoring.inputs import Score
from .locking import assert_held

_TEMP_TABLE = "seedtest_kpi_scores"


@dataclass(frozen=True)
class WriteResult:
    written: int
    not_object: list[tuple[str, dt.date]] = field(default_factory=list)


def write_scores(
    conn: psycopg.Connection, scores: Sequence[Score], *, schema: str = "public"
) -> WriteResult:
    """Upsert P/S of `scores` into schema.weekly_kpi; all or nothing.

    Commits on success; on any error rolls back and re-raises. `not_object` lists the
    (user_id, week_start) rows that were left untouched because their kpis is not an object.
    Two scores for the same (user_id, week_start) make the upsert fail (and roll back).
    """
    if conn.autocommit:
        raise ValueError("write_scores needs a connection that is not in autocommit mode")
    temp = sql.Identifier("pg_temp", _TEMP_TABLE)
    kpi = sql.Identifier(schema, "weekly_kpi")
    try:
        # First in the transaction: the run still holds its lock, and no later run can start
        # writing before this transaction ends (locking.py). A no-op outside a locked run.
        assert_held(conn, "the weekly_kpi write")
        with conn.cursor() as cur:
            # jsonb gets a float8 through its text form: with extra_float_digits > 0 (PG 12+)
            # that is the shortest exact form, whatever the session had set.
            cur.execute("set local extra_float_digits = 3")
            cur.execute(
                sql.SQL(
                    "create temp table {} (user_id text not null, week_start date not null,"
                    " p float8, s float8, s_model int4) on commit drop"
                ).format(temp)
            )
            copied = 0
            # Binary COPY: floats go over bit for bit and dates do not depend on DateStyle.
            with cur.copy(
                sql.SQL(
                    "copy {} (user_id, week_start, p, s, s_model) from stdin (format binary)"
                ).format(temp)
            ) as copy:
                copy.set_types(["text", "date", "float8", "float8", "int4"])
                for score in scores:
                    if score.p is None and score.s is None:
                        continue  # nothing to write; an empty update would still move updated_at
                    copy.write_row(
                        (score.user_id, score.week_start, score.p, score.s, score.s_model)
                    )
                    copied += 1
            # One statement, so the rows skipped by the `where` are exactly those reported:
            # the ones the upsert did not return. A data-modifying CTE always runs to the end.
            cur.execute(
                sql.SQL(
                    """
                    with upserted as (
                        insert into {kpi} as k (user_id, week_start, kpis, created_at, updated_at)
                        select user_id, week_start,
                               jsonb_strip_nulls(jsonb_build_object(
                                   'P', p, 'S', s, 'S_model', s_model)),
                               now(), now()
                        from {temp}
                        on conflict (user_id, week_start) do update
                            -- a new S drops the S_model of the old one (the heuristic S has none)
                            set kpis = case when excluded.kpis ? 'S'
                                            then k.kpis - 'S_model' else k.kpis end
                                       || excluded.kpis,
                                updated_at = excluded.updated_at
                            where jsonb_typeof(k.kpis) = 'object'
                        returning k.user_id, k.week_start
                    )
                    select t.user_id, t.week_start
                    from {temp} as t
                    where not exists (
                        select from upserted as u
                        where u.user_id = t.user_id and u.week_start = t.week_start
                    )
                    order by t.user_id, t.week_start
                    """
                ).format(kpi=kpi, temp=temp)
            )
            not_object = [(user_id, week) for user_id, week in cur.fetchall()]
        conn.commit()
    except BaseException:
        # A lost connection cannot roll back (the server already did): keep the first error.
        with contextlib.suppress(psycopg.Error):
            conn.rollback()
        raise
    return WriteResult(written=copied - len(not_object), not_object=not_object)
