"""The retention role: on its interval, move finished events past the active window to
the archive, delete everything past the total window, prune finished occurrences and old
idempotency keys. The SQL lives in `store/retention.py`; this module only paces it.

A pass catching up after an outage can run for minutes: it beats the role's heartbeat
after every batch and ends between batches once stop is set (a batch is one short
transaction, so a stop waits for one at most); the next pass, in this process or the
next, goes on with what is left.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from loguru import logger

from eventtrigger.clock import wait_stop
from eventtrigger.domain.retention import Windows
from eventtrigger.resources import Resources
from eventtrigger.store.db import TRANSIENT_ERRORS, Database
from eventtrigger.store.retention import BATCH, More, delete_expired, drain, go_on, move_batch

HEARTBEAT = 1.0


async def run_once(
    db: Database, windows: Windows, now: datetime, *, size: int = BATCH, more: More = go_on
) -> dict[str, int]:
    """One pass, in batches of `size`; `more()` after each batch (False ends the pass
    there); counts of what it did."""
    moved, onwards = await drain(
        lambda: move_batch(db, windows.active_since(now), size), size, more
    )
    if not onwards:
        return {"moved": moved}
    return {
        "moved": moved,
        **await delete_expired(db, windows.kept_since(now), size=size, more=more),
    }


async def run(res: Resources, stop: asyncio.Event) -> None:
    settings = res.settings
    windows = Windows(settings.retention_active, settings.retention_total)
    log = logger.bind(role="retention")
    interval = settings.retention_interval.total_seconds()
    loop = asyncio.get_running_loop()
    next_pass = loop.time()

    def more() -> bool:
        res.health.beat("retention")
        return not stop.is_set()

    while not stop.is_set():
        res.health.beat("retention")
        if loop.time() >= next_pass:
            next_pass = loop.time() + interval
            try:
                done = await run_once(res.db, windows, res.clock.now(), size=BATCH, more=more)
            except TRANSIENT_ERRORS as exc:
                log.bind(action="db_error").warning("retention pass failed: {}", exc)
            else:
                if any(done.values()):
                    log.bind(action="retention_pass", stopped=stop.is_set(), **done).info(
                        "retention pass"
                    )
        if await wait_stop(stop, min(HEARTBEAT, max(0.05, next_pass - loop.time()))):
            return
