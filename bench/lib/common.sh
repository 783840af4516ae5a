# Shared set-up for bench/run and every bench/scenarios/* script. Sourced.
#
# Environment (all optional):
#   BENCH_TMP     work dir for every engine's storage (default /var/tmp/berth-bench)
#   BENCH_REPS    repetitions per case (default 10; 3 with --quick)
#   BENCH_QUICK   1 = skip docker
#   BENCH_KEEP    1 = leave BENCH_TMP and dockerd in place at the end
#   BERTH         berth binary (default target/release/berth, built if missing)
#   BENCH_DOCKERD_ARGS  more dockerd flags: `--bridge none --iptables=false`
#                 leaves the host's bridges and firewall alone (a shared host)
#
# A scenario run alone sets up what it needs and tears it down at exit;
# under bench/run (BENCH_PARENT=1) set-up and tear-down happen once there.

set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPO=$(dirname "$BENCH_DIR")
: "${BENCH_TMP:=/var/tmp/berth-bench}"
: "${BENCH_QUICK:=0}"
if [ -z "${BENCH_REPS:-}" ]; then
    if [ "$BENCH_QUICK" = 1 ]; then BENCH_REPS=3; else BENCH_REPS=10; fi
fi
: "${BERTH:=$REPO/target/release/berth}"
export BENCH_TMP BENCH_QUICK BENCH_REPS BERTH

PY=/usr/bin/python3
TIMEIT=("$PY" "$BENCH_DIR/lib/timeit.py" --reps "$BENCH_REPS" --warmup 1)
# Scenarios whose every run does the full work (cold, files already in the
# page cache) skip the warm-up round under --quick to stay quick.
if [ "$BENCH_QUICK" = 1 ]; then HEAVY_WARMUP=0; else HEAVY_WARMUP=1; fi
DOCKER_SOCK=/run/berth-bench-docker.sock
MNTNS=$BENCH_TMP/ns/mnt
# An untimed --prep for scenarios that create and delete many files: the
# root file system here is ext4 without a journal, whose inode allocator
# skips every inode deleted in the last 5 s (300 s while its inode-table
# block is dirty), one buffer lookup each. So a run that follows the
# deletions of the run before (any engine's) creates files slower and
# slower. Writing back and dropping the clean caches forgets them: each
# timed run then starts from the same state. The caller re-reads what the
# case needs warm (the engine's binary, a build context) after it.
SETTLE="sync; echo 1 > /proc/sys/vm/drop_caches"

# Command prefixes, one store per engine under BENCH_TMP.
B="$BERTH --root $BENCH_TMP/berth"
P="podman --root $BENCH_TMP/podman/root --runroot $BENCH_TMP/podman/run --tmpdir $BENCH_TMP/podman/tmp"
BA="buildah --root $BENCH_TMP/podman/root --runroot $BENCH_TMP/podman/run"
D="/usr/bin/docker -H unix://$DOCKER_SOCK"
export CONTAINERS_CONF=$BENCH_TMP/containers.conf
export CONTAINERS_REGISTRIES_CONF=$BENCH_TMP/registries.conf

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# ---------------------------------------------------------------- peers
install_peers() {
    local want=(crun runc podman buildah skopeo docker-registry docker.io busybox-static openssl curl)
    local missing=()
    for p in "${want[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing ${missing[*]}"
    if ! apt-cache policy podman | grep -q 'Candidate: [0-9]'; then
        apt-get update -qq
    fi
    # docker.io's maintainer scripts may try to start a daemon: we start our own.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
    # Debian may have started these through the init scripts: stop them.
    [ -x /etc/init.d/docker ] && /etc/init.d/docker stop >/dev/null 2>&1 || true
}

# --------------------------------------------------------------- berth
build_berth() {
    log "building berth (release)"
    (cd "$REPO" && cargo build --release -p berth >&2)
}

# Does berth have this capability yet? Prints the reason when it does not.
berth_has() { # berth_has SUBCOMMAND...
    local out
    if out=$($B "$@" --help 2>&1); then return 0; fi
    echo "$out" | head -1 >&2
    return 1
}

