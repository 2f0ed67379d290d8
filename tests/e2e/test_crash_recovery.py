"""kill -9 in the middle of a burst, then a restart: every firing is delivered (at least
once) and logged exactly once. Covers deliveries cut mid-flight (uncommitted Kafka offsets,
claimed event rows) and occurrences a scheduler claimed but never fired (its lease runs
out, EVENTTRIGGER_RECOVERY_AFTER=2s in the e2e settings)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from eventtrigger.store.db import Database
from tests.e2e.conftest import Sink, create_trigger, event_rows, rfc3339, wait_until
from tests.process import EventtriggerProcess

BURST = 40  # due together, a few seconds ahead
LATE = 10  # due 2 s after the kill decision: claimed, not yet fired, when the process dies
TOTAL = BURST + LATE
PER_HOST = 10  # with 1 s answers: the burst takes ~4 s to deliver, so the kill cuts it


async def _create(client: httpx.AsyncClient, name: str, endpoint: str, run_at: datetime) -> str:
    trigger = await create_trigger(
        client,
        "time_scheduled",
        {
            "endpoint": endpoint,
            "run_at": rfc3339(run_at),
            "payload": {"name": name},
            "timeout": "3s",
            "retry": {"max_attempts": 5, "initial_delay": "200ms", "max_delay": "1s"},
        },
        name=name,
    )
    trigger_id: str = trigger["id"]
    return trigger_id


async def _schedule_rows(db: Database, trigger_ids: list[str]) -> list[dict[str, Any]]:
    marks = ", ".join(["%s"] * len(trigger_ids))
    async with db.connection() as tx:
        return await tx.fetch_all(
            f"SELECT * FROM trigger_schedules WHERE trigger_id IN ({marks})", tuple(trigger_ids)
        )


async def test_kill_9_during_a_burst_then_restart_delivers_every_firing_exactly_once_in_the_log(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    sink: Sink,
    db: Database,
) -> None:
    sink.respond("/burst", (200, {}, 1.0))
    proc = launch(EVENTTRIGGER_WORKER_PER_HOST=str(PER_HOST))
    due = datetime.now(UTC) + timedelta(seconds=4)
    async with api(proc) as client:
        burst = await asyncio.gather(
            *(_create(client, f"burst-{n}", sink.url("/burst"), due) for n in range(BURST))
        )
        assert datetime.now(UTC) < due, "creating took too long"

        # Some, not all, of the burst has been delivered...
        await sink.wait_for("/burst", 1, timeout=15.0)
        # ...and a second group is claimed by the scheduler (it claims 2 s ahead) but not due.
        late_due = datetime.now(UTC) + timedelta(seconds=2.5)
        late = await asyncio.gather(
            *(_create(client, f"late-{n}", sink.url("/burst"), late_due) for n in range(LATE))
        )

    async def late_claimed() -> bool:
        rows = await _schedule_rows(db, late)
        return len(rows) == LATE and all(r["status"] == "processing" for r in rows)

    await wait_until(late_claimed, timeout=2.0, interval=0.02)
    proc.kill()

    seen_at_kill = len(sink.at("/burst"))
    assert 0 < seen_at_kill < BURST, seen_at_kill
    assert datetime.now(UTC) < late_due, "killed too late to leave the late group unfired"
    assert await event_rows(db, f"trigger_id IN ({', '.join(['%s'] * LATE)})", tuple(late)) == []
    unfinished = await event_rows(db, "status != 'success'")
    assert unfinished, "the kill came after every delivery was recorded"

    restarted = launch(env=proc.env)
    all_ids = [*burst, *late]

    async def all_delivered() -> list[dict[str, Any]]:
        rows = await event_rows(db)
        done = len(rows) >= TOTAL and all(r["status"] == "success" for r in rows)
        return rows if done else []

    rows = await wait_until(all_delivered, timeout=60.0, interval=0.2)
    assert restarted.proc is not None and restarted.proc.poll() is None

    # Exactly one event row per firing: one per trigger, none twice, none missing.
    per_trigger = Counter(r["trigger_id"] for r in rows)
    assert len(rows) == TOTAL
    assert set(per_trigger) == set(all_ids)
    assert max(per_trigger.values()) == 1
    assert all(r["source"] == "scheduled" for r in rows)
    assert all(r["last_status_code"] == 200 for r in rows)

    # Every firing reached the endpoint at least once, and nothing else did.
    events = {r["id"]: r["trigger_id"] for r in rows}
    delivered = Counter(r.headers["webhook-id"] for r in sink.at("/burst"))
    assert set(delivered) <= set(events), set(delivered) - set(events)
    assert set(delivered) == set(events)
    duplicates = sum(n - 1 for n in delivered.values())
    print(f"\nseen before kill: {seen_at_kill}; duplicate deliveries: {duplicates}")

    # The late group was fired by the restarted process, from the claims the dead one held.
    schedules = await _schedule_rows(db, late)
    assert all(r["status"] == "completed" for r in schedules)
    assert all(r["attempt_count"] >= 2 for r in schedules), [r["attempt_count"] for r in schedules]
