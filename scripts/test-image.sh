#!/usr/bin/env bash
# Build the container image for real and run it as the CronJob would: as uid 10001, against a
# real PostgreSQL 15 holding synthetic data, `run --dry-run` then a real `run` (twice: a cold
# dbt parse, then the cached one on the artifacts volume), and check from the database that S
# landed in weekly_kpi for exactly the users the inactive_users mart lists.
#
#   bash scripts/test-image.sh        (root; minutes: not part of the default test run)
#
# No registry and no container daemon are needed:
# - the base image (what the Dockerfile's PYTHON_IMAGE names) is made from Debian's own
#   packages with debootstrap, with this machine's extra CA certificates trusted and pip
#   configured as pip on this machine is (its index, find-links and proxy settings), and
#   committed with buildah; it is kept and rebuilt only when missing (its tag is a hash of
#   that recipe, so new certificates or a new pip configuration make a new one);
# - the image is built by `buildah bud --isolation chroot` on the vfs storage driver.
# Each failure prints one `[FAIL] ...` line; the exit code is the number of failures (1 when
# the script cannot go on). Containers and the database server it started are removed on exit.
#
# Environment: SEEDTEST_IMAGE_DATE (anchor, default 2026-11-30), SEEDTEST_IMAGE_USERS (200),
# SEEDTEST_DEBIAN_MIRROR (default: the first Debian URI of apt's sources), PG15_BINDIR,
# SEEDTEST_IMAGE_BACKTEST=true (also build the image with the backtest extra and run the
# train-churn CronJob's command in it).
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export STORAGE_DRIVER=vfs BUILDAH_ISOLATION=chroot
anchor="${SEEDTEST_IMAGE_DATE:-2026-11-30}"
users="${SEEDTEST_IMAGE_USERS:-200}"
image="localhost/seedtest-analytics:image-test"
bindir="${PG15_BINDIR:-/usr/lib/postgresql/15/bin}"
app_uid=10001
failures=0
containers=()
work=""
pg_user="seedtest_pg"

info() { echo "[INFO] $*"; }
fail() { echo "[FAIL] $*" >&2; failures=$((failures + 1)); }
die() { echo "[FAIL] $*" >&2; exit 1; }
now() { date +%s.%N; }
since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$(now)"; }

