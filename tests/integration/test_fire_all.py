"""Misfire policies in the firing transaction, against the real database, with a clock
the test moves: `fire_all` fires every occurrence a stall missed (within the grace or
past it, at most 100) and counts what its cap drops; `fire_once` after the same stall
fires once and counts what it skipped."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from loguru import logger

from eventtrigger.clock import FrozenClock
from eventtrigger.config import Settings
from eventtrigger.ids import new_id, new_signing_secret
from eventtrigger.store.db import Database, Row, read_time
from eventtrigger.store.triggers import TriggerStore
from tests.integration.test_scheduler_firing import _scheduler
from tests.integration.test_trigger_store import INTERVAL, NOW

FIRE_AT = NOW + timedelta(minutes=1)


async def _trigger(db: Database, **policy: Any) -> str:
    trigger_id = new_id(NOW)
    await TriggerStore(db).create(
        trigger_id=trigger_id, name="t", kind="interval_scheduled", status="active",
        config={**INTERVAL, **policy}, signing_secret=new_signing_secret(),
        first_fire=FIRE_AT, now=NOW,
    )  # fmt: skip
    return trigger_id


async def _rows(db: Database, sql: str, trigger_id: str) -> list[Row]:
    async with db.connection() as tx:
        return await tx.fetch_all(sql, (trigger_id,))


async def _fired(db: Database, trigger_id: str) -> list[Row]:
    return await _rows(
        db,
        "SELECT scheduled_at, occurrence_id FROM event_logs WHERE trigger_id = %s"
        " ORDER BY scheduled_at",
        trigger_id,
    )


async def _pending(db: Database, trigger_id: str) -> list[datetime | None]:
    rows = await _rows(
        db,
        "SELECT fire_at FROM trigger_schedules WHERE trigger_id = %s AND status = 'pending'",
        trigger_id,
    )
    return [read_time(r["fire_at"]) for r in rows]


async def _stall_then_fire(
    settings: Settings, db: Database, stall: timedelta
) -> tuple[list[dict[str, Any]], float | None]:
    """Claim the occurrences due at FIRE_AT, find them `stall` late, fire them; the
    misfire log lines and the misfire counter for fire_all."""
    clock = FrozenClock(FIRE_AT - timedelta(seconds=1))
    scheduler = _scheduler(settings, db, clock)
    await scheduler._claim()
    clock.advance(timedelta(seconds=1) + stall)
    lines: list[dict[str, Any]] = []
    sink = logger.add(lambda m: lines.append(m.record["extra"]), level="INFO")
    try:
        await scheduler._fire([i for _, i in scheduler._due])
    finally:
        logger.remove(sink)
    counted = scheduler.res.metrics.registry.get_sample_value(
        "eventtrigger_misfires_total", {"policy": "fire_all"}
    )
    return [x for x in lines if x.get("action") == "misfire"], counted


async def test_fire_all_fires_each_occurrence_a_stall_within_the_grace_missed(
    migrated: Settings, db: Database
) -> None:
    every_10s = {"every": "10s", "misfire": "fire_all"}  # the default grace: 60 s
    fire_all = await _trigger(db, **every_10s)
    fire_once = await _trigger(db, **{**every_10s, "misfire": "fire_once"})
    misfires, counted = await _stall_then_fire(migrated, db, timedelta(seconds=45))

    events = await _fired(db, fire_all)
    # FIRE_AT and the four missed after it, each once; the occurrence row's event first.
    assert [read_time(e["scheduled_at"]) for e in events] == [
        FIRE_AT + k * timedelta(seconds=10) for k in range(5)
    ]
    assert events[0]["occurrence_id"] is not None
    assert await _pending(db, fire_all) == [FIRE_AT + timedelta(seconds=50)]
    assert not counted  # within the grace: no misfire, and nothing was dropped

    # fire_once, as documented: the late one fires, the schedule goes on from now, and
    # the four it skipped are counted in its misfire line.
    assert len(await _fired(db, fire_once)) == 1
    assert await _pending(db, fire_once) == [FIRE_AT + timedelta(seconds=50)]
    [line] = misfires
    assert (line["trigger_id"], line["skipped"], line["past_grace"]) == (fire_once, 4, False)


async def test_fire_all_fires_at_most_100_and_counts_what_the_cap_drops(
    migrated: Settings, db: Database
) -> None:
    fire_all = await _trigger(db, every="1s", misfire="fire_all", misfire_grace="30m")
    misfires, counted = await _stall_then_fire(migrated, db, timedelta(seconds=150))

    events = await _fired(db, fire_all)
    assert [read_time(e["scheduled_at"]) for e in events] == [
        FIRE_AT + k * timedelta(seconds=1) for k in range(100)
    ]
    # 151 missed: 100 fired, 51 dropped and counted; the schedule goes on after now.
    assert await _pending(db, fire_all) == [FIRE_AT + timedelta(seconds=151)]
    assert counted == 1
    [line] = misfires
    assert (line["fired"], line["skipped"], line["skipped_more"]) == (100, 51, False)
