# Sourced by images-1000 and inspect: a store of 1,000 distinct one-layer
# images (bench/img0000 … bench/img0999) in every engine, loaded from one
# docker-archive written by mkarchive.py. Done once per BENCH_TMP.
ensure_store1000() {
    local a=$BENCH_TMP/data/many.tar
    mkdir -p "$BENCH_TMP/data"
    [ -f "$a" ] || "$PY" "$BENCH_DIR/lib/mkarchive.py" many "$a" 1000
    if [ ! -f "$BENCH_TMP/store1000.berth" ]; then
        log "loading 1,000 images into berth"
        if $B load -q -i "$a" >/dev/null; then echo ok; else echo "load failed"; fi > "$BENCH_TMP/store1000.berth"
    fi
    if [ ! -f "$BENCH_TMP/store1000.podman" ]; then
        log "loading 1,000 images into podman (slow: minutes)"
        if $P load -q -i "$a" >/dev/null 2>&1; then echo ok; else echo "load failed"; fi > "$BENCH_TMP/store1000.podman"
    fi
    if docker_up && [ ! -f "$BENCH_TMP/store1000.docker" ]; then
        log "loading 1,000 images into docker"
        if $D load -q -i "$a" >/dev/null; then echo ok; else echo "load failed"; fi > "$BENCH_TMP/store1000.docker"
    fi
}
