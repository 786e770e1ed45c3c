#!/usr/bin/env bash
# Create (or refresh) the project's virtualenv in .venv: the runtime package with its test
# tools (`.[dev]`) and the development package in tools/ (seedtest-dev: the demo, the embedded
# PostgreSQL, synthetic data, the benchmark), both editable, with the runtime's dependencies at
# the versions of requirements.lock (the image's). Re-installs only when one of the two
# pyproject.toml files or the lock changed since the last install.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
python="${PYTHON:-python3}"
stamp="$venv/.installed-$(cat "$root/pyproject.toml" "$root/tools/pyproject.toml" \
    "$root/requirements.lock" | sha256sum | cut -c1-16)"
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
if [ ! -f "$stamp" ]; then
    echo "Installing seedtest-analytics and its tools into $venv ..."
    log="$venv/pip-install.log"
    # The lock's versions as constraints (hashes would put every requirement, the editable
    # ones included, into hash-checking mode).
    sed 's/ --hash=.*//' "$root/requirements.lock" > "$venv/constraints.txt"
    # uv installs the same versions as pip in a fraction of the time (about 19 s against 53 s
    # here, its cache empty), compiled to bytecode as pip does (a machine with
    # PYTHONDONTWRITEBYTECODE=1 would compile every import of every process otherwise); pip
    # installs them when uv cannot be had or fails.
    if "$venv/bin/python" -m pip install -q --disable-pip-version-check uv >"$log" 2>&1 \
        && "$venv/bin/python" -m uv pip install --compile-bytecode --python "$venv/bin/python" \
            -c "$venv/constraints.txt" -e "$root[dev]" -e "$root/tools" >>"$log" 2>&1; then
        :
    elif ! "$venv/bin/python" -m pip install --disable-pip-version-check \
        -c "$venv/constraints.txt" -e "$root[dev]" -e "$root/tools" >>"$log" 2>&1; then
        tail -n 40 "$log"
        echo "[ERROR] pip install failed; the whole log is in $log" >&2
        exit 1
    fi
    rm -f "$venv"/.installed-*
    touch "$stamp"
fi
