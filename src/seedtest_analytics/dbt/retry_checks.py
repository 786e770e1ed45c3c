"""What `dbt-retry` agrees to retry: only an invocation the project's own nightly commands
made, and only with the settings that invocation was given.

- One record per invocation: before each dbt invocation the CLI keeps its settings with a
  fresh run id (seedtest_settings.json), and hands dbt the same id in the environment
  (DBT_ENV_CUSTOM_ENV_SEEDTEST_RUN_ID), which dbt writes into run_results.json's
  metadata.env. A run killed before dbt wrote its results leaves the new settings beside the
  previous invocation's results: the ids differ, and the pair is refused.
- The invocation: `build` or `run` of one of the nightly commands' selectors, or the test of
  what the P/S step wrote (`test --selector post_write`); no --select, no --vars, no state or
  deferral, nothing else (a `run-operation`, say) — refused with one line, exit 2.
- The settings are validated as on any night before dbt sees them (load_settings).
"""

from __future__ import annotations

from typing import Any

from ..errors import UsageError

RUN_ID_KEY = "SEEDTEST_RUN_ID"
RUN_ID_ENV = "DBT_ENV_CUSTOM_ENV_" + RUN_ID_KEY
# dbt command -> the selectors (selectors.yml) the nightly commands run it with.
RETRYABLE = {
    "build": frozenset({"nightly", "features", "inactivity", "backfill"}),
    "run": frozenset({"nightly", "features", "inactivity", "backfill"}),
    "test": frozenset({"post_write"}),
}
# The only exclusion the CLI adds (dbt_runner.dbt_args): the post-write tests.
_EXCLUDES: tuple[set[str], ...] = ({"tag:post_write"}, set())


def _refuse(path: str, why: str) -> UsageError:
    return UsageError(
        f"dbt-retry refused: the last dbt invocation in {path} {why}; it retries only what "
        "the nightly commands ran (run the command again instead)"
    )


def _listed(value: Any) -> set[str] | None:
    if value is None:
        return set()
    if isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
        return set(value)
    return None


def check_invocation(results: dict[str, Any], path: str) -> str:
    """Refuses (exit 2) run results that no nightly command wrote; returns the command."""
    args = results.get("args")
    if not isinstance(args, dict):
        raise _refuse(path, "records no command")
    which = args.get("which")
    if which not in RETRYABLE:
        raise _refuse(path, f"was `dbt {str(which)[:40]}`, not a nightly build")
    selector = args.get("selector")
    if selector not in RETRYABLE[str(which)]:
        raise _refuse(path, f"selected {str(selector)[:60]!r}, not a nightly command's selector")
    if _listed(args.get("select")) != set():
        raise _refuse(path, "has a --select of its own")
    if _listed(args.get("exclude")) not in _EXCLUDES:
        raise _refuse(path, "has an --exclude of its own")
    if args.get("vars") not in (None, {}, "{}", ""):
        raise _refuse(path, "has --vars")
    if args.get("defer") or args.get("favor_state") or args.get("state") or args.get("empty"):
        raise _refuse(path, "used --defer, --state or --empty")
    for key in ("macro", "args", "inline", "resource_types", "exclude_resource_types"):
        if args.get(key):
            raise _refuse(path, f"has {key!r}")
    return str(which)


def check_pair(results: dict[str, Any], run_id: str | None, path: str) -> None:
    """Refuses (exit 2) run results that are not the kept settings' invocation."""
    metadata = results.get("metadata")
    env = metadata.get("env") if isinstance(metadata, dict) else None
    recorded = env.get(RUN_ID_KEY) if isinstance(env, dict) else None
    if not run_id or recorded != run_id:
        raise UsageError(
            f"dbt-retry refused: the dbt results in {path} are not from the invocation whose "
            "settings are kept beside them (the last run ended before dbt wrote its results, "
            "or the files were changed); run the night's command again instead"
        )
