#!/usr/bin/env bash
# `make compose-check`: prove the Docker front door on this machine, as a newcomer uses it.
#
#   1. setup     scripts/compose-setup.sh: engine, Compose v2, base image, stand-ins for the
#                official mariadb / apache/kafka / caddy images when they cannot be pulled
#   2. build     the product image and the test image; the product image's layers above
#                debian:bookworm-slim must total under 150 MB
#   3. up        `docker compose up -d --wait` (every long-running service healthy); the
#                api published on 127.0.0.1 only; its generated key read back
#   4. walkthrough
#                every ```sh block between the walkthrough markers of README.md,
#                docs/getting-started.md and docs/reference/api-examples.md, in that order,
#                as one script, through port 8080
#   5. delivery  the walkthrough's webhook event reached `echo` (its log shows the event id)
#   6. one-shot  a one-shot trigger delivered to echo within 10 s of its time
#   7. health    /health 200 inside every role container
#   8. host      an app on this host (`eventtrigger echo` from .venv on the docker bridge
#                address): a trigger to http://host.docker.internal:<port> is refused by
#                default, and delivered once .env's switch (EVENTTRIGGER_EGRESS_ALLOW_HOSTS
#                += host.docker.internal) is on; the api keeps its key when re-created
#   9. scale     `--scale worker=2`: both workers deliver part of a burst
#  10. tests     `docker compose run --rm test` (unit, integration, API and e2e tests;
#                tests/fault and the source-checkout checks skip there) is green
#  11. client    `docker compose exec api eventtrigger triggers list`, no key given, prints
#                the table: the client in the image finds the api's generated key
#  12. deploy    `docker compose down -v`, then the production overlay: every ```sh block
#                between the deploy-check markers of docs/deploy.md, in order, with
#                DOMAIN empty (localhost,
#                Caddy's own CA): prod-env.sh, up, HTTPS through Caddy, a backup, a
#                restore into fresh volumes; then: only Caddy publishes ports, HTTP
#                redirects, HTTPS needs Caddy's CA, a restore under running roles is
#                refused, the dump's name and mode; then `down -v`
#  13. down      `docker compose down -v` (also on failure), and stop a dockerd that step 1
#                started
#
# It runs under its own compose project names (eventtrigger-check and
# eventtrigger-check-prod), so a stack you started yourself is never touched, and reads
# no .env. The production step writes its env file under .local/compose/deploy/, a dump
# into backups/ and ./caddy-root.crt, and removes what it wrote. It uses ports 80 and 443
# when they are free, else free ones. On failure it names the step, shows the services'
# recent logs and exits 1. COMPOSE_CHECK_SKIP_TESTS=1 skips step 10 (for a quick local
# try only).

set -Eeuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export COMPOSE_PROJECT_NAME=${COMPOSE_PROJECT_NAME:-eventtrigger-check}
PROD_PROJECT=$COMPOSE_PROJECT_NAME-prod
# The check proves the defaults a fresh clone has: a developer's .env is not read, and
# the settings the steps below rely on are not taken from the caller's environment.
export COMPOSE_ENV_FILES=/dev/null
unset COMPOSE_FILE DOMAIN EVENTTRIGGER_API_KEYS EVENTTRIGGER_PUBLIC_URL EVENTTRIGGER_BIND \
    EVENTTRIGGER_EGRESS_ALLOW_HOSTS EVENTTRIGGER_EGRESS_ALLOW_CIDRS \
    EVENTTRIGGER_HTTP_PORT EVENTTRIGGER_HTTPS_PORT EVENTTRIGGER_BACKUP_DIR
OUT=$ROOT/.local/compose
DEPLOY_OUT=$OUT/deploy
PROD_ENV=$DEPLOY_OUT/prod.env
mkdir -p "$OUT"
API=http://localhost:${EVENTTRIGGER_HOST_PORT:-8080}/api/v1
JSON='Content-Type: application/json'
AUTH=""  # set once the api has generated its key (step 3)
STEP=setup
STARTED_STACK=0
STARTED_PROD=0
HOST_ECHO_PID=""
# What the production step writes into the work tree, to remove afterwards.
CA_FILE=$ROOT/caddy-root.crt
CA_SAVED=""
BACKUPS_DIR_MADE=0
declare -A BACKUPS_BEFORE=()

