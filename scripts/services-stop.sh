#!/usr/bin/env bash
# Stop the servers that scripts/services.sh started - and nothing else.
# Usage: bash scripts/services-stop.sh
#
# Each server is found only through its pid file under .local/ and is
# checked to still be the program we started (a pid can be reused by an
# unrelated process after a reboot or crash).  SIGTERM first, so MariaDB
# flushes InnoDB and Kafka closes its logs cleanly; SIGKILL only if it does
# not exit in time.  Data stays in .local/ for the next start.  Quiet on
# success; a server that will not die is reported and the exit is non-zero.

set -Euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LOCAL=$ROOT/.local

STOP_TIMEOUT=60   # seconds to wait after SIGTERM before SIGKILL
status=0

# stop_one NAME PIDFILE CMDLINE-PATTERN
stop_one() {
    local name=$1 pidfile=$2 pattern=$3 pid
    [[ -f $pidfile ]] || return 0
    pid=$(cat "$pidfile" 2>/dev/null || true)
    if [[ ! $pid =~ ^[0-9]+$ ]] || [[ ! -r /proc/$pid/cmdline ]] \
        || ! tr '\0' ' ' </proc/"$pid"/cmdline | grep -q -- "$pattern"; then
        # Not running any more (or the pid now belongs to something else):
        # just forget the stale pid file.
        rm -f "$pidfile"
        return 0
    fi

    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + STOP_TIMEOUT))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
        sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "services-stop.sh: $name (pid $pid) ignored SIGTERM for ${STOP_TIMEOUT}s; sending SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
        sleep 1
        if kill -0 "$pid" 2>/dev/null; then
            echo "services-stop.sh: FAILED: $name (pid $pid) is still running after SIGKILL" >&2
            status=1
            return 0
        fi
    fi
    rm -f "$pidfile"
}

# Serialise with a concurrent services.sh so we never stop a half-started
# server while it is being waited for.
mkdir -p "$LOCAL"
exec 9>"$LOCAL/services.lock"
flock 9

# Kafka first: it shuts down a little slower, and both are independent.
stop_one "Kafka broker" "$LOCAL/kafka/kafka.pid" kafka.Kafka
stop_one "mariadbd" "$LOCAL/mariadb/mariadbd.pid" mariadbd

exit $status
