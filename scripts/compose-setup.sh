#!/usr/bin/env bash
# Prepare this machine for `docker compose up` without Docker Hub access.
#
#   bash scripts/compose-setup.sh                 # set up whatever is missing
#   bash scripts/compose-setup.sh --stop-started  # stop the dockerd this script
#                                                 # started (if any), nothing else
#
# Called by scripts/compose-check.sh before `docker compose up`.  Each step
# only acts when its result is missing, so a second run is quick and changes
# nothing.  One line per step on stdout ("already there" / "made", with the
# time it took); on failure it names the step, shows the tail of the step's
# log and exits non-zero.
#
# Steps:
#   1. engine   Debian's docker.io (apt) if dockerd is absent; if `docker info`
#               fails, start dockerd in the background (log
#               .local/compose/dockerd.log, pid .local/compose/dockerd.pid).
#               Only that pid is ever stopped, by --stop-started.
#   2. compose  Compose v2 CLI plugin: if `docker compose version` fails,
#               install .local/compose/docker-compose (built once from the Go
#               module proxy, $COMPOSE_MODULE@$COMPOSE_VERSION) into
#               ${DOCKER_CONFIG:-~/.docker}/cli-plugins/.
#   3. base     debian:bookworm-slim: pulled if possible, else debootstrap
#               (minbase) from the host's apt mirror + ca-certificates + the
#               host's extra CA certificates (/usr/local/share/ca-certificates),
#               `docker import`ed with ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt.
#   4. mariadb  $MARIADB_IMAGE: pulled if possible, else built from docker/mariadb/.
#   5. kafka    $KAFKA_IMAGE: pulled if possible, else built from docker/kafka/
#               plus the Kafka jars fetched from Maven Central exactly like
#               scripts/services.sh does (scripts/kafka-pom.xml; the jars of a
#               `make services` run in .local/kafka/libs are reused).
#   6. caddy    $CADDY_IMAGE (compose.prod.yaml's proxy): pulled if possible, else
#               built from docker/caddy/ (Debian bookworm's caddy package).
#
# A locally built stand-in carries the label org.eventtrigger.standin=<hash of
# its build context>; it is rebuilt when its context changes.  An image
# without that label (a pulled official one) is never touched.
#
# Everything this script creates lives under .local/compose/ (gitignored),
# except the images themselves and the CLI plugin.

set -Eeuo pipefail

# Kafka release of the stand-in image tag apache/kafka:$KAFKA_VERSION; keep it
# equal to KAFKA_VERSION in scripts/services.sh (same jars, same pom).
KAFKA_VERSION=4.4.0
MARIADB_VERSION=10.11
COMPOSE_MODULE=github.com/docker/compose/v2
COMPOSE_VERSION=v2.40.3

