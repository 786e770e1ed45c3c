"""Where the dbt models run: the application's PostgreSQL (default) or Apache Spark.

SEEDTEST_ENGINE=spark builds the models with dbt-spark (`--target spark` of
profiles/profiles.yml; method session runs Spark inside this process, pip extra
`dbt-spark[session]`), or with SEEDTEST_SPARK_METHOD=thrift through a Spark Thrift Server
(`--target thrift`, spark_thrift.py). The Spark database SEEDTEST_SPARK_SOURCE_SCHEMA
(default `seedtest`) holds copies of the application tables (exam_results, attempt,
weekly_kpi and the optional ones), kept up to date by the platform's ingestion. The P/S
step and weekly_kpi stay on the application's PostgreSQL (DATABASE_URL): the step reads its
inputs from Spark in one query (through the SparkSession dbt used, or over the Thrift
server), and writes the same one-transaction merge.

The other Spark settings (all optional): SEEDTEST_SPARK_MASTER (default local[2]),
SEEDTEST_SPARK_DIR (default <project>/.spark: warehouse and metastore of a local session),
SEEDTEST_SPARK_WAREHOUSE, SEEDTEST_SPARK_METASTORE, SEEDTEST_SPARK_DRIVER_MEMORY,
SEEDTEST_SPARK_SHUFFLE_PARTITIONS.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..config import ENGINE, SPARK_SOURCE_SCHEMA, Settings, Spark, load_spark
from ..errors import UsageError
from . import spark_thrift

ENGINE_ENV = ENGINE.env
SPARK_SOURCE_SCHEMA_ENV = SPARK_SOURCE_SCHEMA.env
SPARK_TARGET = "spark"


def engine() -> str:
    """SEEDTEST_ENGINE: `postgres` (default) or `spark` (checked by config.load_spark, which
    the settings of every command load before anything connects)."""
    return load_spark().engine


def is_spark() -> bool:
    return load_spark().is_spark


def spark_source_schema() -> str:
    """The Spark database holding the copies of the application tables."""
    return load_spark().source_schema


def validate(spark: Spark, command: str = "", *, needs_postgres_models: bool = False) -> None:
    """Checks what the engine needs besides its settings (settings.spark, already checked)
    before anything connects (exit code 2). `needs_postgres_models`: the run's churn scorer
    reads churn_user_anchors on PostgreSQL."""
    if not spark.is_spark:
        return
    spark_thrift.validate(spark)
    if command in ("backtest", "train-churn") or needs_postgres_models:
        raise UsageError(
            f"{ENGINE_ENV}=spark: the churn backtest and METRICS_CHURN_MODEL=logistic read"
            " churn_user_anchors on PostgreSQL; on Spark only the heuristic S is supported"
        )


def dbt_target_args() -> list[str]:
    """The dbt arguments that choose the profile target of the engine."""
    return ["--target", spark_thrift.target()] if is_spark() else []


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
    spark = load_spark()
    if not spark.is_spark or spark.is_thrift:  # a server has its own warehouse, metastore
        return {}
    base = Path(spark.spark_dir or project_root / ".spark").resolve()
    env = {
        "SEEDTEST_SPARK_DIR": str(base),
        "SEEDTEST_SPARK_WAREHOUSE": spark.warehouse or str(base / "warehouse"),
        "SEEDTEST_SPARK_METASTORE": spark.metastore or str(base / "metastore_db"),
    }
    base.mkdir(parents=True, exist_ok=True)
    if spark.master.startswith("local") and not spark.local_ip:
        env["SPARK_LOCAL_IP"] = "127.0.0.1"
    return env
