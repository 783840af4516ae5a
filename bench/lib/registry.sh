#!/bin/bash
# registry.sh start|stop|reset DIR ADDR — Debian's docker-registry on ADDR
# (127.0.0.1:PORT), storing under DIR/registry. reset = stop, wipe, start:
# an empty registry, so a push uploads every blob (no cross-repository
# mount of a blob pushed before).
set -eu
cmd=$1 dir=$2 addr=$3
stop() {
    if [ -f "$dir/registry.pid" ]; then
        kill "$(cat "$dir/registry.pid")" 2>/dev/null || true
        for _ in $(seq 1 40); do kill -0 "$(cat "$dir/registry.pid")" 2>/dev/null || break; sleep 0.1; done
        rm -f "$dir/registry.pid"
    fi
}
start() {
    mkdir -p "$dir"
    cat > "$dir/registry.yml" <<YML
version: 0.1
log: {level: error}
storage:
  filesystem: {rootdirectory: $dir/registry}
  delete: {enabled: true}
http: {addr: $addr}
YML
    setsid docker-registry serve "$dir/registry.yml" >>"$dir/registry.log" 2>&1 < /dev/null &
    echo $! > "$dir/registry.pid"
    local pid=$!
    for _ in $(seq 1 100); do
        # Ours must be the one answering: fail if it died (port taken).
        kill -0 "$pid" 2>/dev/null || { echo "registry exited: $(tail -1 "$dir/registry.log")" >&2; return 1; }
        curl -sf "http://$addr/v2/" >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    echo "registry did not start" >&2; return 1
}
case $cmd in
    start) start ;;
    stop) stop ;;
    reset) stop; rm -rf "$dir/registry"; start ;;
esac
