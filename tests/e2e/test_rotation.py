"""Secret rotation and webhook URL tokens end to end: the real process (`--roles=all`),
real MariaDB and Kafka, and a receiver that verifies with the `standardwebhooks`
reference library, as a user's endpoint would."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
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
    wait_for_event,
    wait_until,
)
from tests.process import EventtriggerProcess


def _verifies(secret: str, delivery: Received) -> bool:
    try:
        Webhook(secret).verify(delivery.body, delivery.headers, json_parse=False)
    except WebhookVerificationError:
        return False
    return True


def _signatures(delivery: Received) -> list[str]:
    return delivery.headers["webhook-signature"].split(" ")


async def _rotate(client: httpx.AsyncClient, trigger_id: str, grace: str) -> dict[str, Any]:
    response = await client.post(
        f"/api/v1/triggers/{trigger_id}/rotate-secret", json={"grace": grace}
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def _epoch(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


async def test_both_secrets_verify_during_the_grace_and_only_the_new_one_after_it(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    sink: Sink,
    db: Database,
) -> None:
    """One event fired inside a 3 s grace: its first attempt (inside the grace) carries
    both signatures; its retry, held back past the expiry by Retry-After, carries only
    the new one, although the job was built while the old secret still signed."""
    sink.respond("/rot", (503, {"Retry-After": "5"}, 0.0), (200, {}, 0.0))
    proc = launch()
    async with api(proc) as client:
        trigger = await create_trigger(
            client,
            "webhook",
            {
                "endpoint": sink.url("/rot"),
                "schema": {"type": "object"},
                "retry": {"max_attempts": 2, "initial_delay": "100ms"},
            },
        )
        old = trigger["signing_secret"]
        rotation = await _rotate(client, trigger["id"], "3s")
    new, expires = rotation["signing_secret"], _epoch(rotation["previous_secret_expires_at"])
    event_id = await fire_webhook(trigger["webhook_url"], {"order_id": 42})

    first, retry = await sink.wait_for("/rot", 2, timeout=30)

    assert first.at < expires  # precondition: delivered within the grace
    assert len(_signatures(first)) == 2
    assert _verifies(new, first) and _verifies(old, first)
    assert retry.at >= expires and retry.headers["webhook-id"] == event_id
    assert len(_signatures(retry)) == 1
    assert _verifies(new, retry) and not _verifies(old, retry)
    row = await wait_for_event(db, event_id)
    assert (row["status"], row["attempts"]) == ("success", 2)


async def test_scheduled_firings_and_test_runs_carry_both_signatures_during_the_grace(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    sink: Sink,
    db: Database,
) -> None:
    """The scheduler's snapshot and a saved trigger's test run take the previous secret
    too (the grace is long enough that no attempt can fall after it)."""
    proc = launch()
    async with api(proc) as client:
        once = await create_trigger(
            client,
            "time_scheduled",
            {"endpoint": sink.url("/once"), "run_in": "2s", "payload": {"report": "daily"}},
        )
        rotation = await _rotate(client, once["id"], "1h")
        tested = await client.post(f"/api/v1/triggers/{once['id']}/test")
        assert tested.status_code == 202, tested.text

    deliveries = await sink.wait_for("/once", 2)

    for delivery in deliveries:
        assert len(_signatures(delivery)) == 2
        assert _verifies(rotation["signing_secret"], delivery)
        assert _verifies(once["signing_secret"], delivery)
    rows = await event_rows(db)
    assert sorted(r["source"] for r in rows) == ["manual-test", "scheduled"]


async def _kafka_records(env: dict[str, str]) -> list[tuple[bytes, bytes]]:
    """(key, value) of every record on the process's job topic and its DLQ so far."""
    topic = env["EVENTTRIGGER_KAFKA_TOPIC"]
    consumer = AIOKafkaConsumer(
        topic,
        f"{topic}.dlq",
        bootstrap_servers=env["EVENTTRIGGER_KAFKA_BOOTSTRAP"].split(","),
        group_id=f"{topic}.audit.{time.monotonic_ns()}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    records: list[tuple[bytes, bytes]] = []
    try:
        while True:  # until the end of every partition (positions = end offsets)
            batch = await consumer.getmany(timeout_ms=500)
            records += [(r.key or b"", r.value or b"") for rs in batch.values() for r in rs]
            partitions = consumer.assignment()
            if partitions and not batch:
                ends = await consumer.end_offsets(list(partitions))
                positions = {p: await consumer.position(p) for p in partitions}
                if all(positions[p] >= ends[p] for p in partitions):
                    break
    finally:
        await consumer.stop()
    return records


async def test_no_log_line_or_kafka_key_holds_a_webhook_token_or_secret(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    sink: Sink,
    db: Database,
) -> None:
    """Trigger ids are not secrets, tokens and signing secrets are: every log line (at
    DEBUG) and every Kafka key is free of both, and no job message holds a token or a
    secret (test_secrets_out_of_kafka.py checks every kind of job for secrets)."""
    env = e2e_environ(EVENTTRIGGER_LOG_LEVEL="DEBUG")
    proc = launch(env=env)
    sink.respond("/fails", (404, {}, 0.0))  # a final failure: a DLQ copy too
    async with api(proc) as client, httpx.AsyncClient() as anonymous:
        hook = await create_trigger(
            client, "webhook", {"endpoint": sink.url("/ok"), "schema": {"type": "object"}}
        )
        failing = await create_trigger(
            client, "webhook", {"endpoint": sink.url("/fails"), "schema": {"type": "object"}}
        )
        once = await create_trigger(
            client, "time_scheduled", {"endpoint": sink.url("/ok"), "run_in": "1s"}
        )
        tokens = [t["webhook_url"].rsplit("/", 1)[1] for t in (hook, failing)]
        secrets = [t["signing_secret"] for t in (hook, failing, once)]
        moved = await client.post(f"/api/v1/triggers/{hook['id']}/rotate-webhook-url")
        tokens.append(moved.json()["webhook_url"].rsplit("/", 1)[1])
        for trigger in (hook, once):
            secrets.append((await _rotate(client, trigger["id"], "1h"))["signing_secret"])
        retired = await anonymous.post(hook["webhook_url"], json={})
        assert retired.status_code == 404
        events = [
            await fire_webhook(moved.json()["webhook_url"], {"n": 1}),
            await fire_webhook(failing["webhook_url"], {"n": 2}),
        ]
        run = await start_test_run(
            client, "webhook", {"endpoint": sink.url("/ok"), "schema": {}}, {}
        )
        secrets.append(run["signing_secret"])
        events.append(run["event_id"])
    await sink.wait_for("/ok", 3)  # two webhook-ish deliveries and the one-shot
    for event_id in events:
        await wait_for_event(db, event_id)

    async def all_final() -> bool:
        rows = await event_rows(db)
        return len(rows) == 4 and all(r["status"] in ("success", "failure") for r in rows)

    await wait_until(all_final)

    records = await _kafka_records(env)
    assert len(records) >= 4 + 1  # every job, and the failure's DLQ copy
    for key, value in records:
        for secret in (*tokens, *secrets):
            assert secret.encode() not in key
        for token in (*tokens, *secrets):
            assert token.encode() not in value
    log = proc.log_path.read_text()
    assert hook["id"] in log  # ids are logged (the check below is not vacuous)
    for secret in (*tokens, *secrets):
        assert secret not in log
