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
"$python" - "$report" > requirements.lock <<'PY'
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


# The runtime's closure (its requirements without extras), and the build backend.
needed, todo = {"setuptools"}, [("seedtest-analytics", ())]
while todo:
    name, extras = todo.pop()
    for dependency in requirements(name, extras):
        if dependency[0] not in needed:
            needed.add(dependency[0])
            todo.append(dependency)
print("# The runtime's dependencies (and setuptools, its build backend), resolved by scripts/lock.sh")
print("# together with the development tools, for", env["sys_platform"], env["platform_machine"],
      "CPython", env["python_full_version"], "(the image's platform).")
print("# Do not edit: change pyproject.toml, then run scripts/lock.sh.")
for name in sorted(needed):
    meta, info = items[name]["metadata"], items[name]["download_info"]
    digest = info["archive_info"]["hashes"]["sha256"]
    print(f"{name}=={meta['version']} --hash=sha256:{digest}")
PY
echo "requirements.lock: $(grep -c '==' requirements.lock) pinned distributions"
