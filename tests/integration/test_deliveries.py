"""Event rows as the delivery queue, against the real database: a worker's claim is a real
lease (owner and expiry respected by other claimers), outcomes are stored in batches and
once per attempt, and a job handed back is due again at the time given. And what the jobs
of a webhook call carry, read back from the real Kafka: no secret past its grace."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from eventtrigger.config import Settings
from eventtrigger.domain.jobs import NewEvent, decode_job, snapshot_secrets, with_secrets
from eventtrigger.domain.signing import job_keys
from eventtrigger.ids import new_id
from eventtrigger.store import deliveries
from eventtrigger.store.db import Database, read_json, read_time
from eventtrigger.store.deliveries import Attempt
from eventtrigger.store.events import insert_events
from tests.conftest import TEST_API_KEY
from tests.conftest import test_environ as service_environ  # (not collected as a test)
from tests.process import EventtriggerProcess

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=10)
REQUEST = {
    "url": "https://example.com/hook",
    "method": "POST",
    "headers": {},
    "timeout": "10s",
    "retry": {"max_attempts": 5, "initial_delay": "2s", "max_delay": "5m"},
    "signing_secret": "whsec_c2VjcmV0",
}


async def _events(db: Database, n: int) -> list[str]:
    events = [
        NewEvent(
            id=new_id(NOW),
            trigger_id=None,
            trigger_type="webhook",
            source="api",
            scheduled_at=NOW,
            fired_at=NOW,
            payload={"n": i},
            request=REQUEST,
            next_attempt_at=NOW + LEASE,
        )
        for i in range(n)
    ]
    async with db.transaction() as tx:
        await insert_events(tx, events, NOW)
    return [e.id for e in events]


async def _claim(db: Database, ids: list[str], owner: str, at: datetime) -> set[str]:
    async with db.transaction() as tx:
        return await deliveries.claim(tx, dict.fromkeys(ids, 1), owner, at, at + LEASE)


async def _row(db: Database, event_id: str) -> dict[str, Any]:
    async with db.connection() as tx:
        row = await tx.fetch_one("SELECT * FROM event_logs WHERE id = %s", (event_id,))
    assert row is not None
    return row


async def test_a_lease_keeps_other_workers_off_until_it_expires(db: Database) -> None:
    ids = await _events(db, 3)
    assert await _claim(db, ids, "worker-a", NOW) == set(ids)
    # Worker b gets the same jobs (a redelivery after a rebalance): a holds them.
    assert await _claim(db, ids, "worker-b", NOW + LEASE / 2) == set()
    # a renews; b still may not take them after the first lease would have run out.
    async with db.transaction() as tx:
        await deliveries.renew(tx, ids, "worker-a", NOW + LEASE / 2 + LEASE)
    assert await _claim(db, ids, "worker-b", NOW + LEASE + timedelta(seconds=1)) == set()
    # Once the lease has run out (a dead worker), b takes them over.
    later = NOW + 2 * LEASE
    assert await _claim(db, ids, "worker-b", later) == set(ids)
    row = await _row(db, ids[0])
    assert row["lease_owner"] == "worker-b"
    assert read_time(row["next_attempt_at"]) == later + LEASE


async def test_the_re_publisher_does_not_take_a_leased_job(db: Database) -> None:
    [event_id] = await _events(db, 1)
    await _claim(db, [event_id], "worker-a", NOW)
    async with db.transaction() as tx:
        assert await deliveries.take_due(tx, NOW + LEASE / 2, NOW + 2 * LEASE, 10) == []
    async with db.transaction() as tx:
        due = await deliveries.take_due(tx, NOW + LEASE, NOW + 2 * LEASE, 10)
    assert [r["id"] for r in due] == [event_id]
    assert (await _row(db, event_id))["lease_owner"] is None


async def test_outcomes_in_one_batch_are_stored_once_per_attempt(db: Database) -> None:
    ids = await _events(db, 3)
    await _claim(db, ids, "worker-a", NOW)
    done = NOW + timedelta(seconds=1)
    retry_at = NOW + timedelta(seconds=5)
    batch = [
        Attempt(ids[0], 1, "success", 200, None, done, None),
        Attempt(ids[1], 1, "retrying", 503, "HTTP 503: busy", None, retry_at),
        Attempt(ids[2], 1, "failure", 404, "HTTP 404: gone", None, None),
    ]
    async with db.transaction() as tx:
        assert await deliveries.record_attempts(tx, batch, done) == [True, True, True]
    # The same outcomes again (a duplicate job), and attempt 3 of a row at attempt 1.
    again = [*batch, Attempt(ids[1], 3, "success", 200, None, done, None)]
    async with db.transaction() as tx:
        assert await deliveries.record_attempts(tx, again, done) == [False] * 4
    first, second, third = [await _row(db, i) for i in ids]
    assert (first["status"], first["attempts"], first["last_status_code"]) == ("success", 1, 200)
    assert read_time(first["delivered_at"]) == done
    assert first["lease_owner"] is None
    assert (second["status"], second["attempts"], second["last_error"]) == (
        "retrying",
        1,
        "HTTP 503: busy",
    )
    assert read_time(second["next_attempt_at"]) == retry_at
    assert second["delivered_at"] is None
    assert (third["status"], third["last_status_code"]) == ("failure", 404)


async def test_a_job_handed_back_is_due_at_the_time_given_and_free_to_claim(db: Database) -> None:
    [event_id] = await _events(db, 1)
    await _claim(db, [event_id], "worker-a", NOW)
    soon = NOW + timedelta(milliseconds=200)
    async with db.transaction() as tx:
        await deliveries.requeue(tx, [event_id], "worker-a", soon)
    row = await _row(db, event_id)
    assert row["lease_owner"] is None
    assert read_time(row["next_attempt_at"]) == soon
    # Any worker may take it at once (a redelivery), or the re-publisher at `soon`.
    assert await _claim(db, [event_id], "worker-b", NOW) == {event_id}


async def test_the_re_publisher_takes_due_jobs_of_both_kinds_by_deadline_up_to_its_limit(
    db: Database,
) -> None:
    ids = await _events(db, 6)
    plan = [  # (status, next_attempt_at): four pending and two retries, one not yet due
        ("pending", NOW + 3 * LEASE),
        ("pending", NOW + LEASE),
        ("pending", NOW + 2 * LEASE),
        ("retrying", NOW + 2 * LEASE),
        ("retrying", NOW + LEASE),
        ("retrying", NOW + 9 * LEASE),
    ]
    async with db.transaction() as tx:
        for event_id, (status, due_at) in zip(ids, plan, strict=True):
            await tx.execute(
                "UPDATE event_logs SET status = %s, next_attempt_at = %s WHERE id = %s",
                (status, due_at, event_id),
            )
    at = NOW + 3 * LEASE
    async with db.transaction() as tx:
        first = [r["id"] for r in await deliveries.take_due(tx, at, at + LEASE, 4)]
    async with db.transaction() as tx:
        second = [r["id"] for r in await deliveries.take_due(tx, at, at + LEASE, 4)]

    # Both statuses in one deadline order, so a due retry never waits behind pending
    # rows (equal deadlines in either order).
    assert set(first[:2]) == {ids[1], ids[4]}
    assert set(first[2:]) == {ids[2], ids[3]}
    assert second == [ids[0]]  # the rest that was due; ids[5] is not due yet


# ---- a webhook call after a rotation's grace ------------------------------------------------


async def _jobs_on(settings: Settings, topic: str, event_ids: set[str]) -> dict[str, bytes]:
    """The raw job messages for `event_ids` on `topic`, read from the start (up to 20 s)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=list(settings.kafka_bootstrap),
        group_id=f"{topic}.reader",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    found: dict[str, bytes] = {}
    try:
        async with asyncio.timeout(20):
            while set(found) != event_ids:
                batch = await consumer.getmany(timeout_ms=500)
                for record in (r for rs in batch.values() for r in rs):
                    job = orjson.loads(record.value)
                    if job["event_id"] in event_ids:
                        found[job["event_id"]] = record.value
    finally:
        await consumer.stop()
    return found


