"""What a run checks before dbt writes anything: whose schema it is about to write, and
whether the source is fresh enough to score anybody.

- The project's schema (SEEDTEST_DBT_SCHEMA) is never the source schema nor a system schema:
  refused before connecting (exit 2). With the schema equal to SOURCE_SCHEMA, dbt would
  replace any application table that shares a model's name.
- The project's schema holds only relations the project manages: dbt's models (by name, from
  the project's files, plus the names earlier versions of the project used) and the project's
  own tables. Anything else means the schema belongs to somebody else too, and a build could
  replace their table: refused with one line naming it (exit 2), checked in one query right
  before dbt runs.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
from psycopg import sql

from .config import FRESHNESS_HOURS, Settings
from .connection import ConnectionParams
from .db import connect
from .dbt_runner import project_root
from .errors import UsageError
from .failures import database_step
from .history import note

DRY_RUN_SUFFIX = "_dry_run"
# Tables the project keeps in its schema besides the models: the run history (history.py)
# and the windows of the per-run tables (macros/run_window.sql).
# Tables the Python side creates in the project's schema: the run history, dbt's per-run
# window record, and the churn model's versions and backtest results (churn_model.py).
OWN_TABLES = frozenset(
    {
        "seedtest_run_history",
        "seedtest_run_status",
        "run_windows",
        "churn_models",
        "churn_backtest_results",
    }
)
# Model names of earlier versions of the project: a schema built by one of them still holds
# these relations (models renamed since then are left behind until dropped by hand).
EARLIER_MODELS = frozenset(
    {
        "stg_seedtest__ability_estimates",
        "stg_seedtest__attempts",
        "stg_seedtest__exam_results",
        "stg_seedtest__interest_goals",
        "stg_seedtest__mirt_ability",
        "stg_seedtest__sessions",
        "stg_seedtest__student_topic_theta",
        "stg_seedtest__weekly_kpi",
        "int_activity_daily",
        "int_attempts__windowed",
        "int_topic_daily__aggregated",
        "int_topic_daily__improvement",
        "int_topic_daily__theta",
        "int_user_ids",
        "features_topic_daily",
        "inactive_user_scoring_inputs",
        "inactive_users",
        "user_ability_as_of",
        "user_last_activity",
    }
)
# Relations dbt's table materialization creates next to a model for the length of a swap.
DBT_SUFFIXES = ("__dbt_tmp", "__dbt_backup")
_SYSTEM_SCHEMAS = ("information_schema",)
_MAX_IDENTIFIER = 63


def check_schema_names(target: str, source: str) -> None:
    """SEEDTEST_DBT_SCHEMA may not be SOURCE_SCHEMA, a system schema, or too long for its
    dry-run scratch schema; both names are already valid lowercase identifiers."""
    if target == source:
        raise UsageError(
            f"SEEDTEST_DBT_SCHEMA and SOURCE_SCHEMA are both {target!r}: the project's models "
            "would replace the application's tables; give the project a schema of its own"
        )
    if target.startswith("pg_") or target in _SYSTEM_SCHEMAS:
        raise UsageError(f"SEEDTEST_DBT_SCHEMA may not be a system schema (got {target!r})")
    if len(target) + len(DRY_RUN_SUFFIX) > _MAX_IDENTIFIER:
        raise UsageError(
            f"SEEDTEST_DBT_SCHEMA must be at most {_MAX_IDENTIFIER - len(DRY_RUN_SUFFIX)} "
            f"characters, so that its dry-run schema {target}{DRY_RUN_SUFFIX} fits (got {target!r})"
        )
    if source == target + DRY_RUN_SUFFIX:
        raise UsageError(
            f"SOURCE_SCHEMA {source!r} is the dry-run scratch schema of SEEDTEST_DBT_SCHEMA "
            f"{target!r}; give the project a schema of its own"
        )


def project_model_names(root: Path | None = None) -> set[str]:
    """The relation names of the project's models and seeds: dbt names a model's relation after
    its file (the project sets no aliases; tests/python/test_app_safety.py checks that)."""
    root = root or project_root()
    names = {path.stem for path in (root / "models").rglob("*.sql")}
    names |= {path.stem for path in (root / "models").rglob("*.py")}
    names |= {path.stem for path in (root / "seeds").rglob("*.csv")}
    return names


_INCREMENTAL = re.compile(r"""materialized\s*=\s*['"]incremental['"]""")


def incremental_models(root: Path | None = None) -> list[str]:
    """The project's incremental models (what a dry run copies into its scratch schema)."""
    root = root or project_root()
    return sorted(
        path.stem
        for path in (root / "models").rglob("*.sql")
        if _INCREMENTAL.search(path.read_text())
    )


def managed_names(root: Path | None = None) -> set[str]:
    models = project_model_names(root) | EARLIER_MODELS
    return models | OWN_TABLES | {m + suffix for m in models for suffix in DBT_SUFFIXES}


def foreign_relation(conn: psycopg.Connection, schema: str) -> tuple[str, str] | None:
    """(kind, name) of the first relation in `schema` that the project does not manage."""
    row = conn.execute(
        """
        select case c.relkind when 'v' then 'view' when 'm' then 'materialized view'
                              when 'f' then 'foreign table' else 'table' end,
               c.relname::text
        from pg_class as c
        join pg_namespace as n on n.oid = c.relnamespace
        where n.nspname = %s and c.relkind in ('r', 'p', 'v', 'm', 'f')
            and c.relname <> all(%s)
        order by c.relname
        limit 1
        """,
        (schema, sorted(managed_names())),
    ).fetchone()
    conn.rollback()
    return (str(row[0]), str(row[1])) if row else None


