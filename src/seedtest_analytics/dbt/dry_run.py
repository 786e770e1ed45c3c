"""The dry run's scratch relations on PostgreSQL: inside the project's own schema, never a
schema of their own.

A dry run needs no privilege beyond the real run's (owning the project's one schema; no
CREATE on the database): dbt names every relation it builds `dry_run__<model>`
(macros/hooks/dry_run.sql, switched on by SEEDTEST_DRY_RUN=true), in the project's schema.
Each carries the comment MARKER, set in the transaction that creates it (by dbt, or here
for the copies of the
incremental models), so ownership is proved relation by relation:

- before the build, the `dry_run__` relations a killed dry run left are dropped, one by one
  and by name, only when they carry the marker; one without it is somebody else's: refused
  with one line (exit 2), nothing dropped;
- after the build, the same drop; nothing is ever dropped with cascade: a relation something
  else depends on is left in place, with one warning line.

On Spark a dry run keeps its scratch database (runs.py); this module is PostgreSQL's.
"""

from __future__ import annotations

from collections.abc import Sequence

import psycopg
from psycopg import errors, sql

from .. import log
from ..config import DRY_RUN_ENV, dry_run_marked
from ..db.connection import ConnectionParams, connect
from ..db.failures import database_step
from ..errors import UsageError

ENV = DRY_RUN_ENV
PREFIX = "dry_run__"
# The same text as macros/hooks/dry_run.sql's dry_run_marker().
MARKER = "seedtest-analytics dry run: scratch relation, dropped after the dry run"
# What the project records about its incremental tables
# (macros/incremental/incremental_settings.sql):
# copied with them, so a dry run checks what the real run would.
REGISTRIES = ("incremental_settings",)
_KINDS = {"r": "table", "p": "table", "v": "view", "m": "materialized view", "f": "foreign table"}


def active() -> bool:
    """Whether this process runs a PostgreSQL dry run (runs.py sets the variable for it)."""
    return dry_run_marked()


def relation(name: str) -> str:
    """The relation dbt builds for model `name` in this run (dry_run__name in a dry run)."""
    return PREFIX + name if active() else name


def _scratch(conn: psycopg.Connection, schema: str) -> list[tuple[str, str, bool]]:
    """(kind, name, carries the marker) of every `dry_run__` relation in `schema`."""
    rows = conn.execute(
        """
        select c.relkind::text, c.relname::text,
               coalesce(obj_description(c.oid, 'pg_class') = %s, false)
        from pg_class as c
        join pg_namespace as n on n.oid = c.relnamespace
        where n.nspname = %s and c.relkind in ('r', 'p', 'v', 'm', 'f')
            and left(c.relname, %s) = %s
        order by c.relkind = 'v' desc, c.relname
        """,
        (MARKER, schema, len(PREFIX), PREFIX),
    ).fetchall()
    return [(_KINDS[str(kind)], str(name), bool(marked)) for kind, name, marked in rows]


def _refuse_unmarked(found: list[tuple[str, str, bool]], schema: str) -> None:
    for kind, name, marked in found:
        if not marked:
            raise UsageError(
                f"schema {schema} holds the {kind} {schema}.{name}, which no dry run of "
                "seedtest-analytics created (it lacks the dry-run marker); nothing was dropped "
                "or written. Rename or move it to make dry runs"
            )


def _drop_marked(conn: psycopg.Connection, schema: str, *, strict: bool) -> list[str]:
    """Drops the marked scratch relations, each by name, without cascade; returns the names
    left in place because something depends on them (strict: refuse instead)."""
    left: list[str] = []
    for kind, name, marked in _scratch(conn, schema):
        if not marked:
            left.append(f"{schema}.{name} (not marked as the dry run's)")
            continue
        statement = sql.SQL("drop {} {}").format(sql.SQL(kind), sql.Identifier(schema, name))
        try:
            with conn.transaction():
                conn.execute(statement)
        except errors.DependentObjectsStillExist as exc:
            detail = (exc.diag.message_detail or "").replace("\n", "; ")
            if strict:
                raise UsageError(
                    f"the dry run's leftover {schema}.{name} cannot be dropped without "
                    f"dropping what depends on it ({detail}); nothing was dropped or written"
                ) from None
            left.append(f"{schema}.{name} (something depends on it: {detail})")
    return left


def prepare(params: ConnectionParams, schema: str, incremental: Sequence[str]) -> None:
    """The scratch relations of a dry run: a killed dry run's leftovers dropped (marked ones
    only), then each incremental model present in `schema` copied to dry_run__<model> with the
    marker, so the dry run's build computes what the real run's would. The real tables are
    only read."""
    with database_step(f"preparing the dry run in schema {schema}"), connect(params) as conn:
        conn.autocommit = True
        _refuse_unmarked(_scratch(conn, schema), schema)
        _drop_marked(conn, schema, strict=True)
        present = [
            name
            for (name,) in conn.execute(
                "select c.relname::text from pg_class as c"
                " join pg_namespace as n on n.oid = c.relnamespace"
                " where n.nspname = %s and c.relkind in ('r', 'p') and c.relname = any(%s)",
                (schema, list(incremental)),
            )
        ]
        with conn.transaction():
            for name in present:
                source, copy = sql.Identifier(schema, name), sql.Identifier(schema, PREFIX + name)
                conn.execute(
                    sql.SQL("create table {} (like {} including all)").format(copy, source)
                )
                conn.execute(sql.SQL("comment on table {} is {}").format(copy, sql.Literal(MARKER)))
                conn.execute(sql.SQL("insert into {} select * from {}").format(copy, source))


def drop(params: ConnectionParams, schema: str) -> None:
    """After the dry run: its marked scratch relations dropped, each by name, no cascade."""
    step = f"dropping the dry run's relations in schema {schema}"
    with database_step(step), connect(params) as conn:
        conn.autocommit = True
        left = _drop_marked(conn, schema, strict=False)
    for name in left:
        log.warn(f"the dry run's {name} is left in place, not dropped")
