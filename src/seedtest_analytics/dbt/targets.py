"""dbt's artifacts per command: `dbt-retry` reads the run_results.json of the last nightly
command (run, aggregate, detect-inactivity, backfill, rebuild, dbt-retry itself), so the other
commands that run dbt (docs, backtest, train-churn) write theirs in a target directory of
their own, `<DBT_TARGET_PATH>-<command>`: they never hand `dbt-retry` their nodes, and their
vars never invalidate the nightly partial parse (dbt keeps it in the target directory).
"""

from __future__ import annotations

from ..config import dbt_environment
from ..paths import dbt_target_path

NIGHTLY = frozenset({"run", "aggregate", "detect-inactivity", "backfill", "rebuild", "dbt-retry"})
WITH_DBT = frozenset({"docs", "backtest", "train-churn"})


def own_target(command: str) -> None:
    """Point DBT_TARGET_PATH at the command's own directory when it is not a nightly one."""
    if command not in WITH_DBT:
        return
    shared = dbt_target_path()
    dbt_environment({"DBT_TARGET_PATH": str(shared.with_name(f"{shared.name}-{command}"))})
