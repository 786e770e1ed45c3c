"""What dbt receives (dbt_args, and one real invocation), the log format operators grep, and
DATABASE_URL through libpq's parser."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest

from seedtest_analytics import log
from seedtest_analytics.churn.anchors import AnchorSettings
from seedtest_analytics.config import DBT_VAR_ENV, Settings, load_settings
from seedtest_analytics.db.connection import ConnectionParams, parse_database_url
from seedtest_analytics.db.locking import pipeline_lock
from seedtest_analytics.dbt.runner import POST_WRITE_TAG, dbt_args, invoke
from seedtest_analytics.errors import UsageError

SETTINGS = Settings(anchor_date=dt.date(2025, 6, 18))
ROOT = Path("/project")


def _option(args: list[str], name: str) -> list[str]:
    """The values after `name` up to the next option."""
    if name not in args:
        return []
    values = args[args.index(name) + 1 :]
    end = next((i for i, value in enumerate(values) if value.startswith("--")), len(values))
    return values[:end]


@pytest.mark.parametrize("data_tests", [True, False])
def test_build_arguments(data_tests: bool) -> None:
    args = dbt_args(
        "build",
        SETTINGS,
        root=ROOT,
        select=["+features_topic_daily"],
        exclude=["features_topic_daily"],
        data_tests=data_tests,
    )
    # Without data tests the build is a `dbt run`, which runs no test (post_write or other).
    assert args[0] == ("build" if data_tests else "run")
    excluded = _option(args, "--exclude")
    assert excluded == (
        ["features_topic_daily", f"tag:{POST_WRITE_TAG}"]
        if data_tests
        else ["features_topic_daily"]
    )
    assert _option(args, "--select") == ["+features_topic_daily"]
    assert _option(args, "--indirect-selection") == ["buildable"]
    # The settings go to dbt in the environment (invoke sets settings.dbt_env()): a --vars
    # value that changes every night would make dbt re-parse the whole project.
    assert "--vars" not in args
    assert _option(args, "--project-dir") == ["/project"]
    assert _option(args, "--profiles-dir") == ["/project/profiles"]


def test_other_commands_keep_their_arguments() -> None:
    test = dbt_args("test", SETTINGS, root=ROOT, select=[f"tag:{POST_WRITE_TAG}"], data_tests=False)
    assert test[0] == "test" and _option(test, "--exclude") == []
    docs = dbt_args(
        "docs generate", SETTINGS, root=ROOT, extra_args=["--static"], quiet=True, colors=False
    )
    assert docs[:4] == ["--quiet", "--no-use-colors", "docs", "generate"]
    assert docs[-1] == "--static" and "--select" not in docs and "--indirect-selection" not in docs


def test_the_settings_reach_dbt_as_the_environment_the_macros_read() -> None:
    """Every dbt var has its environment variable (macros/vars/var_text.sql's _var_env_names), as
    text the macros accept; only the backtest's anchor spine, which has none, is --vars."""
    macros = (Path(__file__).resolve().parents[2] / "macros" / "vars" / "var_text.sql").read_text()
    pairs = dict(re.findall(r"'([a-z_]+)': '([A-Z_]+)'", macros))
    assert pairs == DBT_VAR_ENV
    settings = replace(SETTINGS, include_theta=True, default_target=1e-05, lookback_days=12)
    env = settings.dbt_env()
    assert set(env) == set(pairs.values())
    assert env["ANCHOR_DATE"] == "2025-06-18" and env["AGG_INCLUDE_THETA"] == "true"
    assert env["AGG_LOOKBACK_DAYS"] == "12" and float(env["METRICS_DEFAULT_TARGET"]) == 1e-05
    spine = AnchorSettings(
        anchor_date=SETTINGS.anchor_date, churn_anchor_end=SETTINGS.anchor_date
    )
    args = dbt_args("build", spine, root=ROOT)
    assert set(json.loads(_option(args, "--vars")[0])) == {
        "churn_anchor_start", "churn_anchor_end", "churn_anchor_every"
    }


def test_a_new_anchor_keeps_dbts_partial_parse(
    fresh_db: ConnectionParams, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Two nights in a row (a new anchor date, a new lock session): the second invocation
    parses nothing (dbt's log says so), and builds for its own anchor."""
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "target"))
    monkeypatch.setenv("DBT_LOG_PATH", str(tmp_path / "logs"))
    log_file = tmp_path / "logs" / "dbt.log"
    anchors = [dt.date(2025, 6, 18), dt.date(2025, 6, 19)]
    for night, anchor in enumerate(anchors):
        with pipeline_lock(fresh_db, "analytics"):  # a new lock session (pid) each night
            summary = invoke(
                fresh_db,
                "build",
                replace(SETTINGS, anchor_date=anchor, data_tests=False),
                select=["int_user_ids"],
            )
        assert summary.success, summary.errors
        if night:
            last = log_file.read_text().split("Running with dbt")[-1]
            assert "Partial parsing enabled, no changes found, skipping parsing" in last, last
        with psycopg.connect(**fresh_db.psycopg_kwargs()) as conn:
            recorded = conn.execute(
                "select run_window ->> 'anchor_date' from analytics.run_windows"
                " where model = 'int_user_ids'"
            ).fetchone()
        assert recorded == (anchor.isoformat(),)


def test_a_models_only_build_runs_no_test(
    fresh_db: ConnectionParams, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """SEEDTEST_DBT_TESTS=false: dbt receives `run` (its run results say so) and runs the
    models of the selection and no test."""
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "target"))
    settings = load_settings({"SEEDTEST_DBT_TESTS": "false"}, date=SETTINGS.anchor_date.isoformat())
    assert settings == replace(SETTINGS, data_tests=False)
    summary = invoke(fresh_db, "build", settings, select=["+int_user_ids"])
    assert summary.success, summary.errors
    results = json.loads((tmp_path / "target" / "run_results.json").read_text())
    assert results["args"]["which"] == "run"
    kinds = [r["unique_id"].split(".")[0] for r in results["results"]]
    assert set(kinds) == {"model", "operation"}  # the models and the on-run-start hook
    assert summary.models_built == kinds.count("model") >= 1
    assert summary.tests_passed == summary.tests_failed == 0


