"""Two scheduler processes on one database and topic compete for the same occurrences;
each occurrence is fired (and logged) exactly once."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from eventtrigger.store.db import Database, read_time
from tests.e2e.conftest import (
    Sink,
    create_trigger,
    e2e_environ,
    event_rows,
    log_lines,
    rfc3339,
    wait_until,
)
from tests.process import EventtriggerProcess

ONE_SHOTS = 30
CRON_FIRINGS = 8  # the cron trigger fires every second: run ~8 s
RETRY = {"max_attempts": 3, "initial_delay": "200ms", "max_delay": "1s"}


def _fired_by_scheduler(log: Path) -> list[dict[str, Any]]:
    return [
        e for e in log_lines(log) if e.get("action") == "fired" and e.get("role") == "scheduler"
    ]


async def _create(client: httpx.AsyncClient, name: str, kind: str, config: dict[str, Any]) -> str:
    trigger_id: str = (await create_trigger(client, kind, config, name=name))["id"]
    return trigger_id


async def test_two_scheduler_processes_never_fire_an_occurrence_twice(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    sink: Sink,
    db: Database,
) -> None:
    env = e2e_environ()
    first = launch(env=env)
    second = launch("scheduler,worker", env=env)

    due = datetime.now(UTC) + timedelta(seconds=3)
    run_at = rfc3339(due)
    async with api(first) as client:
        cron = await _create(
            client,
            "every second",
            "cron_scheduled",
            {"endpoint": sink.url("/cron"), "cron": "* * * * * *", "retry": RETRY},
        )
        one_shots = await asyncio.gather(
            *(
                _create(
                    client,
                    f"once-{n}",
                    "time_scheduled",
                    {"endpoint": sink.url("/once"), "run_at": run_at, "retry": RETRY},
                )
                for n in range(ONE_SHOTS)
            )
        )
    assert datetime.now(UTC) < due, "creating took too long"

    async def enough() -> bool:
        cron_rows = await event_rows(db, "trigger_id = %s", (cron,))
        once_rows = await event_rows(db, "trigger_id != %s", (cron,))
        return len(cron_rows) >= CRON_FIRINGS and len(once_rows) >= ONE_SHOTS

    await wait_until(enough, timeout=20.0)
    await sink.wait_for("/once", ONE_SHOTS, timeout=10.0)
    # Which scheduler wins a claim depends on the phase of the two 250 ms poll loops, so one
    # may win (nearly) every time. If one has not fired yet, stop the busy one (SIGTERM hands
    # back its claims) and let the idle one carry on: its log must show firings too.
    competed = {p.log_path.name: len(_fired_by_scheduler(p.log_path)) for p in (first, second)}
    idle = [p for p in (first, second) if not _fired_by_scheduler(p.log_path)]
    if idle:
        [quiet] = idle
        busy = second if quiet is first else first
        assert await asyncio.to_thread(busy.stop) == 0
        before = len(await event_rows(db, "trigger_id = %s", (cron,)))

        async def carried_on() -> bool:
            return len(await event_rows(db, "trigger_id = %s", (cron,))) >= before + 2

        await wait_until(carried_on, timeout=10.0)
    # Stop both (gracefully) so nothing fires while we look.
    assert await asyncio.to_thread(first.stop) == 0
    assert await asyncio.to_thread(second.stop) == 0

    # The cron trigger: every occurrence once, one second apart, no gap and no repeat.
    cron_rows = await event_rows(db, "trigger_id = %s", (cron,))
    scheduled = sorted(read_time(r["scheduled_at"]) for r in cron_rows)
    assert len(scheduled) >= CRON_FIRINGS
    assert len(set(scheduled)) == len(scheduled), Counter(scheduled).most_common(3)
    steps = {(b - a).total_seconds() for a, b in itertools.pairwise(scheduled)}
    assert steps == {1.0}, sorted(scheduled)
    assert all(s is not None and s.microsecond == 0 for s in scheduled)
    async with db.connection() as tx:
        occurrences = await tx.fetch_all(
            "SELECT fire_at FROM trigger_schedules WHERE trigger_id = %s AND status = 'completed'",
            (cron,),
        )
    assert len(occurrences) == len(cron_rows)

    # Each one-shot: one event row, one delivery, fired at its time.
    once_rows = await event_rows(db, "trigger_id != %s", (cron,))
    assert Counter(r["trigger_id"] for r in once_rows) == Counter(one_shots)
    assert {read_time(r["scheduled_at"]) for r in once_rows} == {
        datetime.fromisoformat(run_at.replace("Z", "+00:00"))
    }
    once_deliveries = Counter(r.headers["webhook-id"] for r in sink.at("/once"))
    assert set(once_deliveries) == {r["id"] for r in once_rows}

    # Both processes really competed: each fired some occurrences, none fired one twice.
    fired = {p.log_path.name: _fired_by_scheduler(p.log_path) for p in (first, second)}
    all_fired = [e["event_id"] for lines in fired.values() for e in lines]
    assert len(all_fired) == len(set(all_fired)) == len(cron_rows) + len(once_rows)
    counts = {name: len(lines) for name, lines in fired.items()}
    print(f"\nfirings per process while both ran: {competed}; in all: {counts}")
    assert all(counts.values()), f"one scheduler never fired: {counts}"
