"""The test harness's command runner (cli_process.py): a command forked from the process that
has imported the command line answers as the same command started from nothing, and keeps
nothing of the command before it (its environment, its working directory)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import cli_process
from conftest import REPO


def spawned(args: list[str], env: dict[str, str], cwd: Path = REPO
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "seedtest_analytics", *args], cwd=cwd,
                          env=env, capture_output=True, text=True, check=False)


def both(args: list[str], env: dict[str, str], cwd: Path = REPO
         ) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
    forked = cli_process.run("seedtest_analytics", args, env=env, cwd=cwd)
    return forked, spawned(args, env, cwd)


def base_env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items()
            if key not in ("DATABASE_URL", "SEEDTEST_PROJECT_DIR", "SEEDTEST_TEST_COLD")}


def same(forked: subprocess.CompletedProcess[str], plain: subprocess.CompletedProcess[str]
         ) -> None:
    assert (forked.returncode, forked.stdout, forked.stderr) == (
        plain.returncode, plain.stdout, plain.stderr)


def test_a_usage_error_is_the_same_line_and_exit_code(tmp_path: Path) -> None:
    forked, plain = both(["no-such-command"], base_env())
    assert forked.returncode == 2 and "invalid choice" in forked.stderr, forked
    same(forked, plain)

    missing = tmp_path / "nowhere"
    env = {**base_env(), "SEEDTEST_PROJECT_DIR": str(missing)}
    forked, plain = both(["aggregate", "--date", "2025-01-01"], env)
    assert forked.returncode == 2, forked
    assert f"no dbt project in {missing}" in forked.stderr, forked.stderr
    same(forked, plain)


def test_a_command_keeps_nothing_of_the_one_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The environment and working directory of one command are gone for the next, and the
    forking process's own environment is not the command's."""
    cli_process.close()  # the next command starts a forking process with this environment
    monkeypatch.setenv("SEEDTEST_PROJECT_DIR", "inherited")
    try:
        alone = cli_process.run("seedtest_analytics", ["aggregate", "--date", "2025-13-01"],
                                env=base_env(), cwd=REPO)
    finally:
        cli_process.close()
    assert alone.stderr.strip() == "[ERROR] --date is not a valid date (got '2025-13-01')", (
        alone.stderr)
    monkeypatch.delenv("SEEDTEST_PROJECT_DIR")
    first_dir = tmp_path / "first"
    first_dir.mkdir()
    # SEEDTEST_PROJECT_DIR is checked first, relative to the working directory
    first = cli_process.run("seedtest_analytics", ["aggregate", "--date", "2025-13-01"],
                            env={**base_env(), "SEEDTEST_PROJECT_DIR": "one"}, cwd=first_dir)
    assert first.returncode == 2, first
    assert f"no dbt project in {first_dir / 'one'}" in first.stderr, first.stderr
    # without it, the checkout's project is found and the date is the error
    second = cli_process.run("seedtest_analytics", ["aggregate", "--date", "2025-13-01"],
                             env=base_env(), cwd=REPO)
    assert second.returncode == 2, second
    assert second.stderr.strip() == "[ERROR] --date is not a valid date (got '2025-13-01')", (
        second.stderr)
    # relative to the second command's own directory, not the first's
    third = cli_process.run("seedtest_analytics", ["aggregate", "--date", "2025-13-01"],
                            env={**base_env(), "SEEDTEST_PROJECT_DIR": "one"}, cwd=tmp_path)
    assert f"no dbt project in {tmp_path / 'one'} " in third.stderr, third.stderr
    # and the test process itself is untouched
    assert Path.cwd() != first_dir and "SEEDTEST_PROJECT_DIR" not in os.environ


def test_the_output_of_a_command_that_prints_is_whole() -> None:
    forked, plain = both(["--help"], base_env())
    assert forked.returncode == 0 and "aggregate" in forked.stdout, forked
    same(forked, plain)
