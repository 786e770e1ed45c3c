"""Whether the source is fresh enough to score anybody: the newest exam_results row up to
the end of the anchor day, against SEEDTEST_FRESHNESS_HOURS, and whether a day without exams
is a quiet weekday (the same weekday of the weeks before had none either) rather than a
stalled source. SEEDTEST_ALLOW_STALE (or --allow-stale) scores anyway, for one run."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from psycopg import sql

from ..config import ALLOW_STALE, FRESHNESS_HOURS, Settings
from ..db.connection import ConnectionParams, connect
from ..db.failures import database_step
from ..db.history import note

FRESHNESS_ENV = FRESHNESS_HOURS.env
# A live platform records exams every day; a whole anchor day without one is what a stalled
# ingest looks like, and the P/S step would then score everybody as a day less active (and,
# as the stall goes on, every learner as inactive). One night is the earliest a daily job can
# tell, and the night the wrong scores would be written. 0 switches the guard off.
# (The default, 24, is defined in config.FRESHNESS_HOURS; the value is
# settings.safety.freshness_hours.)

ALLOW_STALE_ENV = ALLOW_STALE.env
# A day without exams is only suspicious when that weekday usually has them: of the same
# weekday in the USUAL_WEEKS weeks before, at least USUAL_MIN had an exam (a school without
# weekend exams has quiet Saturdays, not a stalled ingest).
USUAL_WEEKS = 4
USUAL_MIN = 2


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
    hours = settings.safety.freshness_hours
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