say() { printf '==> %s: %s\n' "$STEP" "$*"; }

# docker compose for the production project (its own name and env file).
prod() { COMPOSE_PROJECT_NAME=$PROD_PROJECT COMPOSE_ENV_FILES=$PROD_ENV docker compose "$@"; }

# Put back what the production step changed in the work tree: its dumps, the CA file.
restore_worktree() {
    local f
    if [[ -d $ROOT/backups ]]; then
        for f in "$ROOT"/backups/eventtrigger-*.sql.gz "$ROOT"/backups/.eventtrigger-*.partial; do
            if [[ -e $f && -z ${BACKUPS_BEFORE[$f]:-} ]]; then rm -f "$f" || true; fi
        done
        if [[ $BACKUPS_DIR_MADE -eq 1 ]]; then rmdir "$ROOT/backups" 2>/dev/null || true; fi
    fi
    if [[ -n $CA_SAVED ]]; then
        mv -f "$CA_SAVED" "$CA_FILE" || true
    else
        rm -f "$CA_FILE" || true
    fi
}

cleanup() {
    local status=$?
    if [[ $status -ne 0 ]]; then
        echo "compose-check: FAILED at step '$STEP'" >&2
        if [[ $STARTED_STACK -eq 1 ]]; then
            docker compose ps -a >&2 || true
            docker compose logs --no-color --tail 40 >&2 || true
        fi
        if [[ $STARTED_PROD -eq 1 ]]; then
            prod ps -a >&2 || true
            prod logs --no-color --tail 40 >&2 || true
        fi
    fi
    if [[ -n $HOST_ECHO_PID ]]; then
        kill "$HOST_ECHO_PID" 2>/dev/null || true
        wait "$HOST_ECHO_PID" 2>/dev/null || true
    fi
    if [[ $STARTED_STACK -eq 1 ]]; then
        STEP=down
        docker compose --profile test down -v --remove-orphans >"$OUT/down.log" 2>&1 \
            || echo "compose-check: 'docker compose down -v' failed, see $OUT/down.log" >&2
    fi
    if [[ $STARTED_PROD -eq 1 ]]; then
        STEP=down
        prod down -v --remove-orphans >"$DEPLOY_OUT/down.log" 2>&1 \
            || echo "compose-check: 'docker compose down -v' of $PROD_PROJECT failed, see $DEPLOY_OUT/down.log" >&2
        restore_worktree
    fi
    bash scripts/compose-setup.sh --stop-started || true
    [[ $status -eq 0 ]] && echo "compose-check: all steps passed in $SECONDS s"
    exit "$status"
}
trap cleanup EXIT
trap 'echo "compose-check: step $STEP: command failed (line $LINENO): $BASH_COMMAND" >&2' ERR

fail() { echo "compose-check: step $STEP: $*" >&2; exit 1; }

# Poll `$@` until it succeeds, at most $1 seconds.
wait_until() {
    local limit=$1 start=$SECONDS
    shift
    until "$@" >/dev/null 2>&1; do
        ((SECONDS - start < limit)) || return 1
        sleep 0.5
    done
}

# The ```sh blocks between `<!-- NAME:begin -->` and `<!-- NAME:end -->` of FILE, in
# order, as one script (a blank line after each block).
doc_script() {
    awk -v b="<!-- $2:begin -->" -v e="<!-- $2:end -->" '
        index($0, b) {on=1} index($0, e) {on=0}
        on && /^```sh$/ {code=1; next} code && /^```$/ {code=0; print ""; next} code {print}' "$1"
}

# Is nothing listening on TCP port $1 of any address?
port_free() {
    python3 -c 'import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))' "$1" 2>/dev/null
}

# A TCP port nothing listens on, on address $1.
free_port() {
    python3 -c 'import socket, sys
s = socket.socket()
s.bind((sys.argv[1], 0))
print(s.getsockname()[1])' "$1"
}

