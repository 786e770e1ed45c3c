"""The weekly_kpi write against a real database: merge, no nulls, non-objects, all or nothing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from seedtest_analytics.db.app_schema import init_db
from seedtest_analytics.db.connection import ConnectionParams
from seedtest_analytics.db.kpi_writer import Score, write_scores
from seedtest_analytics.warehouse.scoring_inputs import (
    ScoringInput,
    read_prior_means,
    read_scoring_inputs,
)

WEEK = dt.date(2025, 10, 27)
OLD = dt.datetime(2001, 2, 3, 4, 5, 6, tzinfo=dt.UTC)
OTHER_KEYS = {"I_t": 0.25, "E_t": 3, "R_t": None, "A_t": [1, 2], "custom": {"nested": "x"}}


@pytest.fixture
def writer(fresh_db: ConnectionParams) -> Iterator[psycopg.Connection]:
    """A connection in transaction mode, as the pipeline uses for the write."""
    with psycopg.connect(**fresh_db.psycopg_kwargs()) as conn:
        yield conn


def seed(conn: psycopg.Connection, user_id: str, kpis: Any, week: dt.date = WEEK) -> None:
    conn.execute(
        "insert into public.weekly_kpi (user_id, week_start, kpis, created_at, updated_at)"
        " values (%s, %s, %s, %s, %s)",
        (user_id, week, Jsonb(kpis), OLD, OLD),
    )


def table(conn: psycopg.Connection) -> list[tuple[Any, ...]]:
    return conn.execute(
        "select user_id, week_start, kpis, created_at, updated_at from public.weekly_kpi"
        " order by user_id, week_start"
    ).fetchall()


def kpis_of(conn: psycopg.Connection, user_id: str, week: dt.date = WEEK) -> Any:
    row = conn.execute(
        "select kpis from public.weekly_kpi where user_id = %s and week_start = %s",
        (user_id, week),
    ).fetchone()
    return None if row is None else row[0]


def test_merge_keeps_other_keys_and_never_writes_null(
    db_conn: psycopg.Connection, writer: psycopg.Connection
) -> None:
    seed(db_conn, "a", {**OTHER_KEYS, "P": 0.1, "S": 0.2})
    seed(db_conn, "b", {**OTHER_KEYS, "P": 0.1, "S": 0.2})
    seed(db_conn, "c", {"P": 0.1})
    seed(db_conn, "d", {})
    result = write_scores(
        writer,
        [
            Score("a", WEEK, 0.3, None),
            Score("b", WEEK, None, 0.7),
            Score("c", WEEK, 0.9, 0.4),
            Score("d", WEEK, None, 0.5),
        ],
    )
    assert result.written == 4
    assert result.not_object == []
    assert kpis_of(db_conn, "a") == {**OTHER_KEYS, "P": 0.3, "S": 0.2}
    assert kpis_of(db_conn, "b") == {**OTHER_KEYS, "P": 0.1, "S": 0.7}
    assert kpis_of(db_conn, "c") == {"P": 0.9, "S": 0.4}
    assert kpis_of(db_conn, "d") == {"S": 0.5}


def test_missing_rows_are_inserted_without_null_keys(
    db_conn: psycopg.Connection, writer: psycopg.Connection
) -> None:
    seed(db_conn, "a", {"I_t": 1}, week=WEEK - dt.timedelta(days=7))  # another week: untouched
    result = write_scores(
        writer,
        [
            Score("a", WEEK, None, 0.4),
            Score("b", WEEK, 0.6, None),
            Score("c", WEEK, 0.1, 0.2),
            Score("nothing", WEEK, None, None),  # nothing to write: no row at all
        ],
    )
    assert result.written == 3
    assert kpis_of(db_conn, "a") == {"S": 0.4}
    assert kpis_of(db_conn, "a", WEEK - dt.timedelta(days=7)) == {"I_t": 1}
    assert kpis_of(db_conn, "b") == {"P": 0.6}
    assert kpis_of(db_conn, "c") == {"P": 0.1, "S": 0.2}
    assert kpis_of(db_conn, "nothing") is None
    # week_start is the date given, whatever the session time zone (not UTC in the tests).
    weeks = db_conn.execute("select distinct week_start from public.weekly_kpi").fetchall()
    assert sorted(weeks) == [(WEEK - dt.timedelta(days=7),), (WEEK,)]


def test_non_object_kpis_are_left_untouched_and_reported(
    db_conn: psycopg.Connection, writer: psycopg.Connection
) -> None:
    seed(db_conn, "arr", [1, 2])
    seed(db_conn, "str", "text")
    seed(db_conn, "num", 42)
    seed(db_conn, "jnull", None)  # the JSON value null, not SQL NULL (kpis is not null)
    seed(db_conn, "ok", {"I_t": 1})
    assert db_conn.execute(
        "select kpis = 'null'::jsonb from public.weekly_kpi where user_id = 'jnull'"
    ).fetchone() == (True,)
    before = {row[0]: row for row in table(db_conn)}
    result = write_scores(
        writer, [Score(u, WEEK, 0.5, 0.5) for u in ("ok", "str", "arr", "num", "jnull")]
    )
    assert result.written == 1
    assert result.not_object == [("arr", WEEK), ("jnull", WEEK), ("num", WEEK), ("str", WEEK)]
    after = {row[0]: row for row in table(db_conn)}
    for user_id in ("arr", "str", "num", "jnull"):
        assert after[user_id] == before[user_id]
    assert after["ok"][2] == {"I_t": 1, "P": 0.5, "S": 0.5}


def test_updated_at_moves_and_created_at_stays(
    db_conn: psycopg.Connection, writer: psycopg.Connection
) -> None:
    seed(db_conn, "a", {"I_t": 1})
    write_scores(writer, [Score("a", WEEK, 0.5, None), Score("new", WEEK, 0.5, None)])
    rows = {row[0]: row for row in table(db_conn)}
    _, _, _, created, updated = rows["a"]
    assert created == OLD
    assert updated > OLD
    assert updated >= dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    _, _, _, created_new, updated_new = rows["new"]
    assert created_new == updated_new == updated  # all one transaction: one now()


@pytest.mark.parametrize("extra_float_digits", [1, 0, -15])
def test_values_round_trip_exactly(
    db_conn: psycopg.Connection, writer: psycopg.Connection, extra_float_digits: int
) -> None:
    # A session that rounds float output must not round what lands in the jsonb.
    writer.execute(f"set extra_float_digits = {extra_float_digits}")
    writer.commit()
    values = [0.1 + 0.2, 1 / 3, 5e-324, 1 - 2**-53, 0.0, 1.0, 0.41357142857142853]
    scores = [Score(f"u{i}", WEEK, v, 1 - v) for i, v in enumerate(values)]
    write_scores(writer, scores)
    for score in scores:
        kpis = kpis_of(db_conn, score.user_id)
        assert kpis["P"] == score.p and kpis["S"] == score.s
        assert isinstance(kpis["P"], float | int)
    stored = db_conn.execute(
        "select (kpis->>'P')::float8 from public.weekly_kpi where user_id = 'u1'"
    ).fetchone()
    assert stored == (1 / 3,)
    assert db_conn.execute(
        "select jsonb_typeof(kpis->'P') from public.weekly_kpi where user_id = 'u1'"
    ).fetchone() == ("number",)


def test_rewriting_is_idempotent(db_conn: psycopg.Connection, writer: psycopg.Connection) -> None:
    seed(db_conn, "a", {**OTHER_KEYS, "S": 0.9})
    seed(db_conn, "bad", [1])
    scores = [Score("a", WEEK, 0.25, None), Score("b", WEEK, 0.5, 0.75), Score("bad", WEEK, 1, 1)]
    first = write_scores(writer, scores)
    snapshot = [row[:3] for row in table(db_conn)]
    second = write_scores(writer, scores)
    assert second == first
    assert [row[:3] for row in table(db_conn)] == snapshot


def test_a_failure_midway_leaves_the_table_as_it_was(
    db_conn: psycopg.Connection, writer: psycopg.Connection
) -> None:
    seed(db_conn, "a", {"I_t": 1, "P": 0.1})
    seed(db_conn, "boom", {"I_t": 2})
    db_conn.execute(
        """
        create function public.fail_for_boom() returns trigger language plpgsql as $$
        begin
            if new.user_id = 'boom' then raise exception 'no writes for boom'; end if;
            return new;
        end $$;
        create trigger fail_for_boom before insert or update on public.weekly_kpi
            for each row execute function public.fail_for_boom();
        """
    )
    before = table(db_conn)
    # "a" and "new" sort before "boom"/"zz", so some rows are written before the error.
    scores = [Score(u, WEEK, 0.5, 0.5) for u in ("a", "new", "boom", "zz")]
    with pytest.raises(psycopg.errors.RaiseException, match="no writes for boom"):
        write_scores(writer, scores)
    assert table(db_conn) == before
    # The connection is usable again: rolled back, nothing left open, temp table gone.
    assert writer.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    db_conn.execute("drop trigger fail_for_boom on public.weekly_kpi")
    assert write_scores(writer, scores).written == 4


def test_a_bad_row_in_the_copy_leaves_the_table_as_it_was(
    db_conn: psycopg.Connection, writer: psycopg.Connection
) -> None:
    seed(db_conn, "a", {"I_t": 1})
    before = table(db_conn)
    with pytest.raises(psycopg.Error):
        write_scores(writer, [Score("a", WEEK, 0.5, 0.5), Score("nul\x00byte", WEEK, 0.5, 0.5)])
    assert table(db_conn) == before
    assert writer.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


def test_duplicate_scores_fail_and_roll_back(
    db_conn: psycopg.Connection, writer: psycopg.Connection
) -> None:
    seed(db_conn, "a", {"I_t": 1})
    before = table(db_conn)
    with pytest.raises(psycopg.errors.CardinalityViolation):
        write_scores(writer, [Score("b", WEEK, 0.1, None), Score("a", WEEK, 0.5, None),
                              Score("a", WEEK, 0.6, None)])
    assert table(db_conn) == before


def test_autocommit_connection_is_refused(db_conn: psycopg.Connection) -> None:
    with pytest.raises(ValueError, match="autocommit"):
        write_scores(db_conn, [Score("a", WEEK, 0.5, 0.5)])
    assert table(db_conn) == []


def test_other_schema_and_empty_input(
    fresh_db: ConnectionParams, db_conn: psycopg.Connection, writer: psycopg.Connection
) -> None:
    init_db(fresh_db, schema="app")
    assert write_scores(writer, [], schema="app").written == 0
    result = write_scores(writer, [Score("a", WEEK, 0.5, None)], schema="app")
    assert result.written == 1
    assert db_conn.execute("select kpis from app.weekly_kpi").fetchall() == [({"P": 0.5},)]
    assert table(db_conn) == []


@pytest.mark.parametrize("autocommit", [True, False])
def test_read_scoring_inputs_and_prior_means(fresh_db: ConnectionParams, autocommit: bool) -> None:
    with psycopg.connect(**fresh_db.psycopg_kwargs(), autocommit=True) as admin:
        # Types as a model might produce them: bigint, numeric, null counts.
        admin.execute(
            """
            create schema analytics;
            create table analytics.inputs as
            select * from (values
                ('u1', date '2025-10-27', 4::bigint, 1::bigint, 3.0::numeric,
                 0.5::float8, 1.0::float8, 1.25::numeric),
                ('u2', date '2025-10-27', null, null, null, null, null, null)
            ) as v(user_id, week_start, days_inactive, active_days, mean_gap_days,
                   ability_mean, ability_sd, target);
            create table analytics.abilities as
            select * from (values ('u1', 0.5::float8), ('u3', -1.5), ('u4', null))
                as v(user_id, ability_mean);
            """
        )
    with psycopg.connect(**fresh_db.psycopg_kwargs(), autocommit=autocommit) as conn:
        rows = sorted(read_scoring_inputs(conn, "analytics", "inputs"), key=lambda r: r.user_id)
        means = read_prior_means(conn, "analytics", "abilities")
    assert rows == [
        ScoringInput("u1", WEEK, 4, 1, 3.0, 0.5, 1.0, 1.25),
        ScoringInput("u2", WEEK, None, 0, 0.0, None, None, None),
    ]
    assert all(type(v) is float for v in (rows[0].mean_gap_days, rows[0].target))
    assert sorted(means) == [-1.5, 0.5]
