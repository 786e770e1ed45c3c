#!/usr/bin/env bash
# The full small-scale benchmark test (tests/python/test_bench_run.py: every option of
# `seedtest-dev bench` on, about 4 minutes on 2 cores), not part of scripts/test.sh: CI runs
# its smoke run (tests/python/test_bench.py) instead. Extra arguments go to pytest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/bootstrap.sh
export DBT_SEND_ANONYMOUS_USAGE_STATS=false
exec "$root/.venv/bin/python" -m pytest -m slow tests/python/test_bench_run.py "$@"
