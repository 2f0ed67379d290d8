"""A host with more jobs than its in-memory queue holds: the surplus is handed back with a
short delay (never deferred to the recovery deadline), and other hosts are not slowed."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable

import httpx

from eventtrigger.roles.worker import HOST_QUEUE_ROUNDS
from eventtrigger.store.db import Database
from tests.e2e.conftest import Sink, create_trigger, log_lines, wait_until
from tests.process import EventtriggerProcess

PER_HOST = 1
QUEUE = PER_HOST * HOST_QUEUE_ROUNDS  # jobs one host may hold in a worker
SURPLUS = 20
FAST_CALLS = 5


async def test_a_host_over_its_queue_gets_its_surplus_handed_back_and_others_are_not_slowed(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    sink: Sink,
    db: Database,
) -> None:
    fast_sink = Sink()  # the per-host limit keys on host:port
    await fast_sink.start()
    try:
        sink.respond("/slow", (200, {}, 15.0))
        proc = launch(EVENTTRIGGER_WORKER_PER_HOST=str(PER_HOST))
        async with api(proc) as client:
            schema = {"type": "object"}
            slow = await create_trigger(
                client, "webhook", {"endpoint": sink.url("/slow"), "schema": schema}
            )
            fast = await create_trigger(
                client, "webhook", {"endpoint": fast_sink.url("/fast"), "schema": schema}
            )
        async with httpx.AsyncClient(timeout=10) as anonymous:
            for start in range(0, QUEUE + SURPLUS, 50):
                stop = min(start + 50, QUEUE + SURPLUS)
                answers = await asyncio.gather(
                    *(
                        anonymous.post(slow["webhook_url"], json={"n": n})
                        for n in range(start, stop)
                    )
                )
                assert {a.status_code for a in answers} == {202}

            def actions() -> Counter[str]:
                return Counter(line.get("action") for line in log_lines(proc.log_path))

            async def surplus_handed_back() -> bool:
                return actions()["requeued"] >= SURPLUS

            await wait_until(surplus_handed_back, timeout=20)

            for n in range(FAST_CALLS):
                posted = time.time()
                answer = await anonymous.post(fast["webhook_url"], json={"n": n})
                assert answer.status_code == 202
                [*_, got] = await fast_sink.wait_for("/fast", n + 1, timeout=5)
                assert got.at - posted < 1.0
        counts = actions()
        assert counts["deferred"] == 0
        assert sink._counts["/slow"] == PER_HOST  # the slow host still has one request open
    finally:
        await fast_sink.stop()
