"""Spark SQL through a Spark Thrift Server: how the CLI reaches Spark on a cluster.

With SEEDTEST_ENGINE=spark and SEEDTEST_SPARK_METHOD=thrift, dbt builds the models through the
`thrift` output of profiles/profiles.yml (dbt-spark's method thrift, pip extra
`dbt-spark[PyHive]`), and the CLI's own Spark reads (the P/S step's inputs, the window's
counts, the dry run's scratch database) go to the same server with the same connection
settings: this module renders that output of profiles.yml exactly as dbt does, so host,
port, user, auth and the session parameters are read from one place. Nothing runs Spark in
this process.

The server owns the cluster, the warehouse and the metastore (its own configuration); the
settings here only say how to reach it: SEEDTEST_SPARK_HOST (default localhost),
SEEDTEST_SPARK_PORT (10000), SEEDTEST_SPARK_USER, SEEDTEST_SPARK_AUTH (NONE, NOSASL, LDAP,
KERBEROS or CUSTOM; default NONE), DBT_ENV_SECRET_SPARK_PASSWORD (LDAP/CUSTOM only),
SEEDTEST_SPARK_KERBEROS_SERVICE (KERBEROS only, default hive).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from ..config import (
    SESSION,
    SPARK_METHOD,
    THRIFT,
    Spark,
    dbt_env_var_context,
    load_spark,
)
from ..errors import RunError, UsageError

METHOD_ENV = SPARK_METHOD.env
TARGETS = {SESSION: "spark", THRIFT: "thrift"}  # profiles.yml output per method
FETCH_ROWS = 10_000  # rows per fetch: the reads stream, they never hold a result set twice


def method() -> str:
    """SEEDTEST_SPARK_METHOD: `session` (default: Spark inside this process) or `thrift`
    (checked by config.load_spark)."""
    return load_spark().method


def is_thrift() -> bool:
    return load_spark().is_thrift


def target() -> str:
    """The profiles.yml output dbt uses for the method."""
    return TARGETS[method()]


def validate(spark: Spark) -> None:
    """Checks that the thrift method can run before anything connects (exit code 2); its
    settings (port, auth, password) are checked by config.load_spark."""
    if not spark.is_thrift:
        return
    try:
        importlib.import_module("pyhive.hive")
    except ImportError:
        raise UsageError(
            f"{METHOD_ENV}=thrift needs PyHive: pip install 'dbt-spark[PyHive]~=1.11'"
        ) from None


def profile_output(name: str) -> dict[str, Any]:
    """The output `name` of profiles/profiles.yml, rendered as dbt renders it (env_var())."""
    from dbt.config.profile import read_profile
    from dbt.config.renderer import ProfileRenderer
    from dbt_common.context import set_invocation_context

    from ..dbt.paths import project_root

    set_invocation_context(dbt_env_var_context())  # what env_var() in profiles.yml reads
    profile = read_profile(str(project_root() / "profiles"))["seedtest_analytics"]
    rendered = ProfileRenderer({}).render_data(profile["outputs"][name])
    return dict(rendered)


def _connect_kwargs() -> dict[str, Any]:
    output = profile_output(TARGETS[THRIFT])
    auth = str(output.get("auth") or "NONE").upper()
    kwargs: dict[str, Any] = {
        "host": str(output["host"]),
        "port": int(output.get("port") or 10000),
        "username": str(output.get("user") or "") or None,
        "auth": auth,
        "configuration": {
            str(key): str(value)
            for key, value in (output.get("server_side_parameters") or {}).items()
        },
    }
    for key in ("password", "kerberos_service_name"):  # set only for the modes that take them
        if output.get(key) is not None:
            kwargs[key] = str(output[key])
    return kwargs


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    # PyHive wraps the server's message in a thrift response: keep the server's own line.
    marker = "errorMessage="
    if marker in text:
        text = text.split(marker, 1)[1].strip("'\" ")
        text = text.split("\\n", 1)[0].split("'), operationHandle=", 1)[0]
        text = re.sub(r"^Error running query: |\b[\w.]+Exception: ", "", text)
    return text.splitlines()[0][:500] if text.strip() else type(exc).__name__


class Connection:
    """One Thrift session (a PyHive connection) on the server of the `thrift` output."""

    def __init__(self) -> None:
        kwargs = _connect_kwargs()
        self.where = f"{kwargs['host']}:{kwargs['port']}"
        hive = importlib.import_module("pyhive.hive")
        try:
            self._conn = hive.connect(**kwargs)
        except Exception as exc:  # thrift's TTransportException, sasl errors, ...
            raise RunError(
                f"cannot reach the Spark Thrift Server at {self.where}: {_first_line(exc)}"
            ) from None

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with contextlib.suppress(Exception):  # a server that went away: nothing to close
            self._conn.close()

    def execute(self, statement: str) -> None:
        cursor = self._conn.cursor()
        try:
            cursor.execute(statement)
        except Exception as exc:
            raise RunError(f"Spark ({self.where}) failed: {_first_line(exc)}") from None
        finally:
            cursor.close()

    def rows(self, query: str) -> Iterator[tuple[Any, ...]]:
        """The rows of `query`, fetched FETCH_ROWS at a time; dates and decimals typed."""
        cursor = self._conn.cursor()
        try:
            try:
                cursor.execute(query)
                converters = [_converter(column[1]) for column in cursor.description or []]
                while batch := cursor.fetchmany(FETCH_ROWS):
                    for row in batch:
                        yield tuple(
                            value if convert is None or value is None else convert(value)
                            for convert, value in zip(converters, row, strict=True)
                        )
            except RunError:
                raise
            except Exception as exc:
                raise RunError(
                    f"reading from Spark ({self.where}) failed: {_first_line(exc)}"
                ) from None
        finally:
            cursor.close()


def _converter(type_code: Any) -> Any:
    """How a column of the Thrift result becomes a Python value (PyHive returns dates,
    timestamps and decimals as text)."""
    kind = str(type_code).upper()
    if kind == "DATE_TYPE":
        return dt.date.fromisoformat
    if kind == "DECIMAL_TYPE":
        return Decimal
    if kind == "TIMESTAMP_TYPE":
        return dt.datetime.fromisoformat  # the session time zone's wall clock (UTC here)
    return None


def rows(query: str) -> Iterator[tuple[Any, ...]]:
    """The rows of one query in a Thrift session of its own, streamed."""
    with Connection() as conn:
        yield from conn.rows(query)


def execute(*statements: str) -> None:
    """Statements in order, in one Thrift session."""
    with Connection() as conn:
        for statement in statements:
            conn.execute(statement)
