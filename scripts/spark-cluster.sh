# A Spark standalone cluster and its Thrift server on loopback ports, for the tests and the
# benchmark: source this file, then `spark_cluster_start DIR` and `spark_cluster_stop`.
#
# spark_cluster_start starts, from the pyspark wheel on PATH (spark-class, spark-submit) and
# Java 17, each as a process of its own:
#   - a master (org.apache.spark.deploy.master.Master),
#   - SEEDTEST_SPARK_WORKERS workers (default 1), each with SEEDTEST_SPARK_WORKER_CORES cores
#     (default 1) and SEEDTEST_SPARK_WORKER_MEMORY (default 1g),
#   - the Spark Thrift Server (HiveThriftServer2) as an application of that cluster, its
#     driver memory SEEDTEST_SPARK_DRIVER_MEMORY (default 1g), its warehouse
#     SEEDTEST_SPARK_WAREHOUSE (default DIR/warehouse) and its Derby metastore
#     SEEDTEST_SPARK_METASTORE (default DIR/metastore_db): the settings a real cluster keeps in
#     its own spark-defaults.conf / hive-site.xml,
# on free loopback ports, waits until the workers are registered and the Thrift server
# answers (up to SEEDTEST_SPARK_START_SECONDS, default 900: a loaded machine is slow, a dead
# process is reported at once), and exports SEEDTEST_SPARK_HOST/SEEDTEST_SPARK_PORT for
# `SEEDTEST_SPARK_METHOD=thrift`, plus SPARK_CLUSTER_MASTER_URL and SPARK_CLUSTER_CORES.
# spark_cluster_stop stops exactly the processes it started, by their pids (newest first),
# and waits for them to end. Logs stay in DIR/logs.

spark_cluster_pids=()
spark_cluster_dir=""

_spark_free_port() {
    python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

_spark_fail() {
    echo "[ERROR] Spark cluster: $1 (logs in $spark_cluster_dir/logs)" >&2
    local log
    for log in "$spark_cluster_dir"/logs/*.log; do
        [ -f "$log" ] && { echo "--- $log (last lines)" >&2; tail -n 15 "$log" >&2; }
    done
    return 1
}

# Waits until `check` succeeds; fails when the process `pid` ended or the bound passed.
_spark_wait() {
    local what="$1" pid="$2" check="$3" bound="${SEEDTEST_SPARK_START_SECONDS:-900}"
    local started=$SECONDS
    until eval "$check"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            _spark_fail "the $what (pid $pid) ended before it was ready"
            return 1
        fi
        if (( SECONDS - started > bound )); then
            _spark_fail "the $what was not ready after ${bound} s (SEEDTEST_SPARK_START_SECONDS)"
            return 1
        fi
        sleep 2
    done
    echo "   $what ready after $(( SECONDS - started )) s"
}

_spark_port_open() {
    python3 -c 'import socket, sys
s = socket.socket()
s.settimeout(2)
sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 else 1)' "$1"
}

spark_cluster_start() {
    spark_cluster_dir="$1"
    mkdir -p "$spark_cluster_dir/logs" "$spark_cluster_dir/work"
    local logs="$spark_cluster_dir/logs"
    local workers="${SEEDTEST_SPARK_WORKERS:-1}" cores="${SEEDTEST_SPARK_WORKER_CORES:-1}"
    local memory="${SEEDTEST_SPARK_WORKER_MEMORY:-1g}"
    local warehouse="${SEEDTEST_SPARK_WAREHOUSE:-$spark_cluster_dir/warehouse}"
    local metastore="${SEEDTEST_SPARK_METASTORE:-$spark_cluster_dir/metastore_db}"
    local master_port master_ui thrift_port i
    master_port=$(_spark_free_port)
    master_ui=$(_spark_free_port)
    thrift_port=$(_spark_free_port)
    export SPARK_LOCAL_IP=127.0.0.1 SPARK_LOG_DIR="$logs" SPARK_WORKER_DIR="$spark_cluster_dir/work"
    export SPARK_CLUSTER_MASTER_URL="spark://127.0.0.1:$master_port"
    export SPARK_CLUSTER_CORES=$(( workers * cores ))

    echo "== Spark standalone cluster: master $SPARK_CLUSTER_MASTER_URL, $workers worker(s) x" \
        "$cores core(s) x $memory, Thrift server on 127.0.0.1:$thrift_port"
    spark-class org.apache.spark.deploy.master.Master --host 127.0.0.1 \
        --port "$master_port" --webui-port "$master_ui" >"$logs/master.log" 2>&1 &
    spark_cluster_pids+=("$!")
    _spark_wait master "$!" "_spark_port_open $master_port" || return 1

    for (( i = 1; i <= workers; i++ )); do
        spark-class org.apache.spark.deploy.worker.Worker --host 127.0.0.1 \
            --port "$(_spark_free_port)" --webui-port "$(_spark_free_port)" \
            --cores "$cores" --memory "$memory" --work-dir "$spark_cluster_dir/work" \
            "$SPARK_CLUSTER_MASTER_URL" >"$logs/worker-$i.log" 2>&1 &
        spark_cluster_pids+=("$!")
        _spark_wait "worker $i" "$!" \
            "grep -qs 'Successfully registered with master' '$logs/worker-$i.log'" || return 1
    done

    # The Thrift server: one application of the cluster using all its cores. Its driver keeps
    # the metastore (Derby, one process) and plans the queries; the executors run on the workers.
    spark-submit --master "$SPARK_CLUSTER_MASTER_URL" \
        --class org.apache.spark.sql.hive.thriftserver.HiveThriftServer2 \
        --name seedtest-thrift-server \
        --driver-memory "${SEEDTEST_SPARK_DRIVER_MEMORY:-1g}" \
        --executor-memory "${SEEDTEST_SPARK_EXECUTOR_MEMORY:-768m}" \
        --conf "spark.cores.max=$SPARK_CLUSTER_CORES" \
        --conf "spark.sql.warehouse.dir=$warehouse" \
        --conf "spark.hadoop.javax.jdo.option.ConnectionURL=jdbc:derby:;databaseName=$metastore;create=true" \
        --conf "spark.driver.extraJavaOptions=-Dderby.system.home=$spark_cluster_dir" \
        --conf "spark.sql.shuffle.partitions=${SEEDTEST_SPARK_SHUFFLE_PARTITIONS:-4}" \
        --conf spark.sql.adaptive.enabled=true \
        --conf spark.ui.enabled=false \
        --hiveconf hive.server2.thrift.bind.host=127.0.0.1 \
        --hiveconf "hive.server2.thrift.port=$thrift_port" \
        spark-internal >"$logs/thrift-server.log" 2>&1 &
    spark_cluster_pids+=("$!")
    _spark_wait "Thrift server" "$!" "_spark_port_open $thrift_port" || return 1
    export SEEDTEST_SPARK_HOST=127.0.0.1 SEEDTEST_SPARK_PORT="$thrift_port"
}

spark_cluster_stop() {
    local i pid waited
    for (( i = ${#spark_cluster_pids[@]} - 1; i >= 0; i-- )); do
        pid="${spark_cluster_pids[$i]}"
        kill "$pid" 2>/dev/null || continue
        waited=0
        while kill -0 "$pid" 2>/dev/null && (( waited < 120 )); do
            sleep 1
            waited=$(( waited + 1 ))
        done
        if kill -0 "$pid" 2>/dev/null; then
            echo "   pid $pid did not stop after ${waited} s: killing it" >&2
            kill -9 "$pid" 2>/dev/null || true
        fi
    done
    spark_cluster_pids=()
}
