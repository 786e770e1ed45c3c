#!/usr/bin/env bash
# Regenerate requirements.lock: the exact versions (and sha256 of the files for this platform,
# Linux x86_64 CPython 3.11, as in the image) of everything the runtime package needs, plus the
# build backend that installs it. The Dockerfile installs from it with --require-hashes, and
# scripts/bootstrap.sh uses it as constraints, so the tests run on the image's versions.
# Run it after changing the runtime's dependencies in pyproject.toml (needs the package index).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
python="${PYTHON:-$root/.venv/bin/python}"
report="$(mktemp)"
trap 'rm -f "$report"' EXIT
# Resolved together with the test and development tools (so that one environment holds both),
# then cut down to what the runtime package needs.
"$python" -m pip install --disable-pip-version-check --quiet --dry-run --ignore-installed \
    --report "$report" ".[dev]" ./tools "setuptools>=70.1" >/dev/null
"$python" - "$report" <<'PY'
import json, sys

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

report = json.load(open(sys.argv[1]))
env = report["environment"]
items = {canonicalize_name(i["metadata"]["name"]): i for i in report["install"]}


def requirements(name, extras=()):
    for text in items[name]["metadata"].get("requires_dist", []):
        req = Requirement(text)
        if req.marker is None or any(
            req.marker.evaluate({**env, "extra": extra}) for extra in ("", *extras)
        ):
            yield canonicalize_name(req.name), tuple(req.extras)


def closure(extras):
    found, todo = set(), [("seedtest-analytics", extras)]
    while todo:
        name, wanted = todo.pop()
        for dependency in requirements(name, wanted):
            if dependency[0] not in found:
                found.add(dependency[0])
                todo.append(dependency)
    return found


def write(path, title, names):
    with open(path, "w") as out:
        print(f"# {title}, resolved by scripts/lock.sh", file=out)
        print("# together with the development tools, for", env["sys_platform"],
              env["platform_machine"], "CPython", env["python_full_version"],
              "(the image's platform).", file=out)
        print("# Do not edit: change pyproject.toml, then run scripts/lock.sh.", file=out)
        for name in sorted(names):
            meta, info = items[name]["metadata"], items[name]["download_info"]
            digest = info["archive_info"]["hashes"]["sha256"]
            print(f"{name}=={meta['version']} --hash=sha256:{digest}", file=out)


# The runtime's closure (its requirements without extras) and the build backend; then what
# the backtest extra adds to it (the image built with --build-arg EXTRAS=backtest).
runtime = closure(()) | {"setuptools"}
write("requirements.lock",
      "The runtime's dependencies (and setuptools, its build backend)", runtime)
write("requirements-backtest.lock",
      "What the backtest extra adds to requirements.lock", closure(("backtest",)) - runtime)
PY
echo "requirements.lock: $(grep -c '==' requirements.lock) pinned distributions;" \
    "requirements-backtest.lock: $(grep -c '==' requirements-backtest.lock)"