cleanup() {
    local ctr
    for ctr in "${containers[@]}"; do
        buildah rm "$ctr" >/dev/null 2>&1 || echo "[WARN] could not remove container $ctr" >&2
    done
    if [ -n "$work" ] && [ -d "$work/pg/data" ]; then
        runuser -u "$pg_user" -- "$bindir/pg_ctl" -D "$work/pg/data" -m fast -w stop \
            >/dev/null 2>&1 || true
    fi
    [ -z "$work" ] || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- prerequisites ---------------------------------------------------------------------------
[ "$(id -u)" = 0 ] || die "needs root (debootstrap, buildah's chroot isolation)"
missing=()
command -v buildah >/dev/null || missing+=(buildah)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if [ "${#missing[@]}" -gt 0 ]; then
    info "installing ${missing[*]} with apt-get"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" \
        >/dev/null 2>&1 || die "apt-get install ${missing[*]} failed"
fi
[ -x "$bindir/postgres" ] || die "no PostgreSQL 15 in $bindir (apt-get install postgresql-15)"
work="$(mktemp -d /var/tmp/seedtest-image-test.XXXXXX)"
chmod 0755 "$work"

# --- the base image --------------------------------------------------------------------------
mirror="${SEEDTEST_DEBIAN_MIRROR:-$(sed -n 's/^URIs: *\(\S*\/debian\)$/\1/p' \
    /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)}"
mirror="${mirror:-http://deb.debian.org/debian}"
packages="python3,python3-venv,python-is-python3,ca-certificates,tzdata,passwd"

# pip inside the build must reach the package index exactly as pip here does: the effective
# configuration of this machine's pip (files and PIP_* variables, the later winning) becomes
# the base image's /etc/pip.conf; local paths it names (find-links, file:// indexes) are
# mounted read-only into the build's RUN steps at the same place, files it names (constraints)
# are copied into the base image at the same place; the certificate bundle is the image's
# own, which trusts this machine's extra CA certificates.
python3 - "$work/pip.conf" "$work/pip-mounts" "$work/pip-files" <<'PY' || die "could not read this machine's pip configuration"
import configparser, os, subprocess, sys

listing = subprocess.run([sys.executable, "-m", "pip", "config", "list", "-v"],
                         capture_output=True, text=True, check=True).stdout
rank = {"global": 0, "user": 1, "site": 2, ":env:": 3}
found: dict[tuple[str, str], tuple[int, str]] = {}
for line in listing.splitlines():
    if "=" not in line or line.startswith("For variant"):
        continue
    name, _, value = line.partition("=")
    value = value.strip().strip("'\"")
    variant, _, key = name.partition(".")
    section, _, option = key.rpartition(".")
    section = section or "global"
    level = rank.get(variant, 0)
    if level >= found.get((section, option), (-1, ""))[0]:
        found[(section, option)] = (level, value)
config = configparser.ConfigParser()
mounts: set[str] = set()
files: set[str] = set()
for (section, option), (_, value) in sorted(found.items()):
    if option in ("cert", "client-cert"):
        value = "/etc/ssl/certs/ca-certificates.crt" if option == "cert" else value
    if option in ("find-links", "index-url", "extra-index-url"):
        for item in value.split():
            path = item[len("file://"):] if item.startswith("file://") else item
            if path.startswith("/") and os.path.exists(path):
                path = path.rstrip("/") if os.path.isdir(path) else os.path.dirname(path)
                if option != "find-links":  # a simple index links to files beside it
                    path = os.path.dirname(path)
                mounts.add(path)
    if option in ("constraint", "requirement", "build-constraint"):
        files.update(item for item in value.split() if os.path.isfile(item))
    if not config.has_section(section):
        config.add_section(section)
    config.set(section, option, value)
with open(sys.argv[1], "w") as handle:
    config.write(handle)
with open(sys.argv[2], "w") as handle:
    handle.write("".join(f"{m}\n" for m in sorted(mounts)))
with open(sys.argv[3], "w") as handle:
    handle.write("".join(f"{f}\n" for f in sorted(files)))
PY
extra_cas=(/usr/local/share/ca-certificates/*.crt)
[ -e "${extra_cas[0]}" ] || extra_cas=()
mapfile -t pip_files < "$work/pip-files"
recipe="$( { echo "bookworm $packages"; cat "$work/pip.conf"; \
    [ "${#pip_files[@]}" -eq 0 ] || cat "${pip_files[@]}"; \
    [ "${#extra_cas[@]}" -eq 0 ] || cat "${extra_cas[@]}"; } | sha256sum | cut -c1-12)"
base="localhost/seedtest-python-base:bookworm-$recipe"
volumes=()
while read -r path; do
    [ -z "$path" ] || volumes+=(-v "$path:$path:ro")
done < "$work/pip-mounts"

if buildah inspect --type image "$base" >/dev/null 2>&1; then
    info "base image $base: cached"
    base_text="cached"
else
    info "building the base image $base (debootstrap $mirror bookworm)"
    started="$(now)"
    rootfs="$work/rootfs"
    if ! debootstrap --variant=minbase --include="$packages" bookworm "$rootfs" "$mirror" \
        >"$work/debootstrap.log" 2>&1; then
        tail -n 20 "$work/debootstrap.log" >&2
        die "debootstrap of the base image failed (log above)"
    fi
    [ "${#extra_cas[@]}" -eq 0 ] || cp "${extra_cas[@]}" "$rootfs/usr/local/share/ca-certificates/"
    chroot "$rootfs" update-ca-certificates >/dev/null 2>&1 \
        || die "update-ca-certificates failed in the base image"
    cp "$work/pip.conf" "$rootfs/etc/pip.conf"
    for file in "${pip_files[@]}"; do
        mkdir -p "$rootfs$(dirname "$file")" && cp "$file" "$rootfs$file"
    done
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
        "$rootfs"/var/log/*.log
    ctr="$(buildah from scratch)" || die "buildah from scratch failed"
    containers+=("$ctr")
    mnt="$(buildah mount "$ctr")" || die "buildah mount failed"
    tar -C "$rootfs" -cf - . | tar -C "$mnt" -xpf - || die "copying the base root filesystem failed"
    buildah umount "$ctr" >/dev/null
    rm -rf "$rootfs"
    buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --env LANG=C.UTF-8 --cmd '["python3"]' \
        --label org.opencontainers.image.description="Debian bookworm python3 (debootstrap)" \
        "$ctr" || die "buildah config of the base image failed"
    buildah commit --quiet "$ctr" "$base" >/dev/null || die "buildah commit of the base image failed"
    base_text="built in $(since "$started") s"
    info "base image $base_text"
fi

# --- the image -------------------------------------------------------------------------------
info "building $image from the Dockerfile (PYTHON_IMAGE=$base)"
started="$(now)"
if ! buildah bud --isolation chroot --layers --force-rm --pull=never --network host \
    --build-arg PYTHON_IMAGE="$base" "${volumes[@]}" -t "$image" -f Dockerfile . \
    >"$work/build.log" 2>&1; then
    grep -v '^ ' "$work/build.log" | tail -n 25 >&2
    die "the image build failed (the last lines of its log above)"
fi
build_seconds="$(since "$started")"
info "image built in ${build_seconds} s"

# --- PostgreSQL 15 on the loopback interface, with synthetic data ----------------------------
[ -x .venv/bin/seedtest-dev ] || die "no .venv/bin/seedtest-dev: run scripts/bootstrap.sh first"
id "$pg_user" >/dev/null 2>&1 || useradd --system --no-create-home "$pg_user" 2>/dev/null \
    || id "$pg_user" >/dev/null || die "no system user for PostgreSQL"
mkdir -p "$work/pg" && chown "$pg_user" "$work/pg"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
runuser -u "$pg_user" -- "$bindir/initdb" -D "$work/pg/data" -U postgres --auth=trust -E UTF8 \
    >/dev/null || die "initdb failed"
runuser -u "$pg_user" -- "$bindir/pg_ctl" -D "$work/pg/data" -l "$work/pg/server.log" -w \
    -o "-k $work/pg -p $port -c listen_addresses=127.0.0.1 -c fsync=off -c TimeZone=America/New_York" \
    start >/dev/null || die "PostgreSQL 15 did not start ($(tail -n 1 "$work/pg/server.log"))"
url="postgresql://postgres@127.0.0.1:$port/seedtest_image"
psql() { "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -At "$url" "$@"; }
"$bindir/createdb" -h 127.0.0.1 -p "$port" -U postgres seedtest_image || die "createdb failed"
if ! DATABASE_URL="$url" .venv/bin/seedtest-dev generate --users "$users" --days 60 \
    --end-date "$anchor" >"$work/generate.log" 2>&1; then
    cat "$work/generate.log" >&2
    die "seedtest-dev generate failed"
fi
tail -n 1 "$work/generate.log"

# --- run the image ---------------------------------------------------------------------------
# As the CronJob: the ConfigMap's settings, uid 10001, /tmp as scratch space and dbt's
# target/ on a volume that outlives the container (the PersistentVolumeClaim).
env_args=()
while IFS= read -r line; do
    env_args+=(--env "$line")
done < <(.venv/bin/python -c '
import sys, yaml
for key, value in yaml.safe_load(open("deploy/k8s/configmap.yaml"))["data"].items():
    print(f"{key}={value}")')
env_args+=(--env "DATABASE_URL=$url" --env DBT_TARGET_PATH=/var/lib/seedtest-analytics/target)
mkdir -p "$work/artifacts" "$work/tmp"
chown "$app_uid:$app_uid" "$work/artifacts" "$work/tmp"
ctr="$(buildah from --pull=never "$image")" || die "buildah from $image failed"
containers+=("$ctr")
mnt="$(buildah mount "$ctr")" || die "buildah mount of the container failed"
touch "$work/before-runs"
sleep 1

in_image() {  # in_image LOG COMMAND...: runs COMMAND in the container, as the CronJob's pod does
    local log="$1"
    shift
    buildah run --isolation chroot --network host --user "$app_uid:$app_uid" "${env_args[@]}" \
        -v "$work/tmp:/tmp" -v "$work/artifacts:/var/lib/seedtest-analytics" \
        "$ctr" -- "$@" >"$work/$log" 2>&1
}

week="$(python3 -c 'import datetime as d, sys; a = d.date.fromisoformat(sys.argv[1]); print(a - d.timedelta(days=a.weekday()))' "$anchor")"
kpi_digest() { psql -c "select md5(coalesce(string_agg(user_id || week_start || kpis::text, ',' order by user_id, week_start), '')) from public.weekly_kpi"; }

before="$(kpi_digest)"
started="$(now)"
in_image dry-run.log seedtest-analytics run --dry-run --date "$anchor"
code=$?
dry_seconds="$(since "$started")"
[ "$code" = 0 ] || fail "run --dry-run exited $code: $(grep -m1 '^\[ERROR\]' "$work/dry-run.log" || tail -n 1 "$work/dry-run.log")"
[ "$(kpi_digest)" = "$before" ] || fail "run --dry-run changed weekly_kpi"
grep -q '^\[INFO\] Found [0-9]* inactive users' "$work/dry-run.log" \
    || fail "run --dry-run did not report the inactive users it found"

started="$(now)"
in_image run-cold.log seedtest-analytics run --date "$anchor"
code=$?
cold_seconds="$(since "$started")"
[ "$code" = 0 ] || fail "run (cold) exited $code: $(grep -m1 '^\[ERROR\]' "$work/run-cold.log" || tail -n 1 "$work/run-cold.log")"

# S landed for exactly the users of the inactive_users mart, on their row for the anchor's week.
inactive="$(psql -c 'select count(*) from analytics.inactive_users')"
[ "${inactive:-0}" -gt 0 ] || fail "the inactive_users mart is empty: nothing to score (change SEEDTEST_IMAGE_DATE)"
without_s="$(psql -c "select count(*) from analytics.inactive_users as i
    where not exists (select from public.weekly_kpi as k where k.user_id = i.user_id
        and k.week_start = date '$week' and jsonb_typeof(k.kpis -> 'S') = 'number'
        and (k.kpis ->> 'S')::float8 between 0 and 1)")"
[ "$without_s" = 0 ] || fail "$without_s of the $inactive inactive users have no S in [0, 1] in weekly_kpi for the week of $week"
extra_s="$(psql -c "select count(*) from public.weekly_kpi as k where k.week_start = date '$week'
    and k.kpis ? 'S' and not exists (select from analytics.inactive_users as i where i.user_id = k.user_id)")"
[ "$extra_s" = 0 ] || fail "$extra_s users not in the inactive_users mart got an S for the week of $week"
history="$(psql -c "select count(*) from analytics.seedtest_run_history where command = 'run' and status = 'success' and exit_code = 0" 2>/dev/null)"
[ "${history:-0}" -ge 1 ] || fail "no successful run in analytics.seedtest_run_history"
[ -f "$work/artifacts/target/run_results.json" ] || fail "dbt's run_results.json is not on the artifacts volume"

after_first="$(kpi_digest)"
started="$(now)"
in_image run-cached.log seedtest-analytics run --date "$anchor"
code=$?
cached_seconds="$(since "$started")"
[ "$code" = 0 ] || fail "run (cached) exited $code: $(grep -m1 '^\[ERROR\]' "$work/run-cached.log" || tail -n 1 "$work/run-cached.log")"
[ "$(kpi_digest)" = "$after_first" ] || fail "a second run of the same night changed weekly_kpi"

# Nothing written outside /tmp and the artifacts volume (what readOnlyRootFilesystem enforces
# in the pod; buildah run has no read-only root, so it is checked afterwards).
written="$(cd "$mnt" && find . -xdev -newer "$work/before-runs" \( -type f -o -type l \) \
    -not -path './tmp/*' -not -path './var/lib/seedtest-analytics/*' -not -path './etc/hosts' \
    -not -path './etc/resolv.conf' -not -path './etc/hostname' -not -path './run/*' | head -n 5)"
[ -z "$written" ] || fail "the runs wrote into the image's root filesystem: $(echo $written)"
buildah umount "$ctr" >/dev/null 2>&1 || true

summary="base image ${base_text}, image build ${build_seconds} s, run --dry-run ${dry_seconds} s, run cold ${cold_seconds} s, run cached ${cached_seconds} s; ${inactive} inactive users scored"

# --- optionally: the image with the backtest extra, running the train-churn CronJob's command -
if [ "${SEEDTEST_IMAGE_BACKTEST:-false}" = true ]; then
    info "building ${image}-backtest (--build-arg EXTRAS=backtest)"
    started="$(now)"
    if ! buildah bud --isolation chroot --layers --force-rm --pull=never --network host \
        --build-arg PYTHON_IMAGE="$base" --build-arg EXTRAS=backtest "${volumes[@]}" \
        -t "${image}-backtest" -f Dockerfile . >"$work/build-backtest.log" 2>&1; then
        grep -v '^ ' "$work/build-backtest.log" | tail -n 25 >&2
        die "the backtest image build failed (the last lines of its log above)"
    fi
    summary="$summary; backtest image build $(since "$started") s"
    bt="$(buildah from --pull=never "${image}-backtest")" || die "buildah from ${image}-backtest failed"
    containers+=("$bt")
    # The CronJob's command and arguments, verbatim (--until: yesterday in ACTIVITY_TIMEZONE).
    mapfile -t train < <(.venv/bin/python -c '
import yaml
spec = yaml.safe_load(open("deploy/k8s/train-churn-cronjob.yaml"))["spec"]["jobTemplate"]["spec"]
container = spec["template"]["spec"]["containers"][0]
print("\n".join(container.get("command", []) + container["args"]))')
    ctr="$bt"
    started="$(now)"
    in_image train.log env DBT_TARGET_PATH=/tmp/dbt/target "${train[@]}"
    code=$?
    summary="$summary, train-churn $(since "$started") s"
    [ "$code" = 0 ] || fail "train-churn in the backtest image exited $code: $(grep -m1 '^\[ERROR\]' "$work/train.log" || tail -n 1 "$work/train.log")"
    models="$(psql -c 'select count(*) from analytics.churn_models' 2>/dev/null)"
    [ "${models:-0}" -ge 1 ] || fail "train-churn stored no model in analytics.churn_models"
fi
if [ "$failures" -gt 0 ]; then
    echo "[FAIL] $failures check(s) failed ($summary); logs were in $work" >&2
    exit "$failures"
fi
info "image test passed: $summary"
