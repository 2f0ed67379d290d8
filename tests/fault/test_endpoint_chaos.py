"""Endpoint chaos: one endpoint answers 30% 5xx, hangs past the trigger's timeout 10% of
the time and resets the TCP connection (SO_LINGER 0) 5% of the time. Every one of its
events must end as its retry policy says (success at the first good answer, else failure
after max_attempts), and a healthy endpoint's delivery latency p99 must stay as it was
without the chaos (one failing endpoint never delays others: invariant 6, docs/design.md).

The chaotic endpoint listens on 127.0.0.2 and the healthy one on 127.0.0.1, so they are
different hosts to the worker's per-host limits, as two customers' endpoints would be.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import struct
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest
from aiohttp import web

from eventtrigger.store.db import Database
from tests.e2e.conftest import Sink, create_trigger, event_rows, serve_every_path, wait_until
from tests.fault.conftest import client, quantile, record_result
from tests.fault.load import Load
from tests.process import EventtriggerProcess

MAX_ATTEMPTS = 4
TIMEOUT = 1.0  # the chaotic trigger's timeout; a hang lasts longer
SEED = b"endpoint-chaos"


def fault_for(event_id: str, attempt: int) -> str:
    """The scripted answer for an attempt: reproducible from the id and attempt number."""
    digest = hashlib.sha256(SEED + event_id.encode() + struct.pack(">I", attempt)).digest()
    r = int.from_bytes(digest[:8], "big") / 2**64
    if r < 0.30:
        return "5xx"
    if r < 0.40:
        return "hang"
    if r < 0.45:
        return "reset"
    return "ok"


class ChaosEndpoint:
    """Answers by `fault_for`, recording each attempt's fault per webhook-id."""

    def __init__(self) -> None:
        self.attempts: dict[str, list[str]] = defaultdict(list)
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        event_id = request.headers["webhook-id"]
        fault = fault_for(event_id, len(self.attempts[event_id]))
        self.attempts[event_id].append(fault)
        if fault == "5xx":
            return web.Response(status=503, text="chaos")
        if fault == "hang":
            await asyncio.sleep(TIMEOUT * 2.5)
            return web.Response(text="too late")
        if fault == "reset":
            sock = request.transport.get_extra_info("socket") if request.transport else None
            if sock is not None:
                # SO_LINGER on, 0 s: close() sends an RST instead of a FIN.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            assert request.transport is not None
            request.transport.abort()
            return web.Response(text="never sent")  # the connection is already gone
        return web.Response(text="ok")

    async def start(self) -> None:
        self._runner, self.port = await serve_every_path(self._handle, "127.0.0.2")

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def chaos() -> AsyncIterator[ChaosEndpoint]:
    endpoint = ChaosEndpoint()
    await endpoint.start()
    yield endpoint
    await endpoint.stop()


@dataclass(frozen=True)
class Plan:
    rate: float  # per second, to each endpoint
    baseline: float  # seconds of healthy-only load
    chaos: float  # seconds of healthy + chaotic load


SCENARIOS = [
    pytest.param(Plan(rate=15, baseline=4, chaos=6), id="short"),
    pytest.param(Plan(rate=100, baseline=20, chaos=60), id="chaos", marks=pytest.mark.chaos),
]


def expected(faults: list[str]) -> tuple[str, int]:
    """(status, attempts) the retry policy gives for these answers."""
    for i, fault in enumerate(faults[:MAX_ATTEMPTS]):
        if fault == "ok":
            return "success", i + 1
    return "failure", MAX_ATTEMPTS


@pytest.mark.parametrize("plan", SCENARIOS)
async def test_chaotic_endpoint_follows_its_policy_and_does_not_slow_healthy_ones(
    plan: Plan,
    flaunch: Callable[..., EventtriggerProcess],
    fdb: Database,
    fsink: Sink,
    chaos: ChaosEndpoint,
) -> None:
    proc = flaunch()
    async with client(proc) as api:
        healthy = await create_trigger(
            api, "webhook", {"endpoint": fsink.url("/h"), "schema": {"type": "object"}}
        )
        chaotic = await create_trigger(
            api,
            "webhook",
            {
                "endpoint": f"http://127.0.0.2:{chaos.port}/c",
                "schema": {"type": "object"},
                "timeout": f"{TIMEOUT}s",
                "retry": {
                    "max_attempts": MAX_ATTEMPTS,
                    "initial_delay": "200ms",
                    "max_delay": "1s",
                },
            },
        )

    baseline = Load(healthy["webhook_url"], plan.rate, plan.baseline)
    await baseline.run()
    under_chaos = Load(healthy["webhook_url"], plan.rate, plan.chaos)
    chaotic_load = Load(chaotic["webhook_url"], plan.rate, plan.chaos)
    await asyncio.gather(under_chaos.run(), chaotic_load.run())
    for load in (baseline, under_chaos, chaotic_load):
        assert set(load.statuses) == {202}, load.statuses

    chaotic_ids = chaotic_load.accepted

    async def all_final() -> list[dict[str, object]]:
        rows = await event_rows(fdb, "trigger_id = %s", (chaotic["id"],))
        done = len(rows) == len(chaotic_ids) and all(
            r["status"] in ("success", "failure") for r in rows
        )
        return rows if done else []

    rows = await wait_until(all_final, timeout=60 + plan.chaos, interval=0.5)
    mismatched = [
        (r["id"], r["status"], r["attempts"], chaos.attempts[str(r["id"])])
        for r in rows
        if (r["status"], r["attempts"]) != expected(chaos.attempts[str(r["id"])])
    ]

    def latencies(load: Load) -> list[float]:
        sent = {c.event_id: c.sent for c in load.calls if c.event_id}
        first: dict[str, float] = {}
        for r in fsink.received:
            first.setdefault(r.headers["webhook-id"], r.at)
        return [first[e] - sent[e] for e in sent if e in first]

    async def healthy_delivered() -> bool:
        ids = {r.headers["webhook-id"] for r in fsink.received}
        return (baseline.accepted | under_chaos.accepted) <= ids

    await wait_until(healthy_delivered, timeout=30)
    base, during = latencies(baseline), latencies(under_chaos)
    faults = [f for seq in chaos.attempts.values() for f in seq]
    record_result(
        scenario=f"endpoint-chaos-{len(chaotic_ids)}",
        chaotic_events=len(chaotic_ids),
        attempts=len(faults),
        fault_mix={f: faults.count(f) for f in ("5xx", "hang", "reset", "ok")},
        successes=sum(1 for r in rows if r["status"] == "success"),
        failures=sum(1 for r in rows if r["status"] == "failure"),
        policy_mismatches=len(mismatched),
        healthy_p99_baseline_s=round(quantile(base, 0.99), 3),
        healthy_p99_under_chaos_s=round(quantile(during, 0.99), 3),
    )
    assert mismatched == []
    assert {"5xx", "hang", "reset", "ok"} <= set(faults)  # every fault was exercised
    assert quantile(during, 0.99) <= 3 * quantile(base, 0.99) + 0.5, (
        quantile(base, 0.99),
        quantile(during, 0.99),
    )
