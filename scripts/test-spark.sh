#!/usr/bin/env bash
# The Spark equivalence test, from nothing: a virtualenv .venv-spark with the package,
# dbt-spark[session,PyHive] and pyspark, then pytest tests/spark, which loads the same synthetic data
# into PostgreSQL and Spark, runs the nightly pipeline on both for several anchors (with a late
# change that deletes a day) and asserts features_topic_daily, user_last_activity and the P/S
# scores are equal. Needs Java 17 (Debian: openjdk-17-jre-headless; installed here when
# missing and apt-get is usable) and a PostgreSQL: TEST_DATABASE_URL, else an embedded server.
#
#   bash scripts/test-spark.sh [thrift|session|all] [pytest arguments]
#
# thrift (the default): Spark as a cluster is reached. A standalone cluster (a master, one
# worker with one core; scripts/spark-cluster.sh) and its Thrift server start on free loopback
# ports with their warehouse and Derby metastore in a temp dir; the pipeline runs with
# SEEDTEST_SPARK_METHOD=thrift (dbt-spark's method thrift, the P/S step's read over the same
# server), and every process the script started is stopped by its pid when it exits.
# session: Spark inside the test's process (dbt-spark's method session, local[2]).
# all: both, one after the other. Each takes several minutes (a JVM takes about a minute to
# start on a small machine).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="$root/.venv-spark"
python="${PYTHON:-python3}"
spark_requirements=("dbt-spark[session,PyHive]~=1.11" "pyspark>=3.5")
mode=thrift
case "${1:-}" in
    thrift | session | all) mode="$1"; shift ;;
esac

if ! command -v java >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "Installing Java 17 (openjdk-17-jre-headless) ..."
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            openjdk-17-jre-headless >/dev/null
    else
        echo "[ERROR] Spark needs Java 17: install openjdk-17-jre-headless (or set JAVA_HOME)" >&2
        exit 2
    fi
fi

stamp="$venv/.installed-$(cat "$root/pyproject.toml" "$root/tools/pyproject.toml" \
    "$root/requirements.lock" "$0" | sha256sum | cut -c1-16)"
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
if [ ! -f "$stamp" ]; then
    echo "Installing seedtest-analytics, dbt-spark and pyspark into $venv (pyspark is large) ..."
    log="$venv/pip-install.log"
    # As scripts/bootstrap.sh: the runtime's versions of requirements.lock as constraints.
    sed 's/ --hash=.*//' "$root/requirements.lock" > "$venv/constraints.txt"
    if ! "$venv/bin/python" -m pip install --disable-pip-version-check \
        -c "$venv/constraints.txt" -e "$root[dev]" -e "$root/tools" \
        "${spark_requirements[@]}" >"$log" 2>&1; then
        tail -n 40 "$log"
        echo "[ERROR] pip install failed; the whole log is in $log" >&2
        exit 1
    fi
    rm -f "$venv"/.installed-*
    touch "$stamp"
fi

export PATH="$venv/bin:$PATH"
export DBT_SEND_ANONYMOUS_USAGE_STATS=false
export SPARK_LOCAL_IP="${SPARK_LOCAL_IP:-127.0.0.1}"
export PYSPARK_PYTHON="$venv/bin/python"
unset SEEDTEST_ENGINE SPARK_HOME
java_version="$(java -version 2>&1 | head -n 1)"
status=0

run_session() {
    echo "== pytest tests/spark, method session ($java_version)"
    local start=$SECONDS code=0
    SEEDTEST_SPARK_METHOD=session python -m pytest tests/spark -p no:cacheprovider -q "$@" \
        || code=$?
    echo "== Spark equivalence test (session): $(( SECONDS - start )) s wall time, exit $code"
    return "$code"
}

run_thrift() (
    # A subshell: its EXIT trap stops the cluster whatever happens inside.
    # shellcheck source=spark-cluster.sh
    source "$root/scripts/spark-cluster.sh"
    cluster_dir="$(mktemp -d "${TMPDIR:-/tmp}/seedtest-spark-cluster.XXXXXX")"
    trap 'spark_cluster_stop; rm -rf "$cluster_dir"' EXIT
    start=$SECONDS
    spark_cluster_start "$cluster_dir" || exit 1
    echo "== pytest tests/spark, method thrift ($java_version; cluster up after" \
        "$(( SECONDS - start )) s)"
    code=0
    SEEDTEST_SPARK_METHOD=thrift SEEDTEST_SPARK_INGEST_DIR="$cluster_dir/ingest" \
        python -m pytest tests/spark -p no:cacheprovider -q "$@" || code=$?
    echo "== Spark equivalence test (thrift, standalone cluster with $SPARK_CLUSTER_CORES" \
        "core(s)): $(( SECONDS - start )) s wall time, exit $code"
    exit "$code"
)

if [ "$mode" = thrift ] || [ "$mode" = all ]; then
    run_thrift "$@" || status=$?
fi
if [ "$mode" = session ] || [ "$mode" = all ]; then
    run_session "$@" || status=$?
fi
exit "$status"
