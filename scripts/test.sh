#!/usr/bin/env bash
# The whole test suite, from nothing: virtualenv, ruff, then pytest, which starts an embedded
# PostgreSQL 18 (unless TEST_DATABASE_URL is set), runs dbt for real and lints the SQL with
# sqlfluff (its dbt templater compiles against that database). Where Debian's PostgreSQL 15
# is installed (and SEEDTEST_TEST_PG15 is not 0), the reference comparison of the features
# and the weekly_kpi write tests then run again on a PostgreSQL 15 server.
# Extra arguments go to pytest, e.g. `scripts/test.sh -k features` or `scripts/test.sh -m slow`
# (with arguments, the PostgreSQL 15 pass is skipped).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/bootstrap.sh
export PATH="$root/.venv/bin:$PATH"
export DBT_SEND_ANONYMOUS_USAGE_STATS=false
echo "== ruff"
ruff check src tests/python
echo "== pytest"
# Two workers (one test file each at a time: files share module-scoped scenarios).
python -m pytest -n 2 --dist loadfile "$@"
if [ $# -eq 0 ] && [ -z "${TEST_DATABASE_URL:-}" ] && [ "${SEEDTEST_TEST_PG15:-auto}" != 0 ] \
    && [ -x /usr/lib/postgresql/15/bin/postgres ]; then
    echo "== pytest on PostgreSQL 15"
    trap 'bash scripts/pg15.sh stop' EXIT
    TEST_DATABASE_URL="$(bash scripts/pg15.sh start)" python -m pytest -q -n 2 --dist loadfile \
        tests/python/test_features.py tests/python/test_kpi_writer.py
fi
