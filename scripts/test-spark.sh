#!/usr/bin/env bash
# The Spark equivalence test, from nothing: a virtualenv .venv-spark with the package,
# dbt-spark[session] and pyspark, then pytest tests/spark, which loads the same synthetic data
# into PostgreSQL and Spark, runs the nightly pipeline on both for several anchors (with a late
# change that deletes a day) and asserts features_topic_daily, user_last_activity and the P/S
# scores are equal. Needs Java 17 (Debian: openjdk-17-jre-headless; installed here when
# missing and apt-get is usable) and a PostgreSQL: TEST_DATABASE_URL, else an embedded server.
# Spark runs in-process (local[2]); the test takes several minutes (a Spark session alone
# takes about a minute to start on a small machine). Extra arguments go to pytest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="$root/.venv-spark"
python="${PYTHON:-python3}"
spark_requirements=("dbt-spark[session]~=1.11" "pyspark>=3.5")

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
echo "== pytest tests/spark ($(java -version 2>&1 | head -n 1))"
start=$(date +%s)
status=0
python -m pytest tests/spark -p no:cacheprovider -q "$@" || status=$?
echo "== Spark equivalence test: $(( $(date +%s) - start )) s wall time, exit $status"
exit "$status"
