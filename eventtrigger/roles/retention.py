"""The retention role: on its interval, move finished events past the active window to
the archive, delete everything past the total window, prune finished occurrences and old
idempotency keys. Bounded batches, each its own transaction, so it is safe to interrupt
and to run in several processes (SKIP LOCKED on the move; deletes are idempotent).
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime

from loguru import logger

from eventtrigger.domain.retention import Windows
from eventtrigger.resources import Resources
from eventtrigger.store.db import TRANSIENT_ERRORS, Database, retry_conflicts
from eventtrigger.store.events import in_list
from eventtrigger.store.queries import Q

BATCH = 500
HEARTBEAT = 1.0


async def move_batch(db: Database, before: datetime, limit: int = BATCH) -> int:
    """Copy up to `limit` finished events fired before `before` to the archive and delete
    them from the hot table, in one transaction; how many moved."""
    return await retry_conflicts(lambda: _move(db, before, limit))


async def _move(db: Database, before: datetime, limit: int) -> int:
    async with db.transaction() as tx:
        rows = await tx.fetch_all(Q["retention.select_movable"], (before, limit))
        ids = [r["id"] for r in rows]
        if ids:
            await tx.execute(in_list(Q["retention.copy_to_archive"], ids), ids)
            await tx.execute(in_list(Q["retention.delete_moved"], ids), ids)
    return len(ids)


async def _drain(db: Database, query: str, before: datetime) -> int:
    """Run a bounded DELETE until it deletes less than a batch; the rows deleted."""
    total = 0

    async def delete_batch() -> int:
        async with db.connection() as tx:
            return await tx.execute(Q[query], (before, BATCH))

    while True:
        n = await retry_conflicts(delete_batch)
        total += n
        if n < BATCH:
            return total


async def run_once(db: Database, windows: Windows, now: datetime) -> dict[str, int]:
    """One full pass; counts of what it did."""
    moved = 0
    while (n := await move_batch(db, windows.active_since(now))) > 0:
        moved += n
        if n < BATCH:
            break
    kept_since = windows.kept_since(now)
    return {
        "moved": moved,
        "deleted_hot": await _drain(db, "retention.delete_expired_hot", kept_since),
        "deleted_archive": await _drain(db, "retention.delete_expired_archive", kept_since),
        "pruned_occurrences": await _drain(db, "retention.prune_occurrences", kept_since),
        "pruned_keys": await _drain(db, "retention.prune_idempotency_keys", kept_since),
    }


async def run(res: Resources, stop: asyncio.Event) -> None:
    settings = res.settings
    windows = Windows(settings.retention_active, settings.retention_total)
    log = logger.bind(role="retention")
    interval = settings.retention_interval.total_seconds()
    loop = asyncio.get_running_loop()
    next_pass = loop.time()
    while not stop.is_set():
        res.health.beat("retention")
        if loop.time() >= next_pass:
            next_pass = loop.time() + interval
            try:
                done = await run_once(res.db, windows, res.clock.now())
            except TRANSIENT_ERRORS as exc:
                log.bind(action="db_error").warning("retention pass failed: {}", exc)
            else:
                if any(done.values()):
                    log.bind(action="retention_pass", **done).info("retention pass")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), min(HEARTBEAT, max(0.05, next_pass - loop.time())))
