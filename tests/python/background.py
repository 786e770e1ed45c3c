"""seedtest-analytics processes run in the background by the concurrency tests
(test_reliability, test_run_safety): output to files (a pipe could fill and block), every
process started is killed at the end of its test, and polling until something shows up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

from conftest import REPO

WAIT_SECONDS = 900.0  # generous: a dbt build on a loaded CI machine can take minutes

T = TypeVar("T")


@dataclass
class Background:
    """A seedtest-analytics process whose output goes to files."""

    proc: subprocess.Popen[bytes]
    out: Path
    err: Path

    @property
    def stdout(self) -> str:
        return self.out.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    def output(self) -> str:
        return (
            f"exit {self.proc.returncode}\nstdout:\n{self.stdout[-6000:]}\n"
            f"stderr:\n{self.stderr}"
        )

    def finish(self, timeout: float = WAIT_SECONDS) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=60)


_STARTED: list[Background] = []


def start(folder: Path, name: str, args: tuple[str, ...], env: dict[str, str]) -> Background:
    """`seedtest-analytics ARGS` in the background, its output in folder/name.out and .err."""
    out, err = folder / f"{name}.out", folder / f"{name}.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "seedtest_analytics", *args],
            cwd=REPO, env=env, stdout=stdout, stderr=stderr,
        )
    run = Background(proc, out, err)
    _STARTED.append(run)
    return run


def kill_leftovers() -> None:
    """A test that fails half-way must not leave a run going in the background."""
    while _STARTED:
        run = _STARTED.pop()
        if run.proc.poll() is None:
            run.proc.kill()
            run.proc.wait()


def wait_for(what: str, probe: Callable[[], T | None], *, alive: Background | None = None,
             timeout: float = WAIT_SECONDS) -> T:
    """Poll `probe` until it returns something; fail if `alive` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        if alive is not None and alive.proc.poll() is not None:
            pytest.fail(f"the run ended before {what}:\n{alive.output()}")
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")
