"""The anchors of the churn backtest and of the churn model's training: the anchor spine,
the one dbt build of churn_user_anchors over it, which anchors have a complete horizon, and
the user-anchors read as numpy columns.

numpy, scikit-learn and matplotlib are the optional extra [backtest]; without them the
commands stop with one line (exit 2), see `require_extra`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from .. import log
from ..config import Settings
from ..db.connection import ConnectionParams, connect
from ..dbt.runner import invoke, target_schema
from ..errors import RunError, UsageError
from ..scoring.churn_model import CHURN_INPUTS

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    FloatArray = NDArray[np.float64]
    BoolArray = NDArray[np.bool_]

MAX_ANCHORS = 5000
ACTIVITY = "int_activity_daily"
FEATURES_MODEL = "features_topic_daily"
EPOCH = dt.date(1970, 1, 1)
_MISSING = (
    "{command} needs the optional dependencies numpy, scikit-learn and matplotlib: "
    "pip install 'seedtest-analytics[backtest]'"
)


def require_extra(command: str, *modules: str) -> None:
    import importlib

    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError:
            raise UsageError(_MISSING.format(command=command)) from None


@dataclass(frozen=True)
class AnchorSettings(Settings):
    """Settings plus the anchor spine of churn_user_anchors (its dbt vars)."""

    churn_anchor_start: dt.date | None = None
    churn_anchor_end: dt.date | None = None
    churn_anchor_every: int = 1

    def dbt_vars(self) -> dict[str, object]:
        values = super().dbt_vars()
        if self.churn_anchor_end is not None:
            values["churn_anchor_start"] = (
                self.churn_anchor_start or self.churn_anchor_end
            ).isoformat()
            values["churn_anchor_end"] = self.churn_anchor_end.isoformat()
            values["churn_anchor_every"] = self.churn_anchor_every
        return values


def anchor_spine(start: dt.date, end: dt.date, every: int) -> list[dt.date]:
    count = (end - start).days // every + 1
    return [start + dt.timedelta(days=i * every) for i in range(count)]


def check_spine(
    start: dt.date, end: dt.date, every: int, settings: Settings, *, what: str = "--end"
) -> list[dt.date]:
    if start > end:
        raise UsageError(f"--start {start} is after {what} {end}")
    if end > settings.anchor_date:
        raise UsageError(
            f"{what} {end} is after {settings.anchor_date}, the last complete day of data "
            "(yesterday, or ANCHOR_DATE)"
        )
    if (end - start).days // every + 1 > MAX_ANCHORS:
        raise UsageError(f"at most {MAX_ANCHORS} anchors; use a larger --every")
    return anchor_spine(start, end, every)


def build_user_anchors(
    params: ConnectionParams, settings: Settings, anchors: Sequence[dt.date], every: int
) -> None:
    """One dbt build of churn_user_anchors (a view) over the spine. It reads the activity
    model as the nightly run keeps it, and writes none of the nightly's tables; only in a
    database where the nightly has not run yet does it build the models the view reads
    (except features_topic_daily), as the nightly's first run would."""
    schema = target_schema()
    with connect(params) as conn:
        found = conn.execute(
            "select to_regclass(%s) is not null",
            (sql.Identifier(schema, ACTIVITY).as_string(conn),),
        ).fetchone()
    upstream = not (found and found[0])
    values = {field.name: getattr(settings, field.name) for field in dataclasses.fields(Settings)}
    spine = AnchorSettings(
        **values,
        churn_anchor_start=anchors[0],
        churn_anchor_end=anchors[-1],
        churn_anchor_every=every,
    )
    summary = invoke(
        params,
        "build",
        spine,
        select=[f"+{CHURN_INPUTS}" if upstream else CHURN_INPUTS],
        exclude=[FEATURES_MODEL] if upstream else [],
    )
    if not summary.success:
        for message in summary.errors:
            log.error(message)
        raise RunError(f"dbt build of {CHURN_INPUTS} failed; nothing written")


def newest_activity_day(conn: psycopg.Connection, schema: str, as_of: dt.date) -> dt.date | None:
    row = conn.execute(
        sql.SQL("select max(activity_date) from {} where activity_date <= %s").format(
            sql.Identifier(schema, ACTIVITY)
        ),
        (as_of,),
    ).fetchone()
    return None if row is None else row[0]


def split_anchors(
    anchors: Sequence[dt.date], horizon: int, newest: dt.date | None, as_of: dt.date
) -> tuple[list[dt.date], list[dt.date]]:
    """(kept, left out): an anchor is kept when its horizon ends by the newest activity day
    and by the run's anchor date."""
    if newest is None:
        return [], list(anchors)
    last_day = min(newest, as_of)
    kept = [a for a in anchors if a + dt.timedelta(days=horizon) <= last_day]
    return kept, [a for a in anchors if a + dt.timedelta(days=horizon) > last_day]


_COLUMNS = (
    "anchor",
    "days_inactive",
    "active_days",
    "mean_gap_days",
    "tenure_days",
    "active_days_total",
    "days_to_return",
    "user",
    "last_active",
)
_FIT_COLUMNS = _COLUMNS[:-3]  # what a fit sees (the label comes from days_to_return)


@dataclass
class UserAnchors:
    """Columns of churn_user_anchors; `anchor` as days since 1970-01-01, `days_to_return`
    NaN where the user has not come back."""

    anchor: Any
    days_inactive: Any
    active_days: Any
    mean_gap_days: Any
    tenure_days: Any
    active_days_total: Any
    days_to_return: Any
    user: Any
    last_active: Any

    def __len__(self) -> int:
        return int(self.anchor.shape[0])

    def churned(self, horizon: int) -> BoolArray:
        import numpy as np

        back = self.days_to_return
        churned: BoolArray = ~(np.isfinite(back) & (back <= horizon))
        return churned

    def subset(self, mask: Any) -> UserAnchors:
        return UserAnchors(*(getattr(self, name)[mask] for name in _COLUMNS))

    def sorted(self, horizon: int) -> UserAnchors:
        """Rows in an order that depends only on what a fit sees (the anchor, the inputs and
        the label), so a fit is reproducible whatever order the database returned them in."""
        import numpy as np

        keys = [getattr(self, n) for n in _FIT_COLUMNS] + [self.churned(horizon)]
        return self.subset(np.lexsort(tuple(reversed(keys))))


def read_user_anchors(
    conn: psycopg.Connection, schema: str, anchors: Sequence[dt.date]
) -> UserAnchors:
    """Every row of churn_user_anchors for `anchors`, in one read (streamed in batches)."""
    import numpy as np

    query = sql.SQL(
        "select anchor - date '1970-01-01', days_inactive, active_days, mean_gap_days::float8,"
        " tenure_days, active_days_total, days_to_return,"
        " dense_rank() over (order by user_id), last_active_day - date '1970-01-01'"
        " from {} where anchor = any(%s)"
    ).format(sql.Identifier(schema, CHURN_INPUTS))
    blocks = [np.empty((0, len(_COLUMNS)))]
    with conn.cursor(name="seedtest_backtest_read") as cur:
        cur.itersize = 50_000
        cur.execute(query, (list(anchors),))
        while rows := cur.fetchmany(50_000):
            blocks.append(np.array(rows, dtype=np.float64))  # None (never back) -> NaN
    conn.rollback()
    data = np.concatenate(blocks)
    return UserAnchors(*(data[:, i] for i in range(len(_COLUMNS))))
