#!/usr/bin/env bash
# Make a MySQL-compatible server (MariaDB) and a Kafka broker reachable on
# 127.0.0.1 for development and tests.  Usage: bash scripts/services.sh
#
# * Idempotent: whatever already answers on the target ports is reused, so a
#   second run is fast and does nothing.
# * Works on a fresh Debian 12 machine: missing packages are installed with
#   apt, the Kafka jars are fetched from Maven Central with Maven.
# * Everything it creates lives under .local/ in the repo root (data, logs,
#   pid files); scripts/services-stop.sh stops exactly what was started here.
# * Quiet on success; on failure it exits non-zero and says which step failed
#   and which log to read.
#
# Targets come from the same variables the application reads:
#   EVENTTRIGGER_DATABASE_URL   default mysql://root@127.0.0.1:3306/eventtrigger
#   EVENTTRIGGER_KAFKA_BOOTSTRAP default 127.0.0.1:9092 (first entry is used)
# Only servers on 127.0.0.1/localhost are managed; nothing binds elsewhere.

set -Eeuo pipefail

# Kafka release fetched from Maven Central (with its CLI tools and a log4j2
# backend, see scripts/kafka-pom.xml).  Changing it triggers a re-fetch.
KAFKA_VERSION=4.4.0

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LOCAL=$ROOT/.local
DB_DIR=$LOCAL/mariadb
KAFKA_DIR=$LOCAL/kafka
KAFKA_POM=$ROOT/scripts/kafka-pom.xml

# mariadbd and mariadb-install-db live in /usr/sbin, which a CI or `make`
# environment does not always have on PATH.
export PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin

DB_START_TIMEOUT=60
KAFKA_START_TIMEOUT=90

# --------------------------------------------------------------------------
# Error reporting: every step sets STEP (and STEP_LOG when it writes a log) so
# that an unexpected failure anywhere still says where it happened.
STEP="setup"
STEP_LOG=""

show_log() {
    local log=$1
    if [[ -n $log && -s $log ]]; then
        echo "---- last 25 lines of $log ----" >&2
        tail -n 25 "$log" >&2
        echo "---- end of $log ----" >&2
    fi
}

fail() {
    trap - ERR
    echo "services.sh: FAILED in step '$STEP': $*" >&2
    show_log "$STEP_LOG"
    [[ -n $STEP_LOG ]] && echo "services.sh: full log: $STEP_LOG" >&2
    exit 1
}

on_error() {
    local rc=$? line=$1 cmd=$2
    trap - ERR
    echo "services.sh: FAILED in step '$STEP' (line $line, exit $rc): ${cmd%%$'\n'*}" >&2
    show_log "$STEP_LOG"
    [[ -n $STEP_LOG ]] && echo "services.sh: full log: $STEP_LOG" >&2
    exit 1
}
trap 'on_error $LINENO "$BASH_COMMAND"' ERR

# --------------------------------------------------------------------------
# Small helpers.

is_local_host() { [[ $1 == 127.0.0.1 || $1 == localhost ]]; }

# Is anything accepting TCP connections on 127.0.0.1:$1?
port_open() {
    # shellcheck disable=SC2016 # $0 is expanded by the inner bash
    timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0"' "$1" 2>/dev/null
}

