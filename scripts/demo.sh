#!/usr/bin/env bash
# The demo, from nothing: virtualenv, an embedded PostgreSQL (unless DATABASE_URL is set),
# the application schema, synthetic data, and the whole nightly pipeline.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/bootstrap.sh
exec "$root/.venv/bin/seedtest-analytics" demo "$@"
