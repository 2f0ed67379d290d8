"""A host with more jobs than it can take soon: the worker holds a few rounds of its slots
in memory and parks the rest on their rows (logged per batch, no attempt made), which
come back as the host drains; other hosts are not slowed, and nothing is re-published
as if it had been lost."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable

import httpx

from eventtrigger.store.db import Database
from tests.e2e.conftest import Sink, create_trigger, event_rows, log_lines, wait_until
from tests.process import EventtriggerProcess

PER_HOST = 1
JOBS = 120  # far more than the slow host can take soon (SOON_ROUNDS x PER_HOST)
FAST_CALLS = 5


async def test_a_host_over_what_it_takes_soon_gets_its_surplus_parked_and_others_are_not_slowed(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    sink: Sink,
    db: Database,
) -> None:
    fast_sink = Sink()  # hosts are keyed on scheme, host and port
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
            for start in range(0, JOBS, 40):
                answers = await asyncio.gather(
                    *(
                        anonymous.post(slow["webhook_url"], json={"n": n})
                        for n in range(start, min(start + 40, JOBS))
                    )
                )
                assert {a.status_code for a in answers} == {202}

            def lines(action: str) -> list[dict[str, object]]:
                return [x for x in log_lines(proc.log_path) if x.get("action") == action]

            async def parked_rows() -> int:
                rows = await event_rows(db, "trigger_id = %s AND parked", (slow["id"],))
                assert all(r["lease_owner"] is None for r in rows)
                return len(rows) if len(rows) >= JOBS - 10 * PER_HOST else 0

            await wait_until(parked_rows, timeout=20)
            parked = lines("parked")
            assert sum(int(str(x["count"])) for x in parked) >= JOBS - 10 * PER_HOST
            assert len(parked) < JOBS // 4  # one line per batch, not one per job

            for n in range(FAST_CALLS):
                posted = time.time()
                answer = await anonymous.post(fast["webhook_url"], json={"n": n})
                assert answer.status_code == 202
                [*_, got] = await fast_sink.wait_for("/fast", n + 1, timeout=5)
                assert got.at - posted < 1.0
        counts = Counter(x.get("action") for x in log_lines(proc.log_path))
        assert counts["republished"] == 0 and counts["paused"] == 0
        assert sink._counts["/slow"] == PER_HOST  # the slow host still has one request open
        async with db.connection() as tx:  # parking made no attempt: each is a real one
            made = await tx.fetch_all(
                "SELECT e.id, e.attempts, COUNT(a.attempt) AS n FROM event_logs e"
                " LEFT JOIN delivery_attempts a ON a.event_id = e.id"
                " WHERE e.trigger_id = %s GROUP BY e.id, e.attempts",
                (slow["id"],),
            )
        assert len(made) == JOBS
        assert all(r["attempts"] == r["n"] for r in made)
    finally:
        await fast_sink.stop()
