"""Where the dbt models run: the application's PostgreSQL (default) or Apache Spark.

SEEDTEST_ENGINE=spark builds the models with dbt-spark (`--target spark` of
profiles/profiles.yml; method session runs Spark inside this process, pip extra
`dbt-spark[session]`), or with SEEDTEST_SPARK_METHOD=thrift through a Spark Thrift Server
(`--target thrift`, warehouse/spark_thrift.py; its settings are checked here). The Spark
database SEEDTEST_SPARK_SOURCE_SCHEMA (default `seedtest`) holds copies of the application
tables (exam_results, attempt, weekly_kpi and the optional ones), kept up to date by the
platform's ingestion. The P/S step and weekly_kpi stay on the application's PostgreSQL
(DATABASE_URL): the step reads its inputs from Spark in one query (through the SparkSession
dbt used, or over the Thrift server), and writes the same one-transaction merge.

The other Spark settings (all optional): SEEDTEST_SPARK_MASTER (default local[2]),
SEEDTEST_SPARK_DIR (default <project>/.spark: warehouse and metastore of a local session),
SEEDTEST_SPARK_WAREHOUSE, SEEDTEST_SPARK_METASTORE, SEEDTEST_SPARK_DRIVER_MEMORY,
SEEDTEST_SPARK_SHUFFLE_PARTITIONS.
"""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path

from .config import (
    ENGINE,
    SPARK_MASTER,
    SPARK_SOURCE_SCHEMA,
    Settings,
    environ_get,
    parse_identifier,
)
from .errors import UsageError

ENGINE_ENV = ENGINE.env
SPARK_SOURCE_SCHEMA_ENV = SPARK_SOURCE_SCHEMA.env
POSTGRES = "postgres"
SPARK = "spark"
SPARK_TARGET = "spark"
_ALIASES = {"postgres": POSTGRES, "postgresql": POSTGRES, "spark": SPARK}
METHOD_ENV = "SEEDTEST_SPARK_METHOD"
SESSION = "session"
THRIFT = "thrift"
TARGETS = {SESSION: "spark", THRIFT: "thrift"}  # profiles.yml output per method
AUTH_MODES = ("NONE", "NOSASL", "LDAP", "KERBEROS", "CUSTOM")


def engine() -> str:
    """SEEDTEST_ENGINE: `postgres` (default) or `spark`; anything else is a usage error."""
    raw = environ_get(ENGINE_ENV).strip().lower()
    if not raw:
        return POSTGRES
    if raw not in _ALIASES:
        raise UsageError(f"{ENGINE_ENV} must be postgres or spark (got {raw!r})")
    return _ALIASES[raw]


def is_spark() -> bool:
    return engine() == SPARK


def spark_method() -> str:
    """SEEDTEST_SPARK_METHOD: `session` (default: Spark inside this process) or `thrift`."""
    raw = environ_get(METHOD_ENV).strip().lower() or SESSION
    if raw not in TARGETS:
        raise UsageError(f"{METHOD_ENV} must be session or thrift (got {raw!r})")
    return raw


def is_thrift() -> bool:
    return spark_method() == THRIFT


def spark_target() -> str:
    """The profiles.yml output dbt uses for the Spark method."""
    return TARGETS[spark_method()]


def _validate_thrift() -> None:
    """Checks the thrift settings before anything connects (a bad value is exit code 2)."""
    if not is_thrift():
        return
    port = environ_get("SEEDTEST_SPARK_PORT").strip()
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        raise UsageError(f"SEEDTEST_SPARK_PORT must be a TCP port number (got {port!r})")
    auth = environ_get("SEEDTEST_SPARK_AUTH").strip().upper()
    if auth and auth not in AUTH_MODES:
        raise UsageError(f"SEEDTEST_SPARK_AUTH must be one of {', '.join(AUTH_MODES)}")
    if auth in ("LDAP", "CUSTOM") and not environ_get("DBT_ENV_SECRET_SPARK_PASSWORD"):
        raise UsageError(f"SEEDTEST_SPARK_AUTH={auth} needs DBT_ENV_SECRET_SPARK_PASSWORD")
    try:
        importlib.import_module("pyhive.hive")
    except ImportError:
        raise UsageError(
            f"{METHOD_ENV}=thrift needs PyHive: pip install 'dbt-spark[PyHive]~=1.11'"
        ) from None


def spark_source_schema() -> str:
    """The Spark database holding the copies of the application tables."""
    raw = environ_get(SPARK_SOURCE_SCHEMA_ENV).strip() or SPARK_SOURCE_SCHEMA.default
    return parse_identifier(SPARK_SOURCE_SCHEMA_ENV, raw)


def validate(command: str = "", *, needs_postgres_models: bool = False) -> None:
    """Checks the engine settings before anything connects (a bad value is exit code 2).
    `needs_postgres_models`: the run's churn scorer reads churn_user_anchors on PostgreSQL."""
    if not is_spark():
        return
    spark_source_schema()
    _validate_thrift()
    if command in ("backtest", "train-churn") or needs_postgres_models:
        raise UsageError(
            f"{ENGINE_ENV}=spark: the churn backtest and METRICS_CHURN_MODEL=logistic read"
            " churn_user_anchors on PostgreSQL; on Spark only the heuristic S is supported"
        )


def dbt_target_args() -> list[str]:
    """The dbt arguments that choose the profile target of the engine."""
    return ["--target", spark_target()] if is_spark() else []


def dbt_settings(settings: Settings) -> Settings:
    """The settings dbt gets: on Spark the sources are read from the Spark database (the P/S
    write keeps settings.source_schema, the application's PostgreSQL schema)."""
    if is_spark():
        return dataclasses.replace(settings, source_schema=spark_source_schema())
    return settings


def dbt_env(project_root: Path) -> dict[str, str]:
    """Environment for the Spark target of profiles/profiles.yml: absolute paths for a local
    session's warehouse and metastore (the profile's defaults are relative to the working
    directory), and a loopback driver address for a local master."""
    if not is_spark() or is_thrift():  # a server has its own warehouse, metastore
        return {}
    base = Path(environ_get("SEEDTEST_SPARK_DIR") or project_root / ".spark").resolve()
    env = {
        "SEEDTEST_SPARK_DIR": str(base),
        "SEEDTEST_SPARK_WAREHOUSE": environ_get("SEEDTEST_SPARK_WAREHOUSE")
        or str(base / "warehouse"),
        "SEEDTEST_SPARK_METASTORE": environ_get("SEEDTEST_SPARK_METASTORE")
        or str(base / "metastore_db"),
    }
    base.mkdir(parents=True, exist_ok=True)
    master = environ_get(SPARK_MASTER.env, SPARK_MASTER.default)
    if master.startswith("local") and not environ_get("SPARK_LOCAL_IP"):
        env["SPARK_LOCAL_IP"] = "127.0.0.1"
    return env