def check_target_schema(conn: psycopg.Connection, schema: str) -> None:
    """Refuse (exit 2) when the project's schema holds a relation the project did not create."""
    found = foreign_relation(conn, schema)
    if found:
        kind, name = found
        raise UsageError(
            f"schema {schema} holds the {kind} {schema}.{name}, which seedtest-analytics did "
            "not create; nothing was written. SEEDTEST_DBT_SCHEMA must be a schema only this "
            "project writes (move that relation, or choose another schema)"
        )


# --- the freshness guard ------------------------------------------------------------------------

FRESHNESS_ENV = FRESHNESS_HOURS.env
# A live platform records exams every day; a whole anchor day without one is what a stalled
# ingest looks like, and the P/S step would then score everybody as a day less active (and,
# as the stall goes on, every learner as inactive). One night is the earliest a daily job can
# tell, and the night the wrong scores would be written. 0 switches the guard off.
# (The default, 24, is defined in config.FRESHNESS_HOURS.)


def freshness_hours() -> int:
    raw = os.environ.get(FRESHNESS_ENV, "").strip() or FRESHNESS_HOURS.default
    return FRESHNESS_HOURS.parse(raw)


ALLOW_STALE_ENV = "SEEDTEST_ALLOW_STALE"
# A day without exams is only suspicious when that weekday usually has them: of the same
# weekday in the USUAL_WEEKS weeks before, at least USUAL_MIN had an exam (a school without
# weekend exams has quiet Saturdays, not a stalled ingest).
USUAL_WEEKS = 4
USUAL_MIN = 2


def allow_stale() -> bool:
    """SEEDTEST_ALLOW_STALE (or the --allow-stale flag, which sets it): score even on a stale
    source, for one run."""
    raw = os.environ.get(ALLOW_STALE_ENV, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise UsageError(f"{ALLOW_STALE_ENV} must be true or false (got {raw!r})")


@dataclass(frozen=True)
class Freshness:
    """How fresh exam_results was at the end of the anchor day (in activity_timezone)."""

    source: str
    newest: dt.datetime | None  # newest row time up to the end of the anchor day
    end_of_day: dt.datetime
    hours: int
    anchor: dt.date
    timezone: str
    usual: int = USUAL_WEEKS  # of the same weekday in the weeks before, how many had exams

    @property
    def late(self) -> bool:
        """No row within `hours` of the end of the anchor day."""
        if self.hours == 0:
            return False
        return self.newest is None or self.newest < self.end_of_day - dt.timedelta(hours=self.hours)

    @property
    def quiet(self) -> bool:
        """Late, but that weekday is usually quiet: not a stale source."""
        return self.late and self.usual < USUAL_MIN

    @property
    def stale(self) -> bool:
        return self.late and not self.quiet

    def line(self) -> str:
        newest = (
            f"its newest row is from {self.newest.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC"
            if self.newest is not None
            else "it has no row"
        )
        return (
            f"source {self.source} looks stale: {newest}, more than {self.hours} h before the "
            f"end of the anchor day {self.anchor.isoformat()} ({self.timezone}) "
            f"({FRESHNESS_ENV}={self.hours}), while {self.usual} of the {USUAL_WEEKS} same "
            "weekdays before had exams"
        )

    def override(self) -> str:
        return (
            f"if the source is right (a quiet day), score anyway for this one run with "
            f"--allow-stale or {ALLOW_STALE_ENV}=true"
        )

    def quiet_line(self) -> str:
        return (
            f"no exams in {self.source} on the anchor day {self.anchor.isoformat()} "
            f"({self.timezone}), a quiet weekday ({self.usual} of the {USUAL_WEEKS} same "
            "weekdays before had exams): not a stale source"
        )


def check_freshness(params: ConnectionParams, settings: Settings) -> Freshness:
    """The newest exam_results row up to the end of the anchor day, and on how many of the
    same weekday of the weeks before there were exams, in one query of index probes (an index
    on coalesce(updated_at, created_at) makes each one probe), recorded in the run history.
    A run for an old date sees the data as it was then, and today's clock plays no part, so a
    backfill is never stopped by it."""
    hours = freshness_hours()
    zone = ZoneInfo(settings.activity_timezone)
    end = dt.datetime.combine(settings.anchor_date + dt.timedelta(days=1), dt.time(), zone)
    days = [settings.anchor_date - dt.timedelta(days=7 * k) for k in range(1, USUAL_WEEKS + 1)]
    starts = [dt.datetime.combine(day, dt.time(), zone) for day in days]
    ends = [dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), zone) for day in days]
    source = f"{settings.source_schema}.exam_results"
    table = sql.Identifier(settings.source_schema, "exam_results")
    query = sql.SQL(
        "select (select max(coalesce(updated_at, created_at)) from {table}"
        " where coalesce(updated_at, created_at) < %s),"
        " (select count(*) from unnest(%s::timestamptz[], %s::timestamptz[]) as w (s, e)"
        " where exists (select from {table} where coalesce(updated_at, created_at) >= w.s"
        " and coalesce(updated_at, created_at) < w.e))"
    ).format(table=table)
    with database_step(f"the freshness check of {source}"), connect(params) as conn:
        row = conn.execute(query, (end, starts, ends)).fetchone()
    newest = row[0] if row else None
    freshness = Freshness(
        source=source,
        newest=newest,
        end_of_day=end,
        hours=hours,
        anchor=settings.anchor_date,
        timezone=settings.activity_timezone,
        usual=int(row[1]) if row else 0,
    )
    note(source_newest_at=newest, source_fresh=not freshness.stale)
    return freshness
