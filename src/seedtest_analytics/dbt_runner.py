"""Invoking dbt in-process with the validated vars, and summarising what it did."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from .config import Settings, parse_identifier
from .connection import ConnectionParams, project_root
from .errors import RunError

TARGET_SCHEMA_ENV = "SEEDTEST_DBT_SCHEMA"
POST_WRITE_TAG = "post_write"
DATA_TESTS_ENV = "SEEDTEST_DBT_TESTS"


def target_schema() -> str:
    """The dbt schema: SEEDTEST_DBT_SCHEMA, else `analytics`; a plain lowercase identifier,
    since dbt puts it into SQL between double quotes without escaping them."""
    raw = os.environ.get(TARGET_SCHEMA_ENV, "")
    return parse_identifier(TARGET_SCHEMA_ENV, raw) if raw.strip() else "analytics"


@dataclass
class BuildSummary:
    """What one dbt invocation did, from its run results."""

    success: bool
    models_built: int = 0
    tests_passed: int = 0
    tests_warned: int = 0
    tests_failed: int = 0
    errors: list[str] = field(default_factory=list)
    model_seconds: dict[str, float] = field(default_factory=dict)

    def line(self) -> str:
        return (
            f"models built={self.models_built}, tests passed={self.tests_passed}, "
            f"warned={self.tests_warned}, failed={self.tests_failed}"
        )


def _summarise(result: object) -> BuildSummary:
    summary = BuildSummary(success=bool(getattr(result, "success", False)))
    exception = getattr(result, "exception", None)
    if exception is not None:
        summary.errors.append(str(exception).strip().splitlines()[0])
    run_results = getattr(result, "result", None)
    for node_result in getattr(run_results, "results", None) or []:
        node = node_result.node
        status = str(node_result.status)
        if node.resource_type == "model":
            if status == "success":
                summary.models_built += 1
                summary.model_seconds[node.name] = float(node_result.execution_time or 0.0)
            elif status == "error":
                summary.errors.append(f"model {node.name}: {node_result.message}")
        elif node.resource_type in ("test", "unit_test"):
            if status == "pass":
                summary.tests_passed += 1
            elif status == "warn":
                summary.tests_warned += 1
            elif status in ("fail", "error"):
                summary.tests_failed += 1
                summary.errors.append(f"test {node.name}: {status} {node_result.message or ''}")
    return summary


def data_tests_enabled() -> bool:
    """SEEDTEST_DBT_TESTS=false builds the models without their data and unit tests (`dbt run`
    instead of `dbt build`): for development and the test suite, never for the nightly run."""
    return os.environ.get(DATA_TESTS_ENV, "").strip().lower() not in ("false", "0", "no", "off")


def dbt_env(params: ConnectionParams) -> dict[str, str]:
    env = params.dbt_env()
    env["SEEDTEST_DBT_SCHEMA"] = target_schema()
    env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    return env


def invoke(
    params: ConnectionParams,
    command: str,
    settings: Settings,
    *,
    select: Sequence[str] = (),
    exclude: Sequence[str] = (),
    extra_args: Sequence[str] = (),
    quiet: bool = False,
) -> BuildSummary:
    """Run one dbt command (build, run, test, docs generate, ...) against params' database."""
    from dbt.cli.main import dbtRunner

    os.environ.update(dbt_env(params))
    root = project_root()
    if command == "build" and not data_tests_enabled():
        command = "run"
    args = [
        *command.split(),
        "--project-dir", str(root),
        "--profiles-dir", str(root / "profiles"),
        "--vars", json.dumps(settings.dbt_vars()),
    ]
    if command == "build":
        # Tests of what the P/S step writes run after the write (check_written), not before.
        exclude = [*exclude, f"tag:{POST_WRITE_TAG}"]
    if select:
        args += ["--select", *select]
    if exclude:
        args += ["--exclude", *exclude]
    if select or exclude:
        # A test runs only when every model it reads is selected or upstream of the selection.
        # dbt's default (eager) also runs a test that merely refs a selected model (e.g.
        # int_user_ids) against a model outside the selection, which may not exist yet or be
        # stale; `buildable` still excludes every test of an excluded model (unlike `cautious`,
        # which keeps one that also reads other models).
        args += ["--indirect-selection", "buildable"]
    if quiet:
        args = ["--quiet", *args]
    args += list(extra_args)
    try:
        result = dbtRunner().invoke(args)
    except Exception as exc:  # dbt raises for a broken project or connection set-up
        raise RunError(f"dbt {command} failed: {exc}") from None
    return _summarise(result)