def test_log_lines_are_the_old_jobs(capsys: pytest.CaptureFixture[str]) -> None:
    log.info("Summary: processed=3, failed=0, duration_ms=12 (100% done)")
    log.warn("Skipped 2 attempts with a null user, topic or time")
    log.debug("hidden")
    log.error("dbt build failed")
    log.set_debug(True)
    try:
        log.debug("user=u1 P=0.5")
    finally:
        log.set_debug(False)
    captured = capsys.readouterr()
    assert captured.out == (
        "[INFO] Summary: processed=3, failed=0, duration_ms=12 (100% done)\n"
        "[WARN] Skipped 2 attempts with a null user, topic or time\n"
        "[DEBUG] user=u1 P=0.5\n"
    )
    assert captured.err == "[ERROR] dbt build failed\n"


@pytest.mark.parametrize(
    "params",
    [
        ConnectionParams("db.internal", 6432, "app", "p@ss:w/rd?&=", "seed test", "require"),
        ConnectionParams("/var/run/postgresql", 5432, "job", "", "seedtest"),
    ],
)
def test_database_url_round_trip(params: ConnectionParams) -> None:
    assert parse_database_url(params.to_url()) == params
    # What the logs and the tools print: a URI clients accept, without the password.
    printable = params.redacted()
    assert parse_database_url(printable) == replace(params, password="", sslmode=None)
    assert not params.password or params.password not in printable
    sqlalchemy = params.to_url().replace("postgresql://", "postgresql+psycopg2://", 1)
    assert parse_database_url(sqlalchemy) == params


def test_database_url_is_a_uri_not_any_conninfo() -> None:
    with pytest.raises(UsageError, match="must start with postgresql://"):
        parse_database_url("host=db.internal dbname=seedtest password=Secret1")
    with pytest.raises(UsageError, match="not a valid PostgreSQL URL") as error:
        parse_database_url("postgresql://app:Secret1@db/seedtest?colour=blue")
    assert "Secret1" not in str(error.value)
    assert os.environ.get("USER", "postgres") == parse_database_url("postgresql://db/x").user
