#!/usr/bin/env bash
# Database backups of eventtrigger: compose.prod.yaml's `backup` service runs this in the
# mariadb:10.11 image (it has mariadb-dump, the mariadb client and gzip), bind-mounted.
#
#   docker compose run --rm backup now              one dump, then exit
#   docker compose run --rm backup list             the dumps, newest first
#   docker compose run --rm backup restore FILE     load FILE (e.g. backups/eventtrigger-
#                                                   20261207T030000Z.sql.gz) into the database
#   (no argument)                                   the service: a dump every interval
#   health                                          the service's healthcheck
#
# A dump is `mariadb-dump --single-transaction --routines --triggers --databases
# eventtrigger | gzip`: one consistent snapshot (InnoDB, no locks held), written to a
# hidden temporary name, checked, then renamed to eventtrigger-YYYYmmddTHHMMSSZ.sql.gz
# (UTC), so a file with that name is always complete. Files are mode 0600: they hold
# signing secrets and webhook tokens.
#
# The loop dumps at once when the newest dump is older than the interval, then every
# EVENTTRIGGER_BACKUP_INTERVAL (default 24h; a number with s, m, h or d, or plain
# seconds), retrying every 5 minutes (or the interval, if shorter) after a failure. With
# no dump at all (a new installation) the first waits those 5 minutes: the stack starts
# it beside `migrate`, and a dump taken while tables are created fails or is empty. After
# each dump it deletes dumps older than EVENTTRIGGER_BACKUP_KEEP_DAYS (default 7), never
# the newest. `health` fails once the last successful dump is older than twice the
# interval (counted from the loop's start while there is none).
#
# Environment: DB_HOST (db), DB_PORT (3306), DB_USER (root), DB_PASSWORD, DB_NAME
# (eventtrigger), BACKUP_DIR (/backups), EVENTTRIGGER_BACKUP_INTERVAL,
# EVENTTRIGGER_BACKUP_KEEP_DAYS.

set -Eeuo pipefail

DB_HOST=${DB_HOST:-db}
DB_PORT=${DB_PORT:-3306}
DB_USER=${DB_USER:-root}
DB_NAME=${DB_NAME:-eventtrigger}
BACKUP_DIR=${BACKUP_DIR:-/backups}
INTERVAL_RAW=${EVENTTRIGGER_BACKUP_INTERVAL:-24h}
KEEP_DAYS=${EVENTTRIGGER_BACKUP_KEEP_DAYS:-7}
PREFIX=eventtrigger-
# Written by the loop when it starts: health counts from there until a first dump exists.
STARTED_FILE=/tmp/eventtrigger-backup.started

log() { printf '%s backup: %s\n' "$(date -u +%FT%TZ)" "$*"; }
die() { printf '%s backup: error: %s\n' "$(date -u +%FT%TZ)" "$*" >&2; exit 1; }

# Seconds in a duration: 90, 90s, 15m, 6h, 1d.
seconds_of() {
    local raw=$1 n unit
    [[ $raw =~ ^([0-9]+)([smhd]?)$ ]] || return 1
    n=$((10#${BASH_REMATCH[1]}))
    unit=${BASH_REMATCH[2]}
    case $unit in
        d) n=$((n * 86400)) ;;
        h) n=$((n * 3600)) ;;
        m) n=$((n * 60)) ;;
    esac
    ((n > 0)) || return 1
    echo "$n"
}

INTERVAL=$(seconds_of "$INTERVAL_RAW") \
    || die "EVENTTRIGGER_BACKUP_INTERVAL: '$INTERVAL_RAW' is not a duration (e.g. 24h, 30m, 1d, 3600)"
