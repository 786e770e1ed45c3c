#!/usr/bin/env bash
# A throw-away PostgreSQL 15 server from Debian's packages, for running tests against an older
# server. Each start gets a folder of its own (and a free port), so two checkouts testing on one
# machine never share or delete each other's server.
#   url="$(scripts/pg15.sh start)"   ->  postgresql://postgres@/postgres?host=/tmp/seedtest-pg15.XXXX&port=NNNNN
#   scripts/pg15.sh stop "$url"      (or the folder): stops that server and deletes its folder
set -euo pipefail
bindir="${PG15_BINDIR:-/usr/lib/postgresql/15/bin}"
run_as=()
user=""
if [ "$(id -u)" = 0 ]; then
    # PostgreSQL refuses to run as root: use an unprivileged system user.
    user="${PG15_USER:-seedtest_pg}"
    id "$user" >/dev/null 2>&1 || useradd --system --no-create-home "$user" 2>/dev/null || id "$user" >/dev/null
    run_as=(runuser -u "$user" --)
fi
case "${1:-}" in
start)
    [ -x "$bindir/postgres" ] || { echo "[ERROR] no PostgreSQL 15 in $bindir" >&2; exit 2; }
    dir="$(mktemp -d "${TMPDIR:-/tmp}/seedtest-pg15.XXXXXX")"
    # A port nobody listens on (the server itself listens only on its unix socket in $dir).
    port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    [ -z "$user" ] || chown "$user" "$dir"
    chmod 0755 "$dir"
    "${run_as[@]}" "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 >/dev/null
    if ! "${run_as[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
        -o "-k $dir -p $port -c listen_addresses='' -c fsync=off" start >/dev/null; then
        tail -n 20 "$dir/server.log" >&2 || true
        rm -rf "$dir"
        echo "[ERROR] PostgreSQL 15 did not start" >&2
        exit 1
    fi
    echo "postgresql://postgres@/postgres?host=$dir&port=$port"
    ;;
stop)
    target="${2:?usage: $0 stop URL-or-folder}"
    dir="${target#*host=}"
    dir="${dir%%&*}"
    case "$dir" in
    */seedtest-pg15.*) ;;
    *) echo "[ERROR] $dir is not a folder made by $0 start" >&2; exit 2 ;;
    esac
    if [ -d "$dir/data" ]; then
        "${run_as[@]}" "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
*)
    echo "usage: $0 start | stop URL-or-folder" >&2
    exit 2
    ;;
esac
