"""Any dbt selection is safe: plain dbt, run in-process with dbtRunner against a real
database, after a build for another anchor.

features_topic_daily replaces the days of its window from the per-run tables
(int_attempts__windowed, int_topic_daily__aggregated). A selection that leaves those out
would read tables built for another anchor; it must fail before deleting anything (the table
stays exactly as it was, computed_at included), while every selection that builds them
computes the reference rows (tests/python/reference.py, from the raw exam rows) for its window
and leaves the other days untouched. The first build (every day up to the anchor) is checked
the same way, also when the per-run tables already exist.

Each case runs on its own copy of one database built for anchor A (CREATE DATABASE ...
TEMPLATE), with the session time zone of conftest and days in America/New_York.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

import reference
from conftest import create_database, drop_database
from seedtest_analytics.db.connection import ConnectionParams
from seedtest_analytics.dbt.runner import dbt_env
from seedtest_analytics.paths import project_root
from seedtest_dev.synthetic import generate_demo

TZ = "America/New_York"
ANCHOR_A = dt.date(2025, 10, 10)
ANCHOR_B = dt.date(2025, 10, 15)
LOOKBACK = 7
SINCE_B = ANCHOR_B - dt.timedelta(days=LOOKBACK)
SELECT_FEATURES = (
    "select " + ", ".join(reference.COLUMNS) + ", computed_at from analytics.features_topic_daily"
)

Table = dict[reference.Key, tuple[Any, ...]]


def dbt(params: ConnectionParams, *args: str, anchor: dt.date) -> tuple[bool, str]:
    """One plain dbt invocation in this process (as a dbt user runs it); (success, errors)."""
    from dbt.cli.main import dbtRunner

    os.environ.update(dbt_env(params))
    root = project_root()
    variables = {"anchor_date": anchor.isoformat(), "lookback_days": LOOKBACK,
                 "activity_timezone": TZ}
    result = dbtRunner().invoke([
        *args, "--project-dir", str(root), "--profiles-dir", str(root / "profiles"),
        "--vars", json.dumps(variables), "--quiet",
    ])
    messages = [str(result.exception)] if result.exception else []
    for node in getattr(result.result, "results", None) or []:
        if str(node.status) in ("error", "fail"):
            messages.append(f"{node.node.name}: {node.message}")
    return bool(result.success), "\n".join(messages)


def connect(params: ConnectionParams) -> psycopg.Connection:
    return psycopg.connect(**params.psycopg_kwargs(), autocommit=True)


def features(params: ConnectionParams) -> Table:
    with connect(params) as conn:
        rows = conn.execute(SELECT_FEATURES).fetchall()
    return {(row[0], row[1], row[2]): tuple(row) for row in rows}


def table_exists(params: ConnectionParams, name: str) -> bool:
    with connect(params) as conn:
        row = conn.execute("select to_regclass(%s) is not null", (name,)).fetchone()
    return bool(row and row[0])


def sources(params: ConnectionParams) -> reference.Sources:
    with connect(params) as conn:
        return reference.load_sources(conn)


def differences(actual: Table, expected: dict[reference.Key, reference.FeatureRow]) -> list[str]:
    problems = [f"missing {key}" for key in sorted(expected.keys() - actual.keys())]
    problems += [f"unexpected {key}" for key in sorted(actual.keys() - expected.keys())]
    for key in sorted(actual.keys() & expected.keys()):
        want = expected[key].as_tuple()
        for index, column in enumerate(reference.COLUMNS):
            got, wanted = actual[key][index], want[index]
            if isinstance(wanted, float) and got is not None:
                same = math.isclose(float(got), wanted, rel_tol=0.0, abs_tol=1e-9)
            else:
                same = got == wanted
            if not same:
                problems.append(f"{key} {column}: got {got!r}, want {wanted!r}")
    return problems


@pytest.fixture(scope="module")
def built_for_a(server_params: ConnectionParams) -> Iterator[ConnectionParams]:
    """A database whose every model was built by plain `dbt run` for ANCHOR_A; exams go on
    until ANCHOR_B (so the window of B has rows the build for A does not know)."""
    params = create_database(server_params)
    try:
        with connect(params) as conn:
            generate_demo(conn, users=40, days=45, seed=17, end_date=ANCHOR_B)
        ok, errors = dbt(params, "run", anchor=ANCHOR_A)
        assert ok, errors
        yield params
    finally:
        drop_database(server_params, params)


@pytest.fixture
def copy_of_a(
    server_params: ConnectionParams, built_for_a: ConnectionParams
) -> Iterator[ConnectionParams]:
    params = create_database(server_params, template=built_for_a)
    try:
        yield params
    finally:
        drop_database(server_params, params)


def test_build_for_a_is_the_reference(built_for_a: ConnectionParams) -> None:
    """The first plain `dbt run` (no table yet) built every day with data up to ANCHOR_A."""
    expected = reference.features(sources(built_for_a), anchor=ANCHOR_A, timezone=TZ)
    actual = features(built_for_a)
    assert not differences(actual, expected)
    assert min(key[2] for key in actual) < ANCHOR_A - dt.timedelta(days=30)
    assert max(key[2] for key in actual) == ANCHOR_A


# (dbt arguments, whether the selection builds the per-run tables)
SELECTIONS = [
    (("run", "--select", "features_topic_daily"), False),
    (("run", "--select", "features_topic_daily+"), False),
    (("build", "--select", "features_topic_daily+"), False),
    (("run", "--select", "+features_topic_daily"), True),
    (("run", "--selector", "features"), True),
    (("run", "--selector", "backfill"), True),
    (("run", "--selector", "inactivity"), True),
    (("build", "--selector", "nightly"), True),
]


@pytest.mark.parametrize(
    ("args", "builds_window"), SELECTIONS, ids=[" ".join(args) for args, _ in SELECTIONS]
)
def test_selection_after_a_build_for_another_anchor(
    copy_of_a: ConnectionParams, args: tuple[str, ...], builds_window: bool
) -> None:
    before = features(copy_of_a)
    ok, errors = dbt(copy_of_a, *args, anchor=ANCHOR_B)
    after = features(copy_of_a)
    if not builds_window:
        assert not ok, "a selection reading per-run tables of another anchor succeeded"
        assert "features_topic_daily not built, nothing deleted" in errors, errors
        assert "int_topic_daily__aggregated was built for anchor_date=2025-10-10" in errors
        assert after == before, "the failed run changed features_topic_daily"
        return
    assert ok, errors
    expected = reference.features(sources(copy_of_a), anchor=ANCHOR_B, timezone=TZ,
                                  since=SINCE_B)
    in_window = {key: row for key, row in after.items() if SINCE_B <= key[2] <= ANCHOR_B}
    assert len(expected) > 50
    assert not differences(in_window, expected)
    outside = {key: row for key, row in after.items() if not SINCE_B <= key[2] <= ANCHOR_B}
    assert outside == {k: v for k, v in before.items() if not SINCE_B <= k[2] <= ANCHOR_B}
    # the build for A could not know the days after it: the window really was recomputed
    assert any(key[2] > ANCHOR_A for key in in_window)


def test_features_alone_with_the_vars_of_the_last_build(copy_of_a: ConnectionParams) -> None:
    """Selecting features_topic_daily alone, with the vars the per-run tables were built for,
    re-uses them: the window is replaced by the same rows (only computed_at moves)."""
    before = features(copy_of_a)
    ok, errors = dbt(copy_of_a, "run", "--select", "features_topic_daily", anchor=ANCHOR_A)
    assert ok, errors
    after = features(copy_of_a)
    assert {k: v[:-1] for k, v in after.items()} == {k: v[:-1] for k, v in before.items()}
    window = [k for k in after if ANCHOR_A - dt.timedelta(days=LOOKBACK) <= k[2] <= ANCHOR_A]
    assert window and all(after[k][-1] > before[k][-1] for k in window)


def test_first_build_when_the_per_run_tables_exist(
    server_params: ConnectionParams, copy_of_a: ConnectionParams
) -> None:
    """features_topic_daily dropped (or never built: a dry run first) while the per-run tables
    exist for the window only: its first build needs all history, so it fails without creating
    the table, and --full-refresh builds every day up to the anchor."""
    with connect(copy_of_a) as conn:
        conn.execute("drop table analytics.features_topic_daily cascade")
    ok, errors = dbt(copy_of_a, "run", "--select", "+features_topic_daily", anchor=ANCHOR_B)
    assert not ok
    assert "its first build (and --full-refresh) reads all history" in errors, errors
    assert not table_exists(copy_of_a, "analytics.features_topic_daily")
    ok, errors = dbt(copy_of_a, "run", "--select", "+features_topic_daily", "--full-refresh",
                     anchor=ANCHOR_B)
    assert ok, errors
    expected = reference.features(sources(copy_of_a), anchor=ANCHOR_B, timezone=TZ)
    assert not differences(features(copy_of_a), expected)


# --- the selectors are the CLI's jobs -------------------------------------------------------

LISTED: dict[tuple[str, ...], frozenset[str]] = {}


def listed(*args: str) -> set[str]:
    """`dbt ls` of the models, data tests and unit tests a selection holds (what `dbt build`
    runs; sources are only read). Once per selection and test process: the project does not
    change while the tests run."""
    if args not in LISTED:
        LISTED[args] = frozenset(_dbt_ls(*args))
    return set(LISTED[args])


def _dbt_ls(*args: str) -> set[str]:
    from dbt.cli.main import dbtRunner

    root = project_root()
    result = dbtRunner().invoke([
        "ls", *args, "--resource-types", "model", "test", "unit_test",
        "--project-dir", str(root), "--profiles-dir", str(root / "profiles"),
        "--vars", json.dumps({"anchor_date": ANCHOR_A.isoformat()}), "--output", "name",
        "--quiet",
    ])
    assert result.success, result.exception
    return set(result.result)


BUILDABLE = ("--indirect-selection", "buildable")
NO_UNIT = "resource_type:unit_test"  # the unit tests run in CI (below), not every night
JOBS = [
    # selector, the same selection spelled out (what the CLI passed before selectors.yml)
    ("nightly", ("--exclude", "tag:post_write", NO_UNIT, *BUILDABLE)),
    ("nightly_dry_run", ("--exclude", "tag:post_write", NO_UNIT, "features_topic_daily",
                         *BUILDABLE)),
    ("features", ("--select", "+features_topic_daily", "--exclude", NO_UNIT, *BUILDABLE)),
    ("features_dry_run", ("--select", "+features_topic_daily", "--exclude",
                          "features_topic_daily", NO_UNIT, *BUILDABLE)),
    # ... and the learned churn model's inputs (the logistic mode of the P/S step)
    ("inactivity", ("--select", "+inactive_user_scoring_inputs", "+user_ability_as_of",
                    "+churn_user_anchors", "--exclude", "tag:post_write", NO_UNIT,
                    *BUILDABLE)),
    ("backfill", ("--select", "+features_topic_daily", "+int_activity_daily", "--exclude",
                  NO_UNIT, *BUILDABLE)),
    ("post_write", ("--select", "tag:post_write")),
]


@pytest.mark.parametrize(("selector", "spelled_out"), JOBS, ids=[job[0] for job in JOBS])
def test_selector_is_the_jobs_selection(selector: str, spelled_out: tuple[str, ...]) -> None:
    nodes = listed("--selector", selector)
    assert nodes == listed(*spelled_out)
    assert nodes
    if selector != "post_write":
        assert "weekly_kpi__scores_in_unit_range" not in nodes
    assert ("features_topic_daily" in nodes) == (
        selector in ("nightly", "features", "inactivity", "backfill")
    )


def test_unit_tests_pass_and_stay_out_of_the_jobs(copy_of_a: ConnectionParams) -> None:
    """The unit tests check the models' SQL on fixed inputs: CI runs every one of them here
    (`dbt test --select test_type:unit`, against the built models' columns), and no job's
    selector runs them again every night."""
    unit_tests = listed("--select", "test_type:unit")
    assert len(unit_tests) >= 10, unit_tests
    ok, errors = dbt(copy_of_a, "test", "--select", "test_type:unit", anchor=ANCHOR_B)
    assert ok, errors
    for selector, _ in JOBS:
        assert not unit_tests & listed("--selector", selector), selector


def test_the_window_check_finds_what_the_window_replace_got_wrong(
    copy_of_a: ConnectionParams,
) -> None:
    """features_topic_daily__window_matches_source (a warning) against the run's expanded
    attempts: none after the build, then one row each for a row missing from the window, a
    surplus row and a row whose counts differ (and none for rows outside the window)."""
    from dbt.cli.main import dbtRunner

    def warned_rows() -> int:
        os.environ.update(dbt_env(copy_of_a))
        root = project_root()
        result = dbtRunner().invoke([
            "test", "--select", "features_topic_daily__window_matches_source",
            "--project-dir", str(root), "--profiles-dir", str(root / "profiles"),
            "--vars", json.dumps({"anchor_date": ANCHOR_A.isoformat(),
                                  "lookback_days": LOOKBACK, "activity_timezone": TZ}),
            "--quiet",
        ])
        [node] = [r for r in result.result.results if r.node.resource_type == "test"]
        assert str(node.status) in ("pass", "warn"), node.message
        return int(node.failures or 0)

    assert warned_rows() == 0
    first = ANCHOR_A - dt.timedelta(days=LOOKBACK)
    with connect(copy_of_a) as conn:
        keys = conn.execute(
            "select user_id, topic_id, date from analytics.features_topic_daily"
            " where date between %s and %s order by 1, 2, 3 limit 2", (first, ANCHOR_A),
        ).fetchall()
        outside = conn.execute(
            "select user_id, topic_id, date from analytics.features_topic_daily"
            " where date < %s limit 1", (first,),
        ).fetchone()
        assert len(keys) == 2 and outside is not None
        conn.execute("delete from analytics.features_topic_daily"
                     " where user_id = %s and topic_id = %s and date = %s", keys[0])
        conn.execute("update analytics.features_topic_daily set hints = hints + 1"
                     " where user_id = %s and topic_id = %s and date = %s", keys[1])
        conn.execute("update analytics.features_topic_daily set attempts = attempts + 1"
                     " where user_id = %s and topic_id = %s and date = %s", outside)
        conn.execute(
            "insert into analytics.features_topic_daily"
            " select user_id, 'no-such-topic', date, attempts, correct, avg_time_ms, hints,"
            " theta_estimate, theta_sd, rt_median, improvement, last_seen_at, computed_at"
            " from analytics.features_topic_daily where user_id = %s and topic_id = %s"
            " and date = %s", keys[1],
        )
    assert warned_rows() == 3
