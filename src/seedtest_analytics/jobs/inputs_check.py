"""The P/S step reads inputs built for its own anchor: inactive_user_scoring_inputs records
the anchor it was built for (`as_of`); a build for another anchor that finished in between
(a plain dbt build, say) would make another night's scores land, so the step stops before
writing anything, with one line."""

from __future__ import annotations

import datetime as dt

import psycopg
from psycopg import sql

from ..errors import RunError


def check_inputs_anchor(conn: psycopg.Connection, schema: str, table: str, anchor: dt.date) -> None:
    relation = sql.Identifier(schema, table)
    found = conn.execute("select to_regclass(%s)", (relation.as_string(conn),)).fetchone()
    if found is None or found[0] is None:
        return  # nothing to check: the read that follows says it is missing
    row = conn.execute(
        sql.SQL("select as_of from {} where as_of is distinct from %s limit 1").format(relation),
        (anchor,),
    ).fetchone()
    if row is not None:
        raise RunError(
            f"{schema}.{table} holds the inputs of anchor {row[0]}, not of this run's anchor "
            f"{anchor.isoformat()} (another build replaced it meanwhile); nothing was written: "
            "run the command again"
        )
