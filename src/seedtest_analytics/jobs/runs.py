"""One run of a command that writes (run, aggregate, detect-inactivity, backfill): the checks
before connecting, the lock, the checks before dbt, the job, and its row in the run history.

- Everything a run could get wrong about where it writes is refused before anything is
  written: the schema names and every setting before connecting (exit 2), a schema that holds
  somebody else's relation right after taking the lock (exit 2, dbt/guards.py).
- Every session of the run gets a lock timeout and a statement timeout (db/timeouts.py).
- A dry run makes the real run's build in a scratch schema, `<SEEDTEST_DBT_SCHEMA>_dry_run`,
  whose incremental models start as copies of the real ones (so it computes what the real run
  would), dropped before and after it (the next real run cannot see it), with dbt's artifacts
  in a target directory of its own (the last real run's stay for `dbt retry`). Its one write
  outside the scratch schema is its row in the run history.
"""

from __future__ import annotations

from collections.abc import Callable

from psycopg import sql

from ..config import Settings, environ_get
from ..db import connection, history
from ..db.connection import ConnectionParams, connect
from ..db.failures import database_step
from ..db.locking import lock_wait_seconds, pipeline_lock
from ..db.timeouts import load_timeouts
from ..dbt.guards import (
    DRY_RUN_SUFFIX,
    check_schema_names,
    check_target_schema,
    incremental_models,
)
from ..dbt.paths import dbt_target_path
from ..dbt.runner import TARGET_SCHEMA_ENV, environment, target_schema
from ..errors import ConnectError, RunError, UsageError
from ..warehouse import reader as warehouse
from .freshness import freshness_hours

Job = Callable[[ConnectionParams, Settings], int]


def _drop_scratch(params: ConnectionParams, schema: str) -> None:
    with database_step(f"dropping the dry-run schema {schema}"), connect(params) as conn:
        conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema)))
        conn.commit()


def _prepare_scratch(params: ConnectionParams, real: str, scratch: str) -> None:
    """A fresh scratch schema whose incremental models start as copies of the real ones, so
    the dry run's build computes exactly what the real run's would (the other models are
    rebuilt by the run anyway). One transaction; the real tables are only read."""
    with database_step(f"preparing the dry-run schema {scratch}"), connect(params) as conn:
        conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(scratch)))
        conn.execute(sql.SQL("create schema {}").format(sql.Identifier(scratch)))
        present = [
            name
            for (name,) in conn.execute(
                "select c.relname::text from pg_class as c"
                " join pg_namespace as n on n.oid = c.relnamespace"
                " where n.nspname = %s and c.relkind in ('r', 'p') and c.relname = any(%s)",
                (real, incremental_models()),
            )
        ]
        for name in present:
            source, copy = sql.Identifier(real, name), sql.Identifier(scratch, name)
            conn.execute(sql.SQL("create table {} (like {} including all)").format(copy, source))
            conn.execute(sql.SQL("insert into {} select * from {}").format(copy, source))
        conn.commit()


def execute(command: str, settings: Settings, job: Job) -> int:
    """Run `job` for `command` under the run lock, after every check; returns its exit code."""
    scope = target_schema()
    check_schema_names(scope, settings.source_schema)
    lock_wait_seconds()
    freshness_hours()
    timeouts = load_timeouts()
    params = connection.resolve()
    dbt_schema = scope + DRY_RUN_SUFFIX if settings.dry_run else scope
    env = {
        TARGET_SCHEMA_ENV: dbt_schema,
        "PGOPTIONS": timeouts.pgoptions(environ_get("PGOPTIONS")),
    }
    if settings.dry_run:
        real = dbt_target_path()
        env["DBT_TARGET_PATH"] = str(real.with_name(real.name + DRY_RUN_SUFFIX.replace("_", "-")))
    history.begin(command, settings)
    code, error = 1, None
    try:
        with environment(env), pipeline_lock(params, dbt_schema):
            with database_step("the check of the project's schema"), connect(params) as conn:
                check_target_schema(conn, dbt_schema)
            if settings.dry_run:
                _prepare_scratch(params, scope, dbt_schema)  # a killed dry run's leftovers go
                warehouse.current().prepare_scratch(scope, dbt_schema, incremental_models())
            try:
                code = job(params, settings)
            finally:
                if settings.dry_run:
                    _drop_scratch(params, dbt_schema)
                    warehouse.current().drop_scratch(dbt_schema)
    except UsageError:
        # Refused right after connecting (somebody else's relation in the schema): the run
        # leaves no trace there either.
        history.discard()
        raise
    except ConnectError as exc:
        history.finish(1, str(exc))
        history.discard()  # it never reached the database: nowhere to write the row
        raise
    except RunError as exc:
        code, error = 1, str(exc)
        raise
    except KeyboardInterrupt:
        code, error = 1, "interrupted"
        raise
    finally:
        history.finish(code, error)
        with environment({"PGOPTIONS": env["PGOPTIONS"]}):
            history.write(params, scope)
    return code
