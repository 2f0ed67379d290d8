"""One slow endpoint never delays deliveries to other endpoints, even when the slow host
has used up its per-host limit and more of its jobs are waiting behind it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from eventtrigger.store.db import Database
from tests.e2e.conftest import Sink, create_trigger, event_rows, wait_until
from tests.process import EventtriggerProcess

SLOW_SECONDS = 5.0
SLOW_CALLS = 10
FAST_CALLS = 5
PER_HOST = 2


async def _webhook(client: httpx.AsyncClient, name: str, endpoint: str) -> dict[str, Any]:
    return await create_trigger(
        client,
        "webhook",
        {"endpoint": endpoint, "schema": {"type": "object"}, "timeout": "10s"},
        name=name,
    )


async def test_slow_endpoint_does_not_delay_other_deliveries(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    sink: Sink,
    db: Database,
) -> None:
    # The per-host limiter keys on host:port, so the fast endpoint gets its own sink.
    fast_sink = Sink()
    await fast_sink.start()
    try:
        await _check(launch, api, sink, fast_sink, db)
    finally:
        await fast_sink.stop()


async def _check(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    slow_sink: Sink,
    fast_sink: Sink,
    db: Database,
) -> None:
    slow_sink.respond("/slow", (200, {}, SLOW_SECONDS))
    proc = launch(
        EVENTTRIGGER_WORKER_PER_HOST=str(PER_HOST),
        EVENTTRIGGER_WORKER_CONCURRENCY="4",
    )
    async with api(proc) as client:
        slow = await _webhook(client, "slow", slow_sink.url("/slow"))
        fast = await _webhook(client, "fast", fast_sink.url("/fast"))

    async with httpx.AsyncClient() as anonymous:
        for n in range(SLOW_CALLS):
            answer = await anonymous.post(slow["webhook_url"], json={"n": n})
            assert answer.status_code == 202, answer.text

        async def slow_in_flight() -> bool:
            # Requests that reached the slow sink; it records each one only when it answers.
            return slow_sink._counts["/slow"] >= PER_HOST

        await wait_until(slow_in_flight, timeout=10.0, interval=0.02)

        posted: dict[str, float] = {}
        for n in range(FAST_CALLS):
            started = time.time()
            answer = await anonymous.post(fast["webhook_url"], json={"n": n})
            assert answer.status_code == 202, answer.text
            posted[answer.json()["event_id"]] = started
            await fast_sink.wait_for("/fast", n + 1, timeout=5.0)

    fast_requests = fast_sink.at("/fast")
    waits = {r.headers["webhook-id"]: r.at - posted[r.headers["webhook-id"]] for r in fast_requests}
    print(f"\n/fast POST-to-delivery: {sorted(round(w, 3) for w in waits.values())} s")
    assert set(waits) == set(posted)
    assert max(waits.values()) < 1.0, waits

    # All of that happened while the slow endpoint was still busy with its first requests:
    # none of them has been answered yet, and the per-host limit held them to PER_HOST.
    assert slow_sink.at("/slow") == []
    assert slow_sink._counts["/slow"] == PER_HOST

    async def fast_rows_done() -> list[dict[str, Any]]:
        rows = await event_rows(db, "trigger_id = %s AND status = 'success'", (fast["id"],))
        return rows if len(rows) == FAST_CALLS else []

    await wait_until(fast_rows_done, timeout=5.0)
    pending = await event_rows(db, "trigger_id = %s AND status != 'success'", (slow["id"],))
    assert len(pending) == SLOW_CALLS  # the slow ones are all still in progress

    # The first PER_HOST slow requests are answered together; only then does the next start.
    first = await slow_sink.wait_for("/slow", PER_HOST, timeout=SLOW_SECONDS + 5)
    assert max(r.at for r in first) - min(r.at for r in first) < 1.0

    async def next_started() -> float | None:
        return time.time() if slow_sink._counts["/slow"] > PER_HOST else None

    third_started = await wait_until(next_started, timeout=5.0, interval=0.02)
    assert third_started >= min(r.at for r in first) + SLOW_SECONDS - 0.1
    assert slow_sink._counts["/slow"] <= 2 * PER_HOST
