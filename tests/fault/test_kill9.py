"""kill -9 of one of two `--roles=all` processes in the middle of a burst of one-shot
triggers: the survivor takes over what the dead one had claimed or consumed, every firing
reaches its endpoint within 10 s of its scheduled time, and none gets two event logs."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from eventtrigger.store.db import Database
from tests.e2e.conftest import Sink, create_trigger, event_rows, rfc3339, wait_until
from tests.fault.conftest import Kafka, MariaDB, client, fault_environ, quantile, record_result
from tests.process import EventtriggerProcess

LIMIT = 10.0  # a firing is no later than 10 s after its scheduled time


@pytest.mark.parametrize(
    "count",
    [pytest.param(150, id="short"), pytest.param(1000, id="chaos", marks=pytest.mark.chaos)],
)
async def test_kill_9_mid_burst_every_firing_within_10s_and_no_duplicate_log(
    count: int,
    servers: tuple[MariaDB, Kafka],
    flaunch: Callable[..., EventtriggerProcess],
    fdb: Database,
    fsink: Sink,
) -> None:
    env = fault_environ(servers)
    # The shipped lease (EVENTTRIGGER_RECOVERY_AFTER's default), not the tests' short one.
    del env["EVENTTRIGGER_RECOVERY_AFTER"]
    victim, survivor = flaunch(env=env), flaunch(env=env)
    lead = 6 + count / 100  # time to create the burst through the API
    run_at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=lead)
    async with client(survivor) as api:
        slots = asyncio.Semaphore(16)

        async def make(i: int) -> str:
            async with slots:
                t = await create_trigger(
                    api,
                    "time_scheduled",
                    {"endpoint": fsink.url(f"/b{i % 10}"), "run_at": rfc3339(run_at)},
                    name=f"burst {i}",
                )
                return str(t["id"])

        ids = set(await asyncio.gather(*(make(i) for i in range(count))))
    assert datetime.now(UTC) < run_at, "creating the burst took longer than its lead time"

    # Mid-burst: once some deliveries arrived (both processes are at work by then).
    await wait_until(lambda: _arrived(fsink, max(1, count // 10)), timeout=LIMIT + 5, interval=0.02)
    assert victim.proc is not None
    victim.kill()  # SIGKILL: no graceful anything
    killed_at = time.time() - run_at.timestamp()

    first_seen: dict[str, float] = {}

    async def all_delivered() -> bool:
        for r in fsink.received:
            first_seen.setdefault(r.headers["webhook-id"], r.at)
        return len(first_seen) >= count

    await wait_until(all_delivered, timeout=60, interval=0.1)

    async def all_final() -> list[dict[str, object]]:
        rows = await event_rows(fdb)
        return rows if len(rows) >= count and all(r["status"] == "success" for r in rows) else []

    rows = await wait_until(all_final, timeout=30)
    per_trigger = Counter(str(r["trigger_id"]) for r in rows)
    lateness = [first_seen[str(r["id"])] - run_at.timestamp() for r in rows]
    record_result(
        scenario=f"kill-9-{count}",
        firings=count,
        killed_at_s=round(killed_at, 2),
        delivered_before_kill=count // 10,
        duplicate_logs=sum(n - 1 for n in per_trigger.values()),
        lost=len(ids - per_trigger.keys()),
        extra_deliveries=len(fsink.received) - len(first_seen),
        lateness_p50_s=round(quantile(lateness, 0.5), 2),
        lateness_p99_s=round(quantile(lateness, 0.99), 2),
        lateness_max_s=round(max(lateness), 2),
    )
    assert per_trigger.keys() == ids  # nothing lost
    assert set(per_trigger.values()) == {1}  # one event log per firing
    assert survivor.proc is not None and survivor.proc.poll() is None
    assert max(lateness) <= LIMIT, sorted(lateness)[-5:]


async def _arrived(sink: Sink, n: int) -> bool:
    return len(sink.received) >= n
