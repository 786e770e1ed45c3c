"""The run history: one row per run in `<SEEDTEST_DBT_SCHEMA>.seedtest_run_history`.

Every command that connects and writes (run, aggregate, detect-inactivity, backfill, their dry
runs too) writes its row before it does anything else (status `running`) and completes it
when it ends, whatever the outcome: what it was asked to do, how it ended (status, exit code,
the class and first cause of a failure), what dbt and the P/S step counted, how fresh the
source was, and dbt's invocation id (which names the run in dbt's artifacts and logs). A run
killed on the way (SIGKILL, the database gone) keeps its `running` row, which the view
`seedtest_run_status` shows as `interrupted` once the run's session is gone. A run stopped by a
bad configuration before it connects (exit 2) has no row: it never reached the database, nor
has a run that could not reach it (its one [ERROR] line says so). The table is the project's
own (created when missing, in the job's schema: no CREATE on the database is needed when the
schema exists); the jobs note their counts through note() and note_build() while they run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import psycopg
from psycopg import sql

from .. import log
from ..config import Settings
from ..errors import ConnectError
from ..outcome import classify, on_error, one_line
from ..paths import dbt_target_path
from .connection import ConnectionParams, connect

TABLE = "seedtest_run_history"
CONNECT_TIMEOUT = 15

CREATE = """
create table if not exists {table} (
    run_id uuid primary key,
    command text not null,
    dry_run boolean not null,
    anchor_date date,
    window_start date,
    window_end date,
    started_at timestamptz not null,
    finished_at timestamptz,
    duration_ms bigint,
    status text not null,
    exit_code integer,
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
    error text,
    error_class text,
    session_name text
)
"""
# Tables created by earlier versions: a row is written when the run starts (so the end
# columns are empty until it ends), with the class of its failure and its session's name.
MIGRATE = """
alter table {table}
    alter column finished_at drop not null,
    alter column duration_ms drop not null,
    alter column exit_code drop not null,
    add column if not exists error_class text,
    add column if not exists session_name text
"""
COMMENT = (
    "seedtest-analytics: one row per run (command, window, outcome, counts, source freshness,"
    " dbt invocation ids), written when the run starts (status running) and updated when it"
    " ends; a running row whose session is gone is an interrupted run (seedtest_run_status)."
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
    error_class: str | None = None
    last_invocation_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))


_current: RunRecord | None = None
_last: RunRecord | None = None


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
        if name in ("error", "error_class") and getattr(_current, name) is not None:
            continue  # the first error is the cause; later ones follow from it
        setattr(_current, name, value)


def _note_error(cause: str, error_class: str) -> None:
    note(error=cause, error_class=error_class)


on_error(_note_error)  # every [ERROR] line of a run: the first one is its cause


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


class BuildCounts(Protocol):
    """What the history keeps of one dbt invocation (dbt/runner.py's BuildSummary)."""

    models_built: int
    tests_passed: int
    tests_warned: int
    tests_failed: int


def note_build(summary: BuildCounts) -> None:
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
    if error is not None:
        note(error=error)
    if _current.error is not None and _current.error_class is None:
        _current.error_class = classify(_current.error)
    _current.exit_code = exit_code
    _current.status = {0: "success", 2: "refused"}.get(exit_code, "failed")


def discard() -> None:
    """Forget the current run (it never reached the database)."""
    global _current, _session
    _current = None
    _close_session()


# The session that wrote the run's first row stays open until the run ends: its name, in the
# row, tells a running run (the session is there) from an interrupted one (it is gone, as
# after a SIGKILL or a lost database).
_session: psycopg.Connection | None = None
SESSION_PREFIX = "seedtest-analytics run "


def _close_session() -> None:
    global _session
    session, _session = _session, None
    if session is not None:
        with contextlib.suppress(psycopg.Error):
            session.close()


def _ensure_table(conn: psycopg.Connection, schema: str) -> None:
    """Create the table (and its schema, only when missing: `create schema if not exists`
    needs CREATE on the database even when the schema is there), or bring an earlier version's
    table up to date; the status view with it."""
    table = sql.Identifier(schema, TABLE)
    row = conn.execute(
        "select to_regclass(%s) is not null, exists (select from pg_attribute"
        " where attrelid = to_regclass(%s) and attname = 'session_name' and not attisdropped)",
        (f"{schema}.{TABLE}",) * 2,
    ).fetchone()
    exists, current = (bool(row[0]), bool(row[1])) if row else (False, False)
    if exists and current:
        return
    conn.execute("select pg_advisory_xact_lock(hashtext('seedtest-analytics history'))")
    schema_there = conn.execute(
        "select exists (select from pg_namespace where nspname = %s)", (schema,)
    ).fetchone()
    if not (schema_there and schema_there[0]):
        conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(schema)))
    conn.execute(sql.SQL(CREATE).format(table=table))
    conn.execute(sql.SQL(MIGRATE).format(table=table))
    conn.execute(
        sql.SQL(INDEX).format(index=sql.Identifier(f"{TABLE}_started_at_idx"), table=table)
    )
    conn.execute(sql.SQL("comment on table {} is {}").format(table, sql.Literal(COMMENT)))
    conn.execute(sql.SQL(STATUS_VIEW).format(view=sql.Identifier(schema, VIEW), table=table))