# --- 1. setup -------------------------------------------------------------------------
STEP=setup
bash scripts/compose-setup.sh
command -v jq >/dev/null || {
    say "installing jq (the walkthrough reads JSON with it)"
    apt-get install -y -q jq >"$OUT/jq-apt.log" 2>&1 \
        || { apt-get update -q >>"$OUT/jq-apt.log" 2>&1 && apt-get install -y -q jq >>"$OUT/jq-apt.log" 2>&1; } \
        || fail "could not install jq (see $OUT/jq-apt.log)"
}
if curl -s -o /dev/null --max-time 2 "http://localhost:${EVENTTRIGGER_HOST_PORT:-8080}/"; then
    fail "port ${EVENTTRIGGER_HOST_PORT:-8080} is already in use; stop what listens there first"
fi

# --- 2. build -------------------------------------------------------------------------
STEP=build
docker compose config --quiet
t0=$SECONDS
docker compose --profile test build >"$OUT/build.log" 2>&1 \
    || { tail -30 "$OUT/build.log" >&2; fail "docker compose build failed (log $OUT/build.log)"; }
# The layers above the base are the image's size less the base's (they share those layers).
image_bytes=$(docker image inspect -f '{{.Size}}' eventtrigger:local)
base_bytes=$(docker image inspect -f '{{.Size}}' debian:bookworm-slim)
above=$(((image_bytes - base_bytes) / 1000000))
say "images built in $((SECONDS - t0)) s; eventtrigger:local adds ${above} MB above debian:bookworm-slim"
((above < 150)) || fail "the image's layers above its base total ${above} MB (limit 150 MB)"

# --- 3. up ----------------------------------------------------------------------------
STEP=up
STARTED_STACK=1
t0=$SECONDS
docker compose up -d --wait --wait-timeout 300 >"$OUT/up.log" 2>&1 \
    || { tail -30 "$OUT/up.log" >&2; fail "docker compose up -d --wait failed"; }
say "every service healthy after $((SECONDS - t0)) s"
# A fresh clone is not an open service: the api is published on loopback only.
published=$(docker port "$(docker compose ps -q api)" 8080/tcp)
[[ $published =~ ^127\.0\.0\.1:[0-9]+$ ]] || fail "the api is published on '$published', not only on 127.0.0.1"
# No constant key: the api generated one, which the README's first block reads the same way.
KEY=$(docker compose exec -T api eventtrigger keys show-bootstrap) \
    || fail "eventtrigger keys show-bootstrap failed in the api container"
[[ $KEY =~ ^etk_[A-Za-z0-9_-]{20,}$ ]] || fail "the generated key does not look like etk_<20+ characters>"
AUTH="Authorization: Bearer $KEY"
[[ $(curl -s -o /dev/null -w '%{http_code}' "$API/triggers" -H "$AUTH") == 200 ]] \
    || fail "the generated key is not accepted by the api"
say "api on $published only, with its generated key (etk_..., ${#KEY} characters)"

# --- 4. the walkthrough of the README and the docs ---------------------------------------
STEP=walkthrough
# The pages in the order they run (scripts/walkthrough.py lists the same ones): later
# blocks use the variables earlier ones set, across pages too.
walkthrough_pages=(README.md docs/getting-started.md docs/reference/api-examples.md)
: >"$OUT/walkthrough.sh"
for page in "${walkthrough_pages[@]}"; do
    doc_script "$page" walkthrough >"$OUT/walkthrough.part"
    [[ -s $OUT/walkthrough.part ]] || fail "no walkthrough found in $page"
    cat "$OUT/walkthrough.part" >>"$OUT/walkthrough.sh"
done
bash -euo pipefail "$OUT/walkthrough.sh" >"$OUT/walkthrough.out" 2>&1 \
    || { tail -30 "$OUT/walkthrough.out" >&2; fail "a walkthrough command failed (output $OUT/walkthrough.out)"; }
say "$(grep -c . "$OUT/walkthrough.sh") lines of commands from ${walkthrough_pages[*]} ran (output in $OUT/walkthrough.out)"

# --- 5. the walkthrough's webhook delivery is in echo's log ------------------------------
STEP=delivery
event=$(grep -o '"event_id": *"[0-9A-Z]*"' "$OUT/walkthrough.out" | head -1 | grep -o '[0-9A-Z]\{26\}') \
    || fail "the walkthrough printed no event_id"
echo_has() { docker compose logs --no-color echo | grep -q "\"webhook_id\":\"$1\""; }
wait_until 15 echo_has "$event" || fail "event $event never reached echo's log"
say "event $event delivered to echo"

