"""The config package is the only part of the runtime package that touches the process
environment, and within it config/environment.py alone.

load_settings reads every setting once and the other modules receive the values (Settings,
its Safety and Spark parts) from their callers, so the variables the package reads, their
defaults and their validation live in one place. dbt runs in-process and reads its variables
from the environment: config.dbt_environment is the one writer. Checked on the syntax tree, so
comments and strings do not count.
"""

from __future__ import annotations

import ast
import os

import pytest

from conftest import REPO
from seedtest_analytics import config
from seedtest_analytics.config import Safety, Settings, Spark, load_settings
from seedtest_analytics.errors import UsageError

PACKAGE = REPO / "src" / "seedtest_analytics"
CONFIG = PACKAGE / "config"
ALLOWED = {CONFIG / "environment.py"}
# Names through which the process environment is read or written.
ENV_NAMES = {"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"}
# The old proxies that let any module read any variable: gone, and must not come back.
PROXIES = {"environ_get", "environ_has", "environ_copy"}


def environment_uses(source: str) -> list[str]:
    """Each use of os.environ / os.getenv / ... in `source` (attribute, `from os import`)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in ENV_NAMES:
            found.append(f"line {node.lineno}: .{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            found += [
                f"line {node.lineno}: from os import {alias.name}"
                for alias in node.names
                if alias.name in ENV_NAMES or alias.name == "*"
            ]
    return found


def proxy_uses(source: str) -> list[str]:
    """Each use of a name of PROXIES (a call, an import, an attribute, a definition)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        name = None
        if isinstance(node, ast.Name):
            name = node.id
        elif isinstance(node, ast.Attribute):
            name = node.attr
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            name = node.name
        elif isinstance(node, ast.alias):
            name = node.asname or node.name.rsplit(".", 1)[-1]
            if name not in PROXIES:
                name = node.name
        if name in PROXIES:
            found.append(f"line {getattr(node, 'lineno', '?')}: {name}")
    return found


def test_only_config_touches_the_environment() -> None:
    modules = sorted(PACKAGE.rglob("*.py"))
    assert len(modules) > 20  # the package is where this test thinks it is
    offenders = {
        str(path.relative_to(PACKAGE)): uses
        for path in modules
        if path not in ALLOWED and (uses := environment_uses(path.read_text()))
    }
    assert offenders == {}


def test_no_module_reads_a_variable_through_a_proxy() -> None:
    """Nothing asks for an arbitrary variable by name (environ_get and friends): a setting
    is a field of Settings, checked by load_settings, and handed down."""
    offenders = {
        str(path.relative_to(PACKAGE)): uses
        for path in sorted(PACKAGE.rglob("*.py"))
        if (uses := proxy_uses(path.read_text()))
    }
    assert offenders == {}


@pytest.mark.parametrize(
    "source",
    [
        "from seedtest_analytics.config import environ_get\n",
        "from ..config import environ_copy as copy\n",
        "from .. import config\nx = config.environ_has('X')\n",
        "x = environ_get('X')\n",
    ],
)
def test_the_proxy_check_sees_each_way_in(source: str) -> None:
    assert proxy_uses(source)


@pytest.mark.parametrize(
    "source",
    [
        "import os\nx = os.environ.get('X')\n",
        "import os\nx = os.getenv('X')\n",
        "import os\nx = 'X' in os.environ\n",
        "import os\nos.environ['X'] = '1'\n",
        "from os import environ\n",
        "from os import getenv as g\n",
    ],
)
def test_the_check_sees_each_way_in(source: str) -> None:
    assert environment_uses(source)


def test_the_check_passes_config() -> None:
    """config/environment.py itself reads the environment (and the check would see it)."""
    assert environment_uses((CONFIG / "environment.py").read_text())


def test_dbt_environment_sets_and_restores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEEDTEST_ENV_PROBE_SET", "before")
    monkeypatch.delenv("SEEDTEST_ENV_PROBE_UNSET", raising=False)
    saved = config.dbt_environment(
        {"SEEDTEST_ENV_PROBE_SET": "during", "SEEDTEST_ENV_PROBE_UNSET": "new"}
    )
    assert saved == {"SEEDTEST_ENV_PROBE_SET": "before", "SEEDTEST_ENV_PROBE_UNSET": None}
    assert os.environ["SEEDTEST_ENV_PROBE_SET"] == "during"
    assert config.dbt_env_var_context()["SEEDTEST_ENV_PROBE_UNSET"] == "new"
    config.dbt_environment(saved)
    assert os.environ["SEEDTEST_ENV_PROBE_SET"] == "before"
    assert "SEEDTEST_ENV_PROBE_UNSET" not in os.environ


DAY = "2025-06-18"


