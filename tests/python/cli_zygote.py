"""A process that has imported the command lines and dbt once, and forks one child per command.

Started by cli_process.py (one per test process), never imported. Each request is one JSON
line on standard input: the module (`seedtest_analytics` or `seedtest_dev`), its arguments,
the whole environment, the working directory and two files for the child's output. The child
takes that environment, directory and output, runs the module as `python -m MODULE ARGS` would
(runpy, as `__main__`), runs the exit handlers and exits with the command's code. The answer is
one JSON line: {"code": N}, negative when a signal ended the child (as subprocess reports it).

What the child does not repeat is the import of the packages (about 2 s of CPU per command,
most of it dbt): the imports hold no state a command changes, and nothing here starts a
thread, so the fork copies a process that is just like a new one after its imports. Module
state that a command sets (dbt's flags, adapters, logging) is set in the child and gone with it.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import json
import os
import runpy
import signal
import sys
import threading
import traceback

PRELOAD = (
    "seedtest_analytics.cli",
    "seedtest_dev.cli",
    "dbt.cli.main",
    "dbt.adapters.postgres",
    "dbt.adapters.postgres.impl",
    "dbt.parser.manifest",
    "dbt.task.build",
    "dbt.task.run",
    "dbt.task.test",
    "dbt.task.list",
    "dbt.task.run_operation",
    "psycopg",
)


def _exit_code(exc: SystemExit) -> int:
    """What the interpreter makes of SystemExit: None is 0, an int is itself, anything
    else is printed to standard error and exits 1."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1


def _child(request: dict[str, object]) -> None:
    """In the forked child: become the command's process, run it, never return."""
    code = 1
    try:
        os.environ.clear()
        os.environ.update(request["env"])  # type: ignore[arg-type]
        os.chdir(str(request["cwd"]))
        null = os.open(os.devnull, os.O_RDONLY)
        out = os.open(str(request["stdout"]), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        err = os.open(str(request["stderr"]), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(err, 2)
        for fd in (null, out, err):
            os.close(fd)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        sys.argv = [str(request["module"]), *request["args"]]  # type: ignore[misc]
        try:
            runpy.run_module(str(request["module"]), run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as exc:
            code = _exit_code(exc)
        except BaseException:
            traceback.print_exc()
            code = 1
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)


def main() -> None:
    for name in PRELOAD:
        importlib.import_module(name)
    replies = os.fdopen(os.dup(1), "w", buffering=1)
    # Children must not hold the pipes: fd 1 is replaced in each child; keep the parent's
    # standard output out of the way of anything an import might print.
    os.dup2(2, 1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for line in sys.stdin:
        request = json.loads(line)
        if threading.active_count() != 1:
            replies.write(json.dumps({"error": "threads started in the forking process"}) + "\n")
            continue
        pid = os.fork()
        if pid == 0:
            replies.close()
            _child(request)
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        replies.write(json.dumps({"code": code}) + "\n")


if __name__ == "__main__":
    main()
