"""Scheduling policies end to end (the real process, the real scheduler and worker).

Outage: each trigger's pending occurrence is moved 4.5 minutes into the past in the
database, as if the scheduler had been down; the misfire policy then decides exactly
which firings happen. Jitter: occurrences fire inside their [nominal, nominal + jitter)
window at the offset the domain function gives. Auto-pause: a trigger whose endpoint
always answers 500 pauses itself after N final failures and resuming clears the reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from eventtrigger.domain.policies import jitter_offset
from eventtrigger.store.db import Database
from tests.e2e.conftest import Sink, create_trigger, event_rows, rfc3339, wait_until
from tests.process import EventtriggerProcess

MIN = timedelta(minutes=1)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


async def _events(db: Database, trigger_id: str) -> list[dict[str, Any]]:
    return await event_rows(db, "trigger_id = %s", (trigger_id,))


async def _pending(db: Database, trigger_id: str) -> list[datetime]:
    async with db.connection() as tx:
        rows = await tx.fetch_all(
            "SELECT fire_at FROM trigger_schedules WHERE trigger_id = %s AND status = 'pending'",
            (trigger_id,),
        )
    return [_utc(r["fire_at"]) for r in rows]


async def test_an_outage_past_the_grace_fires_what_each_misfire_policy_promises(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    sink: Sink,
    db: Database,
) -> None:
    # A whole-minute grid whose next point is about 30 s away, so nothing fires on its
    # own during the test; the grid point 4.5 minutes ago stands for the missed one.
    now = datetime.now(UTC).replace(microsecond=0)
    anchor = now - 10 * MIN + timedelta(seconds=30)
    stale = anchor + 5 * MIN  # missed: stale, +1, +2, +3, +4 minutes (the last 30 s ago)
    proc = launch(roles="api")  # no scheduler yet: the "outage"
    triggers: dict[str, dict[str, Any]] = {}
    async with api(proc) as client:
        for policy in ("fire_once", "skip", "fire_all", "in_grace", "fire_all_in_grace"):
            config: dict[str, Any] = {
                "endpoint": sink.url(f"/{policy}"),
                "every": "1m",
                "start_at": rfc3339(anchor),
                "retry": {"max_attempts": 1},
            }
            if policy == "in_grace":  # late, but within its grace: no misfire
                config |= {"misfire": "skip", "misfire_grace": "10m"}
            elif policy == "fire_all_in_grace":  # each missed one fires, no misfire
                config |= {"misfire": "fire_all", "misfire_grace": "10m"}
            else:
                config["misfire"] = policy
            triggers[policy] = await create_trigger(client, "interval_scheduled", config)
    async with db.connection() as tx:
        await tx.execute(
            "UPDATE trigger_schedules SET fire_at = %s, nominal_at = %s WHERE status = 'pending'",
            (stale, stale),
        )

    proc = launch(roles="scheduler,worker", env=proc.env)  # the scheduler comes back

    async def settled() -> bool:  # each trigger's stale occurrence handled
        pending = [await _pending(db, t["id"]) for t in triggers.values()]
        return all(p == [anchor + 10 * MIN] for p in pending)

    await wait_until(settled, timeout=20)
    await sink.wait_for("/fire_all", 5)
    await sink.wait_for("/fire_all_in_grace", 5)
    await asyncio.sleep(1.0)  # anything extra would be fired and delivered by now

    def scheduled(policy: str) -> list[datetime]:
        return sorted(_utc(e["scheduled_at"]) for e in rows[policy])

    rows = {p: await _events(db, t["id"]) for p, t in triggers.items()}
    assert scheduled("skip") == []  # none of the missed occurrences fires
    assert scheduled("fire_once") == [anchor + 9 * MIN]  # the latest missed one, once
    assert scheduled("fire_all") == [stale + k * MIN for k in range(5)]  # each missed one
    assert scheduled("in_grace") == [stale]  # within its grace: fired as it was due
    assert scheduled("fire_all_in_grace") == [stale + k * MIN for k in range(5)]
    assert len(sink.at("/fire_all")) == 5 and len(sink.at("/fire_once")) == 1
    assert sink.at("/skip") == []
    async with api(proc) as client:
        metrics = (await client.get("/metrics")).text
    for policy in ("fire_once", "skip", "fire_all"):
        assert f'eventtrigger_misfires_total{{policy="{policy}"}} 1.0' in metrics, policy


async def test_jittered_occurrences_fire_inside_their_window_at_their_fixed_offset(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    sink: Sink,
    db: Database,
) -> None:
    every, jitter = timedelta(seconds=2), timedelta(seconds=1)
    anchor = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    proc = launch()
    async with api(proc) as client:
        trigger = await create_trigger(
            client,
            "interval_scheduled",
            {
                "endpoint": sink.url("/jitter"),
                "every": "2s",
                "jitter": "1s",
                "start_at": rfc3339(anchor),
                "retry": {"max_attempts": 1},
            },
        )
    await sink.wait_for("/jitter", 4, timeout=20)
    events = await _events(db, trigger["id"])

    assert len(events) >= 4
    for event in events:
        at = _utc(event["scheduled_at"])
        nominal = anchor + (at - anchor) // every * every
        offset = at - nominal
        assert timedelta(0) <= offset < jitter, (at, nominal)
        assert offset == jitter_offset(trigger["id"], nominal, jitter)
        assert _utc(event["fired_at"]) >= at  # never fired before its jittered time
    nominals = [anchor + (_utc(e["scheduled_at"]) - anchor) // every * every for e in events]
    assert nominals == [nominals[0] + k * every for k in range(len(nominals))]  # none skipped


async def test_a_trigger_failing_for_good_n_times_pauses_itself_until_resumed(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    sink: Sink,
    db: Database,
) -> None:
    sink.respond("/down", (500, {}, 0.0))
    proc = launch()
    async with api(proc) as client:
        trigger = await create_trigger(
            client,
            "interval_scheduled",
            {
                "endpoint": sink.url("/down"),
                "every": "1s",
                "retry": {"max_attempts": 1},
                "auto_pause_after": 3,
            },
        )
        url = f"/api/v1/triggers/{trigger['id']}"

        async def paused() -> dict[str, Any] | None:
            body: dict[str, Any] = (await client.get(url)).json()
            return body if body["status"] == "paused" else None

        got = await wait_until(paused, timeout=20)
        deliveries_when_paused = len(sink.at("/down"))
        await asyncio.sleep(2.5)  # two more periods: nothing fires while paused
        metrics = (await client.get("/metrics")).text
        resumed = (await client.patch(url, json={"status": "active"})).json()

    events = await _events(db, trigger["id"])
    assert [e["status"] for e in events[:3]] == ["failure"] * 3
    assert "3 consecutive failed deliveries" in got["paused_reason"], got["paused_reason"]
    assert got["next_fire_at"] is None  # its occurrences were cancelled with the pause
    assert len(sink.at("/down")) == deliveries_when_paused
    assert "eventtrigger_auto_paused_total 1.0" in metrics
    assert resumed["status"] == "active" and resumed["paused_reason"] is None
