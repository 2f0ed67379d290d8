#!/usr/bin/env bash
# `make compose-check`: prove the Docker front door on this machine, as a newcomer uses it.
#
#   1. setup     scripts/compose-setup.sh: engine, Compose v2, base image, stand-ins for the
#                official mariadb / apache/kafka images when they cannot be pulled
#   2. build     the product image and the test image; the product image's layers above
#                debian:bookworm-slim must total under 150 MB
#   3. up        `docker compose up -d --wait` (every long-running service healthy)
#   4. readme    every ```sh block of the README's walkthrough, in order, through port 8080
#   5. delivery  the walkthrough's webhook event reached `echo` (its log shows the event id)
#   6. one-shot  a one-shot trigger delivered to echo within 10 s of its time
#   7. health    /health 200 inside every role container
#   8. scale     `--scale worker=2`: both workers deliver part of a burst
#   9. tests     `docker compose run --rm test` (the whole suite in containers) is green
#  10. down      `docker compose down -v` (also on failure), and stop a dockerd that step 1
#                started
#
# It runs under its own compose project name, so a stack you started yourself is never
# touched. On failure it names the step, shows the services' recent logs and exits 1.
# COMPOSE_CHECK_SKIP_TESTS=1 skips step 9 (for a quick local try only).

set -Eeuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export COMPOSE_PROJECT_NAME=${COMPOSE_PROJECT_NAME:-eventtrigger-check}
# The check proves the defaults a fresh clone has: a developer's .env is not read.
export COMPOSE_ENV_FILES=/dev/null
OUT=$ROOT/.local/compose
mkdir -p "$OUT"
API=http://localhost:${EVENTTRIGGER_HOST_PORT:-8080}/api/v1
AUTH="Authorization: Bearer ${EVENTTRIGGER_API_KEYS:-dev-key-change-me}"
STEP=setup
STARTED_STACK=0

say() { printf '==> %s: %s\n' "$STEP" "$*"; }

cleanup() {
    local status=$?
    if [[ $status -ne 0 ]]; then
        echo "compose-check: FAILED at step '$STEP'" >&2
        if [[ $STARTED_STACK -eq 1 ]]; then
            docker compose ps -a >&2 || true
            docker compose logs --no-color --tail 40 >&2 || true
        fi
    fi
    if [[ $STARTED_STACK -eq 1 ]]; then
        STEP=down
        docker compose --profile test down -v --remove-orphans >"$OUT/down.log" 2>&1 \
            || echo "compose-check: 'docker compose down -v' failed, see $OUT/down.log" >&2
    fi
    bash scripts/compose-setup.sh --stop-started || true
    [[ $status -eq 0 ]] && echo "compose-check: all steps passed"
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

# --- 4. the README walkthrough ----------------------------------------------------------
STEP=readme
# The ```sh blocks between the walkthrough markers, in order, as one script.
awk '/<!-- walkthrough:begin -->/{on=1} /<!-- walkthrough:end -->/{on=0}
     on && /^```sh$/{code=1; next} code && /^```$/{code=0; print ""; next} code{print}' \
    README.md >"$OUT/walkthrough.sh"
[[ -s $OUT/walkthrough.sh ]] || fail "no walkthrough found in README.md"
bash -euo pipefail "$OUT/walkthrough.sh" >"$OUT/walkthrough.out" 2>&1 \
    || { tail -30 "$OUT/walkthrough.out" >&2; fail "a README walkthrough command failed (output $OUT/walkthrough.out)"; }
say "$(grep -c . "$OUT/walkthrough.sh") lines of README commands ran (output in $OUT/walkthrough.out)"

# --- 5. the walkthrough's webhook delivery is in echo's log ------------------------------
STEP=delivery
event=$(grep -o '"event_id": *"[0-9A-Z]*"' "$OUT/walkthrough.out" | head -1 | grep -o '[0-9A-Z]\{26\}') \
    || fail "the walkthrough printed no event_id"
echo_has() { docker compose logs --no-color echo | grep -q "\"webhook_id\":\"$1\""; }
wait_until 15 echo_has "$event" || fail "event $event never reached echo's log"
say "event $event delivered to echo"

# --- 6. a one-shot trigger lands within 10 s of its time --------------------------------
STEP=one-shot
created=$(curl -sf -X POST "$API/triggers" -H "$AUTH" -H 'Content-Type: application/json' \
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

# --- 8. two workers share the work -------------------------------------------------------
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
    ids+=("$(curl -sf -X POST "$API/triggers" -H "$AUTH" -H 'Content-Type: application/json' \
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

# --- 9. the test suite in containers -----------------------------------------------------
STEP=tests
if [[ ${COMPOSE_CHECK_SKIP_TESTS:-0} == 1 ]]; then
    say "skipped (COMPOSE_CHECK_SKIP_TESTS=1)"
else
    t0=$SECONDS
    docker compose run --rm test >"$OUT/test.log" 2>&1 \
        || { tail -40 "$OUT/test.log" >&2; fail "docker compose run --rm test failed (log $OUT/test.log)"; }
    say "$(tail -1 "$OUT/test.log") in $((SECONDS - t0)) s"
fi
STEP=down