# --- 6. a one-shot trigger lands within 10 s of its time --------------------------------
STEP=one-shot
created=$(curl -sf -X POST "$API/triggers" -H "$AUTH" -H "$JSON" \
    -d '{"name": "compose-check one-shot", "type": "time_scheduled",
         "config": {"endpoint": "http://echo:8080/one-shot", "run_in": "3s"}}')
trigger=$(jq -r .id <<<"$created")
one_shot_done() {
    curl -sf "$API/events?trigger_id=$trigger" -H "$AUTH" | jq -e '.items[0].status == "success"'
}
wait_until 20 one_shot_done || fail "the one-shot trigger $trigger was not delivered"
late=$(curl -sf "$API/events?trigger_id=$trigger" -H "$AUTH" | python3 -c '
import json, sys
from datetime import datetime
e = json.load(sys.stdin)["items"][0]
t = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))
print(round((t(e["delivered_at"]) - t(e["scheduled_at"])).total_seconds(), 3))')
python3 -c "import sys; sys.exit(0 if float('$late') <= 10 else 1)" \
    || fail "delivered ${late} s after its time (limit 10 s)"
one_shot_event=$(curl -sf "$API/events?trigger_id=$trigger" -H "$AUTH" | jq -r '.items[0].id')
wait_until 10 echo_has "$one_shot_event" || fail "echo never logged the one-shot's delivery"
say "one-shot delivered to echo, ${late} s after its time"

# --- 7. /health inside every role container --------------------------------------------
STEP=health
for service in api scheduler worker retention; do
    for id in $(docker compose ps -q "$service"); do
        docker exec "$id" eventtrigger healthcheck >"$OUT/health-$service.json" 2>&1 \
            || { cat "$OUT/health-$service.json" >&2; fail "$service ($id) /health is not 200"; }
        jq -e --arg r "$service" '.status == "ok" and (.roles | keys == [$r])' \
            "$OUT/health-$service.json" >/dev/null \
            || fail "$service's /health does not report its own role: $(cat "$OUT/health-$service.json")"
    done
done
say "api, scheduler, worker and retention each answer /health 200 for their own role"

# --- 8. an app on this host, through host.docker.internal ------------------------------
STEP=host
t0=$SECONDS
# The address the containers reach this host at (host-gateway: the docker0 bridge's).
gateway=$(docker compose exec -T worker getent ahostsv4 host.docker.internal | awk 'NR == 1 {print $1}')
[[ $gateway =~ ^[0-9]+(\.[0-9]+){3}$ ]] || fail "host.docker.internal does not resolve in the worker ('$gateway')"
if [[ ! -x .venv/bin/eventtrigger ]]; then
    say "making .venv (make install) for the receiver on the host"
    make install >"$OUT/venv.log" 2>&1 || { tail -20 "$OUT/venv.log" >&2; fail "make install failed"; }
fi
host_port=$(free_port "$gateway")
# The app: listening on the bridge address, as the README tells users (not 127.0.0.1,
# which the containers cannot reach).
.venv/bin/eventtrigger echo --host "$gateway" --port "$host_port" >"$OUT/host-echo.log" 2>&1 &
HOST_ECHO_PID=$!
wait_until 15 curl -sf "http://$gateway:$host_port/health" \
    || { cat "$OUT/host-echo.log" >&2; fail "eventtrigger echo did not start on $gateway:$host_port"; }
host_url=http://host.docker.internal:$host_port
# Off by default: the SSRF guard refuses the endpoint, when the trigger is saved (4xx
# naming it) or, where the save does not resolve names, at delivery (the event fails
# with the guard's reason and the app receives nothing).
code=$(curl -s -o "$OUT/host-off.json" -w '%{http_code}' -X POST "$API/triggers" -H "$AUTH" -H "$JSON" \
    -d "{\"name\": \"host app (off)\", \"type\": \"time_scheduled\",
         \"config\": {\"endpoint\": \"$host_url/off\", \"run_in\": \"1s\",
                     \"retry\": {\"max_attempts\": 1}}}")
if [[ $code == 4?? ]]; then
    grep -q 'host.docker.internal' "$OUT/host-off.json" \
        || fail "with the switch off, the refusal does not name the URL: $(cat "$OUT/host-off.json")"
    say "switch off: saving a trigger to $host_url refused ($code)"
