"""The database path goes silent mid-load, as after a failover: a TCP proxy between
`eventtrigger run --roles=all` and this session's MariaDB stops forwarding in both
directions and closes nothing towards the process (`BlackHole`). Connections open when
it happens stay dead for good, as the old server's do; connections made once the proxy
forwards again reach the server.

While it lasts /health says the database is unavailable (in time, not hanging); once
the path is back every role recovers within 30 s by itself (webhook calls answered 202,
one-shots delivered, /health 200), and nothing is lost: every accepted call and every
one-shot due meanwhile has exactly one event log, delivered.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from eventtrigger.store.db import Database
from tests.e2e.conftest import Sink, create_trigger, event_rows, wait_until
from tests.fault.conftest import (
    FAULT_DATABASE,
    Kafka,
    MariaDB,
    client,
    fault_environ,
    one_shots_during,
    quantile,
    record_result,
)
from tests.fault.load import Load
from tests.integration.test_db_timeouts import BlackHole
from tests.process import EventtriggerProcess

RECOVERY = 30.0  # seconds after the path is back, for every role


@dataclass(frozen=True)
class Silence:
    name: str
    rate: float
    before: float
    dark: float
    after: float
    one_shots: int  # due spread over the silence


SCENARIOS = [
    pytest.param(Silence("short", rate=20, before=2, dark=12, after=16, one_shots=5), id="short"),
    pytest.param(
        Silence("long", rate=100, before=5, dark=40, after=35, one_shots=50),
        id="chaos-40s",
        marks=pytest.mark.chaos,
    ),
]


@pytest.fixture
async def hole(servers: tuple[MariaDB, Kafka]) -> AsyncIterator[BlackHole]:
    mariadb, _ = servers
    proxy = BlackHole("127.0.0.1", mariadb.port)
    proxy.start()
    yield proxy
    proxy.stop()


async def health(proc: EventtriggerProcess) -> tuple[int, dict[str, object]]:
    try:
        async with httpx.AsyncClient(base_url=proc.base_url, timeout=10) as anonymous:
            answer = await anonymous.get("/health")
            return answer.status_code, answer.json()
    except (httpx.HTTPError, ValueError):
        return 0, {}


@pytest.mark.parametrize("silence", SCENARIOS)
async def test_a_silent_database_path_is_reported_and_every_role_recovers_losing_nothing(
    silence: Silence,
    servers: tuple[MariaDB, Kafka],
    hole: BlackHole,
    flaunch: Callable[..., EventtriggerProcess],
    fdb: Database,
    fsink: Sink,
) -> None:
    proxied = f"mysql://root@127.0.0.1:{hole.port}/{FAULT_DATABASE}"
    proc = flaunch(env=fault_environ(servers, EVENTTRIGGER_DATABASE_URL=proxied))
    pid = proc.proc.pid if proc.proc is not None else None
    async with client(proc) as api:
        hook = await create_trigger(
            api, "webhook", {"endpoint": fsink.url("/w"), "schema": {"type": "object"}}
        )
        setup_done = datetime.now(UTC) + timedelta(seconds=1.5)
        dark_from = setup_done + timedelta(seconds=silence.before)
        one_shot_ids = await one_shots_during(
            api, fsink.url("/once"), dark_from, silence.dark, silence.one_shots
        )
    assert datetime.now(UTC) < dark_from, "creating the one-shots took too long"

    load = Load(hook["webhook_url"], silence.rate, silence.before + silence.dark + silence.after)
    firing = asyncio.create_task(load.run())
    await asyncio.sleep(max(0.0, dark_from.timestamp() - time.time()))  # the timeline
    going_dark = time.time()
    hole.go_dark()
    try:
        # /health answers (each check has 2 s) and names the database as unavailable.
        async def database_unavailable() -> bool:
            status, body = await health(proc)
            checks = body.get("checks", {})
            database = checks.get("database", {}) if isinstance(checks, dict) else {}
            return status == 503 and database.get("status") == "unavailable"

        await wait_until(database_unavailable, timeout=silence.dark - 2, interval=0.3)
        reported_after = time.time() - going_dark
        started = time.monotonic()
        status, _ = await health(proc)
        health_answer_s = time.monotonic() - started
        assert status == 503
        assert health_answer_s < 5.0, health_answer_s
        await asyncio.sleep(max(0.0, going_dark + silence.dark - time.time()))
    finally:
        hole.restore()
    back_at = time.time()

    async def healthy() -> bool:
        return (await health(proc))[0] == 200

    await wait_until(healthy, timeout=RECOVERY, interval=0.3)
    healthy_after = time.time() - back_at
    await firing

    # Answers: 202 stored, 503 refused while the database was unreachable; never a 500.
    assert set(load.statuses) <= {202, 503}, load.statuses
    outside = [c for c in load.calls if c.sent < going_dark - 0.5 or c.sent > back_at + RECOVERY]
    late = [c for c in load.calls if c.sent > back_at + RECOVERY / 2]
    assert all(c.status == 202 for c in outside), Counter(c.status for c in outside)
    assert all(c.status == 202 for c in late), Counter(c.status for c in late)

    accepted = load.accepted

    async def all_final() -> list[dict[str, object]]:
        rows = await event_rows(fdb)
        hooks = {str(r["id"]) for r in rows if r["trigger_id"] == hook["id"]}
        once = [r for r in rows if r["trigger_id"] in one_shot_ids]
        done = all(r["status"] == "success" for r in rows)
        return rows if done and accepted <= hooks and len(once) >= len(one_shot_ids) else []

    rows = await wait_until(all_final, timeout=RECOVERY + 30, interval=0.5)
    ids = Counter(str(r["id"]) for r in rows)
    per_one_shot = Counter(r["trigger_id"] for r in rows if r["trigger_id"] in one_shot_ids)
    arrivals = Counter(r.headers["webhook-id"] for r in fsink.received)
    lost = len(accepted - set(arrivals)) + sum(1 for t in one_shot_ids if per_one_shot[t] == 0)
    duplicate_logs = sum(n - 1 for n in ids.values()) + sum(n - 1 for n in per_one_shot.values())
    once_hooks = {str(r["id"]) for r in rows if r["trigger_id"] in one_shot_ids}
    once_arrivals = [r.at for r in fsink.received if r.headers["webhook-id"] in once_hooks]
    record_result(
        scenario=f"db-half-open-{silence.name}",
        target_rate=silence.rate,
        achieved_rate=round(load.achieved_rate, 1),
        calls=len(load.calls),
        accepted=len(accepted),
        refused_503=load.statuses[503],
        one_shots=len(one_shot_ids),
        lost=lost,
        duplicate_logs=duplicate_logs,
        # At least once: a delivery whose outcome could not be stored is made again.
        repeated_deliveries=sum(n - 1 for n in arrivals.values()),
        dark_s=round(back_at - going_dark, 1),
        unavailable_reported_after_s=round(reported_after, 1),
        health_answer_s=round(health_answer_s, 2),
        health_200_after_s=round(healthy_after, 1),
        one_shots_done_after_return_s=round(max(once_arrivals) - back_at, 1),
        api_p99_s=round(quantile([c.answered - c.sent for c in load.calls], 0.99), 3),
    )
    assert lost == 0
    assert duplicate_logs == 0
    assert max(once_arrivals) - back_at < RECOVERY
    # The same process, never restarted.
    assert proc.proc is not None and proc.proc.poll() is None and proc.proc.pid == pid
