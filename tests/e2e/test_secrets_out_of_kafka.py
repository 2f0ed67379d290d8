"""Signing secrets never travel through Kafka: after a run that fired webhook, scheduled,
test-run, retried and dead-lettered jobs (one trigger mid-rotation), every message on the
job topic and its dead-letter topic is read back and holds no secret, while every
delivery is still signed as its receiver expects (checked with the `standardwebhooks`
reference library). The real process (`--roles=all`), real MariaDB and Kafka."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaConsumer
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from eventtrigger.store.db import Database
from tests.e2e.conftest import (
    Received,
    Sink,
    create_trigger,
    e2e_environ,
    event_rows,
    fire_webhook,
    start_test_run,
    wait_until,
)
from tests.process import EventtriggerProcess

FAST_RETRY = {"max_attempts": 2, "initial_delay": "100ms", "max_delay": "100ms"}


def _verifies(secret: str, delivery: Received) -> bool:
    try:
        Webhook(secret).verify(delivery.body, delivery.headers, json_parse=False)
    except WebhookVerificationError:
        return False
    return True


async def _records(topics: list[str], bootstrap: list[str]) -> dict[str, list[bytes]]:
    """Every record value on `topics`, read from the start to the current end offsets."""
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=f"secrets-audit.{time.monotonic_ns()}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    found: dict[str, list[bytes]] = {t: [] for t in topics}
    try:
        while True:  # until the end of every partition (positions = end offsets)
            batch = await consumer.getmany(timeout_ms=500)
            for tp, records in batch.items():
                found[tp.topic] += [r.value or b"" for r in records]
            partitions = consumer.assignment()
            if partitions and not batch:
                ends = await consumer.end_offsets(list(partitions))
                positions = {p: await consumer.position(p) for p in partitions}
                if all(positions[p] >= ends[p] for p in partitions):
                    break
    finally:
        await consumer.stop()
    return found


def _secret_named_fields(value: Any, path: str = "") -> list[str]:
    """Paths of every field, at any depth, whose name mentions a secret."""
    if isinstance(value, dict):
        named = [f"{path}{k}" for k in value if "secret" in str(k).lower()]
        return named + [p for k, v in value.items() for p in _secret_named_fields(v, f"{k}.")]
    if isinstance(value, list):
        return [p for v in value for p in _secret_named_fields(v, path)]
    return []


async def test_no_job_or_dead_letter_message_holds_a_secret_and_deliveries_stay_signed(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    sink: Sink,
    db: Database,
) -> None:
    env = e2e_environ()
    proc = launch(env=env)
    sink.respond("/retry", (503, {}, 0.0), (200, {}, 0.0))  # one retry, then delivered
    sink.respond("/dead", (500, {}, 0.0))  # every attempt fails: dead-lettered
    async with api(proc) as client:
        hook = await create_trigger(
            client, "webhook", {"endpoint": sink.url("/ok"), "schema": {"type": "object"}}
        )
        retried = await create_trigger(
            client,
            "webhook",
            {"endpoint": sink.url("/retry"), "schema": {"type": "object"}, "retry": FAST_RETRY},
        )
        dead = await create_trigger(
            client,
            "webhook",
            {"endpoint": sink.url("/dead"), "schema": {"type": "object"}, "retry": FAST_RETRY},
        )
        once = await create_trigger(
            client, "time_scheduled", {"endpoint": sink.url("/sched"), "run_in": "1s"}
        )
        rotated = await client.post(
            f"/api/v1/triggers/{hook['id']}/rotate-secret", json={"grace": "1h"}
        )
        assert rotated.status_code == 200, rotated.text
        hook_new = rotated.json()["signing_secret"]
        fired = {
            await fire_webhook(hook["webhook_url"], {"n": 1}): [hook_new, hook["signing_secret"]],
            await fire_webhook(retried["webhook_url"], {"n": 2}): [retried["signing_secret"]],
            await fire_webhook(dead["webhook_url"], {"n": 3}): [dead["signing_secret"]],
        }
        run = await start_test_run(
            client, "webhook", {"endpoint": sink.url("/run"), "schema": {}}, {"n": 4}
        )
        fired[run["event_id"]] = [run["signing_secret"]]
    secrets = [hook_new, *(t["signing_secret"] for t in (hook, retried, dead, once))]
    secrets.append(run["signing_secret"])

    async def all_final() -> list[dict[str, Any]] | None:
        rows = await event_rows(db)
        final = all(r["status"] in ("success", "failure") for r in rows)
        # The dead-letter copy is owed until it is in Kafka (dlq_due_at cleared then).
        sent = all(r["dlq_due_at"] is None for r in rows)
        return rows if len(rows) == 5 and final and sent else None

    rows = {r["id"]: r for r in await wait_until(all_final, timeout=60)}
    [scheduled] = [i for i, r in rows.items() if r["source"] == "scheduled"]
    fired[scheduled] = [once["signing_secret"]]
    statuses = {i: (r["status"], r["attempts"]) for i, r in rows.items()}
    assert sorted(statuses.values()) == sorted(
        [("success", 1), ("success", 2), ("failure", 2), ("success", 1), ("success", 1)]
    )

    # Every attempt was signed with the secrets its receiver holds (both, mid-rotation).
    deliveries = [
        d for d in sink.received if d.path in ("/ok", "/retry", "/dead", "/sched", "/run")
    ]
    assert len(deliveries) == 1 + 2 + 2 + 1 + 1
    for delivery in deliveries:
        expected = fired[delivery.headers["webhook-id"]]
        assert all(_verifies(secret, delivery) for secret in expected), delivery.path

    topic = env["EVENTTRIGGER_KAFKA_TOPIC"]
    found = await _records([topic, f"{topic}.dlq"], env["EVENTTRIGGER_KAFKA_BOOTSTRAP"].split(","))
    jobs, copies = found[topic], found[f"{topic}.dlq"]
    # Every first attempt and both retries went through the job topic; the failure's
    # copy through the dead-letter topic.
    assert len(jobs) >= 5 + 2 and len(copies) >= 1
    assert {orjson.loads(v)["event_id"] for v in jobs} == set(rows)
    for value in jobs + copies:
        assert b"whsec_" not in value
        for secret in secrets:
            assert secret.encode() not in value
            assert secret.removeprefix("whsec_").encode() not in value
        assert _secret_named_fields(orjson.loads(value)) == []
