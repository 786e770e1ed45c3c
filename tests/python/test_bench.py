"""`seedtest-dev bench`: its arguments, its report file, the floor's SQL, and a smoke run at the
smallest scale. Nothing here asserts on time (the machine is shared); the bench checks its
own results (the old strategy's rows equal the new ones) and the tests assert on those.
The full small-scale run is test_bench_run.py (scripts/test-bench.sh).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from conftest import run_cli
from seedtest_analytics.db.connection import ConnectionParams
from seedtest_dev.bench import BEGIN_MARK, END_MARK, floor_sql, write_report
from seedtest_dev.rules import improvement_index, improvement_sql


def _drop(server: ConnectionParams, name: str) -> None:
    with psycopg.connect(**server.psycopg_kwargs(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
        )


def _table_rows(report: str, header: str) -> dict[str, list[str]]:
    """First cell -> cells of each row of the markdown table under `### header`."""
    section = report.split(f"### {header}", 1)[1].split("\n### ", 1)[0]
    rows = {}
    for line in section.splitlines():
        if line.startswith("| ") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows[cells[0]] = cells[1:]
    return rows


def test_bench_smoke(fresh_db: ConnectionParams, tmp_path: Path) -> None:
    """The cheapest end-to-end run (no history, no P/S scale, one repetition): every command
    it times succeeds and its cross-checks hold. The full small-scale run, with every row the
    report promises, is test_bench_run.py (scripts/test-bench.sh)."""
    name = f"bench_{uuid.uuid4().hex[:10]}"
    output = tmp_path / "BENCH.md"
    try:
        result = run_cli(
            fresh_db, "bench", "--attempts", "3000", "--sample", "3", "--history", "0",
            "--ps-users", "0", "--repeat", "1", "--database", name, "--output", str(output),
            module="seedtest_dev",
        )
    finally:
        _drop(fresh_db.with_dbname("postgres"), name)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = output.read_text()
    results = _table_rows(report, "Results")
    for expected in ("(a) first night", "(b) nightly", "(e) floor"):
        assert any(step.startswith(expected) for step in results), (expected, list(results))
    assert "MISMATCH" not in report
    assert "attempt view: row-at-a-time rows equal to features_topic_daily's: 3 of 3" in report


def test_bench_refuses_a_role_without_createdb(fresh_db: ConnectionParams) -> None:
    role = f"nocreatedb_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(**fresh_db.psycopg_kwargs(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("create role {} login password 'pw' nocreatedb").format(sql.Identifier(role))
        )
    try:
        params = ConnectionParams(
            host=fresh_db.host, port=fresh_db.port, user=role, password="pw", dbname=fresh_db.dbname
        )
        result = run_cli(
            params, "bench", "--attempts", "1000", "--history", "0", module="seedtest_dev"
        )
        assert result.returncode == 2, result.stdout + result.stderr
        assert "lacks CREATEDB" in result.stderr
    finally:
        with psycopg.connect(**fresh_db.psycopg_kwargs(), autocommit=True) as conn:
            conn.execute(sql.SQL("drop role {}").format(sql.Identifier(role)))


@pytest.mark.parametrize(
    "args",
    [
        ("--attempts", "abc"),
        ("--history", "30,x"),
        ("--history", "3"),
        ("--sample", "0"),
        ("--database", "Bad-Name"),
    ],
)
def test_bench_bad_arguments_exit_2(args: tuple[str, str]) -> None:
    result = run_cli(
        None, "bench", *args, env={"DATABASE_URL": "postgresql://nobody@/x"}, module="seedtest_dev"
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith("[ERROR] ")


def test_write_report_replaces_only_the_marked_block(tmp_path: Path) -> None:
    path = tmp_path / "B.md"
    write_report(path, "first")
    assert path.read_text() == f"# Benchmarks\n\n{BEGIN_MARK}\nfirst\n{END_MARK}\n"
    path.write_text("intro\n" + path.read_text() + "analysis\n")
    write_report(path, "second")
    text = path.read_text()
    assert text.startswith("intro\n# Benchmarks\n") and text.endswith("analysis\n")
    assert "second" in text and "first" not in text


def test_floor_sql_bounds_the_window() -> None:
    import datetime as dt

    text = floor_sql(
        source_schema="public", since=dt.date(2025, 10, 25), anchor=dt.date(2025, 11, 1)
    )
    assert "'2025-09-28T00:00:00+00:00'::timestamptz" in text  # 27 days of lead-in
    assert "'2025-11-02T00:00:00+00:00'::timestamptz" in text  # end of the anchor day
    assert "where d >= date '2025-10-25'" in text
    assert "where d >=" not in floor_sql(
        source_schema="public", since=None, anchor=dt.date(2025, 11, 1)
    )


def test_improvement_sql_is_the_python_rule(db_conn: psycopg.Connection) -> None:
    """The improvement index the floor computes in SQL (rules.improvement_sql) is the one
    the old jobs' re-creation and the tests' reference compute in Python."""
    cases = [
        (n_r, c_r, n_p, c_p)
        for n_r in (0, 1, 2, 5, 29, 30, 31, 200)
        for c_r in sorted({0, n_r // 3, n_r})
        for n_p in (0, 1, 7, 40)
        for c_p in sorted({0, n_p // 2, n_p})
    ]
    columns = list(zip(*cases, strict=True))
    rows = db_conn.execute(
        f"select {improvement_sql('n_r', 'c_r', 'n_p', 'c_p')}"
        " from unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[])"
        " with ordinality as t (n_r, c_r, n_p, c_p, i) order by i",
        [list(column) for column in columns],
    ).fetchall()
    assert len(rows) == len(cases) > 100
    for case, (in_sql,) in zip(cases, rows, strict=True):
        expected = improvement_index(*case)
        if expected is None:
            assert in_sql is None, case
        else:
            assert in_sql == pytest.approx(expected, abs=1e-12), case
    assert sum(1 for (value,) in rows if value not in (None, 0.0)) > 50
