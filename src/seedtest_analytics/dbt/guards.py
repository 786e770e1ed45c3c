"""What a run checks before dbt writes anything: whose schema it is about to write.

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

import re
from pathlib import Path

import psycopg

from ..config import DRY_RUN_SUFFIX as DRY_RUN_SUFFIX
from ..errors import UsageError
from ..paths import project_root
from . import dry_run

# Tables the project keeps in its schema besides the models: the run history (db/history.py)
# and the windows of the per-run tables (macros/run_window/run_windows_registry.sql).
# Tables the Python side creates in the project's schema: the run history, dbt's per-run
# window record, the churn model's versions and backtest results (scoring/churn_model.py),
# and the champion/challenger candidates and decisions (scoring/churn_champion.py).
OWN_TABLES = frozenset(
    {
        "seedtest_run_history",
        "seedtest_run_status",
        "run_windows",
        "incremental_settings",
        "churn_models",
        "churn_backtest_results",
        "churn_candidates",
        "churn_decisions",
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
            -- a scratch relation of a dry run, proved by its marker (dry_run.py)
            and not (left(c.relname, %s) = %s
                     and obj_description(c.oid, 'pg_class') is not distinct from %s)
        order by c.relname
        limit 1
        """,
        (schema, sorted(managed_names()), len(dry_run.PREFIX), dry_run.PREFIX, dry_run.MARKER),
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
