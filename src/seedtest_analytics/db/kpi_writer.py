"""The weekly_kpi write: P and S merged into `kpis` for every scored user, in one transaction.

Other jobs own the other keys of `kpis` (I_t, E_t, R_t, A_t, ...), so the write merges
instead of replacing, never writes a null, and leaves alone a row whose `kpis` is not a JSON
object (merging into an array or a scalar would destroy it).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from .locking import assert_held

_TEMP_TABLE = "seedtest_kpi_scores"


@dataclass(frozen=True, slots=True)
class Score:
    """P and S of one user's week, as the write merges them into its kpis."""

    user_id: str
    week_start: dt.date
    p: float | None
    s: float | None
    s_model: int | None = None  # the churn model version behind S (None: the heuristic S)


@dataclass(frozen=True)
class WriteResult:
    written: int
    not_object: list[tuple[str, dt.date]] = field(default_factory=list)


def write_scores(
    conn: psycopg.Connection,
    scores: Sequence[Score],
    *,
    schema: str = "public",
    as_of: dt.date | None = None,
    holdout: Callable[[str], bool] | None = None,
) -> WriteResult:
    """Upsert P/S of `scores` into schema.weekly_kpi; all or nothing.

    Commits on success; on any error rolls back and re-raises. `not_object` lists the
    (user_id, week_start) rows that were left untouched because their kpis is not an object.
    Two scores for the same (user_id, week_start) make the upsert fail (and roll back).
    `as_of`: the anchor date S was computed for, written as S_as_of next to S. With
    `holdout` every written row gets `holdout`, its answer for the user (true for the users
    outreach leaves out: scoring/holdout.py).
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
                    " p float8, s float8, s_model int4, s_as_of date, holdout boolean)"
                    " on commit drop"
                ).format(temp)
            )
            copied = 0
            # Binary COPY: floats go over bit for bit and dates do not depend on DateStyle.
            with cur.copy(
                sql.SQL(
                    "copy {} (user_id, week_start, p, s, s_model, s_as_of, holdout)"
                    " from stdin (format binary)"
                ).format(temp)
            ) as copy:
                copy.set_types(["text", "date", "float8", "float8", "int4", "date", "bool"])
                for score in scores:
                    if score.p is None and score.s is None:
                        continue  # nothing to write; an empty update would still move updated_at
                    if score.s is not None and not math.isfinite(score.s):
                        raise ValueError(f"a non-finite S for user {score.user_id!r}")
                    copy.write_row(
                        (
                            score.user_id,
                            score.week_start,
                            score.p,
                            score.s,
                            score.s_model,
                            as_of if score.s is not None else None,
                            None if holdout is None else holdout(score.user_id),
                        )
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
                                   'P', p, 'S', s, 'S_model', s_model, 'S_as_of', s_as_of,
                                   'holdout', holdout)),
                               now(), now()
                        from {temp}
                        on conflict (user_id, week_start) do update
                            -- a new S drops what belonged to the old one: its S_model (the
                            -- fixed-weight S has none) and the mark of a return since then
                            set kpis = case when excluded.kpis ? 'S'
                                            then k.kpis - array['S_model', 'S_returned_on']
                                            else k.kpis end
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
