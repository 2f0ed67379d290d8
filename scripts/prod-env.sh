#!/usr/bin/env bash
# Write the .env of a production deployment (compose.yaml + compose.prod.yaml).
#
#   scripts/prod-env.sh triggers.example.com   # a public DNS name: HTTPS via ACME
#   scripts/prod-env.sh                        # no domain: https://localhost, Caddy's CA
#
# Adds what is missing, keeps every value already there (run it again any time):
#   COMPOSE_FILE=compose.yaml:compose.prod.yaml   so `docker compose ...` uses both files
#   EVENTTRIGGER_DOMAIN       the argument (a domain given here replaces the one in .env)
#   DB_PASSWORD               32 random hex characters, generated once and never printed:
#                             MariaDB takes it when its volume is created, so a new one
#                             later would lock the roles out of the existing database
#   EVENTTRIGGER_SECRET_KEY   k1:<32 random bytes, base64>, generated once and never
#                             printed: encrypts signing secrets at rest
#   EVENTTRIGGER_HTTP_PORT=, EVENTTRIGGER_HTTPS_PORT=   empty: 80 and 443
#   EVENTTRIGGER_BACKUP_KEEP_DAYS=7
#
# The file is .env beside compose.yaml, or the first file of COMPOSE_ENV_FILES when that
# is set (the file Compose then reads instead). It is written mode 0600, atomically.

set -Eeuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PROG=scripts/prod-env.sh

die() { echo "$PROG: $*" >&2; exit 1; }

if [[ $# -gt 1 || ${1:-} == -* ]]; then
    echo "usage: $PROG [DOMAIN]" >&2
    exit 2
fi
domain=${1:-}
if [[ -n $domain ]]; then
    domain=${domain%.}
    [[ $domain =~ ^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$ && $domain != *..* ]] \
        || die "'$1' is not a DNS name (give the bare name, e.g. triggers.example.com: no scheme, port or path)"
fi

if [[ -n ${COMPOSE_ENV_FILES:-} ]]; then
    env_file=${COMPOSE_ENV_FILES%%,*}
else
    env_file=$ROOT/.env
fi
[[ ! -e $env_file || -f $env_file ]] || die "$env_file is not a regular file (COMPOSE_ENV_FILES=${COMPOSE_ENV_FILES:-})"

# The value of KEY in the file, if the file sets it (last one wins, as in Compose).
has_key() { [[ -f $env_file ]] && grep -Eq "^[[:space:]]*(export[[:space:]]+)?$1=" "$env_file"; }
value_of() {
    [[ -f $env_file ]] || return 0
    sed -En "s/^[[:space:]]*(export[[:space:]]+)?$1=//p" "$env_file" | tail -n 1 \
        | sed -E 's/^"(.*)"$/\1/; s/^'"'"'(.*)'"'"'$/\1/'
}

tmp=$(mktemp "$(dirname "$env_file")/.prod-env.XXXXXX")
trap 'rm -f "$tmp"' EXIT
chmod 600 "$tmp"
if [[ -f $env_file ]]; then
    cat "$env_file" >"$tmp"
    # A last line without its newline would swallow the first line we add.
    [[ -z $(tail -c 1 "$env_file") ]] || echo >>"$tmp"
fi

done_list=()
add() {  # KEY VALUE [COMMENT]: append unless the file has KEY
    if has_key "$1"; then
        done_list+=("kept $1")
        return
    fi
    [[ -n ${3:-} ]] && printf '# %s\n' "$3" >>"$tmp"
    printf '%s=%s\n' "$1" "$2" >>"$tmp"
    done_list+=("added $1")
}

add COMPOSE_FILE compose.yaml:compose.prod.yaml \
    "Production: compose.yaml with the HTTPS proxy, the generated password and backups."
old_domain=$(value_of EVENTTRIGGER_DOMAIN)
if [[ -n $domain ]] && has_key EVENTTRIGGER_DOMAIN && [[ $old_domain != "$domain" ]]; then
    sed -Ei "s/^[[:space:]]*(export[[:space:]]+)?EVENTTRIGGER_DOMAIN=.*/EVENTTRIGGER_DOMAIN=$domain/" "$tmp"
    done_list+=("changed EVENTTRIGGER_DOMAIN from '${old_domain}' to '$domain'")
else
    add EVENTTRIGGER_DOMAIN "$domain" \
        "Public DNS name of this host (HTTPS via ACME); empty: localhost with Caddy's own CA."
fi
if has_key DB_PASSWORD && [[ -n $(value_of DB_PASSWORD) ]]; then
    done_list+=("kept DB_PASSWORD")
else
    # 16 random bytes as hex: URL-safe, as it goes into EVENTTRIGGER_DATABASE_URL.
    password=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
    [[ ${#password} -eq 32 ]] || die "could not read 16 random bytes from /dev/urandom"
    if has_key DB_PASSWORD; then  # present but empty
        sed -Ei "s/^[[:space:]]*(export[[:space:]]+)?DB_PASSWORD=.*/DB_PASSWORD=$password/" "$tmp"
    else
        printf '# MariaDB root password, generated; taken when the db-data volume is created.\n' >>"$tmp"
        printf 'DB_PASSWORD=%s\n' "$password" >>"$tmp"
    fi
    done_list+=("generated DB_PASSWORD")
fi
if has_key EVENTTRIGGER_SECRET_KEY && [[ -n $(value_of EVENTTRIGGER_SECRET_KEY) ]]; then
    done_list+=("kept EVENTTRIGGER_SECRET_KEY")
else
    # 32 random bytes, base64, under key id k1: signing secrets are encrypted at rest.
    secret=$(head -c 32 /dev/urandom | base64 | tr -d '\n')
    [[ ${#secret} -eq 44 ]] || die "could not read 32 random bytes from /dev/urandom"
    if has_key EVENTTRIGGER_SECRET_KEY; then  # present but empty
        sed -Ei "s|^[[:space:]]*(export[[:space:]]+)?EVENTTRIGGER_SECRET_KEY=.*|EVENTTRIGGER_SECRET_KEY=k1:$secret|" "$tmp"
    else
        printf '# Encrypts signing secrets at rest (AES-256-GCM). Keep a copy with the backups:
' >>"$tmp"
        printf '# without it the dumps'"'"' secrets cannot be read. Rotation: docs/security.md.
' >>"$tmp"
        printf 'EVENTTRIGGER_SECRET_KEY=k1:%s\n' "$secret" >>"$tmp"
    fi
    done_list+=("generated EVENTTRIGGER_SECRET_KEY")
fi
add EVENTTRIGGER_HTTP_PORT "" \
    "Host ports of the proxy; empty: 80 and 443. A non-empty HTTPS port goes into the public URL."
add EVENTTRIGGER_HTTPS_PORT ""
add EVENTTRIGGER_BACKUP_KEEP_DAYS 7 "Database dumps older than this many days are deleted."

mv -f "$tmp" "$env_file"
trap - EXIT
shown=${env_file#"$ROOT"/}
printf '%s: %s\n' "$shown" "$(IFS=,; echo "${done_list[*]}" | sed 's/,/, /g')"