VIEW = "seedtest_run_status"
# The history with the state an operator wants: a `running` row whose session is gone is
# `interrupted` (the process was killed, or the database went away under it).
STATUS_VIEW = """
create or replace view {view} as
select h.*,
       case when h.status = 'running' and not exists (
                select from pg_stat_activity as a where a.application_name = h.session_name)
            then 'interrupted' else h.status end as state
from {table} as h
"""


def _values(record: RunRecord, *, ended: bool) -> dict[str, object]:
    values = dataclasses.asdict(record)
    values.pop("started")
    values.pop("last_invocation_at")
    values["session_name"] = SESSION_PREFIX + record.run_id.hex
    if ended:
        values["finished_at"] = dt.datetime.now(dt.UTC)
        values["duration_ms"] = round((time.monotonic() - record.started) * 1000)
    else:
        values.update(finished_at=None, duration_ms=None, exit_code=None, status="running")
    ids = record.dbt_invocation_ids
    # The last dbt invocation is the one whose artifacts (run_results.json) stay in target/.
    values["dbt_invocation_id"] = ids[-1] if ids else None
    return values


def _upsert(conn: psycopg.Connection, schema: str, values: dict[str, object]) -> None:
    table = sql.Identifier(schema, TABLE)
    columns = list(values)
    statement = sql.SQL(
        "insert into {} ({}) values ({}) on conflict (run_id) do update set {}"
    ).format(
        table,
        sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.SQL(", ").join(sql.Placeholder(c) for c in columns),
        sql.SQL(", ").join(
            sql.SQL("{0} = excluded.{0}").format(sql.Identifier(c))
            for c in columns
            if c != "run_id"
        ),
    )
    conn.execute(statement, values)


def started() -> bool:
    """True when the current run's row was written at its start."""
    return _session is not None


def last() -> RunRecord | None:
    """The record of the run that ended last in this process (for the metrics)."""
    return _last


def start(
    params: ConnectionParams,
    schema: str,
    before: Callable[[psycopg.Connection], None] | None = None,
) -> None:
    """Write the current run's row, status `running`, before the run does anything else, from
    a session that stays open until the run ends. The database not answering is the run's
    failure (ConnectError); any other failure to write the row is a warning (the row is
    written at the end if it can be)."""
    global _session
    record = _current
    if record is None:
        return
    conn = None
    try:
        conn = psycopg.connect(
            **params.psycopg_kwargs(), autocommit=True, connect_timeout=CONNECT_TIMEOUT
        )
    except psycopg.OperationalError as exc:
        raise ConnectError(
            f"cannot connect to {params.redacted()}: "
            f"{one_line(str(exc)).removeprefix('connection failed: ')}; "
            "nothing was done and no run history row could be written"
        ) from None
    try:
        conn.execute("set idle_session_timeout = 0")
        conn.execute("set idle_in_transaction_session_timeout = 0")
        conn.execute(
            "select set_config('application_name', %s, false)",
            (SESSION_PREFIX + record.run_id.hex,),
        )
        if before is not None:
            before(conn)
        with conn.transaction():
            _ensure_table(conn, schema)
            _upsert(conn, schema, _values(record, ended=False))
        _session = conn
    except BaseException as exc:
        conn.close()
        if not isinstance(exc, psycopg.Error):
            raise
        log.warn(
            f"run history: the start of the run not written to {schema}.{TABLE}: {_first(exc)}"
        )


def _first(exc: BaseException) -> str:
    return one_line(str(exc).strip().splitlines()[0]) if str(exc).strip() else type(exc).__name__


def write(params: ConnectionParams, schema: str) -> None:
    """Write the current run's final row (over its `running` row); a failure to do so is a
    warning, never the run's outcome."""
    global _current, _last
    record, _current = _current, None
    if record is None:
        return
    _last = record
    values = _values(record, ended=True)
    session = _session
    try:
        if session is not None and not session.closed:
            try:
                with session.transaction():
                    _upsert(session, schema, values)
                return
            except psycopg.OperationalError:
                pass  # the session went away (a restart, a timeout): a new one
        with connect(params) as conn:
            _ensure_table(conn, schema)
            _upsert(conn, schema, values)
            conn.commit()
    except Exception as exc:  # the run's outcome stands, whatever happened to its record
        if record.error_class == "database_unreachable":
            # The [ERROR] line said so; the row written at the start reads as interrupted.
            log.debug(f"run history not written to {schema}.{TABLE}: {_first(exc)}")
        else:
            log.warn(f"run history not written to {schema}.{TABLE}: {_first(exc)}")
    finally:
        _close_session()
