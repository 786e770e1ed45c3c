"""Whether the source is fresh enough to score anybody: the newest exam_results row up to
the end of the anchor day, against SEEDTEST_FRESHNESS_HOURS."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from psycopg import sql

from ..config import FRESHNESS_HOURS, Settings, environ_get
from ..db.connection import ConnectionParams, connect
from ..db.failures import database_step
from ..db.history import note

FRESHNESS_ENV = FRESHNESS_HOURS.env
# A live platform records exams every day; a whole anchor day without one is what a stalled
# ingest looks like, and the P/S step would then score everybody as a day less active (and,
# as the stall goes on, every learner as inactive). One night is the earliest a daily job can
# tell, and the night the wrong scores would be written. 0 switches the guard off.
# (The default, 24, is defined in config.FRESHNESS_HOURS.)


def freshness_hours() -> int:
    raw = environ_get(FRESHNESS_ENV).strip() or FRESHNESS_HOURS.default
    return FRESHNESS_HOURS.parse(raw)


@dataclass(frozen=True)
class Freshness:
    """How fresh exam_results was at the end of the anchor day (in activity_timezone)."""

    source: str
    newest: dt.datetime | None  # newest row time up to the end of the anchor day
    end_of_day: dt.datetime
    hours: int
    anchor: dt.date
    timezone: str

    @property
    def stale(self) -> bool:
        if self.hours == 0:
            return False
        return self.newest is None or self.newest < self.end_of_day - dt.timedelta(hours=self.hours)

    def line(self) -> str:
        newest = (
            f"its newest row is from {self.newest.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC"
            if self.newest is not None
            else "it has no row"
        )
        return (
            f"source {self.source} looks stale: {newest}, more than {self.hours} h before the "
            f"end of the anchor day {self.anchor.isoformat()} ({self.timezone}) "
            f"({FRESHNESS_ENV}={self.hours})"
        )


def check_freshness(params: ConnectionParams, settings: Settings) -> Freshness:
    """The newest exam_results row up to the end of the anchor day, in one query (an index
    on coalesce(updated_at, created_at) makes it one index probe), recorded in the run
    history. A run for an old date sees the data as it was then, and today's clock plays no
    part, so a backfill is never stopped by it."""
    hours = freshness_hours()
    end = dt.datetime.combine(
        settings.anchor_date + dt.timedelta(days=1), dt.time(), ZoneInfo(settings.activity_timezone)
    )
    source = f"{settings.source_schema}.exam_results"
    query = sql.SQL(
        "select max(coalesce(updated_at, created_at)) from {}"
        " where coalesce(updated_at, created_at) < %s"
    ).format(sql.Identifier(settings.source_schema, "exam_results"))
    with database_step(f"the freshness check of {source}"), connect(params) as conn:
        row = conn.execute(query, (end,)).fetchone()
    newest = row[0] if row else None
    freshness = Freshness(
        source=source,
        newest=newest,
        end_of_day=end,
        hours=hours,
        anchor=settings.anchor_date,
        timezone=settings.activity_timezone,
    )
    note(source_newest_at=newest, source_fresh=not freshness.stale)
    return freshness
