"""config.py is the only module of the runtime package that touches the process environment.

Every other module asks config.py (environ_get, environ_has) or receives the value from its
caller, so the variables the package reads, their defaults and their validation live in one
place. dbt runs in-process and reads its variables from the environment: config.dbt_environment
is the one writer. Checked on the syntax tree, so comments and strings do not count.
"""

from __future__ import annotations

import ast

import pytest

from conftest import REPO
from seedtest_analytics import config

PACKAGE = REPO / "src" / "seedtest_analytics"
ALLOWED = {PACKAGE / "config.py"}
# Names through which the process environment is read or written.
ENV_NAMES = {"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"}


def environment_uses(source: str) -> list[str]:
    """Each use of os.environ / os.getenv / ... in `source` (attribute, `from os import`)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in ENV_NAMES:
            found.append(f"line {node.lineno}: .{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            found += [
                f"line {node.lineno}: from os import {alias.name}"
                for alias in node.names
                if alias.name in ENV_NAMES or alias.name == "*"
            ]
    return found


def test_only_config_touches_the_environment() -> None:
    modules = sorted(PACKAGE.rglob("*.py"))
    assert len(modules) > 20  # the package is where this test thinks it is
    offenders = {
        str(path.relative_to(PACKAGE)): uses
        for path in modules
        if path not in ALLOWED and (uses := environment_uses(path.read_text()))
    }
    assert offenders == {}


@pytest.mark.parametrize(
    "source",
    [
        "import os\nx = os.environ.get('X')\n",
        "import os\nx = os.getenv('X')\n",
        "import os\nx = 'X' in os.environ\n",
        "import os\nos.environ['X'] = '1'\n",
        "from os import environ\n",
        "from os import getenv as g\n",
    ],
)
def test_the_check_sees_each_way_in(source: str) -> None:
    assert environment_uses(source)


def test_the_check_passes_config() -> None:
    """config.py itself reads the environment (and the check would see it)."""
    assert environment_uses((PACKAGE / "config.py").read_text())


def test_dbt_environment_sets_and_restores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEEDTEST_ENV_PROBE_SET", "before")
    monkeypatch.delenv("SEEDTEST_ENV_PROBE_UNSET", raising=False)
    saved = config.dbt_environment(
        {"SEEDTEST_ENV_PROBE_SET": "during", "SEEDTEST_ENV_PROBE_UNSET": "new"}
    )
    assert saved == {"SEEDTEST_ENV_PROBE_SET": "before", "SEEDTEST_ENV_PROBE_UNSET": None}
    assert config.environ_get("SEEDTEST_ENV_PROBE_SET") == "during"
    assert config.environ_copy()["SEEDTEST_ENV_PROBE_UNSET"] == "new"
    config.dbt_environment(saved)
    assert config.environ_get("SEEDTEST_ENV_PROBE_SET") == "before"
    assert not config.environ_has("SEEDTEST_ENV_PROBE_UNSET")
    assert config.environ_get("SEEDTEST_ENV_PROBE_UNSET", "default") == "default"
