"""`dbt-retry` retries only what the nightly commands ran, with the settings of that very
invocation: tampered run results (another command, another selection) and a settings record
that is not the results' invocation (a run killed before dbt wrote its results) are refused
with one line, exit 2, before anything runs."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path
from typing import Any

import psycopg

from conftest import run_cli
from seedtest_analytics.db.connection import ConnectionParams
from test_privileges import ANCHOR, admin, seed

ENV = {"ACTIVITY_TIMEZONE": "UTC", "SEEDTEST_FRESHNESS_HOURS": "0"}


def refused(result: subprocess.CompletedProcess[str]) -> str:
    output = f"exit {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr}"
    assert result.returncode == 2, output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("[ERROR] dbt-retry refused"), output
    assert "Traceback" not in result.stdout + result.stderr, output
    return lines[0]


def partial_parse_misses(logs: Path) -> int:
    text = (logs / "dbt.log").read_text() if (logs / "dbt.log").exists() else ""
    return text.count("Unable to do partial parsing")


def test_retry_refuses_what_no_nightly_command_ran(fresh_db: ConnectionParams, tmp_path: Path
                                                   ) -> None:
    target, logs = tmp_path / "target", tmp_path / "logs"
    env = {**ENV, "DBT_TARGET_PATH": str(target), "DBT_LOG_PATH": str(logs)}
    with admin(fresh_db) as conn:
        seed(conn)
    day = (ANCHOR - dt.timedelta(days=1)).isoformat()
    first = run_cli(fresh_db, "aggregate", "--date", day, env=env)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr
    misses = partial_parse_misses(logs)
    second = run_cli(fresh_db, "aggregate", "--date", ANCHOR.isoformat(), env=env)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr
    # the run id that pairs the files changes every invocation without a re-parse
    assert partial_parse_misses(logs) == misses

    results_path, settings_path = target / "run_results.json", target / "seedtest_settings.json"
    results: dict[str, Any] = json.loads(results_path.read_text())
    record: dict[str, Any] = json.loads(settings_path.read_text())
    assert results["metadata"]["env"]["SEEDTEST_RUN_ID"] == record["run_id"]
    assert record["settings"]["ANCHOR_DATE"] == ANCHOR.isoformat()

    ok = run_cli(fresh_db, "dbt-retry", env=env)
    assert ok.returncode == 0, ok.stdout[-3000:] + ok.stderr
    assert f"(anchor {ANCHOR.isoformat()})" in ok.stdout
    results = json.loads(results_path.read_text())  # the retry's own, paired again

    def tampered(**args: Any) -> dict[str, Any]:
        return {**results, "args": {**results["args"], **args}}

    cases = [
        (tampered(which="run-operation", macro="run_query",
                  args="{sql: 'create table public.pwned as select 1 as x'}"), "run-operation"),
        (tampered(selector=None, select=["+inactive_users"]), "selector"),
        (tampered(exclude=["features_topic_daily"]), "--exclude"),
        (tampered(vars={"anchor_date": "2020-01-01"}), "--vars"),
        (tampered(defer=True, state="/elsewhere"), "--defer"),
        (tampered(which="test", selector="nightly"), "selector"),
    ]
    for bad, why in cases:
        results_path.write_text(json.dumps(bad))
        line = refused(run_cli(fresh_db, "dbt-retry", env=env))
        assert why in line, line
    with admin(fresh_db) as conn:
        assert conn.execute("select to_regclass('public.pwned')").fetchone() == (None,)

    # a run killed after it kept its settings and before dbt wrote its results
    results_path.write_text(json.dumps(results))
    killed = {"run_id": "0" * 32, "settings": {**record["settings"], "ANCHOR_DATE": day}}
    settings_path.write_text(json.dumps(killed))
    line = refused(run_cli(fresh_db, "dbt-retry", env=env))
    assert "not from the invocation" in line, line
    # an earlier version's settings file (no run id) pairs with nothing either
    settings_path.write_text(json.dumps(record["settings"]))
    refused(run_cli(fresh_db, "dbt-retry", env=env))
    # settings are validated as on any night
    settings_path.write_text(json.dumps(
        {**record, "settings": {**record["settings"], "ACTIVITY_TIMEZONE": "Mars/Olympus"}}))
    result = run_cli(fresh_db, "dbt-retry", env=env)
    assert result.returncode == 2 and "ACTIVITY_TIMEZONE" in result.stderr, result.stderr
    with psycopg.connect(**fresh_db.psycopg_kwargs()) as conn:
        assert conn.execute("select count(*) from analytics.features_topic_daily").fetchone()
