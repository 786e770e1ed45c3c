"""The Spark reader of the models (SEEDTEST_ENGINE=spark): dbt's results read through the
SparkSession dbt-spark (method session) started in this process, or with
SEEDTEST_SPARK_METHOD=thrift over the Thrift server dbt used (spark_thrift.py), and a dry
run's scratch database. The P/S write stays on the application's PostgreSQL."""

from __future__ import annotations

import datetime as dt
import importlib
from array import array
from collections.abc import Sequence
from typing import Any

import psycopg

from ..config import DRY_RUN_SUFFIX, dbt_env_var_context, dbt_environment, parse_identifier
from ..db.connection import ConnectionParams
from ..engine import ENGINE_ENV, SPARK_TARGET, dbt_env, is_thrift
from ..errors import RunError
from . import spark_thrift
from .scoring_inputs import ScoringInput


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

    from ..paths import project_root

    root = project_root()
    dbt_environment(dbt_env(root))
    set_invocation_context(dbt_env_var_context())  # what env_var() in profiles.yml reads
    output = read_profile(str(root / "profiles"))["seedtest_analytics"]["outputs"][SPARK_TARGET]
    rendered = ProfileRenderer({}).render_data(output.get("server_side_parameters") or {})
    parameters = {str(key): str(value) for key, value in rendered.items()}
    parameters["spark.sql.ansi.enabled"] = "false"  # as dbt-spark forces it
    return parameters


def _rows(query: str) -> Any:
    if is_thrift():
        return spark_thrift.rows(query)
    session = spark_session()
    try:
        return session.sql(query).toLocalIterator()
    except Exception as exc:  # pyspark's AnalysisException and friends
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RunError(f"reading from Spark failed: {message}") from None


def _table(schema: str, table: str) -> str:
    return f"`{parse_identifier('schema', schema)}`.`{parse_identifier('table', table)}`"


def read_scoring_inputs(schema: str, table: str) -> list[ScoringInput]:
    """All rows of the scoring-input model in one Spark query (as the PostgreSQL read does)."""
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
    if is_thrift():
        quoted = parse_identifier("schema", schema)
        if not any(row[0] == schema for row in _rows(f"show databases like '{quoted}'")):
            return False
        return any(row[1] == table for row in _rows(f"show tables in `{quoted}` like '{table}'"))
    return bool(spark_session().catalog.tableExists(f"{schema}.{table}"))


def _execute(*statements: str) -> None:
    """Statements in order (on a Thrift server: in one session of their own)."""
    if is_thrift():
        spark_thrift.execute(*statements)
        return
    session = spark_session()
    for statement in statements:
        session.sql(statement)


def prepare_scratch(real: str, scratch: str, models: Sequence[str]) -> None:
    """A dry run's scratch database in Spark (runs.py): the incremental models present in
    `real` copied into a fresh `scratch` (same columns, format and partitioning)."""
    scratch_q = _table(scratch, "x").split(".")[0]
    copies = []
    for name in models:
        if table_exists(real, name):
            source, copy = _table(real, name), _table(scratch, name)
            copies += [
                f"create table {copy} like {source}",
                f"insert into {copy} select * from {source}",
            ]
    _execute(
        f"drop database if exists {scratch_q} cascade", f"create database {scratch_q}", *copies
    )


def drop_scratch(scratch: str) -> None:
    """Drops a dry run's scratch database in Spark."""
    _execute(f"drop database if exists {_table(scratch, 'x').split('.')[0]} cascade")


def last_activity_since(schema: str, since: dt.date) -> list[tuple[str, float]]:
    """(user_id, epoch seconds of last_activity_at) from user_last_activity, for the users last
    active from about the start of `since`: epoch seconds read the same in any session time
    zone."""
    query = (
        "select user_id, cast(unix_micros(last_activity_at) as double) / 1000000"
        f" from {_table(schema, 'user_last_activity')}"
        # the literal is read in the session time zone: the caller's margin of days covers it
        f" where last_activity_at >= timestamp '{since.isoformat()} 00:00:00'"
        " and user_id is not null"
    )
    return [(str(row[0]), float(row[1])) for row in _rows(query)]


class SparkWarehouse:
    """The models on Spark (the Warehouse of SEEDTEST_ENGINE=spark)."""

    def read_scoring(
        self, conn: psycopg.Connection, schema: str, *, inputs: str, abilities: str | None
    ) -> tuple[list[ScoringInput], Sequence[float] | None]:
        """The scoring inputs and, when `abilities` is given, the prior means: one Spark
        query each (`conn`, the application's PostgreSQL, is not used)."""
        rows = read_scoring_inputs(schema, inputs)
        return rows, None if abilities is None else read_prior_means(schema, abilities)

    def window_counts(
        self, params: ConnectionParams, schema: str, since: dt.date, anchor: dt.date
    ) -> tuple[int, int, int]:
        return window_counts(schema, since, anchor)

    def table_exists(self, params: ConnectionParams, schema: str, table: str) -> bool:
        return table_exists(schema, table)

    def last_activity_apart(self, schema: str, since: dt.date) -> list[tuple[str, float]]:
        return last_activity_since(schema, since)

    # weekly_kpi stays on PostgreSQL; the models, their run registry and the churn tables
    # are in Spark
    beside_weekly_kpi = False
    marks_dry_run = False  # a scratch database of copies instead

    def dry_run_schema(self, schema: str) -> str:
        return schema + DRY_RUN_SUFFIX

    def begin_dry_run(self, params: ConnectionParams, schema: str, models: Sequence[str]) -> None:
        prepare_scratch(schema, self.dry_run_schema(schema), models)

    def end_dry_run(self, params: ConnectionParams, schema: str) -> None:
        drop_scratch(self.dry_run_schema(schema))
