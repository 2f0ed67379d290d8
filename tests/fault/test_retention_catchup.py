"""Retention catching up after an outage: tens (`chaos`: hundreds) of thousands of finished
events are past the active window when `eventtrigger run --roles=all` starts, a fifth of
them past the total window too. The pass runs in bounded batches: /health stays 200
throughout (the role beats per batch), a SIGTERM mid-pass ends the process within the
shutdown grace with the work part done, and the next process goes on from there until
every event is archived once or deleted.

The due rows are made by the database itself (a multi-row INSERT ... SELECT over a
counter), not one by one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from eventtrigger.store.db import Database
from eventtrigger.store.retention import BATCH
from tests.e2e.conftest import wait_until
from tests.fault.conftest import Kafka, MariaDB, fault_environ, record_result
from tests.process import EventtriggerProcess

GRACE = 10.0  # EVENTTRIGGER_SHUTDOWN_GRACE in fault_environ
CHUNK = 50_000  # rows per INSERT ... SELECT
ID_PREFIX = "01CATCH"  # + 19 digits: a 26-character id no real event has
DIGITS = "(" + " UNION ALL ".join(f"SELECT {d} AS d" for d in range(10)) + ")"


@dataclass(frozen=True)
class Backlog:
    name: str
    rows: int
    sigterm_at: int  # rows moved to the archive before the SIGTERM


SCENARIOS = [
    pytest.param(Backlog("short", rows=50_000, sigterm_at=5_000), id="short"),
    pytest.param(
        Backlog("long", rows=500_000, sigterm_at=50_000),
        id="chaos-500k",
        marks=pytest.mark.chaos,
    ),
]


async def seed(db: Database, rows: int, now: datetime) -> set[str]:
    """`rows` finished webhook events, one millisecond apart: four fifths fired 3 h ago
    (to move), one fifth 49 h ago (past the total window: to delete); the expired ids."""
    counter = " CROSS JOIN ".join(f"{DIGITS} d{k}" for k in range(6))
    number = " + ".join(f"d{k}.d * {10**k}" for k in range(6))
    async with db.connection() as tx:
        for start in range(0, rows, CHUNK):
            await tx.execute(
                "INSERT INTO event_logs (id, trigger_id, trigger_type, source, scheduled_at,"
                " fired_at, payload, request, status, attempts, last_status_code,"
                " delivered_at, next_attempt_at, created_at, updated_at)"
                " SELECT CONCAT(%s, LPAD(n, 19, '0')), NULL, 'webhook', 'api', f, f,"
                ' \'{"n": 1}\', \'{"url": "http://127.0.0.1:9/", "method": "POST"}\','
                " 'success', 1, 200, f, NULL, f, f"
                " FROM (SELECT n, IF(n %% 5 = 0, %s, %s) - INTERVAL n * 1000 MICROSECOND AS f"
                f" FROM (SELECT {number} AS n FROM {counter}) c"
                " WHERE n >= %s AND n < %s) s",
                (
                    ID_PREFIX,
                    now - timedelta(hours=49),
                    now - timedelta(hours=3),
                    start,
                    min(rows, start + CHUNK),
                ),
            )
    return {f"{ID_PREFIX}{n:019d}" for n in range(0, rows, 5)}


async def count(db: Database, table: str) -> int:
    async with db.connection() as tx:
        row = await tx.fetch_one(f"SELECT COUNT(*) AS n FROM {table}")
    assert row is not None
    return int(row["n"])


async def health_status(proc: EventtriggerProcess) -> int:
    try:
        async with httpx.AsyncClient(base_url=proc.base_url, timeout=10) as anonymous:
            return (await anonymous.get("/health")).status_code
    except httpx.HTTPError:
        return 0


@pytest.mark.parametrize("backlog", SCENARIOS)
async def test_a_catch_up_pass_stays_healthy_stops_on_sigterm_and_resumes(
    backlog: Backlog,
    servers: tuple[MariaDB, Kafka],
    flaunch: Callable[..., EventtriggerProcess],
    fdb: Database,
) -> None:
    started = time.monotonic()
    expired = await seed(fdb, backlog.rows, datetime.now(UTC))
    seeded_s = time.monotonic() - started
    assert await count(fdb, "event_logs") == backlog.rows

    env = fault_environ(servers)
    proc = flaunch(env=env)
    pass_started = time.monotonic()
    statuses: list[int] = []

    async def far_enough() -> bool:
        statuses.append(await health_status(proc))
        return await count(fdb, "event_logs_archive") >= backlog.sigterm_at

    await wait_until(far_enough, timeout=300, interval=0.5)
    first_pass_s = time.monotonic() - pass_started
    stopping = time.monotonic()
    exit_code = await asyncio.to_thread(proc.stop, 60.0)
    exit_s = time.monotonic() - stopping
    left = await count(fdb, "event_logs")
    archived_at_stop = await count(fdb, "event_logs_archive")

    # Healthy all along (a stalled role would have made it 503), a clean exit within
    # the grace, and stopped between batches: the backlog still waits (ten batches at
    # the least), where a pass that ignored SIGTERM would have moved all of it.
    assert set(statuses) == {200}, statuses
    assert exit_code == 0
    assert exit_s < GRACE, exit_s
    assert left >= 10 * BATCH, f"the pass ran on after SIGTERM: {left} rows left"

    # The next process resumes where this one stopped and finishes the backlog.
    resumed = flaunch(env=env)
    resumed_at = time.monotonic()

    resumed_statuses: list[int] = []

    async def finished() -> bool:
        resumed_statuses.append(await health_status(resumed))
        return await count(fdb, "event_logs") == 0 and await count(
            fdb, "event_logs_archive"
        ) == backlog.rows - len(expired)

    await wait_until(finished, timeout=max(120.0, backlog.rows / 1000), interval=0.5)
    finish_s = time.monotonic() - resumed_at
    assert set(resumed_statuses) == {200}, resumed_statuses
    async with fdb.connection() as tx:
        archived = {r["id"] for r in await tx.fetch_all("SELECT id FROM event_logs_archive")}
        counted = await tx.fetch_one("SELECT COALESCE(SUM(n), 0) AS n FROM event_archive_counts")
    every = {f"{ID_PREFIX}{n:019d}" for n in range(backlog.rows)}
    assert archived == every - expired  # each kept event archived, each expired one gone
    assert counted is not None and int(counted["n"]) == len(archived)
    record_result(
        scenario=f"retention-catchup-{backlog.name}",
        rows=backlog.rows,
        seeded_s=round(seeded_s, 1),
        health_checks=len(statuses) + len(resumed_statuses),
        health_non_200=sum(1 for s in statuses + resumed_statuses if s != 200),
        first_pass_s=round(first_pass_s, 1),
        archived_at_sigterm=archived_at_stop,
        sigterm_exit_s=round(exit_s, 2),
        left_at_sigterm=left,
        resumed_finish_s=round(finish_s, 1),
        rows_per_s_after_resume=round(left / max(finish_s, 0.001)),
    )
