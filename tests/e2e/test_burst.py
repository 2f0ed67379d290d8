"""Many triggers due in the same second, all to one endpoint: every one fires exactly once,
well within the 10 s limit, and the backlog at that one host is absorbed by the worker
itself: no job is deferred, handed back or re-published (invariant 9, docs/design.md)."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx

from eventtrigger.domain.times import parse_iso
from eventtrigger.store.db import Database, read_json, read_time
from tests.e2e.conftest import Sink, create_trigger, event_rows, log_lines, wait_until
from tests.process import EventtriggerProcess

COUNT = 300
CHUNK = 50


def _quantiles(values: list[float]) -> str:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (
        f"p50 {statistics.median(ordered) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, "
        f"max {ordered[-1] * 1000:.1f} ms"
    )


async def test_300_triggers_due_at_once_to_one_host_all_fire_once_within_10s_without_recovery(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    sink: Sink,
    db: Database,
) -> None:
    proc = launch()
    run_at = (datetime.now(UTC) + timedelta(seconds=9)).replace(microsecond=0)
    run_at_text = run_at.isoformat().replace("+00:00", "Z")

    async with api(proc) as client:

        async def create(n: int) -> str:
            trigger = await create_trigger(
                client,
                "time_scheduled",
                {"endpoint": sink.url("/burst"), "run_at": run_at_text, "payload": {"n": n}},
                name=f"burst-{n}",
            )
            assert parse_iso(trigger["config"]["run_at"]) == run_at
            trigger_id: str = trigger["id"]
            return trigger_id

        ids: list[str] = []
        for start in range(0, COUNT, CHUNK):
            ids += await asyncio.gather(*(create(n) for n in range(start, start + CHUNK)))
    created_by = time.time()
    assert created_by < run_at.timestamp(), "creation must finish before the triggers are due"
    trigger_of = dict(enumerate(ids))

    deliveries = await sink.wait_for("/burst", COUNT, timeout=40)
    counts = Counter(d.json()["n"] for d in deliveries)
    assert sorted(counts) == list(range(COUNT))
    assert set(counts.values()) == {1}  # every trigger delivered exactly once

    async def all_succeeded() -> list[dict[str, object]]:
        rows = await event_rows(db)
        done = len(rows) == COUNT and all(r["status"] == "success" for r in rows)
        return rows if done else []

    rows = await wait_until(all_succeeded, timeout=20)
    assert len({r["id"] for r in rows}) == COUNT
    assert {r["trigger_id"] for r in rows} == set(ids)
    for row in rows:
        payload = read_json(row["payload"])
        assert row["trigger_id"] == trigger_of[payload["n"]]
        assert row["source"] == "scheduled"
        assert row["attempts"] == 1
        assert read_time(row["scheduled_at"]) == run_at
    assert {d.headers["webhook-id"] for d in deliveries} == {r["id"] for r in rows}

    fired_lateness = [
        (read_time(r["fired_at"]) - run_at).total_seconds()  # type: ignore[operator]
        for r in rows
    ]
    arrival_lateness = [d.at - run_at.timestamp() for d in deliveries]
    print(f"\nburst of {COUNT}: fired lateness {_quantiles(fired_lateness)}")
    print(f"burst of {COUNT}: arrival lateness {_quantiles(arrival_lateness)}")
    assert max(fired_lateness) < 10
    assert min(fired_lateness) >= 0  # never before the scheduled time
    assert max(arrival_lateness) < 10
    assert min(arrival_lateness) >= 0

    # Backpressure stayed inside the worker: nothing went through the recovery path.
    actions = Counter(line.get("action") for line in log_lines(proc.log_path))
    assert actions["deferred"] == 0
    assert actions["requeued"] == 0
    assert actions["republished"] == 0
    assert actions["duplicate_skipped"] == 0
    assert actions["delivered"] == COUNT
