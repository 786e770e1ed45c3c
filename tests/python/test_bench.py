"""`seedtest-dev bench` at a small scale: the harness runs end to end and reports every
row it promises. Nothing here asserts on time (the machine is shared); the bench checks its
own results (the old strategy's rows equal the new ones) and the test asserts on those.
"""

from __future__ import annotations

import re
import subprocess
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from conftest import run_cli
from seedtest_analytics.db.connection import ConnectionParams
from seedtest_dev.bench import BEGIN_MARK, END_MARK, floor_sql, write_report
from seedtest_dev.rules import improvement_index, improvement_sql

EXPECTED_ROWS = (
    "data generation",
    "(a) first night: `seedtest-analytics run",
    "(b) nightly: `seedtest-analytics run",
    "(e) floor: one statement",
    "`seedtest-analytics aggregate --date",
    "`seedtest-analytics detect-inactivity --date",
    "(d) row-at-a-time aggregate on the attempt view, per combination",
    "(d) user-at-a-time P/S on the attempt view, per user",
    "(d) row-at-a-time aggregate on the indexed copy, per combination",
    "(d) user-at-a-time P/S on the indexed copy, per user",
    "P/S scale: 2000 users",
    "(b) nightly again, ",
    "history 10 days: nightly command",
    "history 20 days: nightly command",
)
EXPECTED_RATIOS = (
    "row-at-a-time (attempt view) / nightly command, per combination",
    "row-at-a-time (indexed copy) / nightly command, per combination",
    "user-at-a-time P/S (attempt view), projected for every inactive user",
    "nightly command / floor",
    "nightly command's models / floor",
    "nightly command, per million window attempt rows",
    "nightly command: share of dbt data tests",
    "nightly command with 2,000 more known ids / without",
    "nightly command, max / min over history lengths 10, 20 days",
)
EXPECTED_PHASES = (
    "Python start-up",
    "dbt start-up and parse",
    "dbt models",
    "dbt data tests (wall time",
    "P/S step",
    "whole process",
)


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


@pytest.fixture
def bench_run(
    fresh_db: ConnectionParams, tmp_path: Path
) -> tuple[subprocess.CompletedProcess[str], str, str]:
    """One small benchmark on the test server, in a database of its own (dropped after)."""
    name = f"bench_{uuid.uuid4().hex[:10]}"
    output = tmp_path / "BENCH.md"
    output.write_text("# Notes kept by hand\n\n" + BEGIN_MARK + "\nold\n" + END_MARK + "\ntail\n")
    try:
        result = run_cli(
            fresh_db,
            "bench",
            "--attempts",
            "20000",
            "--sample",
            "20",
            "--history",
            "10,20",
            "--ps-users",
            "2000",
            "--repeat",
            "1",
            "--database",
            name,
            "--output",
            str(output),
            module="seedtest_dev",
        )
    finally:
        server = fresh_db.with_dbname("postgres")
        for db in (name, f"{name}_h10", f"{name}_h20"):
            _drop(server, db)
    return result, output.read_text(), name


def test_bench_small_scale_reports_every_row(
    bench_run: tuple[subprocess.CompletedProcess[str], str, str],
) -> None:
    result, report, name = bench_run
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # The report is written between the markers; the text around them is kept.
    assert report.startswith("# Notes kept by hand\n")
    assert report.rstrip().endswith("tail")
    assert "\nold\n" not in report
    assert report.count(BEGIN_MARK) == 1 and report.count(END_MARK) == 1
    assert f"--database {name}" in report
    # Machine description.
    for key in ("cpus (nproc)", "memory", "postgresql", "python", "date", "bench process peak RSS"):
        assert f"| {key} |" in report
    results = _table_rows(report, "Results")
    for expected in EXPECTED_ROWS:
        assert any(step.startswith(expected) for step in results), (expected, list(results))
    ratios = _table_rows(report, "Ratios")
    for expected in EXPECTED_RATIOS:
        assert any(r.startswith(expected) for r in ratios), (expected, list(ratios))
    for cells in ratios.values():
        assert cells[0] and "nan" not in cells[0], cells
    # The nightly command's breakdown: every phase, and the phases add up to the whole.
    phases = _table_rows(report, "Where the nightly command's time goes")
    for expected in EXPECTED_PHASES:
        assert any(p.startswith(expected) for p in phases), (expected, list(phases))
    seconds = {name: float(cells[0]) for name, cells in phases.items() if name != "phase"}
    whole = seconds.pop("whole process")
    assert seconds[next(p for p in seconds if p.startswith("dbt models"))] > 0
    assert seconds[next(p for p in seconds if p.startswith("dbt data tests"))] > 0
    assert abs(sum(seconds.values()) - whole) <= 0.05 * whole + 0.05
    targets = _table_rows(report, "Targets")
    targets.pop("target")  # the header
    statuses = [cells[-1] for cells in targets.values()]
    # the speed-up, the floor ratio, 10M attempts < 60 s, P/S time and memory
    assert len(statuses) == 5, targets
    assert statuses.count("not measured") == 3  # 10M attempts, the two targets at 1M users
    assert all(s in ("met", "MISSED", "not measured") for s in statuses)
    # The bench's own cross-checks all hold.
    assert "MISMATCH" not in report
    for variant in ("attempt view", "indexed copy"):
        assert f"{variant}: row-at-a-time rows equal to features_topic_daily's: 20 of 20" in report
        assert re.search(
            rf"{variant}: user-at-a-time P/S equal to the new step's: (\d+) of \1", report
        )
    assert "P/S scale: all 2000 users have S in weekly_kpi" in report
    # The table is printed as well.
    assert "### Results" in result.stdout


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
