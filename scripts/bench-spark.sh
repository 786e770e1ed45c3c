#!/usr/bin/env bash
# The Spark row of BENCHMARKS.md: the nightly command through a Spark Thrift Server on a
# standalone cluster (scripts/spark-cluster.sh: a master, SEEDTEST_SPARK_WORKERS workers of
# SEEDTEST_SPARK_WORKER_CORES cores, default one worker with one core) beside PostgreSQL, on
# the same synthetic data (tools/seedtest_dev/spark_bench.py). Uses the .venv-spark of
# scripts/test-spark.sh (run that once first) and a PostgreSQL: DATABASE_URL, else the
# embedded server. Arguments go to the driver, e.g. --attempts 10000000. Every process the
# script started is stopped by its pid when it exits.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="$root/.venv-spark"
if [ ! -x "$venv/bin/python" ]; then
    echo "[ERROR] $venv is missing: run bash scripts/test-spark.sh once (it installs it)" >&2
    exit 2
fi
export PATH="$venv/bin:$PATH" DBT_SEND_ANONYMOUS_USAGE_STATS=false
unset SPARK_HOME
# shellcheck source=spark-cluster.sh
source "$root/scripts/spark-cluster.sh"
cluster_dir="$(mktemp -d "${TMPDIR:-/tmp}/seedtest-spark-bench.XXXXXX")"
trap 'spark_cluster_stop; rm -rf "$cluster_dir"' EXIT
spark_cluster_start "$cluster_dir"
python -m seedtest_dev.spark_bench --cores "$SPARK_CLUSTER_CORES" \
    --ingest-dir "$cluster_dir/ingest" "$@"