elif [[ $code == 201 ]]; then
    off_trigger=$(jq -r .id "$OUT/host-off.json")
    off_failed() {
        curl -sf "$API/events?trigger_id=$off_trigger" -H "$AUTH" >"$OUT/host-off-event.json" \
            && jq -e '.items[0].status == "failure"' "$OUT/host-off-event.json"
    }
    wait_until 20 off_failed || fail "with the switch off, the delivery to $host_url did not fail"
    jq -e '.items[0].last_error | test("EGRESS_ALLOW")' "$OUT/host-off-event.json" >/dev/null \
        || fail "with the switch off, the delivery failed for another reason: $(jq -c '.items[0].last_error' "$OUT/host-off-event.json")"
    ! grep -q '"path":"/off"' "$OUT/host-echo.log" || fail "with the switch off, the app received a delivery"
    say "switch off: delivery to $host_url refused by the SSRF guard ($(jq -r '.items[0].last_error' "$OUT/host-off-event.json" | cut -c1-80)...)"
else
    fail "with the switch off, saving a trigger to $host_url answered $code: $(cat "$OUT/host-off.json")"
fi
# The switch: .env's EVENTTRIGGER_EGRESS_ALLOW_HOSTS, here from the environment, for the
# two services that read it. Kept for the later steps, so they do not re-create them.
export EVENTTRIGGER_EGRESS_ALLOW_HOSTS=echo,host.docker.internal
docker compose up -d --wait --wait-timeout 120 --no-deps api worker >"$OUT/host-up.log" 2>&1 \
    || { tail -20 "$OUT/host-up.log" >&2; fail "docker compose up -d api worker (switch on) failed"; }
[[ $(docker compose exec -T api eventtrigger keys show-bootstrap) == "$KEY" ]] \
    || fail "the re-created api has another key: the api-keys volume did not keep it"
code=$(curl -s -o "$OUT/host-on.json" -w '%{http_code}' -X POST "$API/triggers" -H "$AUTH" -H "$JSON" \
    -d "{\"name\": \"host app\", \"type\": \"time_scheduled\",
         \"config\": {\"endpoint\": \"$host_url/host-app\", \"run_in\": \"1s\"}}")
[[ $code == 201 ]] || fail "with the switch on, saving a trigger to $host_url answered $code: $(cat "$OUT/host-on.json")"
wait_until 20 grep -q '"path":"/host-app"' "$OUT/host-echo.log" \
    || fail "the delivery to $host_url never reached the receiver on the host (log $OUT/host-echo.log)"
kill "$HOST_ECHO_PID"
wait "$HOST_ECHO_PID" 2>/dev/null || true
HOST_ECHO_PID=""
say "switch on: delivered to the app on $gateway:$host_port; the api kept its key ($((SECONDS - t0)) s)"

# --- 9. two workers share the work -------------------------------------------------------
STEP=scale
docker compose up -d --wait --wait-timeout 180 --scale worker=2 >"$OUT/scale.log" 2>&1 \
    || { tail -20 "$OUT/scale.log" >&2; fail "--scale worker=2 failed"; }