async def test_calls_around_a_rotation_publish_no_secret_and_sign_with_the_new_one_after_it(
    migrated: Settings, db: Database, tmp_path: Path
) -> None:
    topic = f"eventtrigger.test.grace.{secrets.token_hex(4)}"
    env = service_environ(
        EVENTTRIGGER_KAFKA_TOPIC=topic, EVENTTRIGGER_EGRESS_ALLOW_CIDRS="127.0.0.0/8"
    )
    api = EventtriggerProcess(env, "api", tmp_path / "api.log")
    api.start()
    try:
        auth = {"Authorization": f"Bearer {TEST_API_KEY}"}
        async with httpx.AsyncClient(base_url=api.base_url, headers=auth, timeout=10) as client:
            created = await client.post("/api/v1/triggers", json={
                "name": "t", "type": "webhook",
                "config": {"endpoint": "http://127.0.0.1:9/hook", "schema": {"type": "object"}},
            })  # fmt: skip
            assert created.status_code == 201, created.text
            trigger = created.json()
            before = await client.post(trigger["webhook_url"], json={"n": 1})  # cached now
            # No grace: the previous secret stops signing at once, though the trigger's
            # row (and the API's cached record) still hold it with its expiry.
            rotated = await client.post(
                f"/api/v1/triggers/{trigger['id']}/rotate-secret", json={"grace": "0s"}
            )
            assert rotated.status_code == 200, rotated.text
            calls = [await client.post(trigger["webhook_url"], json={"n": n}) for n in (2, 3)]
        assert all(c.status_code == 202 for c in [before, *calls])
        after = {c.json()["event_id"] for c in calls}
        jobs = await _jobs_on(migrated, topic, {before.json()["event_id"], *after})
    finally:
        assert api.stop() == 0
        admin = AIOKafkaAdminClient(bootstrap_servers=list(migrated.kafka_bootstrap))
        await admin.start()
        try:
            await admin.delete_topics([topic, f"{topic}.dlq"])
        finally:
            await admin.close()

    old, new = trigger["signing_secret"], rotated.json()["signing_secret"]
    for raw in jobs.values():  # no job carries a secret: the worker reads its row's
        assert old.encode() not in raw and new.encode() not in raw
        assert not [k for k in decode_job(raw) if "secret" in k]
    signed = {}
    async with db.connection() as tx:
        for event_id in jobs:
            row = await tx.fetch_one(
                "SELECT request, fired_at FROM event_logs WHERE id = %s", (event_id,)
            )
            assert row is not None
            job = with_secrets(
                decode_job(jobs[event_id]), snapshot_secrets(read_json(row["request"]))
            )
            signed[event_id] = (job_keys(job), read_time(row["fired_at"]))
    keys, _ = signed[before.json()["event_id"]]
    assert keys.secret == old
    for event_id in after:
        keys, fired_at = signed[event_id]
        assert fired_at is not None
        # The previous secret may sit in the snapshot with its past expiry; it signs nothing.
        assert keys.secret == new and keys.previous_at(fired_at) is None