# -------------------------------------------------------------- docker
docker_state() { cat "$BENCH_TMP/docker.state" 2>/dev/null || echo "not started"; }
docker_up() { [ "$(docker_state)" = up ]; }

start_docker() {
    if [ "$BENCH_QUICK" = 1 ]; then echo "skipped (--quick)" > "$BENCH_TMP/docker.state"; return; fi
    if docker_up && $D version >/dev/null 2>&1; then return; fi
    if ! command -v dockerd >/dev/null; then echo "not installed" > "$BENCH_TMP/docker.state"; return; fi
    log "starting dockerd"
    mkdir -p "$BENCH_TMP/docker"
    # dockerd with its default bridge (docker0, NAT through iptables), as
    # people run it, so run-bridge and detached-20-net time docker on its
    # own networks. What it adds to the host and was not there before
    # (docker0, iptables' nft tables) is listed here and removed by
    # stop_docker.
    : > "$BENCH_TMP/docker/host-adds"
    ip link show docker0 >/dev/null 2>&1 || echo "link docker0" >> "$BENCH_TMP/docker/host-adds"
    local t
    for t in "ip filter" "ip nat"; do
        nft list table $t >/dev/null 2>&1 || echo "table $t" >> "$BENCH_TMP/docker/host-adds"
    done
    dockerd --data-root "$BENCH_TMP/docker/data" --exec-root "$BENCH_TMP/docker/exec" \
        -H "unix://$DOCKER_SOCK" --pidfile "$BENCH_TMP/docker/dockerd.pid" \
        --ip6tables=false ${BENCH_DOCKERD_ARGS:-} \
        >"$BENCH_TMP/docker/dockerd.log" 2>&1 &
    local pid=$! i
    for i in $(seq 1 60); do
        if $D version >/dev/null 2>&1; then
            echo up > "$BENCH_TMP/docker.state"
            echo "$pid" > "$BENCH_TMP/docker/started-by-bench"
            # dockerd sets FORWARD's policy to DROP when it turns forwarding
            # on; other bridges on this host (berth's, podman's) must still
            # forward.
            iptables -P FORWARD ACCEPT 2>/dev/null || true
            return
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
    done
    local why
    why=$(grep -iE 'level=(fatal|error)|failed' "$BENCH_TMP/docker/dockerd.log" | tail -1 | sed 's/.*msg="\([^"]*\)".*/\1/' | cut -c1-160)
    echo "could not start dockerd: ${why:-timed out}" | tr '|' '/' > "$BENCH_TMP/docker.state"
    kill "$pid" 2>/dev/null || true
    log "$(docker_state)"
}

stop_docker() {
    local f=$BENCH_TMP/docker/started-by-bench pid
    [ -f "$f" ] || return 0
    pid=$(cat "$f")
    $D rm -f $($D ps -aq 2>/dev/null) >/dev/null 2>&1 || true
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$f"
    # dockerd leaves its rules behind: remove every rule and chain of
    # docker's from the iptables tables (other rules there are not ours).
    local tbl line chain
    for tbl in nat filter; do
        { iptables-save -t $tbl 2>/dev/null | grep -E '^-A .*(DOCKER|docker0)' || true; } | while read -r line; do
            eval "iptables -t $tbl -D ${line#-A }" 2>/dev/null || true
        done
        for chain in $(iptables-save -t $tbl 2>/dev/null | sed -n 's/^:\(DOCKER[^ ]*\) .*/\1/p'); do
            iptables -t $tbl -F "$chain" 2>/dev/null || true
        done
        for chain in $(iptables-save -t $tbl 2>/dev/null | sed -n 's/^:\(DOCKER[^ ]*\) .*/\1/p'); do
            iptables -t $tbl -X "$chain" 2>/dev/null || true
        done
    done
    local what name
    while read -r what name; do
        case $what in
            link) ip link del "$name" 2>/dev/null || true ;;
            table) nft delete table $name 2>/dev/null || true ;;
        esac
    done < "$BENCH_TMP/docker/host-adds" 2>/dev/null || true
    echo "stopped" > "$BENCH_TMP/docker.state"
}