# Does a MySQL/MariaDB server answer on 127.0.0.1:$1?  The server speaks
# first: its greeting packet is a 4-byte header followed by protocol version
# 10.  This needs no client and no credentials.
mysql_answers() {
    local proto
    # shellcheck disable=SC2016 # $0 is expanded by the inner bash
    proto=$({ timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0" && head -c 5 <&3' "$1" 2>/dev/null || true; } \
        | od -An -tu1 -j4 -N1 2>/dev/null | tr -d ' \n')
    [[ $proto == 10 ]]
}

# Does a Kafka broker answer on 127.0.0.1:$1?  Sends a raw ApiVersions v0
# request (api_key 18, correlation id 7, client id "et-probe") and checks that
# the reply carries our correlation id.  A KRaft broker only starts serving
# requests once it has caught up with the metadata log and registered, so
# this is a real "ready" check, not just a TCP check, and it needs no JVM.
kafka_answers() {
    local reply
    # shellcheck disable=SC2016 # $0 is expanded by the inner bash
    reply=$({ timeout 5 bash -c '
        exec 3<>"/dev/tcp/127.0.0.1/$0" || exit 1
        printf "\x00\x00\x00\x12\x00\x12\x00\x00\x00\x00\x00\x07\x00\x08et-probe" >&3
        head -c 8 <&3' "$1" 2>/dev/null || true; } | od -An -tx1 | tr -d ' \n')
    [[ $reply == ????????00000007 ]]
}

# Which process listens on a port (for error messages only).
who_listens() {
    if command -v ss >/dev/null; then
        ss -ltnpH "sport = :$1" 2>/dev/null | sed 's/^/    /' || true
    fi
}

# Is the pid in file $1 alive and is its command line matching $2?  Guards
# against acting on a recycled pid.
pid_alive() {
    local pidfile=$1 pattern=$2 pid
    [[ -f $pidfile ]] || return 1
    pid=$(cat "$pidfile" 2>/dev/null) || return 1
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [[ -r /proc/$pid/cmdline ]] || return 1
    tr '\0' ' ' </proc/"$pid"/cmdline | grep -q -- "$pattern"
}

# Start "$@" fully detached: own session (no SIGHUP/Ctrl-C from the caller),
# stdin from /dev/null, output to log $1, and no inherited file descriptors
# (an inherited pipe from `make ... | tee` or our lock fd would otherwise stay
# open as long as the server runs).  Sets LAUNCHED_PID.  Without job control
# the subshell is not a process-group leader, so setsid does not fork and
# nohup execs: $! is the server's own pid.
LAUNCHED_PID=""
launch_detached() {
    local log=$1; shift
    (
        for fd in /proc/self/fd/*; do
            fd=${fd##*/}
            if [[ $fd -gt 2 && $fd -ne 255 ]]; then eval "exec $fd>&-" 2>/dev/null || true; fi
        done
        exec setsid nohup "$@" </dev/null >>"$log" 2>&1
    ) &
    LAUNCHED_PID=$!
}

# Each server start gets a fresh log; the previous one is kept as *.1 (so
# the logs stay bounded and a failure tail shows only this start).
rotate_log() {
    mkdir -p "$(dirname "$1")"
    if [[ -f $1 ]]; then mv -f "$1" "$1.1"; fi
    : >"$1"
}

# apt: run "apt-get update" at most once per run, never let an installed
# service (the distro's mariadb) start on its own: policy-rc.d exiting 101
# tells invoke-rc.d / deb-systemd-invoke not to start anything.
APT_UPDATED=0
APT_LOG=$LOCAL/apt.log
apt_install() {
    STEP="apt-get install $*"
    STEP_LOG=$APT_LOG
    [[ $(id -u) -eq 0 ]] || fail "need root to install packages: $* (install them, then re-run)"
    local made_policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\n# temporary, from eventtrigger scripts/services.sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        made_policy=1
    fi
    local rc=0
    {
        if [[ $APT_UPDATED -eq 0 ]]; then
            apt-get update && APT_UPDATED=1
        fi
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
    } >>"$APT_LOG" 2>&1 || rc=$?
    if [[ $made_policy -eq 1 ]]; then rm -f /usr/sbin/policy-rc.d; fi
    [[ $rc -eq 0 ]] || fail "apt-get failed (exit $rc) installing: $*"
}

# --------------------------------------------------------------------------
# Targets.

STEP="parse EVENTTRIGGER_DATABASE_URL"
DB_URL=${EVENTTRIGGER_DATABASE_URL:-mysql://root@127.0.0.1:3306/eventtrigger}
# scheme://[user[:password]@]host[:port][/database][?options]
_rest=${DB_URL#*://}
_hostpart=${_rest%%/*}
DB_NAME=""
[[ $_rest == */* ]] && { DB_NAME=${_rest#*/}; DB_NAME=${DB_NAME%%\?*}; }
DB_USER=root DB_PASS=""
if [[ $_hostpart == *@* ]]; then
    _userinfo=${_hostpart%@*}
    _hostpart=${_hostpart##*@}
    DB_USER=${_userinfo%%:*}
    [[ $_userinfo == *:* ]] && DB_PASS=${_userinfo#*:}
fi
DB_HOST=${_hostpart%:*}
DB_PORT=3306
[[ $_hostpart == *:* ]] && DB_PORT=${_hostpart##*:}
[[ $DB_PORT =~ ^[0-9]+$ ]] || fail "bad port '$DB_PORT' in EVENTTRIGGER_DATABASE_URL=$DB_URL"

STEP="parse EVENTTRIGGER_KAFKA_BOOTSTRAP"
KAFKA_BOOTSTRAP=${EVENTTRIGGER_KAFKA_BOOTSTRAP:-127.0.0.1:9092}
_first=${KAFKA_BOOTSTRAP%%,*}
_first=${_first#*://}
KAFKA_HOST=${_first%:*}
KAFKA_PORT=${_first##*:}
[[ $KAFKA_PORT =~ ^[0-9]+$ ]] || fail "bad port in EVENTTRIGGER_KAFKA_BOOTSTRAP=$KAFKA_BOOTSTRAP"
# KRaft controller listener: next port up (9093 for the default).
KAFKA_CONTROLLER_PORT=$((KAFKA_PORT + 1))

mkdir -p "$LOCAL"

# Two concurrent runs (e.g. make -j) would race to start the same servers.
exec 9>"$LOCAL/services.lock"
flock 9

# ==========================================================================
# MariaDB
# ==========================================================================
DB_PIDFILE=$DB_DIR/mariadbd.pid
DB_DATA=$DB_DIR/data
DB_LOG=$DB_DIR/mariadbd.log
DB_START=0   # 1 when this run has to launch mariadbd
DB_OURS=0    # 1 when the server on the port is the one from our pid file

db_client() {
    mariadb --no-defaults --protocol=TCP -h127.0.0.1 -P"$DB_PORT" -uroot --connect-timeout=2 "$@"
}

db_prepare() {
    STEP="mariadb: check 127.0.0.1:$DB_PORT"
    STEP_LOG=""
    if ! is_local_host "$DB_HOST"; then
        echo "services.sh: EVENTTRIGGER_DATABASE_URL points at '$DB_HOST', not 127.0.0.1; not managing a database" >&2
        return
    fi
    if mysql_answers "$DB_PORT"; then
        # Something healthy already serves MySQL there: reuse it.
        if pid_alive "$DB_PIDFILE" mariadbd; then DB_OURS=1; fi
        return
    fi
    if pid_alive "$DB_PIDFILE" mariadbd; then
        # Our server is alive but not (yet) answering: it may still be
        # starting (another run launched it) - db_wait will give it time.
        DB_OURS=1
        return
    fi
    rm -f "$DB_PIDFILE"   # stale: the process is gone
    DB_START=1
    if port_open "$DB_PORT"; then
        fail "port 127.0.0.1:$DB_PORT is in use but does not answer like a MySQL server:
$(who_listens "$DB_PORT")"
    fi

    # Install the server if missing (Debian 12 ships MariaDB 10.11).
    if ! command -v mariadbd >/dev/null || ! command -v mariadb-install-db >/dev/null \
        || ! command -v mariadb >/dev/null; then
        apt_install mariadb-server mariadb-client
        # The package may have started the distro's own server (if
        # policy-rc.d was ignored); it must not hold our port.
        if mysql_answers "$DB_PORT"; then
            { service mariadb stop || systemctl stop mariadb; } >>"$APT_LOG" 2>&1 || true
        fi
    fi

    # Initialise the data directory once.  Done in a scratch directory and
    # renamed at the end so that an interrupted run never leaves a half-made
    # datadir that would be mistaken for a good one.
    if [[ ! -d $DB_DATA/mysql ]]; then
        STEP="mariadb: initialise $DB_DATA"
        STEP_LOG=$DB_DIR/install-db.log
        mkdir -p "$DB_DIR"
        rm -rf "$DB_DATA" "$DB_DATA.tmp"
        # normal root auth: root@localhost/127.0.0.1 without password, so the
        # default URL (mysql://root@127.0.0.1) works over TCP.
        mariadb-install-db --no-defaults --user=root --datadir="$DB_DATA.tmp" \
            --auth-root-authentication-method=normal --skip-test-db \
            --skip-name-resolve >"$STEP_LOG" 2>&1 \
            || fail "mariadb-install-db failed"
        mv "$DB_DATA.tmp" "$DB_DATA"
    fi
}

db_launch() {
    [[ $DB_START -eq 1 ]] || return 0
    STEP="mariadb: start mariadbd on 127.0.0.1:$DB_PORT"
    STEP_LOG=$DB_LOG
    rotate_log "$DB_LOG"
    # --no-defaults: ignore /etc/mysql/*.cnf so the distro config (its socket,
    # datadir, bind address) cannot leak in.  Settings are sized for tests:
    # flush-log-at-trx-commit=2 trades crash durability for speed.
    launch_detached "$DB_LOG" "$(command -v mariadbd)" --no-defaults \
        --user=root \
        --datadir="$DB_DATA" \
        --socket="$DB_DIR/mariadbd.sock" \
        --pid-file="$DB_PIDFILE" \
        --log-error="$DB_LOG" \
        --bind-address=127.0.0.1 \
        --port="$DB_PORT" \
        --skip-name-resolve \
        --max-connect-errors=1000000 \
        --max-connections=500 \
        --innodb-buffer-pool-size=256M \
        --innodb-flush-log-at-trx-commit=2 \
        --character-set-server=utf8mb4 \
        --collation-server=utf8mb4_unicode_ci
    # mariadbd writes the same pid to --pid-file itself once it is up; write
    # it now so services-stop.sh can find a server that is still starting.
    echo "$LAUNCHED_PID" >"$DB_PIDFILE"
    DB_OURS=1
}

db_wait() {
    is_local_host "$DB_HOST" || return 0
    STEP="mariadb: wait for 127.0.0.1:$DB_PORT"
    STEP_LOG=$DB_LOG
    local deadline=$((SECONDS + DB_START_TIMEOUT))
    if [[ $DB_OURS -eq 1 ]]; then
        until db_client -e 'select 1' >/dev/null 2>&1; do
            pid_alive "$DB_PIDFILE" mariadbd || fail "mariadbd exited during startup"
            ((SECONDS < deadline)) || fail "our mariadbd (pid $(cat "$DB_PIDFILE")) did not accept connections on 127.0.0.1:$DB_PORT within ${DB_START_TIMEOUT}s (bash scripts/services-stop.sh stops it)"
            sleep 0.3
        done
        # Create what the URL expects on our own server (no-ops if present).
        STEP="mariadb: create database/user from EVENTTRIGGER_DATABASE_URL"
        local sql=""
        if [[ -n $DB_NAME ]]; then
            [[ $DB_NAME =~ ^[A-Za-z0-9_$]+$ ]] || fail "unsupported database name '$DB_NAME'"
            sql+="CREATE DATABASE IF NOT EXISTS \`$DB_NAME\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;"
        fi
        if [[ $DB_USER != root ]]; then
            [[ $DB_USER =~ ^[A-Za-z0-9_.-]+$ ]] || fail "unsupported user name '$DB_USER'"
            local pw=${DB_PASS//\\/\\\\}
            pw=${pw//\'/\\\'}
            sql+="CREATE USER IF NOT EXISTS '$DB_USER'@'127.0.0.1' IDENTIFIED BY '$pw';"
            sql+="CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$pw';"
            sql+="GRANT ALL PRIVILEGES ON *.* TO '$DB_USER'@'127.0.0.1';"
            sql+="GRANT ALL PRIVILEGES ON *.* TO '$DB_USER'@'localhost';"
        fi
        if [[ -n $sql ]]; then
            local out
            out=$(db_client -e "$sql" 2>&1) || fail "could not run: $sql
$out"
        fi
    else
        # Someone else's server: it answered the handshake in db_prepare;
        # we leave its databases and users alone.
        mysql_answers "$DB_PORT" || fail "the MySQL server on 127.0.0.1:$DB_PORT stopped answering"
    fi
}

# ==========================================================================
# Kafka (KRaft, broker+controller in one JVM, no ZooKeeper)
# ==========================================================================
KAFKA_PIDFILE=$KAFKA_DIR/kafka.pid
KAFKA_LIBS=$KAFKA_DIR/libs
KAFKA_DATA=$KAFKA_DIR/data
KAFKA_LOG=$KAFKA_DIR/server.log
KAFKA_PROPS=$KAFKA_DIR/server.properties
KAFKA_LOG4J=$KAFKA_DIR/log4j2.properties
KAFKA_START=0
KAFKA_OURS=0
JAVA=java

# Java >= 17 is required by the Kafka 4.x broker.
java_ok() {
    local v
    v=$("$1" -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version/ {print $2}')
    [[ ${v%%.*} =~ ^[0-9]+$ ]] && ((${v%%.*} >= 17))
}

kafka_prepare() {
    STEP="kafka: check 127.0.0.1:$KAFKA_PORT"
    STEP_LOG=""
    if ! is_local_host "$KAFKA_HOST"; then
        echo "services.sh: EVENTTRIGGER_KAFKA_BOOTSTRAP points at '$KAFKA_HOST', not 127.0.0.1; not managing Kafka" >&2
        return
    fi
    if kafka_answers "$KAFKA_PORT"; then
        if pid_alive "$KAFKA_PIDFILE" kafka.Kafka; then KAFKA_OURS=1; fi
        return
    fi
    if pid_alive "$KAFKA_PIDFILE" kafka.Kafka; then
        KAFKA_OURS=1   # ours, still starting up: kafka_wait gives it time
        return
    fi
    rm -f "$KAFKA_PIDFILE"
    KAFKA_START=1
    local p
    for p in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
        if port_open "$p"; then
            fail "port 127.0.0.1:$p (needed by Kafka) is in use but does not answer like a Kafka broker:
$(who_listens "$p")"
        fi
    done

    # Java and Maven, from Debian packages if missing.
    STEP="kafka: java"
    if ! command -v java >/dev/null || ! java_ok java; then
        # No java, or an older default one: use (or install) Debian's 17.
        compgen -G '/usr/lib/jvm/java-17-openjdk-*/bin/java' >/dev/null \
            || apt_install openjdk-17-jre-headless
        JAVA=$(compgen -G '/usr/lib/jvm/java-17-openjdk-*/bin/java' | head -n1)
    fi
    STEP="kafka: java"
    java_ok "$JAVA" || fail "no Java >= 17 found (tried '$JAVA')"

    # Fetch the jars unless the libs dir is complete for this version and
    # pom.  Fetched into a scratch dir and renamed, so a half-done download
    # is never taken for complete.
    local stamp marker=$KAFKA_LIBS/.complete
    stamp="$KAFKA_VERSION $(sha256sum "$KAFKA_POM" | cut -d' ' -f1)"
    if [[ ! -f $marker || $(cat "$marker") != "$stamp" ]]; then
        command -v mvn >/dev/null || apt_install maven
        STEP="kafka: fetch Kafka $KAFKA_VERSION jars from Maven Central"
        STEP_LOG=$KAFKA_DIR/fetch.log
        mkdir -p "$KAFKA_DIR"
        rm -rf "$KAFKA_LIBS.tmp"
        mvn -B -q -Dstyle.color=never -f "$KAFKA_POM" -Dkafka.version="$KAFKA_VERSION" \
            dependency:copy-dependencies -DincludeScope=runtime \
            -DoutputDirectory="$KAFKA_LIBS.tmp" >"$STEP_LOG" 2>&1 \
            || fail "mvn dependency:copy-dependencies failed"
        [[ -f $KAFKA_LIBS.tmp/kafka_2.13-$KAFKA_VERSION.jar ]] \
            || fail "kafka_2.13-$KAFKA_VERSION.jar missing after the Maven fetch"
        echo "$stamp" >"$KAFKA_LIBS.tmp/.complete"
        rm -rf "$KAFKA_LIBS"
        mv "$KAFKA_LIBS.tmp" "$KAFKA_LIBS"
    fi

    STEP="kafka: write config"
    STEP_LOG=""
    # Rewritten on every start so edits here take effect; the data dir keeps
    # the cluster state.  A static controller quorum (controller.quorum.voters)
    # is used rather than the dynamic one (--standalone) because it is read
    # from this file on every start, so a changed port does not clash with a
    # voter endpoint stored in the data dir at format time.
    cat >"$KAFKA_PROPS" <<EOF
# Generated by scripts/services.sh - edits are overwritten.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$KAFKA_DATA
# Single node: every internal topic has one replica.
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Fewer partitions for the internal topics: the first consumer group / first
# transaction in a test run comes up in well under a second instead of
# creating 50 partitions.
offsets.topic.num.partitions=1
transaction.state.log.num.partitions=1
# Tests want consumers to join at once and topics to appear on first use.
group.initial.rebalance.delay.ms=0
num.partitions=1
auto.create.topics.enable=true
EOF
    # Log to stdout, which is redirected to server.log; quieter than the
    # defaults for the chatty request/state-change loggers.  (The broker is
    # started with log4j2's own shutdown hook disabled, otherwise logging
    # stops before Kafka's shutdown hook has finished and the end of a clean
    # shutdown is missing from the log.)
    cat >"$KAFKA_LOG4J" <<'EOF'
# Generated by scripts/services.sh - edits are overwritten.
status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.out.ref = out
logger.request.name = kafka.request.logger
logger.request.level = warn
logger.statechange.name = state.change.logger
logger.statechange.level = warn
EOF

    # Format the storage once (a formatted dir has meta.properties).  An
    # unformatted dir can only hold leftovers of a failed format: wipe it.
    if [[ ! -f $KAFKA_DATA/meta.properties ]]; then
        STEP="kafka: format storage $KAFKA_DATA"
        STEP_LOG=$KAFKA_DIR/format.log
        rm -rf "$KAFKA_DATA"
        local cluster_id
        cluster_id=$(kafka_tool kafka.tools.StorageTool random-uuid 2>"$STEP_LOG") \
            || fail "StorageTool random-uuid failed"
        kafka_tool kafka.tools.StorageTool format -t "$cluster_id" -c "$KAFKA_PROPS" \
            >>"$STEP_LOG" 2>&1 || fail "StorageTool format failed"
    fi
}

# Run a Kafka tool class on our classpath (logging only errors, to stderr).
kafka_tool() {
    "$JAVA" -Xmx256m -Dlog4j2.level=error -cp "$KAFKA_LIBS/*" "$@"
}

kafka_launch() {
    [[ $KAFKA_START -eq 1 ]] || return 0
    STEP="kafka: start broker on 127.0.0.1:$KAFKA_PORT"
    STEP_LOG=$KAFKA_LOG
    rotate_log "$KAFKA_LOG"
    launch_detached "$KAFKA_LOG" "$JAVA" -Xms256m -Xmx512m \
        -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError \
        -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$KAFKA_LOG4J" \
        -Dlog4j2.shutdownHookEnabled=false \
        -Dkafka.logs.dir="$KAFKA_DIR" \
        -cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_PROPS"
    echo "$LAUNCHED_PID" >"$KAFKA_PIDFILE"
    KAFKA_OURS=1
}

kafka_wait() {
    is_local_host "$KAFKA_HOST" || return 0
    STEP="kafka: wait for 127.0.0.1:$KAFKA_PORT"
    STEP_LOG=$KAFKA_LOG
    local deadline=$((SECONDS + KAFKA_START_TIMEOUT))
    until kafka_answers "$KAFKA_PORT"; do
        if [[ $KAFKA_OURS -eq 1 ]]; then
            pid_alive "$KAFKA_PIDFILE" kafka.Kafka || fail "the Kafka broker exited during startup"
        else
            fail "the Kafka broker on 127.0.0.1:$KAFKA_PORT stopped answering"
        fi
        ((SECONDS < deadline)) || fail "our Kafka broker (pid $(cat "$KAFKA_PIDFILE")) did not answer on 127.0.0.1:$KAFKA_PORT within ${KAFKA_START_TIMEOUT}s (bash scripts/services-stop.sh stops it)"
        sleep 0.5
    done
}

# --------------------------------------------------------------------------
# Prepare both (installs/downloads), launch both, then wait for both: the two
# servers start up in parallel.
db_prepare
kafka_prepare
db_launch
kafka_launch
db_wait
kafka_wait
