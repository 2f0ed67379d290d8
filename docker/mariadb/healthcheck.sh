#!/bin/bash
# healthcheck.sh of the local mariadb stand-in image (see Dockerfile).
# Same command line as the official image's script; exit 0 only if every
# requested test passes, tests run in the order given:
#
#   --connect                    the server accepts connections over TCP
#                                (the real server, not the init-time one,
#                                which runs with networking off)
#   --innodb_initialized         InnoDB finished starting (crash recovery done)
#   --innodb_buffer_pool_loaded  the buffer pool load at startup completed
#   --galera_online / --galera_ready   Galera state (always false here: no Galera)
#   --mariadbupgrade             no mariadb-upgrade is holding its lock
#
# Options (apply to the tests after them):
#   --su=USER / --su USER / --su-mysql   re-run as that unix user
#   --no-defaults, --defaults-file=F, --defaults-extra-file=F,
#   --defaults-group-suffix=S    mariadb client option files
#   --datadir=D                  data directory (default /var/lib/mysql)
#
# Credentials: $datadir/.my-healthcheck.cnf, written by the entrypoint when it
# initialised the data directory (user healthcheck, USAGE only).
set -eo pipefail

datadir=/var/lib/mysql
no_defaults=""
defaults_file=""
defaults_extra_file=""
defaults_group_suffix=""
[[ -f $datadir/.my-healthcheck.cnf ]] && defaults_extra_file=$datadir/.my-healthcheck.cnf

client() {
    local args=()
    [[ -n $no_defaults ]] && args+=(--no-defaults)
    [[ -n $defaults_file ]] && args+=(--defaults-file="$defaults_file")
    [[ -n $defaults_extra_file ]] && args+=(--defaults-extra-file="$defaults_extra_file")
    [[ -n $defaults_group_suffix ]] && args+=(--defaults-group-suffix="$defaults_group_suffix")
    mariadb "${args[@]}" "$@"
}

# One value from a query over the local socket (empty on any error).
query() {
    client --protocol=socket --batch --skip-column-names -e "$1" 2>/dev/null || true
}

t_connect() {
    local s
    # Over the socket: the init-time server answers 1 (skip_networking).
    s=$(query 'SELECT @@skip_networking')
    case $s in
        0) return 0 ;;
        1) return 1 ;;
    esac
    # No socket answer: try TCP.  Any answer from the server, even "access
    # denied", means it accepts connections.
    s=$(client -h localhost --protocol=tcp --batch --skip-column-names \
        --connect-timeout=3 -e 'SELECT @@skip_networking' 2>&1) || true
    case $s in
        0) return 0 ;;
        1) return 1 ;;
        "ERROR 1820 "*|"ERROR 4151 "*|"ERROR 1226 "*|ERROR\ 1[0-9][0-9][0-9]\ \(28000\)*) return 0 ;;
        *) echo "healthcheck.sh: connect: $s" >&2; return 1 ;;
    esac
}

t_innodb_initialized() {
    [[ $(query "SELECT 1 FROM information_schema.ENGINES WHERE engine='innodb' AND support IN ('YES','DEFAULT','ENABLED')") == 1 ]]
}

t_innodb_buffer_pool_loaded() {
    [[ $(query "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME='Innodb_buffer_pool_load_status'") == *"load completed"* ]]
}

t_galera_online() {
    [[ $(query "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME='WSREP_LOCAL_STATE'") == 4 ]]
}

t_galera_ready() {
    [[ $(query "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME='WSREP_READY'") == ON ]]
}

t_mariadbupgrade() {
    local f=$datadir/mysql_upgrade_info
    [[ -r $f ]] || return 0
    flock --exclusive --nonblock 9 9<"$f"
}

if [[ $# -eq 0 ]]; then
    echo "healthcheck.sh: at least one argument required" >&2
    exit 1
fi

while [[ $# -gt 0 ]]; do
    case $1 in
        --su=*)     u=${1#*=}; shift; exec gosu "$u" "${BASH_SOURCE[0]}" "$@" ;;
        --su)       u=$2; shift 2; exec gosu "$u" "${BASH_SOURCE[0]}" "$@" ;;
        --su-mysql) shift; exec gosu mysql "${BASH_SOURCE[0]}" "$@" ;;
        --datadir=*) datadir=${1#*=} ;;
        --datadir)  shift; datadir=$1 ;;
        --no-defaults)
            no_defaults=1; defaults_file=""; defaults_extra_file=""; defaults_group_suffix="" ;;
        --defaults-file=*)         defaults_file=${1#*=} ;;
        --defaults-extra-file=*)   defaults_extra_file=${1#*=} ;;
        --defaults-group-suffix=*) defaults_group_suffix=${1#*=} ;;
        --connect|--innodb_initialized|--innodb_buffer_pool_loaded|--galera_online|--galera_ready|--mariadbupgrade)
            test=${1#--}
            if ! "t_$test"; then
                echo "healthcheck $test failed" >&2
                exit 1
            fi
            ;;
        --replication*)
            echo "healthcheck.sh: $1 is not supported by this stand-in image" >&2
            exit 1 ;;
        *)
            echo "healthcheck.sh: unknown option or test: $1" >&2
            exit 1 ;;
    esac
    shift
done
exit 0
