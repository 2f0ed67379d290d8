#!/bin/bash
# Entrypoint of the local mariadb stand-in image (see Dockerfile).  Written for
# this project; it follows the documented behaviour of the official image:
#
# * `mariadbd [options]` (or just options) runs the server; any other command
#   is exec'ed as is.
# * Started as root: fixes ownership of the data directory and re-executes
#   itself as the `mysql` user.
# * Empty data directory (no mysql/ inside): initialise it, once.  Needs one
#   of MARIADB_ROOT_PASSWORD, MARIADB_ROOT_PASSWORD_HASH,
#   MARIADB_ALLOW_EMPTY_ROOT_PASSWORD, MARIADB_RANDOM_ROOT_PASSWORD.
#   Then: root@'%' (MARIADB_ROOT_HOST) with all privileges, root@localhost,
#   MARIADB_DATABASE, MARIADB_USER/MARIADB_PASSWORD[_HASH] @ MARIADB_USER_HOST
#   (default '%') with all privileges on MARIADB_DATABASE, time zone tables
#   (unless MARIADB_INITDB_SKIP_TZINFO), the healthcheck users used by
#   healthcheck.sh, and /docker-entrypoint-initdb.d/*.{sh,sql,sql.gz,sql.xz,sql.zst}.
#   Initialisation runs on a temporary server with networking off, so
#   `healthcheck.sh --connect` only succeeds once the real server is up.
# * Every MYSQL_* name is an alias of the MARIADB_* one, and every variable
#   can instead be read from a file named by <VAR>_FILE.
# * The password variables are removed from the server's environment.
set -eo pipefail
shopt -s nullglob

log()  { printf '%s [Note] [Entrypoint]: %s\n' "$(date --rfc-3339=seconds)" "$*"; }
warn() { printf '%s [Warn] [Entrypoint]: %s\n' "$(date --rfc-3339=seconds)" "$*" >&2; }
die()  { printf '%s [ERROR] [Entrypoint]: %s\n' "$(date --rfc-3339=seconds)" "$*" >&2; exit 1; }

# VAR from $VAR or from the file named by $VAR_FILE (not both), else default.
from_env_or_file() {
    local var=$1 default=${2:-} file_var="${1}_FILE" value
    if [[ -n ${!var:-} && -n ${!file_var:-} ]]; then
        die "both $var and $file_var are set; use one of them"
    fi
    value=$default
    if [[ -n ${!var:-} ]]; then
        value=${!var}
    elif [[ -n ${!file_var:-} ]]; then
        value=$(<"${!file_var}")
    fi
    export "$var=$value"
    unset "$file_var"
}

# MARIADB_X wins over MYSQL_X; afterwards both hold the same value.
maria_var() {
    local name=$1 default=${2:-}
    from_env_or_file "MYSQL_$name" "$default"
    local mysql_value="MYSQL_$name"
    from_env_or_file "MARIADB_$name" "${!mysql_value}"
    local maria_value="MARIADB_$name"
    export "MYSQL_$name=${!maria_value}"
}

# Value of a server setting as mariadbd would use it with these arguments.
server_setting() {
    local name=$1; shift
    "$@" --verbose --help 2>/dev/null \
        | awk -v n="$name" '$1 == n && /^[^ \t]/ { sub(/^[^ \t]+[ \t]+/, ""); print; exit }'
}

# SQL string literal body: backslashes and single quotes escaped.
sql_escape() {
    local s=${1//\\/\\\\}
    printf '%s' "${s//\'/\\\'}"
}

random_password() {
    local p
    p=$(tr -dc 'A-Za-z0-9,.:;!@%^&*()_+-' </dev/urandom | head -c 32) || true
    printf '%s' "$p"
}

wants_help() {
    local a
    for a; do
        case $a in -'?'|--help|--print-defaults|-V|--version) return 0 ;; esac
    done
    return 1
}

