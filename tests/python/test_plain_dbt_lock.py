"""A plain `dbt build` of the project's models is locked like the CLI: each model takes the
run lock for its transaction, so a CLI run cannot start writing while a plain build writes;
and the P/S step only scores inputs built for its own anchor."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from background import wait_for
from conftest import REPO, run_cli
from seedtest_analytics.db.connection import ConnectionParams
from seedtest_analytics.errors import RunError
from seedtest_analytics.jobs.inputs_check import check_inputs_anchor
from test_privileges import ANCHOR, admin, seed

ENV = {"ACTIVITY_TIMEZONE": "UTC", "SEEDTEST_FRESHNESS_HOURS": "0"}


@pytest.fixture
def night(fresh_db: ConnectionParams, tmp_path: Path) -> Iterator[ConnectionParams]:
    with admin(fresh_db) as conn:
        seed(conn)
    env = {**ENV, "DBT_TARGET_PATH": str(tmp_path / "target"),
           "DBT_LOG_PATH": str(tmp_path / "logs")}
    done = run_cli(fresh_db, "run", "--date", (ANCHOR - dt.timedelta(days=1)).isoformat(),
                   env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    yield fresh_db


def test_a_plain_dbt_build_holds_the_run_lock(night: ConnectionParams, tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SEEDTEST_LOCK")},
        **night.dbt_env(), **ENV, "ANCHOR_DATE": ANCHOR.isoformat(),
        "DBT_TARGET_PATH": str(tmp_path / "plain-target"), "DBT_LOG_PATH": str(tmp_path / "pl"),
    }
    dbt = str(Path(sys.executable).with_name("dbt"))
    with admin(night) as blocker:
        blocker.execute("begin")
        blocker.execute("lock table analytics.user_last_activity in access exclusive mode")
        out = (tmp_path / "plain.out").open("wb")
        plain = subprocess.Popen(
            [dbt, "build", "--selector", "nightly", "--project-dir", str(REPO),
             "--profiles-dir", str(REPO / "profiles")],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
        try:
            with admin(night) as probe:
                def waiting() -> bool:
                    if plain.poll() is not None:
                        pytest.fail((tmp_path / "plain.out").read_text()[-4000:])
                    row = probe.execute(
                        "select count(*) from pg_locks where not granted"
                        " and relation = 'analytics.user_last_activity'::regclass"
                    ).fetchone()
                    return bool(row and row[0])

                wait_for("the plain build waiting on user_last_activity", waiting)
            # the plain build holds the run lock inside that model's transaction
            cli = run_cli(night, "run", "--date", ANCHOR.isoformat(), env={
                **ENV, "SEEDTEST_LOCK_WAIT_SECONDS": "1", "SEEDTEST_LOCK_TIMEOUT_SECONDS": "3",
                "DBT_TARGET_PATH": str(tmp_path / "cli-target"),
                "DBT_LOG_PATH": str(tmp_path / "cli-logs")})
            assert cli.returncode == 1, cli.stdout[-3000:] + cli.stderr
            assert "another seedtest-analytics run is still in progress" in cli.stderr, (
                cli.stderr)
        finally:
            blocker.execute("rollback")
            plain.wait()
            out.close()
    assert plain.returncode == 0, (tmp_path / "plain.out").read_text()[-4000:]


def test_the_ps_step_checks_its_inputs_anchor(night: ConnectionParams) -> None:
    with psycopg.connect(**night.psycopg_kwargs()) as conn:
        day = ANCHOR - dt.timedelta(days=1)
        check_inputs_anchor(conn, "analytics", "inactive_user_scoring_inputs", day)
        with pytest.raises(RunError, match=f"inputs of anchor {day.isoformat()}"):
            check_inputs_anchor(conn, "analytics", "inactive_user_scoring_inputs", ANCHOR)
