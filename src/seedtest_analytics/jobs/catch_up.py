"""After nights that did not run (an outage longer than AGG_LOOKBACK_DAYS), the next run
catches features_topic_daily up from the last day built instead of leaving the days in
between empty for good.

Before dbt runs, the last anchor features_topic_daily was built for is read (recorded with
its settings, macros/incremental/incremental_settings.sql). When the days after it start before this
run's window, the run's lookback is widened to begin on the
day after it, up to MAX_CATCH_UP_DAYS before the anchor (a bounded cost); a larger gap keeps
the usual window and says, in one warning line, the backfill command that fills it. Only the
nightly commands that build features_topic_daily (run, aggregate) catch up; a dry run
computes what the real run would.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from psycopg import sql

from .. import log
from ..config import Settings
from ..db.connection import ConnectionParams, connect
from ..db.failures import database_step

COMMANDS = ("run", "aggregate")
FEATURES = "features_topic_daily"
REGISTRY = "incremental_settings"
MAX_CATCH_UP_DAYS = 60


def newest_day(params: ConnectionParams, schema: str) -> dt.date | None:
    """The last anchor features_topic_daily was built for (recorded with its settings by
    macros/incremental/incremental_settings.sql), else its newest day with rows; None before
    its first build."""
    registry, features = sql.Identifier(schema, REGISTRY), sql.Identifier(schema, FEATURES)
    with database_step(f"reading the newest day of {schema}.{FEATURES}"), connect(params) as conn:
        found = conn.execute(
            "select to_regclass(%s) is not null, to_regclass(%s) is not null",
            (registry.as_string(conn), features.as_string(conn)),
        ).fetchone()
        has_registry, has_features = bool(found and found[0]), bool(found and found[1])
        if not has_features:
            return None
        if has_registry:
            row = conn.execute(
                sql.SQL("select built_through from {} where model = %s").format(registry),
                (FEATURES,),
            ).fetchone()
            if row is not None:
                return row[0]  # type: ignore[no-any-return]
        row = conn.execute(sql.SQL("select max(date) from {}").format(features)).fetchone()
    return row[0] if row and row[0] is not None else None


def caught_up(params: ConnectionParams, settings: Settings, schema: str) -> Settings:
    """The settings with the lookback widened to the day after the newest one built (when
    that is before the usual window and within the bound)."""
    newest = newest_day(params, schema)
    if newest is None or newest >= settings.anchor_date:
        return settings
    first_missing = newest + dt.timedelta(days=1)
    if first_missing >= settings.since:
        return settings
    gap = (settings.anchor_date - first_missing).days
    if gap > MAX_CATCH_UP_DAYS:
        log.warn(
            f"{FEATURES} was last built for {newest.isoformat()}, {gap} days before the anchor "
            f"(more than the {MAX_CATCH_UP_DAYS} days a night catches up): this run rebuilds its "
            f"usual {settings.lookback_days} days; fill the rest with: seedtest-analytics "
            f"backfill --start {first_missing.isoformat()} --end {settings.since.isoformat()}"
        )
        return settings
    log.info(
        f"{FEATURES} was last built for {newest.isoformat()}: this run catches up from "
        f"{first_missing.isoformat()} (lookback {gap} days instead of {settings.lookback_days})"
    )
    return dataclasses.replace(settings, lookback_days=gap)
