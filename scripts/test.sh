#!/usr/bin/env bash
# The whole test suite, from nothing: virtualenv, ruff, then pytest, which starts an embedded
# PostgreSQL (unless TEST_DATABASE_URL is set), runs dbt for real and lints the SQL with
# sqlfluff (its dbt templater compiles against that database). Extra arguments go
# to pytest, e.g. `scripts/test.sh -k features` or `scripts/test.sh -m slow`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/bootstrap.sh
export PATH="$root/.venv/bin:$PATH"
export DBT_SEND_ANONYMOUS_USAGE_STATS=false
echo "== ruff"
ruff check src tests/python
echo "== pytest"
python -m pytest "$@"
