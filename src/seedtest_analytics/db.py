"""Connections and the application schema."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from importlib import resources

import psycopg
from psycopg import sql

from .connection import ConnectionParams
from .errors import RunError


@contextlib.contextmanager
def connect(params: ConnectionParams, *, autocommit: bool = False) -> Iterator[psycopg.Connection]:
    """A psycopg connection; connection failures become one clear RunError line."""
    try:
        conn = psycopg.connect(**params.psycopg_kwargs(), autocommit=autocommit, connect_timeout=15)
    except psycopg.OperationalError as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        if params.password:
            reason = reason.replace(params.password, "***")
        raise RunError(f"cannot connect to {params.redacted()}: {reason}") from None
    try:
        yield conn
    finally:
        conn.close()


def app_schema_sql(schema: str = "public") -> str:
    text = resources.files("seedtest_analytics").joinpath("app_schema.sql").read_text()
    return text.format(schema=sql.Identifier(schema).as_string(None))


def init_db(params: ConnectionParams, schema: str = "public") -> None:
    """Create the application schema (tables and the attempt view); idempotent."""
    with connect(params) as conn:
        # One creator at a time: concurrent `create ... if not exists` can still collide.
        conn.execute("select pg_advisory_xact_lock(hashtext('seedtest-analytics init-db'))")
        conn.execute(app_schema_sql(schema))
        conn.commit()
