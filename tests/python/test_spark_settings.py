"""The settings that say how Spark is reached (SEEDTEST_SPARK_METHOD and the Thrift server's
host, port and auth): dbt and the CLI's own Spark reads take them from the same profile
output, and a bad value stops the run before it connects anywhere (exit 2, one line).

The Spark runs themselves need Java and pyspark: tests/spark (scripts/test-spark.sh).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from conftest import run_cli
from seedtest_analytics import engine
from seedtest_analytics.dbt.runner import environment
from seedtest_analytics.warehouse import spark_thrift

UNREACHABLE_URL = "postgresql://nobody:NoSuchPassw0rd@/nodb?host=/nonexistent-seedtest-socket-dir"
SPARK_ENV = ("SEEDTEST_ENGINE", "SEEDTEST_SPARK_HOST", "SEEDTEST_SPARK_PORT", "SEEDTEST_SPARK_USER",
             "SEEDTEST_SPARK_AUTH", "SEEDTEST_SPARK_METHOD", "SEEDTEST_SPARK_KERBEROS_SERVICE",
             "DBT_ENV_SECRET_SPARK_PASSWORD")


@pytest.fixture(autouse=True)
def no_spark_settings() -> Iterator[None]:
    saved = {name: os.environ.pop(name) for name in SPARK_ENV if name in os.environ}
    yield
    for name in SPARK_ENV:
        os.environ.pop(name, None)
    os.environ.update(saved)


def thrift_connect_kwargs(values: dict[str, str]) -> dict[str, object]:
    with environment({"SEEDTEST_ENGINE": "spark", "SEEDTEST_SPARK_METHOD": "thrift", **values}):
        assert engine.dbt_target_args() == ["--target", "thrift"]
        return spark_thrift._connect_kwargs()


def test_thrift_output_defaults() -> None:
    kwargs = thrift_connect_kwargs({})
    parameters = kwargs.pop("configuration")
    assert kwargs == {"host": "localhost", "port": 10000, "username": "seedtest", "auth": "NONE"}
    # What the models' SQL relies on, set on every Thrift session (dbt's and the P/S read's).
    assert isinstance(parameters, dict)
    assert parameters["spark.sql.session.timeZone"] == "UTC"
    assert parameters["spark.sql.ansi.enabled"] == "false"
    assert parameters["spark.sql.sources.partitionOverwriteMode"] == "dynamic"


def test_thrift_output_from_settings() -> None:
    kwargs = thrift_connect_kwargs({
        "SEEDTEST_SPARK_HOST": "sts.internal", "SEEDTEST_SPARK_PORT": "10001",
        "SEEDTEST_SPARK_USER": "analytics", "SEEDTEST_SPARK_AUTH": "ldap",
        "DBT_ENV_SECRET_SPARK_PASSWORD": "s3cret",
    })
    assert (kwargs["host"], kwargs["port"], kwargs["username"], kwargs["auth"]) == (
        "sts.internal", 10001, "analytics", "LDAP"
    )
    assert kwargs["password"] == "s3cret" and "kerberos_service_name" not in kwargs
    kerberos = thrift_connect_kwargs({"SEEDTEST_SPARK_AUTH": "KERBEROS"})
    assert kerberos["kerberos_service_name"] == "hive" and "password" not in kerberos
    # A password set for a mode that takes none is not handed over (PyHive refuses it).
    assert "password" not in thrift_connect_kwargs({"DBT_ENV_SECRET_SPARK_PASSWORD": "x"})


def test_session_method_is_the_default() -> None:
    with environment({"SEEDTEST_ENGINE": "spark"}):
        assert engine.spark_method() == "session"
        assert engine.dbt_target_args() == ["--target", "spark"]
    with environment({"SEEDTEST_ENGINE": "postgres", "SEEDTEST_SPARK_METHOD": "thrift"}):
        assert engine.dbt_target_args() == []


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"SEEDTEST_SPARK_METHOD": "jdbc"}, "SEEDTEST_SPARK_METHOD must be session or thrift"),
        ({"SEEDTEST_SPARK_METHOD": "thrift", "SEEDTEST_SPARK_PORT": "10k"}, "SEEDTEST_SPARK_PORT"),
        ({"SEEDTEST_SPARK_METHOD": "thrift", "SEEDTEST_SPARK_PORT": "70000"},
         "SEEDTEST_SPARK_PORT"),
        ({"SEEDTEST_SPARK_METHOD": "thrift", "SEEDTEST_SPARK_AUTH": "basic"},
         "SEEDTEST_SPARK_AUTH must be one of"),
        ({"SEEDTEST_SPARK_METHOD": "thrift", "SEEDTEST_SPARK_AUTH": "LDAP"},
         "needs DBT_ENV_SECRET_SPARK_PASSWORD"),
    ],
    ids=["method", "port-text", "port-range", "auth", "ldap-no-password"],
)
def test_bad_spark_settings_stop_before_connecting(env: dict[str, str], fragment: str) -> None:
    # DATABASE_URL points nowhere: a connection attempt would be exit 1, not 2.
    result = run_cli(
        None, "run", "--date", "2025-06-18",
        env={"DATABASE_URL": UNREACHABLE_URL, "SEEDTEST_ENGINE": "spark", **env},
    )
    assert result.returncode == 2, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("[ERROR]")]
    assert len(errors) == 1 and fragment in errors[0], result.stderr
