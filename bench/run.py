"""Benchmarks: firing precision under a burst, webhook ingestion throughput, memory.

Runs the real `eventtrigger run --roles=all` against the local MariaDB and Kafka (from
`make services`) and an HTTP sink on 127.0.0.1, and writes a Markdown report to
bench/results/. Numbers depend on the machine: the report records it.

    python -m bench.run [--burst 1000] [--webhooks 2000] [--concurrency 50]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import secrets
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from eventtrigger.store.db import Database
from tests.conftest import TEST_API_KEY, test_environ
from tests.e2e.conftest import Sink
from tests.process import EventtriggerProcess

RESULTS = Path(__file__).parent / "results"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def summary(values: list[float]) -> str:
    return (
        f"p50 {pct(values, 0.5) * 1000:.1f} ms, p95 {pct(values, 0.95) * 1000:.1f} ms, "
        f"p99 {pct(values, 0.99) * 1000:.1f} ms, max {max(values) * 1000:.1f} ms"
    )


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def burst(client: httpx.AsyncClient, sink: Sink, db: Database, n: int) -> dict[str, Any]:
    """n one-time triggers due in the same second: lateness of firing and delivery."""
    run_at = (datetime.now(UTC) + timedelta(seconds=max(8, n / 100))).replace(microsecond=0)
    sem = asyncio.Semaphore(50)

    async def create(i: int) -> None:
        async with sem:
            r = await client.post("/api/v1/triggers", json={
                "name": f"burst-{i}", "type": "time_scheduled",
                "config": {"endpoint": sink.url("/burst"), "run_at": run_at.isoformat(),
                           "payload": {"i": i}},
            })  # fmt: skip
            r.raise_for_status()

    await asyncio.gather(*(create(i) for i in range(n)))
    assert datetime.now(UTC) < run_at, "creating the triggers took longer than the lead time"
    await sink.wait_for("/burst", n, timeout=120)
    due = run_at.timestamp()
    arrivals = [r.at - due for r in sink.at("/burst")]
    async with db.connection() as tx:
        rows = await tx.fetch_all(
            "SELECT TIMESTAMPDIFF(MICROSECOND, scheduled_at, fired_at) AS us FROM event_logs"
            " WHERE source = 'scheduled'"
        )
    fired = [r["us"] / 1e6 for r in rows]
    return {"n": n, "fired": fired, "arrivals": arrivals}


async def recent_quantiles(client: httpx.AsyncClient, name: str) -> str:
    """The process's own p50/p95/p99 gauge, as scraped from /metrics."""
    text = (await client.get("/metrics")).text
    found = {}
    for family in text_string_to_metric_families(text):
        if family.name == name:
            found = {s.labels["quantile"]: s.value for s in family.samples}
    return ", ".join(f"p{float(q) * 100:g} {v * 1000:.1f} ms" for q, v in found.items())


