# Sourced by the build-* and context-500m scenarios: one project directory
# per engine (so a change made for one engine is never a cache hit for
# another), and the build command of each builder.

# The 3-stage project: a base, a builder stage that COPYs 100 source files
# and RUNs over them, a final stage that takes the result.
make_project3() { # DIR
    local d=$1 i
    rm -rf "$d"; mkdir -p "$d/src"
    for i in $(seq -w 1 100); do head -c 1024 /dev/urandom | base64 > "$d/src/f$i.txt"; done
    echo "answer = 42" > "$d/app.conf"
    cat > "$d/Dockerfile" <<'DOCKERFILE'
FROM bb AS base
RUN mkdir -p /work && echo base > /work/base.txt

FROM base AS builder
COPY src/ /src/
RUN cat /src/*.txt | sha256sum > /work/digest && tar -cf /work/src.tar /src

FROM bb
COPY --from=builder /work/ /app/
COPY app.conf /etc/app.conf
CMD ["cat", "/app/digest"]
DOCKERFILE
}

# The builders this run can use: label, then the command minus context.
builders() {
    BUILDERS=()
    BUILDERS+=("berth|$B build -q --network none")
    BUILDERS+=("podman|$P build -q --layers --network none")
    [ "${NO_BUILDAH:-0}" = 1 ] || BUILDERS+=("buildah|$BA bud -q --layers --network none")
    if docker_up; then
        BUILDERS+=("docker (classic)|DOCKER_BUILDKIT=0 $D build -q --network none")
        BUILDERS+=("docker (BuildKit)|DOCKER_BUILDKIT=1 $D build -q --network none")
    fi
}

slug() { echo "$1" | tr -c 'a-zA-Z0-9\n' '-' | sed 's/-\+/-/g; s/-$//'; }

# add_build_cases MAKE_FN TAG EXTRA_FLAGS PREP_TEMPLATE
#   MAKE_FN makes a project dir; PREP_TEMPLATE may use @DIR@, @LABEL@ and
#   @ENGINE@ (the engine's `version` command, to load its binary).
add_build_cases() {
    local make=$1 tag=$2 flags=$3 prep=$4 entry label cmd dir p
    builders
    for entry in "${BUILDERS[@]}"; do
        label=${entry%%|*}; cmd=${entry#*|}
        dir=$BENCH_TMP/work/$tag-$(slug "$label")
        [ -d "$dir" ] || "$make" "$dir"
        p=${prep//@DIR@/$dir}; p=${p//@LABEL@/$(slug "$label")}; p=${p//@ENGINE@/${cmd%% bu*} version}
        if [ "$label" = berth ]; then
            local out
            if ! out=$($cmd -t bench/$tag "$dir" 2>&1 >/dev/null); then
                TIMEIT_ARGS+=(--skip berth "not yet ($(echo "$out" | tail -1 | cut -c1-120 | tr '|' '/'))")
                continue
            fi
        fi
        TIMEIT_ARGS+=(--case "$label" "$cmd $flags -t bench/$tag $dir")
        [ -n "$p" ] && TIMEIT_ARGS+=(--prep "$p")
    done
    docker_up || TIMEIT_ARGS+=(--skip docker "$(docker_state)")
}
