"""`seedtest-analytics rebuild`: every model rebuilt from all history (dbt build --full-refresh
of the nightly selection), under the run lock and recorded in the run history like a night.

Needed after a change of a setting the incremental tables keep (ACTIVITY_TIMEZONE, the
lookback, theta: the model docs say which): their rows keep the settings they were computed
with until they are rebuilt. With --dry-run it builds in the scratch schema (jobs/runs.py) and the
real tables are only read. weekly_kpi is not touched: the next night scores as usual.
"""

from __future__ import annotations

import time

from .. import log
from ..config import Settings
from ..db.connection import ConnectionParams
from ..db.history import note, note_build
from ..dbt.failures import report_build_failure
from ..dbt.runner import invoke
from ..errors import RunError
from .features import report_window
from .freshness import check_freshness

SELECTOR = "nightly"  # selectors.yml: the models of the nightly run


def run_rebuild(params: ConnectionParams, settings: Settings) -> int:
    started = time.monotonic()
    try:
        check_freshness(params, settings)  # recorded, never a reason to stop a rebuild
        summary = invoke(
            params, "build", settings, extra_args=["--selector", SELECTOR, "--full-refresh"]
        )
        note_build(summary)
        if not summary.success:
            note(
                error=report_build_failure(
                    summary, "dbt build --full-refresh failed; rolled back model by model"
                )
            )
            return 1
        note(combinations=report_window(params, settings))
    except RunError as exc:
        log.error(str(exc))
        return 1
    log.info(
        f"Rebuild: {summary.line()}, full refresh, dry_run={settings.dry_run}, "
        f"duration_ms={round((time.monotonic() - started) * 1000)}"
    )
    return 0
