"""Where the dbt models run: the application's PostgreSQL (default) or Apache Spark.

SEEDTEST_ENGINE=spark builds the models with dbt-spark (`--target spark` of
profiles/profiles.yml; method session runs Spark inside this process, pip extra
`dbt-spark[session]`). The Spark database SEEDTEST_SPARK_SOURCE_SCHEMA (default `seedtest`)
holds copies of the application tables (exam_results, attempt, weekly_kpi and the optional
ones), kept up to date by the platform's ingestion. The P/S step and weekly_kpi stay on the
application's PostgreSQL (DATABASE_URL): the step reads its inputs from Spark in one query
through the SparkSession dbt used, and writes the same one-transaction merge.

The other Spark settings (all optional): SEEDTEST_SPARK_MASTER (default local[2]),
SEEDTEST_SPARK_DIR (default <project>/.spark: warehouse and metastore of a local session),
SEEDTEST_SPARK_WAREHOUSE, SEEDTEST_SPARK_METASTORE, SEEDTEST_SPARK_DRIVER_MEMORY,
SEEDTEST_SPARK_SHUFFLE_PARTITIONS.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib
import os
from array import array
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .config import ENGINE, SPARK_MASTER, SPARK_SOURCE_SCHEMA, Settings, parse_identifier
from .errors import RunError, UsageError
from .scoring import ScoringInput

ENGINE_ENV = ENGINE.env
SPARK_SOURCE_SCHEMA_ENV = SPARK_SOURCE_SCHEMA.env
POSTGRES = "postgres"
SPARK = "spark"
SPARK_TARGET = "spark"
_ALIASES = {"postgres": POSTGRES, "postgresql": POSTGRES, "spark": SPARK}


def engine() -> str:
    """SEEDTEST_ENGINE: `postgres` (default) or `spark`; anything else is a usage error."""
    raw = os.environ.get(ENGINE_ENV, "").strip().lower()
    if not raw:
        return POSTGRES
    if raw not in _ALIASES:
        raise UsageError(f"{ENGINE_ENV} must be postgres or spark (got {raw!r})")
    return _ALIASES[raw]


def is_spark() -> bool:
    return engine() == SPARK


def spark_source_schema() -> str:
    """The Spark database holding the copies of the application tables."""
    raw = os.environ.get(SPARK_SOURCE_SCHEMA_ENV, "").strip() or SPARK_SOURCE_SCHEMA.default
    return parse_identifier(SPARK_SOURCE_SCHEMA_ENV, raw)


def validate(settings: Settings, command: str = "") -> None:
    """Checks the engine settings before anything connects (a bad value is exit code 2)."""
    if not is_spark():
        return
    spark_source_schema()
    if command in ("backtest", "train-churn") or settings.churn_model == "logistic":
        raise UsageError(
            f"{ENGINE_ENV}=spark: the churn backtest and METRICS_CHURN_MODEL=logistic read"
            " churn_user_anchors on PostgreSQL; on Spark only the heuristic S is supported"
        )


def dbt_target_args() -> list[str]:
    """The dbt arguments that choose the profile target of the engine."""
    return ["--target", SPARK_TARGET] if is_spark() else []


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
    if not is_spark():
        return {}
    base = Path(os.environ.get("SEEDTEST_SPARK_DIR") or project_root / ".spark").resolve()
    env = {
        "SEEDTEST_SPARK_DIR": str(base),
        "SEEDTEST_SPARK_WAREHOUSE": os.environ.get("SEEDTEST_SPARK_WAREHOUSE")
        or str(base / "warehouse"),
        "SEEDTEST_SPARK_METASTORE": os.environ.get("SEEDTEST_SPARK_METASTORE")
        or str(base / "metastore_db"),
    }
    base.mkdir(parents=True, exist_ok=True)
    master = os.environ.get(SPARK_MASTER.env, SPARK_MASTER.default)
    if master.startswith("local") and not os.environ.get("SPARK_LOCAL_IP"):
        env["SPARK_LOCAL_IP"] = "127.0.0.1"
    return env


# --- reading dbt's results on Spark --------------------------------------------------------


def spark_session() -> Any:
    """The SparkSession of this process: the one dbt-spark (method session) started, else a
    new one with the spark target's server_side_parameters."""
    try:  # optional: installed with dbt-spark[session] (not a dependency of the package)
        SparkContext = importlib.import_module("pyspark").SparkContext
        SparkSession = importlib.import_module("pyspark.sql").SparkSession
    except ImportError:
        raise RunError(
            f"{ENGINE_ENV}=spark needs pyspark: pip install 'dbt-spark[session]~=1.11'"
        ) from None
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    if SparkContext._active_spark_context is not None:  # started by dbt in another thread
        return SparkSession.builder.getOrCreate()
    builder = SparkSession.builder.enableHiveSupport()
    for key, value in _profile_spark_parameters().items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def _profile_spark_parameters() -> dict[str, str]:
    """server_side_parameters of the spark target, rendered as dbt renders profiles.yml."""
    from dbt.config.profile import read_profile
    from dbt.config.renderer import ProfileRenderer
    from dbt_common.context import set_invocation_context

    from .paths import project_root

    root = project_root()
    os.environ.update(dbt_env(root))
    set_invocation_context(dict(os.environ))  # what env_var() in profiles.yml reads
    output = read_profile(str(root / "profiles"))["seedtest_analytics"]["outputs"][SPARK_TARGET]
    rendered = ProfileRenderer({}).render_data(output.get("server_side_parameters") or {})
    parameters = {str(key): str(value) for key, value in rendered.items()}
    parameters["spark.sql.ansi.enabled"] = "false"  # as dbt-spark forces it
    return parameters