# Run SQL on the temporary server through its socket as root, in
# MARIADB_DATABASE unless the arguments name another database.  Before root
# has a password (ROOT_PW_SET=0) none is sent.
ROOT_PW_SET=0
sql() {
    local args=(--no-defaults --protocol=socket --socket="$SOCKET" -uroot)
    [[ -n $MARIADB_DATABASE ]] && args+=(--database="$MARIADB_DATABASE")
    if [[ $ROOT_PW_SET -eq 1 && -n $MARIADB_ROOT_PASSWORD ]]; then
        MYSQL_PWD=$MARIADB_ROOT_PASSWORD mariadb "${args[@]}" "$@"
    else
        mariadb "${args[@]}" "$@"
    fi
}

# Names that sourced /docker-entrypoint-initdb.d/*.sh scripts may use.
docker_process_sql() { sql "$@"; }
# shellcheck disable=SC2034
mysql=(docker_process_sql)

start_temp_server() {
    "$@" --skip-networking --socket="$SOCKET" --default-time-zone=SYSTEM \
        --wsrep-on=OFF --skip-slave-start --expire-logs-days=0 \
        --loose-innodb-buffer-pool-load-at-startup=0 &
    TEMP_PID=$!
    local i
    for i in $(seq 1 60); do
        if sql --database=mysql -e 'SELECT 1' >/dev/null 2>&1; then return 0; fi
        kill -0 "$TEMP_PID" 2>/dev/null || die "temporary server exited during startup"
        sleep 0.5
    done
    die "temporary server did not start within 30s"
}

stop_temp_server() {
    kill -TERM "$TEMP_PID"
    wait "$TEMP_PID" || true
}

