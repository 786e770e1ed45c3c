"""`seedtest-dev bench` at a small scale, every option on: the harness runs end to end and
reports every row it promises (about 4 minutes: scripts/test-bench.sh, not part of CI; the
smoke run in test_bench.py is). Nothing here asserts on time (the machine is shared); the
bench checks its own results (the old strategy's rows equal the new ones) and the test
asserts on those.
"""

from __future__ import annotations

import re
import subprocess
import uuid
from pathlib import Path

import pytest

from conftest import run_cli
from seedtest_analytics.db.connection import ConnectionParams
from seedtest_dev.bench import BEGIN_MARK, END_MARK
from test_bench import _drop, _table_rows

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
