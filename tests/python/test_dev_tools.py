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
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from conftest import REPO, run_cli

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
