#!/usr/bin/env bash
# Create (or refresh) the project's virtualenv in .venv and install the package with its
# development tools. Re-installs only when pyproject.toml changed since the last install.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
python="${PYTHON:-python3}"
stamp="$venv/.installed-$(sha256sum "$root/pyproject.toml" | cut -c1-16)"
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
if [ ! -f "$stamp" ]; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >/dev/null
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$root[dev]"
    rm -f "$venv"/.installed-*
    touch "$stamp"
fi