run_init_files() {
    local f
    for f in /docker-entrypoint-initdb.d/*; do
        case $f in
            *.sh)
                if [[ -x $f ]]; then log "running $f"; "$f"
                else log "sourcing $f"; . "$f"; fi ;;
            *.sql)     log "running $f"; sql <"$f" ;;
            *.sql.gz)  log "running $f"; gzip -dc "$f" | sql ;;
            *.sql.xz)  log "running $f"; xz -dc "$f" | sql ;;
            *.sql.zst) log "running $f"; zstd -dc "$f" | sql ;;
            *)         warn "ignoring $f" ;;
        esac
    done
}

init_datadir() {
    if [[ -z $MARIADB_ROOT_PASSWORD && -z $MARIADB_ROOT_PASSWORD_HASH \
          && -z $MARIADB_ALLOW_EMPTY_ROOT_PASSWORD && -z $MARIADB_RANDOM_ROOT_PASSWORD ]]; then
        die "Database is uninitialized and password option is not specified
	You need to specify one of MARIADB_ROOT_PASSWORD, MARIADB_ROOT_PASSWORD_HASH, MARIADB_ALLOW_EMPTY_ROOT_PASSWORD and MARIADB_RANDOM_ROOT_PASSWORD"
    fi
    if [[ -n $MARIADB_ROOT_PASSWORD_HASH && ( -n $MARIADB_ROOT_PASSWORD || -n $MARIADB_RANDOM_ROOT_PASSWORD ) ]]; then
        die "MARIADB_ROOT_PASSWORD_HASH cannot be combined with MARIADB_ROOT_PASSWORD or MARIADB_RANDOM_ROOT_PASSWORD"
    fi
    ls /docker-entrypoint-initdb.d/ >/dev/null   # fail early if unreadable

    log "Initializing database files in $DATADIR"
    mariadb-install-db --datadir="$DATADIR" --rpm --auth-root-authentication-method=normal \
        --skip-test-db --default-time-zone=SYSTEM --enforce-storage-engine= \
        --skip-log-bin --expire-logs-days=0 \
        --loose-innodb-buffer-pool-load-at-startup=0 \
        --loose-innodb-buffer-pool-dump-at-shutdown=0 >/dev/null \
        || die "mariadb-install-db failed"

    log "Starting temporary server"
    start_temp_server "$@"

    if [[ -z $MARIADB_INITDB_SKIP_TZINFO ]]; then
        mariadb-tzinfo-to-sql --skip-write-binlog /usr/share/zoneinfo 2>/dev/null | sql --database=mysql
    fi

    if [[ -n $MARIADB_RANDOM_ROOT_PASSWORD ]]; then
        MARIADB_ROOT_PASSWORD=$(random_password)
        export MARIADB_ROOT_PASSWORD MYSQL_ROOT_PASSWORD=$MARIADB_ROOT_PASSWORD
        log "GENERATED ROOT PASSWORD: $MARIADB_ROOT_PASSWORD"
    fi
    local root_pw root_auth
    root_pw=$(sql_escape "$MARIADB_ROOT_PASSWORD")
    if [[ -n $MARIADB_ROOT_PASSWORD_HASH ]]; then
        root_auth="IDENTIFIED BY PASSWORD '$(sql_escape "$MARIADB_ROOT_PASSWORD_HASH")'"
    else
        root_auth="IDENTIFIED BY '$root_pw'"
    fi

    local hc_pw hc_grant=${MARIADB_HEALTHCHECK_GRANTS:-USAGE} h
    hc_pw=$(random_password)
    local q="SET @@SESSION.SQL_LOG_BIN=0;
SET @@SESSION.SQL_MODE=REPLACE(@@SESSION.SQL_MODE, 'NO_BACKSLASH_ESCAPES', '');
DROP USER IF EXISTS root@'127.0.0.1', root@'::1';
EXECUTE IMMEDIATE CONCAT('DROP USER IF EXISTS root@\'', @@hostname, '\'');
"
    if [[ -z $MARIADB_ROOT_PASSWORD_HASH ]]; then
        q+="SET PASSWORD FOR 'root'@'localhost' = PASSWORD('$root_pw');
"
    fi
    if [[ -n $MARIADB_ROOT_HOST && $MARIADB_ROOT_HOST != localhost ]]; then
        q+="CREATE USER 'root'@'$MARIADB_ROOT_HOST' $root_auth;
GRANT ALL ON *.* TO 'root'@'$MARIADB_ROOT_HOST' WITH GRANT OPTION;
GRANT PROXY ON ''@'%' TO 'root'@'$MARIADB_ROOT_HOST' WITH GRANT OPTION;
"
    fi
    if [[ -n $MARIADB_MYSQL_LOCALHOST_USER ]]; then
        q+="CREATE USER mysql@localhost IDENTIFIED VIA unix_socket;
"
        [[ -n $MARIADB_MYSQL_LOCALHOST_GRANTS ]] \
            && q+="GRANT $MARIADB_MYSQL_LOCALHOST_GRANTS ON *.* TO mysql@localhost;
"
    fi
    for h in 127.0.0.1 ::1 localhost; do
        q+="CREATE USER IF NOT EXISTS healthcheck@'$h' IDENTIFIED BY '$(sql_escape "$hc_pw")';
GRANT $hc_grant ON *.* TO healthcheck@'$h';
"
    done
    q+="SET @@SESSION.SQL_LOG_BIN=1;
"
    if [[ -n $MARIADB_DATABASE ]]; then
        log "Creating database $MARIADB_DATABASE"
        q+="CREATE DATABASE IF NOT EXISTS \`$MARIADB_DATABASE\`;
"
    fi
    if [[ -n $MARIADB_USER && ( -n $MARIADB_PASSWORD || -n $MARIADB_PASSWORD_HASH ) ]]; then
        log "Creating user $MARIADB_USER"
        if [[ -n $MARIADB_PASSWORD_HASH ]]; then
            q+="CREATE USER '$MARIADB_USER'@'$MARIADB_USER_HOST' IDENTIFIED BY PASSWORD '$(sql_escape "$MARIADB_PASSWORD_HASH")';
"
        else
            q+="CREATE USER '$MARIADB_USER'@'$MARIADB_USER_HOST' IDENTIFIED BY '$(sql_escape "$MARIADB_PASSWORD")';
"
        fi
        if [[ -n $MARIADB_DATABASE ]]; then
            q+="GRANT ALL ON \`${MARIADB_DATABASE//_/\\_}\`.* TO '$MARIADB_USER'@'$MARIADB_USER_HOST';
"
        fi
    elif [[ -n $MARIADB_USER ]]; then
        warn "MARIADB_USER is set without MARIADB_PASSWORD or MARIADB_PASSWORD_HASH: user not created"
    fi
    sql --database=mysql --binary-mode <<<"$q" || die "initial SQL setup failed"
    ROOT_PW_SET=1

    # Credentials for healthcheck.sh (readable by the mysql user only).
    (umask 077; printf '[mariadb-client]\nport=%s\nsocket=%s\nuser=healthcheck\npassword=%s\n' \
        "$PORT" "$SOCKET" "$hc_pw" >"$DATADIR/.my-healthcheck.cnf")

    run_init_files

    if [[ -n $MARIADB_ROOT_PASSWORD_HASH ]]; then
        sql --binary-mode -e "SET @@SESSION.SQL_LOG_BIN=0; SET PASSWORD FOR 'root'@'localhost' = '$(sql_escape "$MARIADB_ROOT_PASSWORD_HASH")';"
    fi

    log "Stopping temporary server"
    stop_temp_server
    log "Database initialized"
}

main() {
    if [[ ${1:0:1} == - ]]; then
        set -- mariadbd "$@"
    fi
    if [[ $1 != mariadbd && $1 != mysqld ]] || wants_help "$@"; then
        exec "$@"
    fi

    # Refuse a broken configuration before touching anything.
    local err
    if ! err=$("$@" --verbose --help 2>&1 >/dev/null); then
        die "mariadbd cannot start with this configuration: $*
$err"
    fi
    DATADIR=$(server_setting datadir "$@")
    SOCKET=$(server_setting socket "$@")
    PORT=$(server_setting port "$@")
    DATADIR=${DATADIR%/}

    if [[ $(id -u) -eq 0 ]]; then
        mkdir -p "$DATADIR"
        find "$DATADIR" \! -user mysql -exec chown mysql:mysql '{}' +
        [[ ${SOCKET:0:1} == @ ]] || { mkdir -p "${SOCKET%/*}"; chown mysql:mysql "${SOCKET%/*}"; }
        log "Switching to user mysql"
        exec gosu mysql "$BASH_SOURCE" "$@"
    fi

    maria_var ROOT_HOST '%'
    maria_var DATABASE
    maria_var USER
    maria_var PASSWORD
    maria_var ROOT_PASSWORD
    from_env_or_file MARIADB_PASSWORD_HASH
    from_env_or_file MARIADB_ROOT_PASSWORD_HASH
    from_env_or_file MARIADB_USER_HOST '%'
    : "${MARIADB_ALLOW_EMPTY_ROOT_PASSWORD:=${MYSQL_ALLOW_EMPTY_PASSWORD:-}}"
    : "${MARIADB_RANDOM_ROOT_PASSWORD:=${MYSQL_RANDOM_ROOT_PASSWORD:-}}"
    : "${MARIADB_INITDB_SKIP_TZINFO:=${MYSQL_INITDB_SKIP_TZINFO:-}}"
    : "${MARIADB_MYSQL_LOCALHOST_USER:=}" "${MARIADB_MYSQL_LOCALHOST_GRANTS:=}"

    if [[ ! -d $DATADIR/mysql ]]; then
        init_datadir "$@"
    else
        log "Database already initialized in $DATADIR; skipping initialization"
    fi

    unset MARIADB_ROOT_PASSWORD MYSQL_ROOT_PASSWORD MARIADB_PASSWORD MYSQL_PASSWORD \
        MARIADB_ROOT_PASSWORD_HASH MARIADB_PASSWORD_HASH MARIADB_ROOT_HOST MYSQL_ROOT_HOST
    log "Starting $*"
    exec "$@"
}

main "$@"
