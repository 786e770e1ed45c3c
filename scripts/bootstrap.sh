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
    echo "Installing seedtest-analytics and its tools into $venv ..."
    log="$venv/pip-install.log"
    if ! "$venv/bin/python" -m pip install --disable-pip-version-check -e "$root[dev]" >"$log" 2>&1; then
        tail -n 40 "$log"
        echo "[ERROR] pip install failed; the whole log is in $log" >&2
        exit 1
    fi
    rm -f "$venv"/.installed-*
    touch "$stamp"
fi