mapfile -t workers < <(docker compose ps -q worker)
((${#workers[@]} == 2)) || fail "expected 2 worker containers, found ${#workers[@]}"
# Both workers must own partitions before the burst, or one may rightly get none of it.
group_members() {
    docker compose exec -T kafka /opt/kafka/bin/kafka-consumer-groups.sh \
        --bootstrap-server localhost:9092 --describe --group eventtrigger-workers 2>/dev/null \
        | awk '$1 == "eventtrigger-workers" && $7 != "-" {print $7}' | sort -u | wc -l
}
both_assigned() { [[ $(group_members) -ge 2 ]]; }
wait_until 90 both_assigned || fail "the consumer group never had two members with partitions"
ids=()
for i in $(seq 1 40); do
    ids+=("$(curl -sf -X POST "$API/triggers" -H "$AUTH" -H "$JSON" \
        -d "{\"name\": \"scale $i\", \"type\": \"time_scheduled\",
             \"config\": {\"endpoint\": \"http://echo:8080/scale\", \"run_in\": \"4s\"}}" | jq -r .id)")
done
burst_done() {
    [[ $(docker compose logs --no-color echo | grep -c '"path":"/scale"') -ge 40 ]]
}
wait_until 40 burst_done || fail "the 40-trigger burst did not all reach echo"
for id in "${workers[@]}"; do
    n=$(docker logs "$id" 2>&1 | grep -c '"action": *"delivered"' || true)
    ((n > 0)) || fail "worker $id delivered nothing of the burst: both workers must consume"
    say "worker ${id:0:12} delivered $n jobs"
done

# --- 10. the test suite in containers ----------------------------------------------------
STEP=tests
if [[ ${COMPOSE_CHECK_SKIP_TESTS:-0} == 1 ]]; then
    say "skipped (COMPOSE_CHECK_SKIP_TESTS=1)"
else
    t0=$SECONDS
    docker compose run --rm test >"$OUT/test.log" 2>&1 \
        || { tail -40 "$OUT/test.log" >&2; fail "docker compose run --rm test failed (log $OUT/test.log)"; }
    say "$(tail -1 "$OUT/test.log") in $((SECONDS - t0)) s"
fi

# --- 11. the client in the image, with the api's generated key ---------------------------
STEP=client
# No key given (the variable set empty, no flag, no profile in the image): the client must
# take the key the api generated from EVENTTRIGGER_BOOTSTRAP_KEY_FILE, and the URL from
# its default, the api in the same container.
created=$(curl -sf -X POST "$API/triggers" -H "$AUTH" -H "$JSON" \
    -d '{"name": "compose-check client", "type": "webhook",
         "config": {"endpoint": "http://echo:8080/client", "schema": {"type": "object"}}}')
client_trigger=$(jq -r .id <<<"$created")
docker compose exec -T -e EVENTTRIGGER_API_KEY= api eventtrigger triggers list \
    >"$OUT/client.out" 2>"$OUT/client.err" \
    || { cat "$OUT/client.err" >&2; fail "eventtrigger triggers list in the api container failed"; }
head -1 "$OUT/client.out" | grep -Eq '^ID +NAME ' \
    || fail "eventtrigger triggers list printed no table: $(head -3 "$OUT/client.out")"
grep -Eq "^$client_trigger +compose-check client " "$OUT/client.out" \
    || fail "the table does not list trigger $client_trigger (output $OUT/client.out)"
say "eventtrigger triggers list in the api container: a table of $(($(grep -c . "$OUT/client.out") - 1)) trigger(s), with the generated key"

# --- 12. the production overlay, as docs/deploy.md runs it ------------------------------
STEP=deploy
t0=$SECONDS
# The development stack goes first: it is done, and the production one needs the memory.
docker compose --profile test down -v --remove-orphans >"$OUT/down.log" 2>&1 \
    || { tail -20 "$OUT/down.log" >&2; fail "docker compose down -v failed"; }
STARTED_STACK=0
deploy_doc=docs/deploy.md
rm -rf "$DEPLOY_OUT"
mkdir -p "$DEPLOY_OUT"
doc_script "$deploy_doc" deploy-check >"$DEPLOY_OUT/steps.sh"
[[ -s $DEPLOY_OUT/steps.sh ]] || fail "no deploy-check section in $deploy_doc"
# Ports 80/443 when free (as on a fresh VM), else any free ones (the environment wins
# over the env file, as it does for users).
http_port=80 https_port=443
port_free 80 || http_port=$(free_port 0.0.0.0)
port_free 443 || https_port=$(free_port 0.0.0.0)
[[ $http_port == 80 ]] || export EVENTTRIGGER_HTTP_PORT=$http_port
[[ $https_port == 443 ]] || export EVENTTRIGGER_HTTPS_PORT=$https_port
# The work tree as it was, so that only what this step adds is removed afterwards.
if [[ -d backups ]]; then
    for f in backups/eventtrigger-*.sql.gz; do [[ -e $f ]] && BACKUPS_BEFORE[$ROOT/$f]=1; done
else
    BACKUPS_DIR_MADE=1
fi
if [[ -e $CA_FILE ]]; then
    CA_SAVED=$DEPLOY_OUT/caddy-root.crt.saved
    cp -p "$CA_FILE" "$CA_SAVED"
fi
STARTED_PROD=1
say "running $(grep -c . "$DEPLOY_OUT/steps.sh") lines of $deploy_doc (HTTP $http_port, HTTPS $https_port)"
# The blocks as a user runs them: from the repo root, DOMAIN empty, the env file the
# production project reads (scripts/prod-env.sh writes it); the step's time is bounded.
if ! COMPOSE_PROJECT_NAME=$PROD_PROJECT COMPOSE_ENV_FILES=$PROD_ENV DOMAIN="" \
    timeout 900 bash -euo pipefail -x "$DEPLOY_OUT/steps.sh" >"$DEPLOY_OUT/steps.out" 2>&1; then
    tail -40 "$DEPLOY_OUT/steps.out" >&2
    fail "a $deploy_doc command failed (output $DEPLOY_OUT/steps.out)"
fi
say "$deploy_doc ran in $((SECONDS - t0)) s (output $DEPLOY_OUT/steps.out)"
grep -q '^DB_PASSWORD=[0-9a-f]\{32\}$' "$PROD_ENV" || fail "scripts/prod-env.sh wrote no 32-hex-digit DB_PASSWORD"
! grep -q "$(sed -n 's/^DB_PASSWORD=//p' "$PROD_ENV")" "$DEPLOY_OUT/steps.out" \
    || fail "the database password appears in the commands' output"
# Only caddy publishes ports, and only HTTP and HTTPS ("<port>/tcp <host port>" pairs,
# once per address family).
for service in $(prod ps --services); do
    ports=$(docker port "$(prod ps -q "$service" | head -1)" | sed -E 's/ -> .*:/ /' | sort -u | tr '\n' ' ')
    if [[ $service == caddy ]]; then
        [[ $ports == "443/tcp $https_port 80/tcp $http_port " ]] \
            || fail "caddy publishes '$ports', expected 80 -> $http_port and 443 -> $https_port"
    else
        [[ -z $ports ]] || fail "$service publishes '$ports'; only caddy may"
    fi
done
base=https://localhost:$https_port
prod cp caddy:/data/caddy/pki/authorities/local/root.crt "$DEPLOY_OUT/root.crt" >/dev/null
curl -fsS --cacert "$DEPLOY_OUT/root.crt" "$base/health" | jq -e '.status == "ok"' >/dev/null \
    || fail "$base/health through caddy, trusting its CA, is not ok"
if curl -s -o /dev/null --max-time 10 "$base/health"; then
    fail "$base answered without Caddy's CA being trusted: that is not Caddy's certificate"
fi
code=$(curl -s -o /dev/null -w '%{http_code}' "http://localhost:$http_port/health")
[[ $code == 30[178] ]] || fail "http://localhost:$http_port/health answered $code, not a redirect to HTTPS"
# The dump: its name, mode 0600, listed; a restore under running roles is refused.
dump=$(find backups -maxdepth 1 -name 'eventtrigger-*.sql.gz' -newer "$PROD_ENV" -printf '%f\n' | sort | tail -1)
[[ $dump =~ ^eventtrigger-[0-9]{8}T[0-9]{6}Z\.sql\.gz$ ]] || fail "no dump named eventtrigger-YYYYmmddTHHMMSSZ.sql.gz in backups/"
[[ $(stat -c %a "backups/$dump") == 600 ]] || fail "backups/$dump is mode $(stat -c %a "backups/$dump"), not 600"
prod run --rm -T backup list 2>/dev/null | grep -q "^$dump " || fail "\`backup list\` does not show $dump"
if prod run --rm -T backup restore "backups/$dump" >"$DEPLOY_OUT/restore-refused.out" 2>&1; then
    fail "a restore while the roles run was not refused"
fi
grep -q 'other sessions' "$DEPLOY_OUT/restore-refused.out" \
    || fail "the refused restore did not say why: $(cat "$DEPLOY_OUT/restore-refused.out")"
prod down -v --remove-orphans >"$DEPLOY_OUT/down.log" 2>&1 \
    || { tail -20 "$DEPLOY_OUT/down.log" >&2; fail "docker compose down -v of the production stack failed"; }
STARTED_PROD=0
restore_worktree
say "HTTPS via Caddy's CA, redirect from HTTP, only caddy published, dump $dump restored; down -v ($((SECONDS - t0)) s)"
STEP=down
