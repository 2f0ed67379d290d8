"""Messages on the job topic that cannot be jobs (an unusable URL, a field missing, not
JSON, 2 MB of it) ahead of a real job on one partition: each is copied to the dead-letter
topic with its reason and without any secret, counted in
`eventtrigger_jobs_rejected_total{reason}`, and settled; the worker stays up (same
process, no restart), the real job behind them is delivered, and the group's committed
offset moves past them all.

Runs on the shared broker through the e2e fixtures (a private topic, created here with
room for the 2 MB message)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.partitioner import murmur2

from eventtrigger.store.db import Database
from tests.e2e.conftest import (
    Sink,
    create_trigger,
    e2e_environ,
    fire_webhook,
    log_lines,
    wait_until,
)
from tests.e2e.conftest import api as api  # the e2e fixtures, on the shared services
from tests.e2e.conftest import launch as launch
from tests.e2e.conftest import sink as sink
from tests.process import EventtriggerProcess

PARTITIONS = 4
BIG = 2 * 1024 * 1024
SECRET = "whsec_c2VjcmV0c2VjcmV0"


def _bad_messages() -> list[tuple[str, bytes]]:
    job = {
        "v": 1, "event_id": "01M8EB65ENESE1SX21MRKX0J32", "trigger_id": "01M8EB65ENESE1SX21MRKX0J33",
        "trigger_type": "webhook", "source": "api", "is_test_run": False,
        "scheduled_at": "2026-01-01T00:00:00Z", "fired_at": "2026-01-01T00:00:00Z",
        "attempt": 1, "timeout": "1s", "signing_secret": SECRET,
        "request": {"url": "http://[::1/x", "method": "POST", "headers": {}, "body": None},
        "retry": {"max_attempts": 1, "initial_delay": "1s", "max_delay": "1s"},
    }  # fmt: skip
    without_fired = {k: v for k, v in job.items() if k != "fired_at"}
    without_trigger = {k: v for k, v in job.items() if k != "trigger_id"}
    fine_url = {"request": {**job["request"], "url": "http://127.0.0.1:9/x"}}  # type: ignore[dict-item]
    return [
        ("bad_url", orjson.dumps(job)),
        ("missing_field", orjson.dumps({**without_fired, **fine_url})),
        ("missing_field", orjson.dumps({**without_trigger, **fine_url})),
        ("not_json", b"{not json"),
        ("too_large", b'{"pad": "' + b"x" * BIG + b'"}'),
    ]


async def test_messages_that_are_no_jobs_are_dead_lettered_and_the_partition_moves_on(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    sink: Sink,
    db: Database,
) -> None:
    env = e2e_environ()  # PARTITIONS partitions
    topic, group = env["EVENTTRIGGER_KAFKA_TOPIC"], env["EVENTTRIGGER_KAFKA_GROUP"]
    bootstrap = env["EVENTTRIGGER_KAFKA_BOOTSTRAP"]
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=4 * BIG)
    await producer.start()
    dlq = AIOKafkaConsumer(
        f"{topic}.dlq", bootstrap_servers=bootstrap, auto_offset_reset="earliest",
        group_id=None,
    )  # fmt: skip
    proc: EventtriggerProcess | None = None
    try:
        await admin.create_topics([
            NewTopic(topic, PARTITIONS, 1, topic_configs={"max.message.bytes": str(4 * BIG)}),
            NewTopic(f"{topic}.dlq", PARTITIONS, 1),
        ])  # fmt: skip
        proc = launch(env=env)
        assert proc.proc is not None
        pid = proc.proc.pid
        async with api(proc) as client:
            trigger = await create_trigger(
                client, "webhook", {"endpoint": sink.url("/ok"), "schema": {"type": "object"}}
            )
        # The bad messages go first on the partition the trigger's jobs use.
        partition = (murmur2(str(trigger["id"]).encode()) & 0x7FFFFFFF) % PARTITIONS
        bad = _bad_messages()
        for _, value in bad:
            await producer.send_and_wait(topic, value, partition=partition)
        event_id = await fire_webhook(trigger["webhook_url"], {"after": "the bad ones"})

        [delivered] = await sink.wait_for("/ok", 1, timeout=30)
        assert delivered.headers["webhook-id"] == event_id

        await dlq.start()
        copies: list[dict[str, object]] = []

        async def all_dead_lettered() -> bool:
            batch = await dlq.getmany(timeout_ms=500)
            copies.extend(orjson.loads(r.value) for rs in batch.values() for r in rs)
            return len(copies) >= len(bad)

        await wait_until(all_dead_lettered, timeout=30)
        assert sorted(str(c["reason"]) for c in copies) == sorted(r for r, _ in bad)
        assert all(c["partition"] == partition for c in copies)
        assert not any(SECRET in orjson.dumps(c).decode() for c in copies)
        assert all(len(orjson.dumps(c)) < 16 * 1024 for c in copies)  # capped, not 2 MB

        async with httpx.AsyncClient(base_url=proc.base_url) as anonymous:
            scrape = (await anonymous.get("/metrics")).text
        for reason in {r for r, _ in bad}:
            n = sum(1 for r, _ in bad if r == reason)
            assert f'eventtrigger_jobs_rejected_total{{reason="{reason}"}} {float(n)}' in scrape

        async def committed_past_them() -> bool:
            offsets = await admin.list_consumer_group_offsets(group)
            meta = offsets.get(TopicPartition(topic, partition))
            return meta is not None and meta.offset >= len(bad) + 1

        await wait_until(committed_past_them, timeout=15)
        # The same process all along: it never died of its input.
        assert proc.proc.poll() is None and proc.proc.pid == pid
        rejected = [x for x in log_lines(proc.log_path) if x.get("action") == "job_rejected"]
        assert sorted(str(x["reason"]) for x in rejected) == sorted(r for r, _ in bad)
    finally:
        if proc is not None:
            assert proc.stop() == 0  # a clean exit, before its topics go
        await dlq.stop()
        await producer.stop()
        await admin.delete_topics([topic, f"{topic}.dlq"])
        await admin.close()