async def ingest(base_url: str, trigger_url: str, n: int, concurrency: int) -> dict[str, Any]:
    """POST n webhook calls with `concurrency` clients: accepted calls per second."""
    latencies: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)

    async def client_loop() -> None:
        async with httpx.AsyncClient(timeout=30) as c:
            while not queue.empty():
                i = queue.get_nowait()
                started = time.perf_counter()
                r = await c.post(trigger_url, json={"i": i})
                latencies.append(time.perf_counter() - started)
                assert r.status_code == 202, r.text

    started = time.perf_counter()
    await asyncio.gather(*(client_loop() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {"n": n, "seconds": elapsed, "rate": n / elapsed, "latencies": latencies}


async def main(args: argparse.Namespace) -> None:
    suffix = secrets.token_hex(3)
    env = test_environ(
        EVENTTRIGGER_TEST_DATABASE="eventtrigger_bench",
        EVENTTRIGGER_KAFKA_TOPIC=f"bench.{suffix}",
        EVENTTRIGGER_KAFKA_GROUP=f"bench-{suffix}",
        EVENTTRIGGER_EGRESS_ALLOW_CIDRS="127.0.0.0/8",
        EVENTTRIGGER_LOG_LEVEL="INFO",
    )
    env["EVENTTRIGGER_DATABASE_URL"] = env["EVENTTRIGGER_DATABASE_URL"].rsplit("/", 1)[0] + (
        "/eventtrigger_bench"
    )
    from eventtrigger.config import load_settings
    from eventtrigger.store.migrate import migrate

    settings = load_settings(environ=env, env_file=None)
    await migrate(settings.database)
    db = Database(settings.database)
    await db.connect()
    async with db.connection() as tx:
        for table in ("event_logs", "event_logs_archive", "idempotency_keys",
                      "trigger_schedules", "triggers"):  # fmt: skip
            await tx.execute(f"DELETE FROM {table}")
    sink = Sink()
    await sink.start()
    log = RESULTS / f"bench-{suffix}.log"
    proc = EventtriggerProcess(env, "all", log)
    proc.start()
    assert proc.proc is not None
    idle_rss = rss_mb(proc.proc.pid)
    headers = {"Authorization": f"Bearer {TEST_API_KEY}"}
    try:
        async with httpx.AsyncClient(base_url=proc.base_url, headers=headers, timeout=30) as c:
            b = await burst(c, sink, db, args.burst)
            burst_rss = rss_mb(proc.proc.pid)
            published = await recent_quantiles(c, "eventtrigger_fire_lateness_recent_seconds")
            hook = (await c.post("/api/v1/triggers", json={
                "name": "bench-hook", "type": "webhook",
                "config": {"endpoint": sink.url("/hook"), "schema": {"type": "object"}},
            })).json()  # fmt: skip
        w = await ingest(proc.base_url, hook["webhook_url"], args.webhooks, args.concurrency)
        await sink.wait_for("/hook", args.webhooks, timeout=300)
        peak_rss = rss_mb(proc.proc.pid)
    finally:
        proc.stop()
        await sink.stop()
        await db.close()
    log.unlink()  # kept only when the run failed, to see why
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    report = RESULTS / f"{today}.md"
    cpu = cpu_model()
    verdict = "within" if max(b["arrivals"]) < 10 else "NOT within"
    text = f"""# eventtrigger benchmark, {today}

Command: `make bench` (`python -m bench.run --burst {args.burst} --webhooks {args.webhooks} \
--concurrency {args.concurrency}`)
Machine: {os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}, \
Python {platform.python_version()}; MariaDB and Kafka local (`make services`), one
`eventtrigger run --roles=all` process, HTTP sink and load generator in the benchmark process.

## Burst: {b["n"]} one-time triggers due in the same second
- firing (scheduled_at -> fired_at stamped in the firing transaction): {summary(b["fired"])}
- published (scheduled time -> job acknowledged by Kafka; the process's recent-quantile
  gauge): {published}
- delivery (scheduled time -> request arrives at the sink): {summary(b["arrivals"])}
- all {b["n"]} delivered {verdict} the 10 s limit (one host, so at most
  EVENTTRIGGER_WORKER_PER_HOST=32 deliveries at a time)

## Webhook ingestion: {w["n"]} calls, {args.concurrency} concurrent clients
- {w["rate"]:.0f} accepted calls/s ({w["seconds"]:.1f} s in all)
- response time: {summary(w["latencies"])}

The two cores are shared by MariaDB, Kafka, the eventtrigger process and the benchmark
(load generator and sink), so these are lower bounds for a real deployment.

## Memory (RSS of the eventtrigger process)
- idle after start: {idle_rss:.0f} MB; after the burst: {burst_rss:.0f} MB; after ingestion: \
{peak_rss:.0f} MB
"""
    report.write_text(text)
    print(text)
    print(f"written to {report}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--webhooks", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    asyncio.run(main(parser.parse_args()))
