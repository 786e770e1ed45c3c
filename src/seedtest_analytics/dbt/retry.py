"""`dbt-retry`: dbt retry of the last dbt invocation's failed and skipped nodes.

dbt keeps what its last invocation did in DBT_TARGET_PATH (run_results.json, manifest.json);
the CronJob keeps that directory on a persistent volume, so after a failed night this re-runs
only what failed, with the same settings (the same anchor date), under the run lock and its
checks like any run. The P/S step is the CLI's, not dbt's: when the failed invocation was a
`run` or `detect-inactivity`, run `detect-inactivity --date <anchor>` afterwards (or simply
the failed command again: every run is idempotent).
"""

from __future__ import annotations

import json
from typing import Any

from .. import log
from ..config import DBT_VAR_ENV, Settings, dbt_environment, load_settings
from ..db.connection import ConnectionParams
from ..db.history import note, note_build
from ..errors import RunError, UsageError
from ..paths import dbt_target_path, project_root
from .failures import report_build_failure
from .retry_checks import RUN_ID_ENV, check_invocation, check_pair
from .runner import _summarise, dbt_env, environment, settings_file


def last_run_results() -> dict[str, Any]:
    path = dbt_target_path() / "run_results.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"no dbt run results in {path.parent}: nothing to retry") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path} is not dbt run results")
    return data


def _settings_record() -> tuple[str | None, dict[str, str]]:
    """(run id, settings) the last invocation passed to dbt (dbt_runner.invoke keeps them
    beside run_results.json): the same environment makes `dbt retry` compute the same window.
    A file of an earlier version (settings only, no run id) pairs with no run results."""
    path = settings_file()
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None, {}
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    refused = UsageError(f"{path} is not the settings of a seedtest-analytics run")
    if not isinstance(data, dict):
        raise refused
    run_id, values = data.get("run_id"), data.get("settings", data)
    if (
        not isinstance(values, dict)
        or set(values) - set(DBT_VAR_ENV.values())
        or not all(isinstance(value, str) for value in values.values())
    ):
        raise refused
    return (str(run_id) if isinstance(run_id, str) else None), dict(values)


def last_settings() -> dict[str, str]:
    return _settings_record()[1]


def checked_results() -> dict[str, Any]:
    """The last invocation's run results, refused (exit 2) unless a nightly command made them
    and they pair with the kept settings (retry_checks.py)."""
    results = last_run_results()
    where = str(dbt_target_path())
    check_invocation(results, where)
    check_pair(results, _settings_record()[0], where)
    return results


def retry_settings() -> Settings:
    """The settings of the invocation to retry, validated as on any night."""
    checked_results()  # nothing to retry without them; only a nightly invocation
    values = last_settings()
    with environment(values):
        return load_settings(date=values.get(DBT_VAR_ENV["anchor_date"]) or None)


def run_dbt_retry(params: ConnectionParams, settings: Settings) -> int:
    from dbt.cli.main import dbtRunner

    dbt_environment(dbt_env(params))
    root = project_root()
    failed_before = [
        str(result.get("unique_id"))
        for result in checked_results().get("results") or []
        if isinstance(result, dict) and result.get("status") in ("error", "fail", "skipped")
    ]
    log.info(
        f"Retrying {len(failed_before)} failed or skipped dbt nodes of the last invocation "
        f"(anchor {settings.anchor_date.isoformat()})"
    )
    run_id, values = _settings_record()
    try:
        # the retry's own results pair with the same settings (a second retry may follow)
        with environment({**values, RUN_ID_ENV: str(run_id)}):
            result = dbtRunner().invoke(
                ["retry", "--project-dir", str(root), "--profiles-dir", str(root / "profiles")]
            )
    except Exception as exc:  # dbt raises for a broken project or connection set-up
        raise RunError(f"dbt retry failed: {exc}") from None
    summary = _summarise(result)
    note_build(summary)
    if not summary.success:
        note(error=report_build_failure(summary, "dbt retry failed"))
        return 1
    log.info(
        f"Retry: {summary.line()}; for the P/S step run: seedtest-analytics "
        f"detect-inactivity --date {settings.anchor_date.isoformat()}"
    )
    return 0
