"""The development tools as a newcomer meets them: `seedtest-dev db ...` (the embedded
PostgreSQL's lifecycle), the demo on it, and the runtime finding it without DATABASE_URL.

One embedded server on a folder of its own (SEEDTEST_PGDATA), never the checkout's .pgdata/.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from conftest import REPO, create_database, drop_database, run_cli
from seedtest_analytics.db.connection import ConnectionParams

ANSI = re.compile(r"\x1b\[")


def dev(pgdata: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(None, *args, env={"SEEDTEST_PGDATA": str(pgdata)}, module="seedtest_dev")


def shell(pgdata: Path, script: str) -> subprocess.CompletedProcess[str]:
    """A bash script run from the checkout, as a reader would paste it."""
    return subprocess.run(
        ["bash", "-c", script],
        cwd=REPO,
        env={**_env(), "SEEDTEST_PGDATA": str(pgdata)},
        capture_output=True,
        text=True,
        check=False,
    )


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}


@pytest.fixture(scope="module")
def pgdata() -> Iterator[Path]:
    # Not under pytest's (private) temp root: see conftest.server_params.
    folder = Path(tempfile.mkdtemp(prefix="seedtest-devdb-"))
    yield folder / "pgdata"
    dev(folder / "pgdata", "db", "stop")
    shutil.rmtree(folder)


def test_db_lifecycle_demo_and_printed_commands(pgdata: Path) -> None:
    stopped = dev(pgdata, "db", "status")
    assert stopped.returncode == 3 and "not running" in stopped.stdout, stopped
    no_url = dev(pgdata, "db", "url")
    assert no_url.returncode == 1 and no_url.stdout == "", no_url
    assert no_url.stderr.count("\n") == 1 and "seedtest-dev db start" in no_url.stderr

    started = dev(pgdata, "db", "start")
    assert started.returncode == 0, started.stdout + started.stderr
    url = dev(pgdata, "db", "url").stdout.strip()
    assert re.fullmatch(r"postgresql://postgres@/seedtest\?host=/\S+&port=\d+", url), url
    with psycopg.connect(url) as conn:  # a URI libpq accepts as printed
        assert conn.execute("select current_database()").fetchone() == ("seedtest",)
    assert dev(pgdata, "db", "status").returncode == 0

    # The runtime, without DATABASE_URL, runs on it through the tools' entry point.
    init = run_cli(None, "init-db", env={"SEEDTEST_PGDATA": str(pgdata)})
    assert init.returncode == 0, init.stdout + init.stderr
    assert init.stdout.startswith("[INFO] Application schema ready in postgresql://postgres@")

    demo = dev(pgdata, "demo", "--users", "40", "--days", "30", "--seed", "5")
    out = demo.stdout
    assert demo.returncode == 0, out + demo.stderr
    assert not ANSI.search(out + demo.stderr)
    assert "Running with dbt" not in out and "Concurrency:" not in out
    lines = out.splitlines()
    drop = next(i for i, line in enumerate(lines) if "Dropping and re-creating" in line)
    assert drop < next(i for i, line in enumerate(lines) if line.startswith("[INFO] Demo data:"))
    # One line per model built, as many as the pipeline's own count.
    built = re.search(r"\[INFO\] Pipeline: models built=(\d+), ", out)
    assert built, out
    model_lines = [line for line in lines if re.match(r"  \[\s*\d+/\d+\] OK    ", line)]
    assert len(model_lines) == int(built.group(1)) > 5
    # The summary's numbers are the run's and the database's.
    summary = " ".join(line.strip() for line in out.split("Demo summary", 1)[1].splitlines())
    warned = re.search(r"\[WARN\] Skipped (\d+) attempts", out)
    assert warned and f"Skipped attempts ({warned.group(1)})" in summary, summary
    found = re.search(r"\[INFO\] Found (\d+) inactive users", out)
    assert found and f"Inactive: {found.group(1)} of the " in summary
    s_only = re.search(r"(\d+) students? ha(?:s|ve) S but no P", summary)
    assert s_only, summary
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "select count(*) filter (where kpis ? 'S' and not kpis ? 'P'),"
            " count(*) filter (where kpis ? 'S') from public.weekly_kpi"
        ).fetchone()
        features = conn.execute("select count(*) from analytics.features_topic_daily").fetchone()
    assert row is not None and features is not None
    assert int(s_only.group(1)) == row[0] and row[1] == int(found.group(1))
    assert f"features_topic_daily: {features[0]} rows" in summary
    assert "keeps running" in out

    # The printed commands work as printed, from the checkout.
    printed = {
        line.split("#")[0].strip() for line in lines if line.startswith("  ") and "#" in line
    }
    psql = next(c for c in printed if c.endswith(" db psql"))
    query = shell(pgdata, f"{psql} -At -c 'select count(*) from analytics.features_topic_daily'")
    assert query.returncode == 0 and query.stdout.strip() == str(features[0]), query
    env_line = next(c for c in printed if c.startswith("eval "))
    dbt = next(
        line.strip()
        for line in lines
        if line.strip().endswith("dbt build --select features_topic_daily")
    )
    dbt_show = dbt.replace(
        "build --select features_topic_daily",
        "show --inline 'select count(*) as n from analytics.features_topic_daily'",
    )
    shown = shell(pgdata, f"{env_line} && {dbt_show}")
    assert shown.returncode == 0, shown.stdout[-2000:] + shown.stderr[-2000:]
    assert re.search(rf"\|\s*{features[0]}\s*\|", shown.stdout), shown.stdout[-2000:]
    stop = next(line for line in lines if "stop it with:" in line).split("stop it with:")[1]
    assert shlex.split(stop)[-2:] == ["db", "stop"]

    stopping = shell(pgdata, stop.strip())
    assert stopping.returncode == 0, stopping.stdout + stopping.stderr
    assert dev(pgdata, "db", "status").returncode == 3


# --- seedtest-dev generate, and the demo's closing steps -----------------------------------

RAW_DBT = re.compile(r"Running with dbt|Concurrency:|Finished running|Found \d+ models|"
                     r"Completed successfully|Done\. PASS=|START sql|\d\d:\d\d:\d\d ")


def test_generate_writes_a_population_once(server_params: ConnectionParams) -> None:
    """Into DATABASE_URL: the application schema created on an empty database, the demo's
    population written (the line's counts are the tables'); a second time it is refused with
    one line and exit 2, nothing changed; without DATABASE_URL, one line and exit 2."""
    params = create_database(server_params, with_schema=False)
    try:
        first = run_cli(params, "generate", "--users", "30", "--days", "35",
                        "--end-date", "2026-11-30", module="seedtest_dev")
        assert first.returncode == 0, first.stdout + first.stderr
        line = re.fullmatch(
            r"\[INFO\] Generated 30 users, (\d+) exams, \d+ attempts, 2026-10-27 \.\. "
            r"2026-11-30 into postgresql://\S+ \(schema public; created (\d+) missing objects "
            r"of the application schema\)\n", first.stdout)
        assert line, first.stdout
        with psycopg.connect(**params.psycopg_kwargs()) as conn:
            exams, users, last = conn.execute(
                "select count(*), count(distinct user_id),"
                " max((created_at at time zone 'UTC')::date) from public.exam_results"
            ).fetchone() or (0, 0, None)
            before = conn.execute(
                "select (select count(*) from public.weekly_kpi),"
                " (select count(*) from public.session)").fetchone()
        assert exams == int(line.group(1)) > 30 and int(line.group(2)) > 3
        assert 20 <= users <= 31 and last is not None and str(last) >= "2026-11-29"

        again = run_cli(params, "generate", module="seedtest_dev")
        assert again.returncode == 2 and again.stdout == "", again
        assert again.stderr.count("\n") == 1
        assert again.stderr.startswith("[ERROR] ")
        assert "already holds rows in public." in again.stderr
        with psycopg.connect(**params.psycopg_kwargs()) as conn:
            after = conn.execute(
                "select (select count(*) from public.weekly_kpi),"
                " (select count(*) from public.session)").fetchone()
            assert conn.execute("select count(*) from public.exam_results").fetchone() == (exams,)
        assert after == before

        no_url = run_cli(None, "generate", module="seedtest_dev")
        assert no_url.returncode == 2 and no_url.stderr.count("\n") == 1, no_url
        assert "DATABASE_URL is not set" in no_url.stderr
    finally:
        drop_database(server_params, params)


def test_demo_training_and_backtest_steps_print_one_line_per_step(
    server_params: ConnectionParams, tmp_path: Path
) -> None:
    """After the summary, the demo trains the churn model and backtests S (45 days are
    enough for both): one line per dbt model and the steps' own lines, no raw dbt output."""
    pytest.importorskip("sklearn")
    params = create_database(server_params, with_schema=False)
    try:
        demo = subprocess.run(
            [sys.executable, "-m", "seedtest_dev", "demo", "--users", "60", "--days", "45"],
            cwd=tmp_path, env={**_env(), "DATABASE_URL": params.to_url(),
                               "SEEDTEST_DBT_TESTS": "false"},
            capture_output=True, text=True, check=False,
        )
        assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
        after = demo.stdout.split("Demo summary", 1)[1].splitlines()
        closing = after[next(i for i, line in enumerate(after) if line.startswith("[")):]
        assert not RAW_DBT.search("\n".join(closing) + demo.stderr), closing
        for line in closing:
            assert re.match(r"\[(INFO|WARN)\] |  \[\s*\d+/\d+\] (OK|ERROR) ", line), line
        assert any(re.match(r"  \[\s*\d+/\d+\] OK ", line) for line in closing), closing
        assert closing[-1].startswith("[INFO] Backtest report of the demo data: ")
        assert (tmp_path / "demo-backtest.html").is_file()
    finally:
        drop_database(server_params, params)
