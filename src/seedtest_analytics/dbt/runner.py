"""Invoking dbt in-process with the validated vars, and summarising what it did."""

from __future__ import annotations

import contextlib
import json
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import log
from ..config import DBT_SCHEMA, DBT_TESTS, Settings, dbt_colors_set, dbt_environment
from ..config import target_schema as target_schema
from ..db.connection import ConnectionParams
from ..errors import RunError
from ..warehouse import engine
from . import profiling
from .paths import dbt_target_path
from .paths import project_root as project_root
from .retry_checks import RUN_ID_ENV

TARGET_SCHEMA_ENV = DBT_SCHEMA.env
POST_WRITE_TAG = "post_write"
DATA_TESTS_ENV = DBT_TESTS.env


@dataclass(frozen=True)
class WarnedTest:
    """A dbt data test of severity warn that found rows: the run goes on, the log names it."""

    kind: str  # "source check" (reads a source or a staging model) or "check"
    subject: str  # model[.column], or source.table[.column], or the singular test's name
    test: str  # the generic test's name (not_null, accepted_values, ...); "" if singular
    rows: int | None  # rows the test returned (dbt's failures count)
    message: str = ""

    def line(self) -> str:
        """e.g. `source check stg_seedtest__attempts.item_id not_null: 6 rows`."""
        what = f"{self.subject} {self.test}" if self.test else self.subject
        if self.rows is None:
            return f"{self.kind} {what}: {self.message or 'warned'}"
        return f"{self.kind} {what}: {self.rows} row{'' if self.rows == 1 else 's'}"


@dataclass
class BuildSummary:
    """What one dbt invocation did, from its run results."""

    success: bool
    models_built: int = 0
    tests_passed: int = 0
    tests_warned: int = 0
    tests_failed: int = 0
    errors: list[str] = field(default_factory=list)
    warnings: list[WarnedTest] = field(default_factory=list)
    model_seconds: dict[str, float] = field(default_factory=dict)

    def line(self) -> str:
        return (
            f"models built={self.models_built}, tests passed={self.tests_passed}, "
            f"warned={self.tests_warned}, failed={self.tests_failed}"
        )

    def log_warnings(self) -> None:
        """One `[WARN]` line per warned test, then their count (before the command's Summary)."""
        for warning in self.warnings:
            log.warn(warning.line())
        if self.warnings:
            rows = sum(w.rows or 0 for w in self.warnings)
            log.warn(
                f"{len(self.warnings)} data test{'' if len(self.warnings) == 1 else 's'} "
                f"warned ({rows} row{'' if rows == 1 else 's'}); the run goes on"
            )


def _last_part(unique_id: str) -> str:
    return unique_id.rsplit(".", 1)[-1]


def _reads_source(unique_id: str) -> bool:
    return unique_id.startswith("source.") or (
        unique_id.startswith("model.") and _last_part(unique_id).startswith("stg_")
    )


def _describe_test(node: Any) -> tuple[str, str, str]:
    """(kind, subject, test name) of a data test node of the manifest: the model (or source)
    and column it is attached to and the generic test's name; a singular test by its name."""
    depends_on = getattr(getattr(node, "depends_on", None), "nodes", None) or []
    meta = getattr(getattr(node, "config", None), "meta", None) or {}
    declared = meta.get("check")
    if declared in ("source", "reconcile"):
        # The project's own labels: an assumption about the application's data, or a
        # comparison of an output with the live application tables.
        kind = f"{declared} check"
    else:
        kind = "source check" if any(_reads_source(str(uid)) for uid in depends_on) else "check"
    metadata = getattr(node, "test_metadata", None)
    if metadata is None:
        return kind, str(node.name), ""
    attached = getattr(node, "attached_node", None)
    sources = getattr(node, "sources", None) or []
    if attached:
        subject = _last_part(str(attached))
    elif sources:
        subject = ".".join(str(part) for part in sources[0])
    else:
        subject = str(node.name)
    column = getattr(node, "column_name", None)
    if column:
        subject = f"{subject}.{column}"
    # The assumption's name where the project gives one (is_object), else the generic test's.
    return kind, subject, str(meta.get("assumption") or metadata.name)


def _summarise(result: object) -> BuildSummary:
    summary = BuildSummary(success=bool(getattr(result, "success", False)))
    exception = getattr(result, "exception", None)
    if exception is not None:
        summary.errors.append(str(exception).strip().splitlines()[0])
    run_results = getattr(result, "result", None)
    for node_result in getattr(run_results, "results", None) or []:
        node = getattr(node_result, "node", None)
        if node is None:  # a run-operation's result has no node
            continue
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
                kind, subject, test = _describe_test(node)
                failures = getattr(node_result, "failures", None)
                summary.warnings.append(
                    WarnedTest(
                        kind,
                        subject,
                        test,
                        int(failures) if failures is not None else None,
                        str(node_result.message or "").strip(),
                    )
                )
            elif status == "fail" and node.resource_type == "test":
                summary.tests_failed += 1
                kind, subject, test = _describe_test(node)
                failures = getattr(node_result, "failures", None)
                what = WarnedTest(kind, subject, test, failures, str(node_result.message or ""))
                summary.errors.append(f"{what.line()} (severity error: dbt test {node.name})")
            elif status in ("fail", "error"):
                summary.tests_failed += 1
                summary.errors.append(f"test {node.name}: {status} {node_result.message or ''}")
    return summary