def _rows(query: str) -> Any:
    session = spark_session()
    try:
        return session.sql(query).toLocalIterator()
    except Exception as exc:  # pyspark's AnalysisException and friends
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RunError(f"reading from Spark failed: {message}") from None


def _table(schema: str, table: str) -> str:
    return f"`{parse_identifier('schema', schema)}`.`{parse_identifier('table', table)}`"


def read_scoring_inputs(schema: str, table: str) -> list[ScoringInput]:
    """All rows of the scoring-input model in one Spark query (as scoring.read_scoring_inputs)."""
    query = (
        "select cast(user_id as string), cast(week_start as date), cast(days_inactive as int),"
        " coalesce(cast(active_days as int), 0), coalesce(cast(mean_gap_days as double), 0d),"
        " cast(ability_mean as double), cast(ability_sd as double), cast(target as double)"
        f" from {_table(schema, table)}"
    )
    weeks: dict[dt.date, dt.date] = {}
    return [
        ScoringInput(
            row[0],
            weeks.setdefault(row[1], row[1]),
            row[2],
            row[3],
            row[4],
            row[5],
            row[6],
            row[7],
        )
        for row in _rows(query)
    ]


def read_prior_means(schema: str, table: str) -> Sequence[float]:
    """The finite ability means of the ability model (as scoring.read_prior_means)."""
    query = (
        "select cast(ability_mean as double) from "
        f"{_table(schema, table)} where ability_mean is not null"
        " and not isnan(ability_mean) and abs(ability_mean) < double('infinity')"
    )
    return array("d", (row[0] for row in _rows(query)))


def window_counts(schema: str, since: dt.date, anchor: dt.date) -> tuple[int, int, int]:
    """aggregate.window_counts on Spark: (user, topic, day) combinations with valid attempts
    in the window, attempts skipped for a null user, topic or time, and for a too long key."""
    days = f"between date '{since.isoformat()}' and date '{anchor.isoformat()}'"
    query = (
        f"select (select count(*) from {_table(schema, 'int_topic_daily__aggregated')}"
        f" where activity_date {days}),"
        " count(*) filter (where invalid_reason in ('no_user', 'no_topic', 'no_time')),"
        " count(*) filter (where invalid_reason in ('topic_too_long', 'user_id_too_long'))"
        f" from {_table(schema, 'int_attempts__windowed')}"
        f" where not is_valid and (activity_date is null or activity_date {days})"
    )
    row = next(iter(_rows(query)))
    return int(row[0]), int(row[1]), int(row[2])


def table_exists(schema: str, table: str) -> bool:
    """Whether the Spark catalog has schema.table."""
    return bool(spark_session().catalog.tableExists(f"{schema}.{table}"))


def prepare_scratch(real: str, scratch: str, models: Sequence[str]) -> None:
    """A dry run's scratch database in Spark (runs.py): the incremental models present in
    `real` copied into a fresh `scratch` (same columns, format and partitioning)."""
    session = spark_session()
    real_q, scratch_q = _table(real, "x").split(".")[0], _table(scratch, "x").split(".")[0]
    session.sql(f"drop database if exists {scratch_q} cascade")
    session.sql(f"create database {scratch_q}")
    for name in models:
        if session.catalog.tableExists(f"{real}.{name}"):
            source, copy = f"{real_q}.{_table(real, name).split('.')[1]}", _table(scratch, name)
            session.sql(f"create table {copy} like {source}")
            session.sql(f"insert into {copy} select * from {source}")


def drop_scratch(scratch: str) -> None:
    """Drops a dry run's scratch database in Spark."""
    spark_session().sql(f"drop database if exists {_table(scratch, 'x').split('.')[0]} cascade")
