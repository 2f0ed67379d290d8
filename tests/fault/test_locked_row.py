"""One trigger's row held by an operator's open transaction (`SELECT ... FOR UPDATE`)
while other triggers come due: the others fire on time, the held one fires exactly once
right after the lock goes, and the scheduler's loops stay healthy (nothing stalls).

The short form (12 s lock) runs in `make test`; the long form holds the lock 40 s, past
InnoDB's 50 s lock wait minus retries and past the 30 s after which /health would name a
stalled loop, and records its figures for `make chaos`. That /health names a firing loop
that does stall is tested against the real database in
tests/integration/test_scheduler_firing.py (it needs a clock the test moves).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from eventtrigger.domain.times import parse_iso
from eventtrigger.store.db import Database, read_time
from tests.e2e.conftest import Sink, create_trigger, event_rows, rfc3339, wait_until
from tests.fault.conftest import client, record_result
from tests.process import EventtriggerProcess

ON_TIME = 1.0  # s: fired this close to their time, lock or no lock
OTHERS = 5


async def _held_for(
    flaunch: Callable[..., EventtriggerProcess], fdb: Database, fsink: Sink, hold: float
) -> dict[str, Any]:
    proc = flaunch()
    start = datetime.now(UTC) + timedelta(seconds=4)  # the held trigger's time
    gap = hold / (OTHERS + 1)
    async with client(proc) as api:
        held = await create_trigger(
            api, "time_scheduled", {"endpoint": fsink.url("/held"), "run_at": rfc3339(start)}
        )
        others = [
            await create_trigger(
                api,
                "time_scheduled",
                {
                    "endpoint": fsink.url(f"/other-{k}"),
                    "run_at": rfc3339(start + timedelta(seconds=gap * (k + 1))),
                },
            )
            for k in range(OTHERS)
        ]
        health: list[tuple[int, list[str]]] = []

        async def watch_health(until: float) -> None:
            while time.monotonic() < until:
                got = await api.get("/health")
                stalled = got.json().get("roles", {}).get("scheduler", {}).get("stalled_loops")
                health.append((got.status_code, stalled))
                await asyncio.sleep(1.0)

        async with fdb.transaction() as operator:  # an operator's open transaction
            await operator.fetch_all(
                "SELECT id FROM triggers WHERE id = %s FOR UPDATE", (held["id"],)
            )
            locked_until = time.monotonic() + (start - datetime.now(UTC)).total_seconds() + hold
            await watch_health(locked_until)
            held_during_lock = await event_rows(fdb, "trigger_id = %s", (held["id"],))
        released = datetime.now(UTC)

        async def all_fired() -> list[dict[str, Any]]:
            rows = await event_rows(fdb)
            done = len(rows) == OTHERS + 1 and all(r["status"] == "success" for r in rows)
            return rows if done else []

        rows = await wait_until(all_fired, timeout=30)
        await fsink.wait_for("/held", 1, timeout=10)

    assert held_during_lock == []  # it could not fire while its row was held
    by_trigger = {r["trigger_id"]: r for r in rows}
    lateness = []
    for t in others:
        row = by_trigger[t["id"]]
        scheduled = parse_iso(t["config"]["run_at"])
        assert read_time(row["scheduled_at"]) == scheduled
        lateness.append((read_time(row["fired_at"]) - scheduled).total_seconds())  # type: ignore[operator]
    held_row = by_trigger[held["id"]]
    held_fired = read_time(held_row["fired_at"])
    assert held_fired is not None
    after_release = (held_fired - released).total_seconds()
    return {
        "others_max_lateness_s": round(max(lateness), 3),
        "held_fired_after_release_s": round(after_release, 3),
        "held_deliveries": len(fsink.at("/held")),
        "health": health,
    }


def _check(result: dict[str, Any]) -> None:
    assert result["others_max_lateness_s"] < ON_TIME, result
    # The held one goes on the scheduler's next try after the lock (tries every 0.25 s).
    assert -ON_TIME < result["held_fired_after_release_s"] < 2 * ON_TIME, result
    assert result["held_deliveries"] == 1, result  # exactly once
    # /health stays 200 throughout, no loop stalled: firing never waited for the lock.
    assert result["health"] and all(h == (200, []) for h in result["health"]), result["health"]


async def test_a_held_trigger_row_delays_no_other_trigger(
    flaunch: Callable[..., EventtriggerProcess], fdb: Database, fsink: Sink
) -> None:
    result = await _held_for(flaunch, fdb, fsink, hold=12.0)
    print("\nlocked row, 12 s:", {k: v for k, v in result.items() if k != "health"})
    _check(result)


@pytest.mark.chaos
async def test_a_trigger_row_held_for_40_seconds_delays_no_other_trigger(
    flaunch: Callable[..., EventtriggerProcess], fdb: Database, fsink: Sink
) -> None:
    result = await _held_for(flaunch, fdb, fsink, hold=40.0)
    record_result(
        scenario="trigger-row-held-40s",
        others=OTHERS,
        others_max_lateness_s=result["others_max_lateness_s"],
        held_fired_after_release_s=result["held_fired_after_release_s"],
        held_deliveries=result["held_deliveries"],
        health_checks=len(result["health"]),
        health_not_200=sum(1 for status, _ in result["health"] if status != 200),
    )
    _check(result)
