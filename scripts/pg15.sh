#!/usr/bin/env bash
# Start (or stop) a throw-away PostgreSQL 15 server from Debian's packages on a unix socket,
# for running tests against an older server: prints the TEST_DATABASE_URL to use.
#   scripts/pg15.sh start   ->  postgresql://postgres@/postgres?host=/tmp/seedtest-pg15&port=5415
#   scripts/pg15.sh stop
set -euo pipefail
bindir="${PG15_BINDIR:-/usr/lib/postgresql/15/bin}"
dir="${PG15_DIR:-/tmp/seedtest-pg15}"
port="${PG15_PORT:-5415}"
run_as=()
if [ "$(id -u)" = 0 ]; then
    # PostgreSQL refuses to run as root: use an unprivileged system user.
    user="${PG15_USER:-seedtest_pg}"
    id "$user" >/dev/null 2>&1 || useradd --system --no-create-home "$user"
    run_as=(runuser -u "$user" --)
fi
case "${1:-start}" in
start)
    [ -x "$bindir/postgres" ] || { echo "[ERROR] no PostgreSQL 15 in $bindir" >&2; exit 2; }
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        mkdir -p "$dir"
        [ ${#run_as[@]} -eq 0 ] || chown "$user" "$dir"
        "${run_as[@]}" "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 >/dev/null
    fi
    if ! "${run_as[@]}" "$bindir/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        "${run_as[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
            -o "-k $dir -p $port -c listen_addresses='' -c fsync=off" start >/dev/null
    fi
    echo "postgresql://postgres@/postgres?host=$dir&port=$port"
    ;;
stop)
    "${run_as[@]}" "$bindir/pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