BASE_IMAGE=debian:bookworm-slim
MARIADB_IMAGE=mariadb:$MARIADB_VERSION
KAFKA_IMAGE=apache/kafka:$KAFKA_VERSION
CADDY_IMAGE=caddy:2
PULL_TIMEOUT=${COMPOSE_SETUP_PULL_TIMEOUT:-30}   # seconds per `docker pull` attempt
DOCKERD_START_TIMEOUT=60

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LOCAL=$ROOT/.local
WORK=$LOCAL/compose
DOCKERD_PIDFILE=$WORK/dockerd.pid
DOCKERD_LOG=$WORK/dockerd.log
COMPOSE_BIN=$WORK/docker-compose
PLUGIN_DIR=${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins
KAFKA_POM=$ROOT/scripts/kafka-pom.xml
STANDIN_LABEL=org.eventtrigger.standin

export PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin:/usr/local/go/bin
# Debian 12 has no buildx: use the classic builder (the Dockerfiles here work
# with both).
export DOCKER_BUILDKIT=0

# --------------------------------------------------------------------------
# Error reporting (same conventions as scripts/services.sh).
STEP="setup"
STEP_LOG=""

show_log() {
    local log=$1
    if [[ -n $log && -s $log ]]; then
        echo "---- last 30 lines of $log ----" >&2
        tail -n 30 "$log" >&2
        echo "---- end of $log ----" >&2
    fi
}

fail() {
    trap - ERR
    echo "compose-setup.sh: FAILED in step '$STEP': $*" >&2
    show_log "$STEP_LOG"
    [[ -n $STEP_LOG ]] && echo "compose-setup.sh: full log: $STEP_LOG" >&2
    exit 1
}

on_error() {
    local rc=$? line=$1 cmd=$2
    trap - ERR
    echo "compose-setup.sh: FAILED in step '$STEP' (line $line, exit $rc): ${cmd%%$'\n'*}" >&2
    show_log "$STEP_LOG"
    [[ -n $STEP_LOG ]] && echo "compose-setup.sh: full log: $STEP_LOG" >&2
    exit 1
}
trap 'on_error $LINENO "$BASH_COMMAND"' ERR

# One line per step: "compose-setup: <name>: <what> (<seconds>s)".
STEP_T0=0
now_ms() { local t; t=$(date +%s%N); echo $((t / 1000000)); }
step_begin() { STEP=$1; STEP_LOG=""; STEP_T0=$(now_ms); }
step_end() {
    local ms=$(($(now_ms) - STEP_T0))
    printf 'compose-setup: %-8s %s (%d.%ds)\n' "$STEP:" "$1" $((ms / 1000)) $((ms % 1000 / 100))
}

is_root() { [[ $(id -u) -eq 0 ]]; }

# Is the pid in file $1 alive and running dockerd?  Guards against a
# recycled pid.
our_dockerd_pid() {
    local pid
    [[ -f $DOCKERD_PIDFILE ]] || return 1
    pid=$(cat "$DOCKERD_PIDFILE" 2>/dev/null) || return 1
    [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/cmdline ]] || return 1
    tr '\0' ' ' </proc/"$pid"/cmdline | grep -q '^[^ ]*dockerd' || return 1
    echo "$pid"
}

# apt-get install, with package scripts kept from starting services (a
# dockerd started by the docker.io package would not be ours to stop):
# policy-rc.d exiting 101 tells invoke-rc.d not to start anything.
APT_UPDATED=0
apt_install() {
    STEP_LOG=$WORK/apt.log
    is_root || fail "need root to install: $* (install it, then re-run)"
    local made_policy=0 rc=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\n# temporary, from eventtrigger scripts/compose-setup.sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        made_policy=1
    fi
    {
        if [[ $APT_UPDATED -eq 0 ]]; then apt-get update && APT_UPDATED=1; fi
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
    } >>"$STEP_LOG" 2>&1 || rc=$?
    if [[ $made_policy -eq 1 ]]; then rm -f /usr/sbin/policy-rc.d; fi
    [[ $rc -eq 0 ]] || fail "apt-get install $* failed (exit $rc)"
}

# `docker pull` with a time limit; quiet, logged.  Succeeds only if the image
# arrived.
try_pull() {
    local image=$1 log=$2
    echo "== $(date -u +%FT%TZ) docker pull $image (limit ${PULL_TIMEOUT}s)" >>"$log"
    timeout "$PULL_TIMEOUT" docker pull -q "$image" >>"$log" 2>&1 \
        && docker image inspect "$image" >/dev/null 2>&1
}

# Label value of a local image ("" if the image or the label is absent).
image_label() {
    docker image inspect --format "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true
}

# --------------------------------------------------------------------------
# --stop-started: stop the dockerd this script launched, by its pid only.
if [[ ${1:-} == --stop-started ]]; then
    step_begin "stop"
    if pid=$(our_dockerd_pid); then
        kill -TERM "$pid"
        for _ in $(seq 1 60); do
            [[ -d /proc/$pid ]] || break
            sleep 0.5
        done
        [[ -d /proc/$pid ]] && fail "dockerd (pid $pid) did not exit within 30s"
        rm -f "$DOCKERD_PIDFILE"
        step_end "stopped dockerd pid $pid"
    else
        rm -f "$DOCKERD_PIDFILE"
        step_end "nothing to stop (no dockerd started by this script)"
    fi
    exit 0
