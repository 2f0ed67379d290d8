"""The Kafka broker stops (a real SIGTERM stop, then a start on the same log dir) while
webhooks fire at a steady rate: the API keeps answering 2xx, /health says 503 while the
broker is away and 200 after, nothing is lost, no firing gets two event logs, and the
backlog is delivered within 30 s of the broker's return.

The broker is this session's own (tests/fault/conftest.py), never the shared one.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest

from eventtrigger.store.db import Database
from tests.e2e.conftest import Sink, create_trigger, event_rows, log_lines, wait_until
from tests.fault.conftest import Kafka, MariaDB, client, quantile, record_result
from tests.fault.load import Load
from tests.process import EventtriggerProcess

BACKLOG_LIMIT = 30.0  # seconds from the broker's return to the last delivery


@dataclass(frozen=True)
class Outage:
    name: str
    rate: float  # webhook calls per second
    before: float  # seconds of load before the stop
    down: float  # seconds the broker stays stopped
    after: float  # seconds of load after it is back


SCENARIOS = [
    pytest.param(Outage("short", rate=40, before=2, down=5, after=2), id="short"),
    pytest.param(
        Outage("long", rate=1000, before=10, down=20, after=10),
        id="chaos-1000/s-20s",
        marks=pytest.mark.chaos,
    ),
]


async def health(proc: EventtriggerProcess) -> tuple[int, dict[str, object]]:
    async with httpx.AsyncClient(base_url=proc.base_url, timeout=10) as anonymous:
        answer = await anonymous.get("/health")
    return answer.status_code, answer.json()


@pytest.mark.parametrize("outage", SCENARIOS)
async def test_broker_stop_loses_nothing_and_the_backlog_drains_after_it_returns(
    outage: Outage,
    servers: tuple[MariaDB, Kafka],
    flaunch: Callable[..., EventtriggerProcess],
    fdb: Database,
    fsink: Sink,
) -> None:
    _, kafka = servers
    proc = flaunch()
    async with client(proc) as api:
        trigger = await create_trigger(
            api,
            "webhook",
            {"endpoint": fsink.url("/k"), "schema": {"type": "object"}},
            name="kafka outage",
        )
    load = Load(trigger["webhook_url"], outage.rate, outage.before + outage.down + outage.after)
    firing = asyncio.create_task(load.run())

    await asyncio.sleep(outage.before)  # the scenario's timeline, not a synchronisation
    stopping = time.time()
    await asyncio.to_thread(kafka.stop)
    down_at = time.time()
    try:
        # Seen from outside: /health blames Kafka (and only Kafka) while it is away.
        async def unhealthy() -> dict[str, object] | None:
            status, body = await health(proc)
            return body if status == 503 else None

        down_body = await wait_until(unhealthy, timeout=outage.down + 15, interval=0.3)
        assert down_body["checks"]["kafka"]["status"] == "unavailable"
        assert down_body["checks"]["database"]["status"] == "ok"
        await asyncio.sleep(max(0.0, down_at + outage.down - time.time()))
    finally:
        kafka.start()
        await kafka.wait_ready()
    back_at = time.time()

    async def healthy() -> bool:
        return (await health(proc))[0] == 200

    await wait_until(healthy, timeout=30, interval=0.3)
    await firing

    # The API answered 2xx throughout, the outage included.
    assert set(load.statuses) == {202}, load.statuses
    accepted = load.accepted
    assert len(accepted) == len(load.calls)

    # Every accepted firing reaches the endpoint; the backlog within 30 s of the return.
    first_seen: dict[str, float] = {}

    async def all_delivered() -> bool:
        for r in fsink.received:
            first_seen.setdefault(r.headers["webhook-id"], r.at)
        return accepted <= first_seen.keys()

    try:
        # Past the backlog limit (plus slack for a loaded machine) there is no point waiting.
        limit = max(5.0, back_at + BACKLOG_LIMIT + 15 - time.time())
        await wait_until(all_delivered, timeout=limit, interval=0.25)
    except AssertionError:
        missing = sorted(accepted - first_seen.keys())
        marks = ",".join(["%s"] * len(missing))
        stuck = await event_rows(fdb, f"id IN ({marks})", tuple(missing))
        states = Counter((str(r["status"]), int(str(r["attempts"]))) for r in stuck)
        lines = log_lines(proc.log_path)
        wedged = sum(
            1
            for line in lines
            if line.get("action") == "publish_failed"
            and "OutOfOrderSequence" in line.get("msg", "")
        )
        record_result(
            scenario=f"kafka-stop-{outage.name}",
            target_rate=outage.rate,
            achieved_rate=round(load.achieved_rate, 1),
            accepted=len(accepted),
            never_delivered=len(missing),
            stuck_rows={f"{status}/{attempts}": n for (status, attempts), n in states.items()},
            publish_failed_out_of_order=wedged,
            down_s=round(back_at - stopping, 1),
        )
        actions = Counter(line.get("action") for line in lines)
        raise AssertionError(
            f"{len(missing)} of {len(accepted)} accepted firings never delivered; their rows "
            f"(status, attempts): {dict(states)}; platform log actions: {dict(actions)}; "
            f"log: {proc.log_path}"
        ) from None
    drained = max(first_seen[e] for e in accepted) - back_at

    async def all_final() -> list[dict[str, object]]:
        rows = await event_rows(fdb)
        return rows if rows and all(r["status"] == "success" for r in rows) else []

    rows = await wait_until(all_final, timeout=60)
    ids = Counter(str(r["id"]) for r in rows)
    duplicate_logs = sum(n - 1 for n in ids.values())
    lost = len(accepted - ids.keys())
    answer_times = [c.answered - c.sent for c in load.calls]
    outage_answers = [c.answered - c.sent for c in load.during(stopping, back_at)]
    record_result(
        scenario=f"kafka-stop-{outage.name}",
        target_rate=outage.rate,
        achieved_rate=round(load.achieved_rate, 1),
        calls=len(load.calls),
        accepted=len(accepted),
        non_2xx=sum(n for s, n in load.statuses.items() if s != 202),
        lost=lost,
        duplicate_logs=duplicate_logs,
        extra_deliveries=len(fsink.received) - len(first_seen),
        down_s=round(back_at - stopping, 1),
        backlog_drained_s=round(drained, 1),
        api_p99_s=round(quantile(answer_times, 0.99), 3),
        api_p99_during_outage_s=round(quantile(outage_answers, 0.99), 3),
    )
    assert lost == 0
    assert duplicate_logs == 0
    assert len(rows) == len(accepted)  # no event log that nobody was answered for
    assert drained <= BACKLOG_LIMIT, f"backlog took {drained:.1f}s after the broker returned"
    assert proc.proc is not None and proc.proc.poll() is None  # recovered without a restart
