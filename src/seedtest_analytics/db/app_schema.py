"""The application schema (init-db): app_schema.sql, one section per object, created where
missing and never replaced."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import psycopg
from psycopg import sql

from .connection import ConnectionParams, connect

_SECTION = re.compile(r"^-- object: (schema|table|view|function) (\S+)$", re.M)


@dataclass(frozen=True)
class SchemaObject:
    kind: str  # schema, table, view or function
    name: str  # the relation name, or the function's signature such as app_user_uuid(text)
    statements: str


def app_schema_sql(schema: str = "public") -> str:
    """The whole application schema as one script (for an empty database)."""
    text = resources.files("seedtest_analytics.db").joinpath("app_schema.sql").read_text()
    return text.format(schema=sql.Identifier(schema).as_string(None))


def app_schema_objects(schema: str = "public") -> list[SchemaObject]:
    """The sections of app_schema.sql, in order: one object each (an index goes with its table)."""
    text = app_schema_sql(schema)
    marks = list(_SECTION.finditer(text))
    return [
        SchemaObject(
            kind=mark.group(1),
            name=mark.group(2),
            statements=text[mark.start() : marks[i + 1].start() if i + 1 < len(marks) else None],
        )
        for i, mark in enumerate(marks)
    ]


def _existing(conn: psycopg.Connection, schema: str, objects: list[SchemaObject]) -> set[str]:
    """The names of `objects` that exist already (any kind of relation counts for a relation
    name: an application whose `attempt` is a table keeps it), in one query."""
    quoted = sql.Identifier(schema).as_string(conn)
    relations = [o.name for o in objects if o.kind in ("table", "view")]
    functions = [o.name for o in objects if o.kind == "function"]
    row = conn.execute(
        """
        select
            exists (select from pg_namespace where nspname = %(schema)s),
            array(select c.relname::text from pg_class as c
                  join pg_namespace as n on n.oid = c.relnamespace
                  where n.nspname = %(schema)s and c.relname = any(%(relations)s)),
            array(select f from unnest(%(functions)s::text[]) as f
                  where to_regprocedure(%(quoted)s || '.' || f) is not null)
        """,
        {"schema": schema, "relations": relations, "functions": functions, "quoted": quoted},
    ).fetchone()
    assert row is not None
    found = {*row[1], *row[2]}
    if row[0]:
        found |= {o.name for o in objects if o.kind == "schema"}
    return found


@dataclass(frozen=True)
class AppSchemaSetup:
    created: list[str]  # "table exam_results", ...
    missing: list[str]  # what the application's own schema lacks (nothing was created there)


def init_db(params: ConnectionParams, schema: str = "public") -> list[str]:
    """Create what is missing of the application schema (tables, the attempt view, the
    app_user_uuid function) in a database that does not have it yet; returns the names of the
    objects created. Never replaces or alters an object that exists, and creates nothing in a
    schema that already holds the application's tables (setup_app_schema)."""
    return setup_app_schema(params, schema).created


def setup_app_schema(params: ConnectionParams, schema: str = "public") -> AppSchemaSetup:
    """init_db, and what is missing: when one of the application's tables exists, the schema
    is the application's own, and init-db only reports what it lacks."""
    objects = app_schema_objects(schema)
    with connect(params) as conn:
        # One creator at a time: two concurrent init-db would both see an object missing.
        conn.execute("select pg_advisory_xact_lock(hashtext('seedtest-analytics init-db'))")
        existing = _existing(conn, schema, objects)
        missing = [o for o in objects if o.name not in existing]
        if any(o.kind == "table" and o.name in existing for o in objects):
            return AppSchemaSetup([], [f"{o.kind} {o.name}" for o in missing])
        created = []
        for obj in missing:
            conn.execute(obj.statements)
            created.append(f"{obj.kind} {obj.name}")
        conn.commit()
    return AppSchemaSetup(created, [])


def tables_with_rows(params: ConnectionParams, schema: str = "public") -> list[str]:
    """The application tables of `schema` that exist and hold at least one row (read only)."""
    tables = [o.name for o in app_schema_objects(schema) if o.kind == "table"]
    with connect(params) as conn:
        present = [
            name
            for (name,) in conn.execute(
                "select c.relname::text from pg_class as c"
                " join pg_namespace as n on n.oid = c.relnamespace"
                " where n.nspname = %s and c.relname = any(%s) and c.relkind in ('r', 'p')"
                " order by 1",
                (schema, tables),
            )
        ]
        if not present:
            return []
        query = sql.SQL(" union all ").join(
            sql.SQL("select {} where exists (select from {})").format(
                sql.Literal(name), sql.Identifier(schema, name)
            )
            for name in present
        )
        return [name for (name,) in conn.execute(query)]