elif [[ $# -gt 0 ]]; then
    echo "usage: $0 [--stop-started]" >&2
    exit 2
fi

mkdir -p "$WORK"
# Two concurrent runs would race on the same images and directories.
exec 8>"$WORK/setup.lock"
flock 8

# ==========================================================================
# 1. Engine
# ==========================================================================
step_begin "engine"
made=""
if ! command -v dockerd >/dev/null || ! command -v docker >/dev/null; then
    apt_install docker.io
    made="installed docker.io"
fi
if ! docker info >/dev/null 2>&1; then
    if pid=$(our_dockerd_pid); then
        : # ours, still starting: wait below
    else
        is_root || fail "docker info fails and starting dockerd needs root"
        STEP_LOG=$DOCKERD_LOG
        [[ -f $DOCKERD_LOG ]] && mv -f "$DOCKERD_LOG" "$DOCKERD_LOG.1"
        # Detached: own session, no inherited fds (our lock fd 8 would
        # otherwise stay held as long as dockerd runs).  Without job control
        # setsid does not fork here, so $! is dockerd's own pid.
        ( exec 8>&-; exec setsid nohup dockerd </dev/null >>"$DOCKERD_LOG" 2>&1 ) &
        pid=$!
        echo "$pid" >"$DOCKERD_PIDFILE"
        made="${made:+$made, }started dockerd pid $pid (log $DOCKERD_LOG)"
    fi
    STEP_LOG=$DOCKERD_LOG
    deadline=$((SECONDS + DOCKERD_START_TIMEOUT))
    until docker info >/dev/null 2>&1; do
        [[ -d /proc/$pid ]] || fail "dockerd (pid $pid) exited during startup"
        ((SECONDS < deadline)) || fail "docker info still fails ${DOCKERD_START_TIMEOUT}s after starting dockerd (pid $pid; stop it with $0 --stop-started)"
        sleep 0.5
    done
fi
step_end "${made:-already there}"

# ==========================================================================
# 2. Compose v2
# ==========================================================================
step_begin "compose"
if docker compose version >/dev/null 2>&1; then
    step_end "already there ($(docker compose version --short 2>/dev/null))"
else
    made="installed cached $COMPOSE_BIN"
    if [[ ! -x $COMPOSE_BIN ]]; then
        STEP_LOG=$WORK/compose-build.log
        : >"$STEP_LOG"
        command -v go >/dev/null || fail "no Go toolchain to build Compose $COMPOSE_VERSION (install golang, or put a docker-compose binary at $COMPOSE_BIN)"
        modjson=$(go mod download -json "$COMPOSE_MODULE@$COMPOSE_VERSION" 2>>"$STEP_LOG") \
            || fail "go mod download $COMPOSE_MODULE@$COMPOSE_VERSION failed"
        moddir=$(printf '%s\n' "$modjson" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' | head -n1)
        [[ -n $moddir && -d $moddir ]] || fail "no module directory in: $modjson"
        rm -rf "$WORK/compose-src"
        cp -r "$moddir" "$WORK/compose-src"
        chmod -R u+w "$WORK/compose-src"
        ( cd "$WORK/compose-src" \
            && go build \
                -ldflags "-X $COMPOSE_MODULE/internal.Version=$COMPOSE_VERSION" \
                -o "$COMPOSE_BIN.tmp" ./cmd ) >>"$STEP_LOG" 2>&1 \
            || fail "go build of Compose $COMPOSE_VERSION failed"
        mv -f "$COMPOSE_BIN.tmp" "$COMPOSE_BIN"
        rm -rf "$WORK/compose-src"
        made="built $COMPOSE_BIN from $COMPOSE_MODULE@$COMPOSE_VERSION and installed it"
    fi
    mkdir -p "$PLUGIN_DIR"
    install -m 0755 "$COMPOSE_BIN" "$PLUGIN_DIR/docker-compose"
    docker compose version >/dev/null 2>&1 \
        || fail "docker compose version still fails after installing $PLUGIN_DIR/docker-compose"
    step_end "$made"
fi

# ==========================================================================
# 3. Base image debian:bookworm-slim
# ==========================================================================

# The Debian mirror / security mirror the host's apt uses for bookworm.
apt_uri_for_suite() {
    local suite=$1 f
    # deb822 *.sources: stanzas of "Key: value" lines separated by blanks.
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -r $f ]] || continue
        awk -v want="$suite" '
            function flush() { if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " want " ") && uri != "") { print uri; found=1; exit } types=""; suites=""; uri="" }
            /^[[:space:]]*$/ { flush(); next }
            /^[Tt]ypes:/  { sub(/^[^:]*:[[:space:]]*/, ""); types=$0 }
            /^[Ss]uites:/ { sub(/^[^:]*:[[:space:]]*/, ""); suites=$0 }
            /^URIs:/      { sub(/^[^:]*:[[:space:]]*/, ""); split($0, u, /[[:space:]]+/); uri=u[1] }
            END { if (!found) flush() }' "$f"
    done
    # one-line format: deb [opts] uri suite components
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -r $f ]] || continue
        sed -E 's/\[[^]]*\]//' "$f" | awk -v want="$suite" '$1 == "deb" && $3 == want { print $2 }'
    done
}

