#!/usr/bin/env bash
# The demo, from nothing: virtualenv (the runtime package and the development tools), an
# embedded PostgreSQL in .pgdata/ (unless DATABASE_URL is set) that keeps running afterwards,
# the application schema, synthetic data, and the whole nightly pipeline.
# Arguments go to `seedtest-dev demo` (--users N, --days D >= 30, --seed S).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/bootstrap.sh
exec "$root/.venv/bin/seedtest-dev" demo "$@"