# -------------------------------------------------------- podman config
write_containers_conf() {
    # rootful podman with runc (crun refuses this host's hybrid cgroups), no
    # systemd, and rlimits the host lets a root without CAP_SYS_RESOURCE set.
    cat > "$CONTAINERS_CONF" <<EOF
[containers]
default_ulimits = ["nofile=$(ulimit -Hn):$(ulimit -Hn)", "nproc=4096:4096"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
[network]
network_config_dir = "$BENCH_TMP/podman/net"
EOF
    printf 'unqualified-search-registries = []\nshort-name-mode = "permissive"\n' > "$CONTAINERS_REGISTRIES_CONF"
}

# ------------------------------------------------------- busybox image
make_busybox_rootfs() { # DIR
    local d=$1 a
    rm -rf "$d"; mkdir -p "$d/bin" "$d/etc" "$d/tmp" "$d/root" "$d/proc" "$d/sys" "$d/dev"
    cp /bin/busybox "$d/bin/busybox"
    for a in $("$d/bin/busybox" --list); do
        [ "$a" = busybox ] || ln -sf busybox "$d/bin/$a"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$d/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' > "$d/etc/group"
    chmod 1777 "$d/tmp"
}

prepare_base() {
    mkdir -p "$BENCH_TMP"
    [ -f "$BENCH_TMP/base.done" ] && return 0
    log "preparing the busybox image in every engine"
    write_containers_conf
    make_busybox_rootfs "$BENCH_TMP/bb-rootfs"
    tar -C "$BENCH_TMP/bb-rootfs" --numeric-owner --owner=0 --group=0 -cf "$BENCH_TMP/bb.tar" .
    local chg='CMD ["sh"]'
    $B import -c "$chg" "$BENCH_TMP/bb.tar" bb >/dev/null
    $P import -c "$chg" "$BENCH_TMP/bb.tar" bb >/dev/null 2>&1
    if docker_up; then $D import -c "$chg" "$BENCH_TMP/bb.tar" bb >/dev/null; fi
    prepare_bundles
    touch "$BENCH_TMP/base.done"
}

# OCI bundles for the raw runtimes: runc's default spec, `true`, no tty,
# read-write rootfs (like a container engine's), own network namespace
# (= --network none).
prepare_bundles() {
    local bd=$BENCH_TMP/bundle
    rm -rf "$bd" "$bd-crun"; mkdir -p "$bd" "$bd-crun"
    cp -a "$BENCH_TMP/bb-rootfs" "$bd/rootfs"
    (cd "$bd" && runc spec)
    "$PY" - "$bd" <<'EOF'
import json, sys
bd = sys.argv[1]
c = json.load(open(f"{bd}/config.json"))
c["process"]["args"] = ["true"]
c["process"]["terminal"] = False
c["root"] = {"path": f"{bd}/rootfs", "readonly": False}
json.dump(c, open(f"{bd}/config.json", "w"), indent=1)
# crun: the same bundle (its own copy of the config, as before).
json.dump(c, open(f"{bd}-crun/config.json", "w"), indent=1)
EOF
    prepare_berth_bundles
    # crun 1.8 refuses hybrid cgroups whose cgroup2 mount holds controllers
    # ("drop all controllers from cgroupv2"). Run it as berth does: in a
    # mount namespace where that mount is covered by an empty tmpfs, so crun
    # sees a cgroup v1 host. Entered by setns in timeit.py (no extra exec).
    if [ ! -e "$MNTNS" ] || ! mountpoint -q "$BENCH_TMP/ns"; then
        mkdir -p "$BENCH_TMP/ns"
        mountpoint -q "$BENCH_TMP/ns" || mount --bind "$BENCH_TMP/ns" "$BENCH_TMP/ns"
        mount --make-private "$BENCH_TMP/ns"
        touch "$MNTNS"
        unshare --mount="$MNTNS" --propagation private sh -c \
            'if [ -e /sys/fs/cgroup/unified/cgroup.controllers ]; then mount -t tmpfs -o size=16m none /sys/fs/cgroup/unified; fi' \
            || { log "could not make the crun mount namespace"; rm -f "$MNTNS"; }
    fi
}

# The very bundle berth itself hands to the runtime for `run --rm
# --network none bb true` (Docker's capabilities, seccomp profile, masked
# paths, cgroup mounts), with its own copy of the rootfs and of the
# hosts/hostname/resolv.conf files: runc and crun on it show what berth
# adds over the runtime, like for like.
prepare_berth_bundles() {
    local bd=$BENCH_TMP/bundle-berth id cfg
    rm -rf "$bd" "$bd-crun"; mkdir -p "$bd" "$bd-crun"
    id=$($B create --network none bb true 2>/dev/null) || { log "berth create failed: no berth bundle"; return 0; }
    cfg=$(find "$BENCH_TMP" -path "*/containers/$id/config.json" 2>/dev/null | head -1)
    if [ -z "$cfg" ]; then $B rm "$id" >/dev/null 2>&1; return 0; fi
    cp -a "$BENCH_TMP/bb-rootfs" "$bd/rootfs"
    "$PY" - "$bd" "$cfg" <<'EOF'
import json, os, shutil, sys
bd, cfg = sys.argv[1], sys.argv[2]
cdir = os.path.dirname(cfg)
for out in (bd, bd + "-crun"):
    c = json.load(open(cfg))
    c["root"] = {"path": f"{bd}/rootfs", "readonly": False}
    for m in c.get("mounts", []):
        src = m.get("source", "")
        if src.startswith(cdir + "/"):
            dst = os.path.join(out, os.path.basename(src))
            shutil.copy(src, dst)
            m["source"] = dst
    c["linux"]["cgroupsPath"] = "/berth-bench/bench-true"
    json.dump(c, open(f"{out}/config.json", "w"), indent=1)
EOF
    $B rm "$id" >/dev/null 2>&1 || true
}

crun_ok() { [ -e "$MNTNS" ] && nsenter --mount="$MNTNS" crun run -b "$BENCH_TMP/bundle-crun" bench-probe >/dev/null 2>&1; }

# ------------------------------------------------------ set-up / clean-up
setup() {
    mkdir -p "$BENCH_TMP/out"
    [ -x "$BERTH" ] || build_berth
    write_containers_conf
    start_docker
    prepare_base
}

teardown() {
    [ "${BENCH_KEEP:-0}" = 1 ] && return 0
    log "cleaning up $BENCH_TMP"
    $B rm -f $($B ps -aq 2>/dev/null) >/dev/null 2>&1 || true
    # The store's default network stays after its last container (as
    # docker0): prune removes it, its bridge and its nftables elements.
    $B network prune -f >/dev/null 2>&1 || true
    $P rm -f -t 0 -a >/dev/null 2>&1 || true
    $P system reset -f >/dev/null 2>&1 || true
    stop_docker
    local m
    # Unmount everything left below BENCH_TMP, deepest first.
    for m in $(awk -v t="$BENCH_TMP" 'index($2, t) == 1 {print $2}' /proc/self/mounts | sort -r); do
        umount -l "$m" 2>/dev/null || true
    done
    rm -rf "$BENCH_TMP"
}

# For scenario scripts: set up unless bench/run did, and tear down at exit.
scenario_begin() {
    if [ "${BENCH_PARENT:-0}" != 1 ]; then
        install_peers
        setup
        trap teardown EXIT
    fi
    mkdir -p "$BENCH_TMP/work"
}

# Rows for peers that can't run: docker's column.
docker_case_or_skip() { # LABEL CMD [more timeit args...]
    local label=$1; shift
    if docker_up; then TIMEIT_ARGS+=(--case "$label" "$@"); else TIMEIT_ARGS+=(--skip "$label" "$(docker_state)"); fi
}
