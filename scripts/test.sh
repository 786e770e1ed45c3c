#!/usr/bin/env bash
# The whole test suite, from nothing: virtualenv, the linters (ruff, ruff format, mypy --strict
# on the runtime package and the development tools), then pytest, which starts a throw-away
# embedded PostgreSQL 18 (unless TEST_DATABASE_URL is set), runs dbt for real and lints the SQL
# with sqlfluff. Where Debian's PostgreSQL 15 is installed (and SEEDTEST_TEST_PG15 is not 0),
# the reference comparison of the features and the weekly_kpi write tests then run again on a
# PostgreSQL 15 server of their own (scripts/pg15.sh) -- also when the first pass failed.
# Every stage runs; the exit code is non-zero when any of them failed.
# pytest runs every tier CI needs (fast, integration, infra; docs/testing.md), not the tests
# marked slow or image: the load tests (`scripts/test.sh -m slow`), the full benchmark run
# (scripts/test-bench.sh) and the image build (scripts/test-image.sh). Extra arguments go to pytest, e.g. `scripts/test.sh -m fast` or
# `scripts/test.sh -k features` (with arguments, the PostgreSQL 15 pass is skipped).
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/bootstrap.sh || exit 1
export PATH="$root/.venv/bin:$PATH"
export DBT_SEND_ANONYMOUS_USAGE_STATS=false
failed=()
echo "== ruff"
ruff check src tools tests/python || failed+=("ruff")
ruff format --check src tools || failed+=("ruff format")
echo "== mypy --strict"
mypy || failed+=("mypy")
echo "== pytest"
# Two workers (one test file each at a time: files share module-scoped scenarios).
python -m pytest -n 2 --dist loadfile "$@" || failed+=("pytest")
if [ $# -eq 0 ] && [ -z "${TEST_DATABASE_URL:-}" ] && [ "${SEEDTEST_TEST_PG15:-auto}" != 0 ] \
    && [ -x /usr/lib/postgresql/15/bin/postgres ]; then
    echo "== pytest on PostgreSQL 15"
    if url="$(bash scripts/pg15.sh start)"; then
        trap 'bash scripts/pg15.sh stop "$url"' EXIT
        TEST_DATABASE_URL="$url" python -m pytest -q -n 2 --dist loadfile \
            tests/python/test_features.py tests/python/test_kpi_writer.py \
            || failed+=("pytest on PostgreSQL 15")
    else
        failed+=("PostgreSQL 15 start")
    fi
fi
if [ ${#failed[@]} -gt 0 ]; then
    echo "[ERROR] failed: ${failed[*]}" >&2
    exit 1
fi
echo "== all passed"