# Remove a debootstrap root safely: a failed debootstrap can leave /proc,
# /sys (or a bind-mounted /dev) mounted inside it.
remove_rootfs() {
    local dir=$1 m
    [[ -e $dir ]] || return 0
    # deepest mount points first
    while read -r m; do
        umount -l "$m" 2>/dev/null || true
    done < <(awk -v d="$dir/" 'index($2 "/", d) == 1 { print $2 }' /proc/mounts | sort -r)
    if awk -v d="$dir/" 'index($2 "/", d) == 1 { found=1 } END { exit !found }' /proc/mounts; then
        fail "cannot unmount everything under $dir (see /proc/mounts); remove it by hand"
    fi
    rm -rf --one-file-system "$dir"
}

make_base_image() {
    local mirror security rootfs=$WORK/rootfs
    STEP_LOG=$WORK/base.log
    is_root || fail "debootstrap needs root"
    command -v debootstrap >/dev/null || apt_install debootstrap
    STEP_LOG=$WORK/base.log
    mirror=$(apt_uri_for_suite bookworm | head -n1)
    security=$(apt_uri_for_suite bookworm-security | head -n1)
    [[ -n $mirror ]] || fail "no apt source for 'bookworm' found in /etc/apt/sources.list{,.d/*}"
    mirror=${mirror%/}
    security=${security:-http://deb.debian.org/debian-security}
    security=${security%/}
    echo "== $(date -u +%FT%TZ) debootstrap from $mirror (security: $security)" >>"$STEP_LOG"

    remove_rootfs "$rootfs"
    debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >>"$STEP_LOG" 2>&1 \
        || fail "debootstrap --variant=minbase bookworm $rootfs $mirror failed"

    # apt sources for builds FROM this image: the same mirror as the host.
    rm -f "$rootfs/etc/apt/sources.list"
    cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    # Container conventions: no service starts from package scripts, no
    # docs/man pages/translations, apt caches are cleaned after each install.
    printf '#!/bin/sh\n# no services in a container image\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
    chmod 755 "$rootfs/usr/sbin/policy-rc.d"
    cat >"$rootfs/etc/dpkg/dpkg.cfg.d/slim" <<'EOF'
# slim image: leave documentation out (copyright files stay)
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
EOF
    cat >"$rootfs/etc/apt/apt.conf.d/docker-slim" <<'EOF'
// container image: no recommends, no translations, clean caches after use
APT::Install-Recommends "false";
Acquire::Languages "none";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF

    cp -L /etc/resolv.conf "$rootfs/etc/resolv.conf"
    {
        chroot "$rootfs" apt-get update \
            && DEBIAN_FRONTEND=noninteractive chroot "$rootfs" apt-get install -y --no-install-recommends ca-certificates
    } >>"$STEP_LOG" 2>&1 || fail "apt-get install ca-certificates inside $rootfs failed"
    # The host's locally added CAs (e.g. an egress proxy's) go where
    # update-ca-certificates looks for local certificates.
    mkdir -p "$rootfs/usr/local/share/ca-certificates"
    if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
        cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
    fi
    chroot "$rootfs" update-ca-certificates >>"$STEP_LOG" 2>&1 \
        || fail "update-ca-certificates inside $rootfs failed"

    # Keep the image small and free of host state.
    chroot "$rootfs" apt-get clean >>"$STEP_LOG" 2>&1
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/var/cache/debconf/*-old \
        "$rootfs"/var/log/* "$rootfs"/tmp/* "$rootfs"/var/tmp/* \
        "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/*
    mkdir -p "$rootfs/var/lib/apt/lists/partial" "$rootfs/var/cache/apt/archives/partial"
    : >"$rootfs/etc/resolv.conf"
    rm -f "$rootfs/etc/hostname"

    tar --numeric-owner -C "$rootfs" -c . 2>>"$STEP_LOG" \
        | docker import \
            --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
            --change 'CMD ["bash"]' \
            - "$BASE_IMAGE" >>"$STEP_LOG" 2>&1 \
        || fail "docker import of $rootfs as $BASE_IMAGE failed"
    remove_rootfs "$rootfs"
}

step_begin "base"
if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    step_end "already there ($BASE_IMAGE)"
elif try_pull "$BASE_IMAGE" "$WORK/base.log"; then
    step_end "pulled $BASE_IMAGE"
else
    make_base_image
    step_end "made $BASE_IMAGE (debootstrap + docker import)"
fi

# ==========================================================================
# 4.-6. Stand-ins for the official mariadb, apache/kafka and caddy images
# ==========================================================================

# Hash of a build context: file names, modes and contents.
context_hash() {
    local dir=$1
    ( cd "$dir" && find . -type f -print0 | LC_ALL=C sort -z \
        | xargs -0 -r sh -c 'for f; do printf "%s %s\n" "$(stat -c %a "$f")" "$f"; cat "$f"; done' sh ) \
        | sha256sum | cut -c1-16
}

# ensure_image NAME IMAGE HASH BUILD_FUNCTION: already there / pulled / built.
ensure_image() {
    local name=$1 image=$2 want=$3 build=$4 have old_id="" log=$WORK/build-$1.log
    step_begin "$name"
    if docker image inspect "$image" >/dev/null 2>&1; then
        have=$(image_label "$image" "$STANDIN_LABEL")
        old_id=$(docker image inspect --format '{{.Id}}' "$image")
        if [[ -z $have ]]; then
            step_end "already there ($image)"
            return
        elif [[ $have == "$want" ]]; then
            step_end "already there ($image, local stand-in $have)"
            return
        fi
        echo "compose-setup: $name: stand-in $image is out of date ($have != $want), rebuilding" >&2
    elif try_pull "$image" "$log"; then
        step_end "pulled $image"
        return
    fi
    STEP_LOG=$log
    "$build" "$image" "$want" "$log"
    docker image inspect "$image" >/dev/null 2>&1 || fail "$image missing after the build"
    # The replaced stand-in, unless a container still uses it.
    [[ -n $old_id ]] && docker image rm "$old_id" >/dev/null 2>&1 || true
    step_end "made $image (local stand-in $want)"
}

# build_from_dir DIR IMAGE HASH LOG: a stand-in whose build context is docker/DIR.
build_from_dir() {
    local dir=$1 image=$2 hash=$3 log=$4
    echo "== $(date -u +%FT%TZ) docker build $image" >>"$log"
    docker build --pull=false --label "$STANDIN_LABEL=$hash" -t "$image" "$ROOT/docker/$dir" >>"$log" 2>&1 \
        || fail "docker build of $image from docker/$dir failed"
}
build_mariadb() { build_from_dir mariadb "$@"; }
build_caddy() { build_from_dir caddy "$@"; }

# The Kafka jars: those of scripts/services.sh when it fetched the same
# version with the same pom, else fetched here the same way.
KAFKA_LIBS=""
kafka_libs() {
    local stamp marker
    stamp="$KAFKA_VERSION $(sha256sum "$KAFKA_POM" | cut -d' ' -f1)"
    for marker in "$LOCAL/kafka/libs/.complete" "$WORK/kafka/libs/.complete"; do
        if [[ -f $marker && $(cat "$marker") == "$stamp" ]]; then
            KAFKA_LIBS=$(dirname "$marker")
            return
        fi
    done
    local log=$WORK/kafka-fetch.log
    STEP_LOG=$log
    command -v mvn >/dev/null || apt_install maven
    STEP_LOG=$log
    rm -rf "$WORK/kafka/libs.tmp"
    mkdir -p "$WORK/kafka"
    mvn -B -q -Dstyle.color=never -f "$KAFKA_POM" -Dkafka.version="$KAFKA_VERSION" \
        dependency:copy-dependencies -DincludeScope=runtime \
        -DoutputDirectory="$WORK/kafka/libs.tmp" >"$log" 2>&1 \
        || fail "mvn dependency:copy-dependencies (Kafka $KAFKA_VERSION) failed"
    [[ -f $WORK/kafka/libs.tmp/kafka_2.13-$KAFKA_VERSION.jar ]] \
        || fail "kafka_2.13-$KAFKA_VERSION.jar missing after the Maven fetch"
    echo "$stamp" >"$WORK/kafka/libs.tmp/.complete"
    rm -rf "$WORK/kafka/libs"
    mv "$WORK/kafka/libs.tmp" "$WORK/kafka/libs"
    KAFKA_LIBS=$WORK/kafka/libs
}

build_kafka() {
    local image=$1 hash=$2 log=$3
    kafka_libs
    STEP_LOG=$log
    echo "== $(date -u +%FT%TZ) docker build $image (jars from $KAFKA_LIBS)" >>"$log"
    # Context = docker/kafka/ plus libs/ (the jars), streamed as one tar.
    tar -c -C "$ROOT/docker/kafka" . -C "$(dirname "$KAFKA_LIBS")" --exclude=.complete "$(basename "$KAFKA_LIBS")" \
            --transform "s|^$(basename "$KAFKA_LIBS")|libs|" \
        | docker build --pull=false --build-arg KAFKA_VERSION="$KAFKA_VERSION" \
            --label "$STANDIN_LABEL=$hash" -t "$image" - >>"$log" 2>&1 \
        || fail "docker build of $image from docker/kafka failed"
}

if [[ -f $ROOT/scripts/services.sh ]]; then
    svc_version=$(sed -n 's/^KAFKA_VERSION=//p' "$ROOT/scripts/services.sh" | head -n1)
    if [[ -n $svc_version && $svc_version != "$KAFKA_VERSION" ]]; then
        echo "compose-setup.sh: warning: scripts/services.sh uses Kafka $svc_version, this script $KAFKA_VERSION" >&2
    fi
fi

ensure_image mariadb "$MARIADB_IMAGE" "$(context_hash "$ROOT/docker/mariadb")" build_mariadb
ensure_image kafka "$KAFKA_IMAGE" \
    "$(context_hash "$ROOT/docker/kafka" | tr -d '\n'; printf '%s' "-$KAFKA_VERSION-$(sha256sum "$KAFKA_POM" | cut -c1-8)")" build_kafka
ensure_image caddy "$CADDY_IMAGE" "$(context_hash "$ROOT/docker/caddy")" build_caddy
