"""One run of a command that writes (run, aggregate, detect-inactivity, backfill): the checks
before connecting, the lock, the checks before dbt, the job, and its row in the run history.

- Everything a run could get wrong about where it writes is refused before anything is
  written: the schema names and every setting before connecting (exit 2), a schema that holds
  somebody else's relation right after taking the lock (exit 2, dbt/guards.py).
- Every session of the run gets a lock timeout and a statement timeout (db/timeouts.py).
- A dry run makes the real run's build in the project's own schema under other names
  (`dry_run__<model>`, dbt/dry_run.py): its incremental models start as copies of the real
  ones (so it computes what the real run would), and every relation it creates carries a
  marker comment; it drops only marked relations, by name, never with cascade, before and
  after it. Its dbt artifacts go to a target directory of its own (the last real run's stay
  for `dbt retry`). Its one write outside its scratch relations is its row in the run
  history. It needs no privilege beyond the real run's. On Spark it keeps a scratch database
  (`<SEEDTEST_DBT_SCHEMA>_dry_run`, warehouse/spark.py).
"""

from __future__ import annotations

from collections.abc import Callable

from .. import outcome
from ..config import Settings
from ..db import connection, history
from ..db.connection import ConnectionParams, connect
from ..db.failures import database_step, set_database
from ..db.locking import pipeline_lock
from ..db.timeouts import load_timeouts
from ..db.timeouts import set_in_effect as timeouts_in_effect
from ..dbt import dry_run
from ..dbt.guards import (
    DRY_RUN_SUFFIX,  # the dry run's own dbt target path
    check_schema_names,
    check_target_schema,
    incremental_models,
)
from ..dbt.runner import TARGET_SCHEMA_ENV, environment, target_schema
from ..errors import ConnectError, RunError, UsageError
from ..monitoring import pushgateway
from ..paths import dbt_target_path
from ..warehouse import reader as warehouse
from . import catch_up

Job = Callable[[ConnectionParams, Settings], int]


def execute(command: str, settings: Settings, job: Job) -> int:
    """Run `job` for `command` under the run lock, after every check; returns its exit code."""
    scope = target_schema()
    check_schema_names(scope, settings.source_schema)
    safety = settings.safety  # every value checked by load_settings, before anything else
    timeouts = load_timeouts(safety)
    params = connection.resolve()
    models = warehouse.current()
    dbt_schema = models.dry_run_schema(scope) if settings.dry_run else scope
    env = {
        TARGET_SCHEMA_ENV: dbt_schema,
        "PGOPTIONS": timeouts.pgoptions(safety.pgoptions),
        dry_run.ENV: "true" if settings.dry_run and models.marks_dry_run else "",
    }
    if settings.dry_run:
        real = dbt_target_path()
        env["DBT_TARGET_PATH"] = str(real.with_name(real.name + DRY_RUN_SUFFIX.replace("_", "-")))
    timeouts_in_effect(timeouts)
    history.begin(command, settings)
    set_database(params)
    code, error = 1, None
    try:
        # The run's row first (status running), once the schema is known to be the project's.
        history.start(params, scope, before=lambda conn: check_target_schema(conn, scope))
        with environment(env), pipeline_lock(params, dbt_schema, safety.lock_wait_seconds):
            with database_step("the check of the project's schema"), connect(params) as conn:
                check_target_schema(conn, dbt_schema)
            if settings.dry_run:  # a killed dry run's leftovers go (only its own)
                models.begin_dry_run(params, scope, incremental_models())
            if command in catch_up.COMMANDS and models.beside_weekly_kpi:  # an outage's days
                settings = catch_up.caught_up(params, settings, scope)
            try:
                code = job(params, settings)
            finally:
                if settings.dry_run:
                    models.end_dry_run(params, scope)
        record = history.current()
        code = outcome.exit_code(code, record.error_class if record else None)
    except UsageError as exc:
        # Refused right after connecting (somebody else's relation in the schema): the run
        # leaves no trace there either (refused before its row was written).
        code, error = 2, str(exc)
        if not history.started():
            history.discard()
        raise
    except ConnectError as exc:
        code, error = outcome.exit_code(1, outcome.classify(str(exc))), str(exc)
        if not history.started():
            history.discard()  # it never reached the database: nowhere to write the row
        raise
    except RunError as exc:
        code, error = outcome.exit_code(1, outcome.classify(str(exc))), str(exc)
        raise
    except KeyboardInterrupt:
        code, error = 1, "interrupted"
        raise
    finally:
        history.finish(code, error)
        with environment({"PGOPTIONS": env["PGOPTIONS"]}):
            history.write(params, scope)
        timeouts_in_effect(None)
        pushgateway.push(safety.pushgateway_url, command, history.last())
    return code