[[ $KEEP_DAYS =~ ^[0-9]+$ ]] && ((10#$KEEP_DAYS >= 1)) \
    || die "EVENTTRIGGER_BACKUP_KEEP_DAYS: '$KEEP_DAYS' is not a whole number of days (1 or more)"
KEEP_DAYS=$((10#$KEEP_DAYS))

# Client options in a private file, not on the command line (ps would show them).
CLIENT_CNF=""
client_cnf() {
    [[ -n $CLIENT_CNF ]] && return
    [[ -n ${DB_PASSWORD:-} ]] || die "DB_PASSWORD is empty"
    CLIENT_CNF=$(mktemp /tmp/backup-client.XXXXXX.cnf)
    trap 'rm -f "$CLIENT_CNF"' EXIT
    local quoted=${DB_PASSWORD//\\/\\\\}
    quoted=${quoted//\"/\\\"}
    printf '[client]\nhost=%s\nport=%s\nuser=%s\npassword="%s"\n' \
        "$DB_HOST" "$DB_PORT" "$DB_USER" "$quoted" >"$CLIENT_CNF"
}

sql() { client_cnf; mariadb --defaults-extra-file="$CLIENT_CNF" "$@"; }

# The newest complete dump's file name ("" when there is none).
newest() {
    find "$BACKUP_DIR" -maxdepth 1 -type f -name "${PREFIX}*.sql.gz" -printf '%f\n' 2>/dev/null \
        | sort | tail -n 1
}

mtime() { stat -c %Y "$1"; }

# A gzip'd dump that decompresses and ends the way mariadb-dump ends a finished dump.
check_dump() {
    local file=$1
    gzip -t "$file" 2>/dev/null || { echo "not a complete gzip file"; return 1; }
    gzip -dc "$file" | tail -n 3 | grep -q '^-- Dump completed' \
        || { echo "no '-- Dump completed' line at its end (an interrupted dump?)"; return 1; }
}

dump() {
    client_cnf
    mkdir -p "$BACKUP_DIR"
    local stamp name tmp t0 why
    stamp=$(date -u +%Y%m%dT%H%M%SZ)
    name=$PREFIX$stamp.sql.gz
    # Two dumps within one second (`now` twice): the second waits for a name of its own.
    while [[ -e $BACKUP_DIR/$name ]]; do
        sleep 1
        stamp=$(date -u +%Y%m%dT%H%M%SZ)
        name=$PREFIX$stamp.sql.gz
    done
    tmp=$BACKUP_DIR/.$name.$$.partial
    t0=$(date +%s%N)
    log "dumping database '$DB_NAME' on $DB_HOST:$DB_PORT"
    if ! (
        umask 077
        mariadb-dump --defaults-extra-file="$CLIENT_CNF" --single-transaction --routines \
            --triggers --hex-blob --databases "$DB_NAME" | gzip >"$tmp"
    ); then
        rm -f "$tmp"
        log "FAILED: mariadb-dump exited non-zero (nothing written)"
        return 1
    fi
    if ! why=$(check_dump "$tmp"); then
        rm -f "$tmp"
        log "FAILED: the dump is unusable: $why"
        return 1
    fi
    sync "$tmp" 2>/dev/null || true
    mv "$tmp" "$BACKUP_DIR/$name"
    log "wrote $BACKUP_DIR/$name ($(stat -c %s "$BACKUP_DIR/$name") bytes) in $((($(date +%s%N) - t0) / 1000000)) ms"
}

prune() {
    local keep_newest
    keep_newest=$(newest)
    [[ -n $keep_newest ]] || return 0
    find "$BACKUP_DIR" -maxdepth 1 -type f -name "${PREFIX}*.sql.gz" ! -name "$keep_newest" \
        -mmin +$((KEEP_DAYS * 1440)) -printf '%f\n' -delete \
        | while read -r gone; do log "deleted $gone (older than $KEEP_DAYS days)"; done
    # Leftovers of dumps that were killed midway (ours are renamed within seconds).
    find "$BACKUP_DIR" -maxdepth 1 -type f -name ".${PREFIX}*.partial" -mmin +1440 -delete
}

# Sleep in the background so SIGTERM (docker stop) ends the loop at once: bash as PID 1
# only runs the trap between commands.
pause() { sleep "$1" & wait $! || true; }

loop() {
    date +%s >"$STARTED_FILE"
    trap 'log "stopping"; exit 0' TERM INT
    log "every $INTERVAL_RAW into $BACKUP_DIR, keeping $KEEP_DAYS days"
    local retry=$((INTERVAL < 300 ? INTERVAL : 300)) started last due now
    started=$(date +%s)
    while true; do
        last=$(newest)
        now=$(date +%s)
        if [[ -n $last ]]; then
            due=$(($(mtime "$BACKUP_DIR/$last") + INTERVAL))
        else
            due=$((started + retry))
        fi
        if ((due > now)); then
            pause $((due - now))
            continue
        fi
        if dump; then
            prune
        else
            log "next attempt in $retry s"
            pause "$retry"
        fi
    done
}

health() {
    local last ref now
    last=$(newest)
    ref=0
    [[ -n $last ]] && ref=$(mtime "$BACKUP_DIR/$last")
    if [[ -f $STARTED_FILE ]]; then
        local started
        started=$(cat "$STARTED_FILE")
        ((started > ref)) && [[ -z $last ]] && ref=$started
    fi
    now=$(date +%s)
    if ((now - ref >= 2 * INTERVAL)); then
        echo "unhealthy: the last successful dump (${last:-none}) is older than twice $INTERVAL_RAW"
        exit 1
    fi
    echo "ok: last dump ${last:-none yet}"
}

list() {
    local found
    found=$(find "$BACKUP_DIR" -maxdepth 1 -type f -name "${PREFIX}*.sql.gz" \
        -printf '%f  %s bytes  written %TY-%Tm-%Td %TH:%TM UTC\n' 2>/dev/null | sort -r)
    if [[ -z $found ]]; then
        echo "no dumps in $BACKUP_DIR"
    else
        echo "$found"
    fi
}

# restore FILE [--force]: FILE as given (relative to /, where backups/ is the backup
# directory), else by its name in the backup directory.
restore() {
    local arg=${1:-} force=${2:-} file others why
    [[ -n $arg ]] || die "usage: restore FILE [--force]   (FILE: one of \`list\`)"
    [[ -z $force || $force == --force ]] || die "unknown option '$force'"
    if [[ -f $arg ]]; then
        file=$arg
    elif [[ -f $BACKUP_DIR/$(basename "$arg") ]]; then
        file=$BACKUP_DIR/$(basename "$arg")
    else
        die "no such dump: $arg (see \`list\`); nothing was changed"
    fi
    why=$(check_dump "$file") || die "$file is unusable: $why; nothing was changed"
    client_cnf
    # Other sessions on the database are the roles still running: a restore under them
    # would mix old and new rows.
    others=$(sql -N -B -e "SELECT COUNT(*) FROM information_schema.PROCESSLIST
                           WHERE DB = '$DB_NAME' AND ID <> CONNECTION_ID()") \
        || die "cannot reach the database on $DB_HOST:$DB_PORT"
    if ((others > 0)) && [[ $force != --force ]]; then
        die "$others other sessions use database '$DB_NAME': stop the roles first
  (docker compose stop api scheduler worker retention), or add --force; nothing was changed"
    fi
    log "restoring $file into database '$DB_NAME' on $DB_HOST:$DB_PORT: everything in it now is replaced"
    sql -e "DROP DATABASE IF EXISTS \`$DB_NAME\`"
    gzip -dc "$file" | sql
    log "restored: $(sql -N -B -e "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '$DB_NAME'") tables in '$DB_NAME'; start the roles again: docker compose up -d --wait"
}

case ${1:-} in
    "") loop ;;
    now) dump ;;
    list) list ;;
    restore) shift; restore "$@" ;;
    health) health ;;
    *) die "unknown command '$1' (none, now, list, restore FILE, health)" ;;
esac
