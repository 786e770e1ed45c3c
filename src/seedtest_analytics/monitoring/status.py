"""`seedtest-analytics status`: the last successful run of each command, from the run history,
and every run of it since that did not succeed (failed, refused, running, interrupted).

With `--max-age HOURS`, the command named by `--command` (default `run`, the nightly one)
must have succeeded within that many hours: exit 1 when it has not (or never did), so a
monitoring probe or an operator sees a missed night. Exit 2 when the history cannot be read
(no such table, no privilege, a bad option), 0 otherwise. Dry runs are left out.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from .. import log
from ..db.connection import ConnectionParams, connect
from ..db.history import TABLE
from ..errors import RunError, UsageError
from ..outcome import one_line

EXIT_OK = 0
EXIT_TOO_OLD = 1
SHOWN_AFTER = 5  # runs shown after the last success, per command

QUERY = """
with runs as (
    select h.command, h.started_at, h.finished_at, h.anchor_date, h.error_class, h.error,
           case when h.status = 'running' and not exists (
                    select from pg_stat_activity as a where a.application_name = {session})
                then 'interrupted' else h.status end as state
    from {table} as h
    where not h.dry_run
),
last_success as (
    select command, max(started_at) as started_at from runs where state = 'success'
    group by command
)
select r.command, r.state, r.started_at, r.finished_at, r.anchor_date, r.error_class, r.error,
       r.started_at = l.started_at as is_last_success
from runs as r
left join last_success as l on l.command = r.command
where l.started_at is null or r.started_at >= l.started_at
order by r.command, r.started_at
"""


@dataclass(frozen=True)
class Run:
    command: str
    state: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    anchor_date: dt.date | None
    error_class: str | None
    error: str | None
    is_last_success: bool

    def describe(self, now: dt.datetime) -> str:
        when = self.finished_at or self.started_at
        hours = (now - when).total_seconds() / 3600
        anchor = f"anchor {self.anchor_date.isoformat()}, " if self.anchor_date else ""
        text = f"at {when.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC ({anchor}{hours:.1f} h ago)"
        if not self.is_last_success:
            text = f"{self.state} {text}"
        if self.state not in ("success", "running", "interrupted"):
            cause = one_line(self.error or "")[:300]
            text += f": {self.error_class or 'failed'}" + (f": {cause}" if cause else "")
        return text


def read_runs(conn: psycopg.Connection, schema: str) -> list[Run]:
    """The last success and the runs after it, per command, in one query."""
    row = conn.execute(
        "select to_regclass(%s) is not null, exists (select from pg_attribute"
        " where attrelid = to_regclass(%s) and attname = 'session_name' and not attisdropped)",
        (f"{schema}.{TABLE}",) * 2,
    ).fetchone()
    if not (row and row[0]):
        raise UsageError(f"no run history in {schema}.{TABLE}: no command has run there yet")
    # A table of an earlier version has no session names (and never a running row).
    session = sql.SQL("h.session_name" if row[1] else "null::text")
    query = sql.SQL(QUERY).format(table=sql.Identifier(schema, TABLE), session=session)
    if not row[1]:
        query = sql.SQL(QUERY.replace("h.error_class", "null::text as error_class")).format(
            table=sql.Identifier(schema, TABLE), session=session
        )
    found: list[tuple[Any, ...]] = conn.execute(query).fetchall()
    return [Run(*values) for values in found]


def run_status(
    params: ConnectionParams, schema: str, *, max_age: float | None, command: str
) -> int:
    try:
        with connect(params) as conn:
            runs = read_runs(conn, schema)
            now_row = conn.execute("select now()").fetchone()
    except psycopg.errors.InsufficientPrivilege as exc:
        raise UsageError(f"reading {schema}.{TABLE}: {one_line(str(exc))}") from None
    except psycopg.Error as exc:
        raise RunError(f"reading {schema}.{TABLE} failed: {one_line(str(exc))}") from None
    now = now_row[0] if now_row else dt.datetime.now(dt.UTC)
    commands = sorted({run.command for run in runs} | {command})
    code = EXIT_OK
    for name in commands:
        own = [run for run in runs if run.command == name]
        success = next((run for run in own if run.is_last_success), None)
        after = [run for run in own if not run.is_last_success][-SHOWN_AFTER:]
        checked = max_age is not None and name == command
        if success is None:
            line = f"{name}: no successful run"
            too_old = checked
        else:
            line = f"{name}: last success {success.describe(now)}"
            when = success.finished_at or success.started_at
            too_old = checked and (now - when).total_seconds() > (max_age or 0) * 3600
        if too_old:
            log.error(
                f"{line}, more than --max-age {max_age:g} h",
                extra={"error_class": "no_recent_success"},
            )
            code = EXIT_TOO_OLD
        else:
            log.info(line)
        for run in after:
            (log.info if run.state == "running" else log.warn)(f"{name}: then {run.describe(now)}")
    return code
