"""`python -m MODULE ARGS` as a process of its own, without paying its imports every time.

A test process starts one forking process (cli_zygote.py) that imports the command lines and
dbt once; every command is a child forked from it, with the environment, working directory
and output the test gives, as subprocess.run would run it. That saves about 1.5 s of CPU per
command (a few hundred of them in the suite). The commands a test signals or kills, the
operator guide and the image still start from nothing (background.py, test_operator_path.py,
test_image.py), and SEEDTEST_TEST_COLD=1 runs every command that way.

A command's dbt target directory that holds no partial parse of the command's connection gets
the one the last command with that connection saved (`partial_parse.msgpack`), as a second
night finds the first night's: dbt itself checks that the project's files, vars, profile and
environment variables are the same, and parses everything again when they are not. With
SEEDTEST_TEST_COLD=1 nothing is copied.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from seedtest_analytics.dbt.targets import WITH_DBT

ZYGOTE = Path(__file__).resolve().with_name("cli_zygote.py")
REPO = ZYGOTE.parents[2]
PARSE_FILE = "partial_parse.msgpack"
CONNECTION = ("DATABASE_URL", "SEEDTEST_DBT_SCHEMA", "SEEDTEST_ENGINE", "PGUSER", "PGDATABASE")


class _Zygote:
    def __init__(self) -> None:
        self.proc: subprocess.Popen[str] | None = None

    def _started(self) -> subprocess.Popen[str]:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen(
                [sys.executable, str(ZYGOTE)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                bufsize=1,
            )
        return self.proc

    def run(self, request: dict[str, object]) -> int | None:
        """The child's exit code; None when the forking process did not run it (it answered
        with an error instead: a thread had started in it)."""
        proc = self._started()
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps(request) + "\n")
        proc.stdin.flush()
        reply = proc.stdout.readline()
        if not reply:
            # The command may have run, in part: running it again would hide that.
            self.proc = None
            raise RuntimeError(
                "the forking process (cli_zygote.py) ended while it ran a command;"
                " SEEDTEST_TEST_COLD=1 runs every command as a process started from nothing"
            )
        code = json.loads(reply).get("code")
        return code if isinstance(code, int) else None

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait()
        self.proc = None


_ZYGOTE = _Zygote()
# The last partial parse saved for a connection, and the connection each file was made for.
_PARSED: dict[tuple[str, ...], Path] = {}
_MADE_FOR: dict[Path, tuple[str, ...]] = {}


def cold() -> bool:
    return os.environ.get("SEEDTEST_TEST_COLD", "") == "1"


def run(
    module: str, args: Sequence[str], *, env: Mapping[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    """subprocess.run([python, -m, module, *args], env=env, cwd=cwd, capture_output=True,
    text=True): the same command, forked from a process that has imported it."""
    argv = [sys.executable, "-m", module, *args]
    if cold():
        return _spawned(argv, env=env, cwd=cwd)
    targets = _targets(module, args, env)
    connection = tuple(env.get(key, "") for key in CONNECTION)
    _warm(targets, connection)
    try:
        return _forked(module, argv, args, env=env, cwd=cwd)
    finally:
        _remember(targets, connection)


def _spawned(
    argv: list[str], *, env: Mapping[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=dict(env), capture_output=True, text=True, check=False)


def _forked(
    module: str, argv: list[str], args: Sequence[str], *, env: Mapping[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    """The command forked from the process that has imported it; a process of its own when
    that process did not run it (it answered with an error, not a code)."""
    with tempfile.TemporaryDirectory(prefix="seedtest-cli-") as folder:
        out, err = Path(folder) / "stdout", Path(folder) / "stderr"
        request: dict[str, object] = {
            "module": module,
            "args": list(args),
            "env": dict(env),
            "cwd": str(cwd),
            "stdout": str(out),
            "stderr": str(err),
        }
        code = _ZYGOTE.run(request)
        if code is not None:
            # subprocess's text mode: locale encoding, universal newlines
            return subprocess.CompletedProcess(argv, code, out.read_text(), err.read_text())
    return _spawned(argv, env=env, cwd=cwd)


def _targets(module: str, args: Sequence[str], env: Mapping[str, str]) -> list[Path]:
    """The dbt target directory the command uses (none for the development tools, a project
    other than the checkout, or a relative DBT_TARGET_PATH)."""
    target = env.get("DBT_TARGET_PATH", "")
    if module != "seedtest_analytics" or not target or not Path(target).is_absolute():
        return []
    if env.get("SEEDTEST_PROJECT_DIR", str(REPO)) != str(REPO):
        return []
    shared = Path(target)
    if args and args[0] in WITH_DBT:
        return [shared.with_name(f"{shared.name}-{args[0]}")]
    return [shared]


def _warm(targets: list[Path], connection: tuple[str, ...]) -> None:
    """Give each target directory the connection's last partial parse, unless the file it
    holds was made for this connection (or none was saved for it yet)."""
    saved = _PARSED.get(connection)
    if saved is None or not saved.is_file():
        return
    for target in targets:
        held = target / PARSE_FILE
        if held == saved or (held.exists() and _MADE_FOR.get(held) == connection):
            continue
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(saved, held)
        _MADE_FOR[held] = connection


def _remember(targets: list[Path], connection: tuple[str, ...]) -> None:
    for target in targets:
        if (target / PARSE_FILE).is_file():
            _PARSED[connection] = target / PARSE_FILE
            _MADE_FOR[target / PARSE_FILE] = connection


def close() -> None:
    _ZYGOTE.close()