def data_tests_enabled(settings: Settings) -> bool:
    """SEEDTEST_DBT_TESTS=false builds the models without their data and unit tests (`dbt run`
    instead of `dbt build`): for development and the test suite, never for the nightly run."""
    return settings.data_tests


def dbt_env(params: ConnectionParams) -> dict[str, str]:
    env = params.dbt_env()
    env[TARGET_SCHEMA_ENV] = target_schema()
    env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    return env


def dbt_args(
    command: str,
    settings: Settings,
    *,
    root: Path,
    select: Sequence[str] = (),
    exclude: Sequence[str] = (),
    extra_args: Sequence[str] = (),
    quiet: bool = False,
    data_tests: bool = True,
    colors: bool = True,
) -> list[str]:
    """The command line dbt receives for one invocation (without the leading `dbt`).

    A `build` without data tests (SEEDTEST_DBT_TESTS=false) becomes `run`; a `build` leaves
    out the tests tagged post_write, which run after the P/S write (check_written). The
    settings go to dbt in the environment (settings.dbt_env(), set by `invoke`), so only the
    vars that have no environment variable are on the command line.
    """
    if command == "build" and not data_tests:
        command = "run"
    if command == "build":
        exclude = [*exclude, f"tag:{POST_WRITE_TAG}"]
    args = [
        *command.split(),
        "--project-dir",
        str(root),
        "--profiles-dir",
        str(root / "profiles"),
    ]
    cli_vars = settings.cli_only_vars()
    if cli_vars:
        args += ["--vars", json.dumps(cli_vars)]
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
    flags = []
    if quiet:
        flags.append("--quiet")
    if not colors:
        flags.append("--no-use-colors")
    return [*flags, *args, *extra_args]


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the block (dbt runs in-process and reads them)."""
    saved = dbt_environment(values)
    try:
        yield
    finally:
        dbt_environment(saved)


SETTINGS_FILE = "seedtest_settings.json"


def settings_file() -> Path:
    """Where `invoke` keeps the settings it passed to dbt, beside dbt's run_results.json in
    DBT_TARGET_PATH (or target/), for `dbt-retry`."""
    return dbt_target_path() / SETTINGS_FILE


def _keep_settings(values: dict[str, str]) -> str:
    """Keeps the invocation's settings with a fresh run id (retry_checks.py); returns the id,
    which dbt records in its run results."""
    run_id = uuid.uuid4().hex
    path = settings_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {"run_id": run_id, "settings": values}
        path.write_text(json.dumps(record, sort_keys=True) + "\n")
    except OSError as exc:  # only dbt-retry reads it; the run goes on
        log.warn(f"could not keep the run's settings in {path}: {exc}")
    return run_id


Callback = Callable[[Any], None]
_progress: list[Callback] = []


@contextlib.contextmanager
def progress(callback: Callback) -> Iterator[None]:
    """Within the block, dbt prints nothing but errors and hands every event it fires
    (dbt's EventMsg, e.g. LogModelResult per finished model) to `callback` instead."""
    _progress.append(callback)
    try:
        yield
    finally:
        _progress.remove(callback)


def _colors_wanted() -> bool:
    """dbt's colour codes only on a terminal (DBT_USE_COLORS, when set, decides)."""
    return dbt_colors_set() or sys.stdout.isatty()


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

    dbt_environment(dbt_env(params))
    dbt_environment(engine.dbt_env(project_root()))  # nothing unless SEEDTEST_ENGINE=spark
    settings = engine.dbt_settings(settings)  # on Spark, the Spark copy of the sources
    args = dbt_args(
        command,
        settings,
        root=project_root(),
        select=select,
        exclude=exclude,
        extra_args=[*extra_args, *engine.dbt_target_args()],
        quiet=quiet or bool(_progress),
        data_tests=data_tests_enabled(settings),
        colors=_colors_wanted(),
    )
    values = settings.dbt_env()
    run_id = _keep_settings(values)
    started = time.time()
    try:
        with environment({**values, RUN_ID_ENV: run_id}):
            result = dbtRunner(callbacks=list(_progress)).invoke(args)
    except Exception as exc:  # dbt raises for a broken project or connection set-up
        raise RunError(f"dbt {command} failed: {exc}") from None
    if profiling.enabled():
        profiling.record(
            "dbt",
            command=command,
            start=started,
            end=time.time(),
            nodes=profiling.dbt_nodes(result),
        )
    summary = _summarise(result)
    summary.log_warnings()
    return summary