def test_the_runtime_settings_are_fields_of_settings() -> None:
    """Each value a module used to read itself comes out of load_settings, parsed."""
    loaded = load_settings(
        {
            "SEEDTEST_FRESHNESS_HOURS": "6",
            "SEEDTEST_ALLOW_STALE": "yes",
            "SEEDTEST_LOCK_WAIT_SECONDS": " 7 ",
            "SEEDTEST_LOCK_TIMEOUT_SECONDS": "8",
            "SEEDTEST_STATEMENT_TIMEOUT_SECONDS": "9",
            "SEEDTEST_MAX_FAILED_SHARE": "0.25",
            "SEEDTEST_MAX_FAILED_USERS": "3",
            "SEEDTEST_PUSHGATEWAY_URL": " http://push:9091 ",
            "PGOPTIONS": "-c work_mem=64MB",
            "SEEDTEST_HOLDOUT_SHARE": "0.1",
            "METRICS_CHURN_MODEL_MAX_AGE_DAYS": "20",
            "SEEDTEST_DBT_TESTS": "off",
            "SEEDTEST_ENGINE": "Spark",
            "SEEDTEST_SPARK_SOURCE_SCHEMA": "lake",
            "SEEDTEST_SPARK_METHOD": "thrift",
            "SEEDTEST_SPARK_PORT": "10001",
        },
        date=DAY,
    )
    assert loaded.safety == Safety(
        lock_wait_seconds=7,
        lock_timeout_seconds=8,
        statement_timeout_seconds=9,
        freshness_hours=6,
        allow_stale=True,
        max_failed_share=0.25,
        max_failed_users=3,
        pushgateway_url="http://push:9091",
        pgoptions="-c work_mem=64MB",
    )
    assert (loaded.holdout_share, loaded.churn_model_max_age_days) == (0.1, 20)
    assert loaded.data_tests is False
    assert loaded.spark == Spark(engine="spark", method="thrift", source_schema="lake")
    assert loaded.spark.is_spark and loaded.spark.is_thrift
    # --allow-stale wins over the variable
    assert load_settings({}, date=DAY, allow_stale=True).safety.allow_stale
    assert not load_settings({}, date=DAY).safety.allow_stale


@pytest.mark.parametrize(
    ("env", "line"),
    [
        ({"SEEDTEST_HOLDOUT_SHARE": "1.5"}, "SEEDTEST_HOLDOUT_SHARE must be between 0 and 1"),
        ({"SEEDTEST_MAX_FAILED_SHARE": "2"}, "SEEDTEST_MAX_FAILED_SHARE must be between 0 and 1"),
        ({"SEEDTEST_MAX_FAILED_USERS": "ten"}, "SEEDTEST_MAX_FAILED_USERS must be a whole number"),
        ({"SEEDTEST_ALLOW_STALE": "maybe"}, "SEEDTEST_ALLOW_STALE must be true or false"),
        ({"SEEDTEST_LOCK_WAIT_SECONDS": "-5"}, "SEEDTEST_LOCK_WAIT_SECONDS must be"),
        ({"SEEDTEST_ENGINE": "duckdb"}, "SEEDTEST_ENGINE must be postgres or spark"),
        (
            {"SEEDTEST_ENGINE": "spark", "SEEDTEST_SPARK_SOURCE_SCHEMA": "Lake"},
            "SEEDTEST_SPARK_SOURCE_SCHEMA must be a lowercase PostgreSQL identifier",
        ),
    ],
)
def test_a_bad_value_is_refused_by_load_settings(env: dict[str, str], line: str) -> None:
    with pytest.raises(UsageError, match=line):
        load_settings(env, date=DAY)


def test_the_spark_values_are_read_only_for_spark() -> None:
    """As before: a stray Spark setting does not stop a PostgreSQL run."""
    loaded = load_settings(
        {"SEEDTEST_SPARK_METHOD": "jdbc", "SEEDTEST_SPARK_SOURCE_SCHEMA": "Bad"}, date=DAY
    )
    assert loaded.spark == Spark()


def test_a_bad_churn_model_max_age_is_kept_as_a_problem_not_an_error() -> None:
    """The nightly run warns and keeps the default (scoring/churn_champion.py); train-churn
    refuses: both as before, now decided from the settings."""
    from seedtest_analytics.scoring.churn_champion import max_age_days

    loaded = load_settings({"METRICS_CHURN_MODEL_MAX_AGE_DAYS": "0"}, date=DAY)
    assert loaded.churn_model_max_age_days == 35
    assert "METRICS_CHURN_MODEL_MAX_AGE_DAYS must be between 1 and 3650" in (
        loaded.churn_model_max_age_problem
    )
    with pytest.raises(UsageError, match="METRICS_CHURN_MODEL_MAX_AGE_DAYS"):
        max_age_days(loaded)
    assert max_age_days(Settings(anchor_date=loaded.anchor_date)) == 35
