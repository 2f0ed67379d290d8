"""MariaDB stops mid-load (a real stop: SIGTERM, so connections are refused, then a start
on the same datadir and port) while webhooks fire and one-shot triggers come due inside
the outage. /health says 503 while it is down and 200 after; the same processes recover
without a restart; every accepted webhook and every one-shot is delivered; no firing has
two event logs.

Webhook calls during the outage cannot be stored, so they may be refused (503): refused
is not lost, and never stored either. What was accepted (2xx) must be delivered, and the
webhook's event rows are exactly the accepted calls. The server is this session's own.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from eventtrigger.store.db import Database
from tests.e2e.conftest import Sink, create_trigger, event_rows, wait_until
from tests.fault.conftest import (
    Kafka,
    MariaDB,
    client,
    one_shots_during,
    quantile,
    record_result,
)
from tests.fault.load import Load
from tests.process import EventtriggerProcess


@dataclass(frozen=True)
class Outage:
    name: str
    rate: float
    before: float
    down: float
    after: float
    one_shots: int  # due spread over the outage


SCENARIOS = [
    pytest.param(Outage("short", rate=30, before=2, down=5, after=3, one_shots=10), id="short"),
    pytest.param(
        Outage("long", rate=200, before=10, down=20, after=10, one_shots=200),
        id="chaos-20s",
        marks=pytest.mark.chaos,
    ),
]


async def health(proc: EventtriggerProcess) -> int:
    try:
        async with httpx.AsyncClient(base_url=proc.base_url, timeout=10) as anonymous:
            return (await anonymous.get("/health")).status_code
    except httpx.HTTPError:
        return 0


@pytest.mark.parametrize("outage", SCENARIOS)
async def test_database_stop_loses_nothing_and_processes_recover_by_themselves(
    outage: Outage,
    servers: tuple[MariaDB, Kafka],
    flaunch: Callable[..., EventtriggerProcess],
    fdb: Database,
    fsink: Sink,
) -> None:
    mariadb, _ = servers
    procs = [flaunch(), flaunch(roles="worker,scheduler")]
    pids = [p.proc.pid for p in procs if p.proc is not None]
    api_proc = procs[0]
    async with client(api_proc) as api:
        hook = await create_trigger(
            api, "webhook", {"endpoint": fsink.url("/w"), "schema": {"type": "object"}}
        )
        # One-shots due while the server is down: they must fire once it is back.
        setup_done = datetime.now(UTC) + timedelta(seconds=2)  # creation takes a moment
        down_from = setup_done + timedelta(seconds=outage.before)
        one_shot_ids = await one_shots_during(
            api, fsink.url("/once"), down_from, outage.down, outage.one_shots
        )
    assert datetime.now(UTC) < down_from, "creating the one-shots took too long"

    load = Load(hook["webhook_url"], outage.rate, outage.before + outage.down + outage.after)
    firing = asyncio.create_task(load.run())
    await asyncio.sleep(max(0.0, down_from.timestamp() - time.time()))  # the timeline
    stopping = time.time()
    await asyncio.to_thread(mariadb.stop)
    try:

        async def unhealthy() -> bool:
            return await health(api_proc) == 503

        await wait_until(unhealthy, timeout=outage.down + 15, interval=0.3)
        await asyncio.sleep(max(0.0, stopping + outage.down - time.time()))
    finally:
        mariadb.start()
        await mariadb.wait_ready()
    back_at = time.time()

    async def healthy() -> bool:
        return await health(api_proc) == 200

    await wait_until(healthy, timeout=60, interval=0.3)
    healthy_after = time.time() - back_at
    await firing

    # Answers: 202 stored, 503 refused while the database was away; never a 500.
    assert set(load.statuses) <= {202, 503}, load.statuses
    outside = [c for c in load.calls if c.sent < stopping - 0.5 or c.sent > back_at + 15]
    assert all(c.status == 202 for c in outside), Counter(c.status for c in outside)

    accepted = load.accepted

    async def all_final() -> list[dict[str, object]]:
        rows = await event_rows(fdb)
        hooks = {str(r["id"]) for r in rows if r["trigger_id"] == hook["id"]}
        once = [r for r in rows if r["trigger_id"] in one_shot_ids]
        done = all(r["status"] == "success" for r in rows)
        return rows if done and accepted <= hooks and len(once) >= len(one_shot_ids) else []

    rows = await wait_until(all_final, timeout=90, interval=0.5)
    ids = Counter(str(r["id"]) for r in rows)
    per_one_shot = Counter(r["trigger_id"] for r in rows if r["trigger_id"] in one_shot_ids)
    delivered = {r.headers["webhook-id"] for r in fsink.received}
    lost = len(accepted - delivered) + sum(1 for t in one_shot_ids if per_one_shot[t] == 0)
    duplicate_logs = sum(n - 1 for n in ids.values()) + sum(n - 1 for n in per_one_shot.values())
    stored_hooks = {str(r["id"]) for r in rows if r["trigger_id"] == hook["id"]}
    once_hooks = {str(r["id"]) for r in rows if r["trigger_id"] in one_shot_ids}
    once_arrivals = [r.at for r in fsink.received if r.headers["webhook-id"] in once_hooks]
    record_result(
        scenario=f"mariadb-stop-{outage.name}",
        target_rate=outage.rate,
        achieved_rate=round(load.achieved_rate, 1),
        calls=len(load.calls),
        accepted=len(accepted),
        refused_503=load.statuses[503],
        other_non_2xx=sum(n for s, n in load.statuses.items() if s not in (202, 503)),
        one_shots=len(one_shot_ids),
        lost=lost,
        duplicate_logs=duplicate_logs,
        stored_not_202=len(stored_hooks - accepted),
        down_s=round(back_at - stopping, 1),
        health_200_after_s=round(healthy_after, 1),
        one_shots_done_after_return_s=round(max(once_arrivals) - back_at, 1),
        api_p99_s=round(quantile([c.answered - c.sent for c in load.calls], 0.99), 3),
    )
    assert lost == 0
    assert duplicate_logs == 0
    assert stored_hooks == accepted  # a call answered 503 is never stored
    # The same processes, never restarted.
    assert [p.proc.pid for p in procs if p.proc is not None] == pids
    assert all(p.proc is not None and p.proc.poll() is None for p in procs)
