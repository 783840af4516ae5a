#!/bin/bash
# rss.sh ENGINE monitor|daemon — prints one number in KiB.
#   monitor: start a detached `sleep` container, let it settle, print the
#            VmRSS of the process that supervises it (berth's monitor,
#            podman's conmon, docker's containerd-shim), remove it.
#   daemon:  VmRSS summed over the engine's resident processes other than
#            per-container monitors (dockerd + containerd; berth and podman
#            leave none, and this measures that rather than assuming it).
source "$(dirname "$0")/common.sh"
engine=$1 mode=$2
rss() { if [ -r "/proc/$1/status" ]; then awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; else echo 0; fi; }
name=bench-rss-$$

if [ "$mode" = daemon ]; then
    total=0
    case $engine in
        docker)
            dpid=$(cat "$BENCH_TMP/docker/started-by-bench")
            total=$(rss "$dpid")
            for c in $(pgrep -P "$dpid" -x containerd); do total=$((total + $(rss "$c"))); done ;;
        berth)
            for p in $(pgrep -f "^$BERTH "); do
                grep -q __monitor "/proc/$p/cmdline" 2>/dev/null || total=$((total + $(rss "$p")))
            done ;;
        podman)
            for p in $(pgrep -x podman); do total=$((total + $(rss "$p"))); done ;;
    esac
    echo "$total"
    exit 0
fi

case $engine in
    berth)
        id=$($B run -d --network none --name "$name" bb sleep 1000000)
        sleep 1
        mon=$(pgrep -f "__monitor.*${id:0:12}" | head -1 || true)
        if [ -z "$mon" ]; then
            pid=$($B inspect -f '{{.State.Pid}}' "$name")
            mon=$(awk '/^PPid:/ {print $2}' "/proc/$pid/status")
        fi
        grep -q __monitor "/proc/$mon/cmdline" || { echo "no monitor found for $id" >&2; $B rm -f "$name" >/dev/null; exit 1; }
        r=$(rss "$mon")
        $B rm -f "$name" >/dev/null ;;
    podman)
        $P run -d --network none --name "$name" bb sleep 1000000 >/dev/null
        sleep 1
        r=$(rss "$($P inspect -f '{{.State.ConmonPid}}' "$name")")
        $P rm -f -t 0 "$name" >/dev/null ;;
    docker)
        $D run -d --network none --name "$name" bb sleep 1000000 >/dev/null
        sleep 1
        pid=$($D inspect -f '{{.State.Pid}}' "$name")
        r=$(rss "$(awk '/^PPid:/ {print $2}' "/proc/$pid/status")")
        $D rm -f "$name" >/dev/null ;;
esac
echo "$r"
