"""The run history: one row per run in `<SEEDTEST_DBT_SCHEMA>.seedtest_run_history`.

Every command that connects and writes (run, aggregate, detect-inactivity, backfill, their dry
runs too) appends one row when it ends, whatever the outcome: what it was asked to do, how it
ended, what dbt and the P/S step counted, how fresh the source was, and dbt's invocation id
(which names the run in dbt's artifacts and logs). A run stopped by a bad configuration
before it connects (exit 2) has no row: it never reached the database. The table is the
project's own (created when missing); the jobs note their counts through note() and
note_build() while they run.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
import uuid
from dataclasses import dataclass, field

from psycopg import sql

from .. import log
from ..config import Settings
from ..dbt.paths import dbt_target_path
from ..dbt.runner import BuildSummary
from .connection import ConnectionParams, connect

TABLE = "seedtest_run_history"

CREATE = """
create table if not exists {table} (
    run_id uuid primary key,
    command text not null,
    dry_run boolean not null,
    anchor_date date,
    window_start date,
    window_end date,
    started_at timestamptz not null,
    finished_at timestamptz not null,
    duration_ms bigint not null,
    status text not null,
    exit_code integer not null,
    models_built integer not null,
    tests_passed integer not null,
    tests_warned integer not null,
    tests_failed integer not null,
    combinations integer,
    users_found integer,
    users_scored integer,
    users_failed integer,
    source_newest_at timestamptz,
    source_fresh boolean,
    dbt_invocation_id text,
    dbt_invocation_ids text[] not null,
    error text
)
"""
COMMENT = (
    "seedtest-analytics: one row per run (command, window, outcome, counts, source freshness,"
    " dbt invocation ids), appended when the run ends."
)
INDEX = "create index if not exists {index} on {table} (started_at desc)"


@dataclass
class RunRecord:
    command: str
    dry_run: bool = False
    anchor_date: dt.date | None = None
    window_start: dt.date | None = None
    window_end: dt.date | None = None
    run_id: uuid.UUID = field(default_factory=uuid.uuid4)
    started_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    started: float = field(default_factory=time.monotonic)
    status: str = "running"
    exit_code: int = 1
    models_built: int = 0
    tests_passed: int = 0
    tests_warned: int = 0
    tests_failed: int = 0
    combinations: int | None = None
    users_found: int | None = None
    users_scored: int | None = None
    users_failed: int | None = None
    source_newest_at: dt.datetime | None = None
    source_fresh: bool | None = None
    dbt_invocation_ids: list[str] = field(default_factory=list)
    error: str | None = None
    last_invocation_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))


_current: RunRecord | None = None


def begin(command: str, settings: Settings) -> RunRecord:
    global _current
    _current = RunRecord(
        command=command,
        dry_run=settings.dry_run,
        anchor_date=settings.anchor_date,
        window_start=settings.since,
        window_end=settings.anchor_date,
    )
    return _current


def current() -> RunRecord | None:
    return _current


def note(**values: object) -> None:
    """Record counts of the run going on (a no-op outside one, e.g. in-process tests)."""
    if _current is None:
        return
    for name, value in values.items():
        if name == "error" and _current.error is not None:
            continue  # the first error is the cause; later ones follow from it
        setattr(_current, name, value)


def _last_invocation_id(since: dt.datetime) -> str | None:
    """dbt's invocation id from run_results.json, if that file was written after `since`
    (an invocation stopped before it ran anything leaves the previous one's file)."""
    try:
        metadata = json.loads((dbt_target_path() / "run_results.json").read_text())["metadata"]
        generated = dt.datetime.fromisoformat(str(metadata["generated_at"]).replace("Z", ""))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if generated.tzinfo is None:
        generated = generated.replace(tzinfo=dt.UTC)
    return str(metadata.get("invocation_id")) if generated >= since else None


def note_build(summary: BuildSummary) -> None:
    """Add one dbt invocation's counts and its invocation id."""
    if _current is None:
        return
    _current.models_built += summary.models_built
    _current.tests_passed += summary.tests_passed
    _current.tests_warned += summary.tests_warned
    _current.tests_failed += summary.tests_failed
    invocation = _last_invocation_id(_current.last_invocation_at)
    if invocation and invocation not in _current.dbt_invocation_ids:
        _current.dbt_invocation_ids.append(invocation)
    _current.last_invocation_at = dt.datetime.now(dt.UTC)


def finish(exit_code: int, error: str | None = None) -> None:
    if _current is None:
        return
    _current.exit_code = exit_code
    _current.status = {0: "success", 2: "refused"}.get(exit_code, "failed")
    if error is not None:
        note(error=error)


def discard() -> None:
    """Forget the current run (it never reached the database)."""
    global _current
    _current = None


def write(params: ConnectionParams, schema: str) -> None:
    """Append the current run's row; a failure to do so is a warning, never the run's outcome."""
    global _current
    record, _current = _current, None
    if record is None:
        return
    values = dataclasses.asdict(record)
    values.pop("started")
    values.pop("last_invocation_at")
    values["finished_at"] = dt.datetime.now(dt.UTC)
    values["duration_ms"] = round((time.monotonic() - record.started) * 1000)
    ids = record.dbt_invocation_ids
    # The last dbt invocation is the one whose artifacts (run_results.json) stay in target/.
    values["dbt_invocation_id"] = ids[-1] if ids else None
    table = sql.Identifier(schema, TABLE)
    columns = list(values)
    insert = sql.SQL("insert into {} ({}) values ({})").format(
        table,
        sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.SQL(", ").join(sql.Placeholder(c) for c in columns),
    )
    try:
        with connect(params) as conn:
            exists = conn.execute("select to_regclass(%s)", (f"{schema}.{TABLE}",)).fetchone()
            if not (exists and exists[0]):
                conn.execute("select pg_advisory_xact_lock(hashtext('seedtest-analytics history'))")
                conn.execute(
                    sql.SQL("create schema if not exists {}").format(sql.Identifier(schema))
                )
                conn.execute(sql.SQL(CREATE).format(table=table))
                conn.execute(
                    sql.SQL(INDEX).format(
                        index=sql.Identifier(f"{TABLE}_started_at_idx"), table=table
                    )
                )
                conn.execute(
                    sql.SQL("comment on table {} is {}").format(table, sql.Literal(COMMENT))
                )
            conn.execute(insert, values)
            conn.commit()
    except Exception as exc:  # the run's outcome stands, whatever happened to its record
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        log.warn(f"run history not written to {schema}.{TABLE}: {first}")
