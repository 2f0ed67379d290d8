"""The retention role: on its interval, move finished events past the active window to
the archive, delete everything past the total window, prune finished occurrences, old
idempotency keys and audit rows past EVENTTRIGGER_AUDIT_RETENTION. The SQL lives in
`store/retention.py` and `store/audit.py`; this module only paces it.

A pass catching up after an outage can run for minutes: it beats the role's heartbeat
after every batch and ends between batches once stop is set (a batch is one short
transaction, so a stop waits for one at most); the next pass, in this process or the
next, goes on with what is left.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from loguru import logger

from eventtrigger.clock import wait_stop
from eventtrigger.domain.retention import Windows
from eventtrigger.resources import Resources
from eventtrigger.store import audit
from eventtrigger.store.db import TRANSIENT_ERRORS, Database
from eventtrigger.store.retention import BATCH, More, delete_expired, drain, go_on, move_batch

HEARTBEAT = 1.0


async def run_once(
    db: Database,
    windows: Windows,
    now: datetime,
    *,
    size: int = BATCH,
    more: More = go_on,
    audit_retention: timedelta | None = None,
) -> dict[str, int]:
    """One pass, in batches of `size`; `more()` after each batch (False ends the pass
    there); counts of what it did. With `audit_retention`, audit rows older than that
    go last (`pruned_audit`); the role always passes it."""
    stopped = False

    def heard() -> bool:
        # Remembers a stop, so the audit step can tell a finished pass from a stopped one.
        nonlocal stopped
        stopped = stopped or not more()
        return not stopped

    moved, onwards = await drain(
        lambda: move_batch(db, windows.active_since(now), size), size, heard
    )
    if not onwards:
        return {"moved": moved}
    done = {"moved": moved}
    done.update(await delete_expired(db, windows.kept_since(now), size=size, more=heard))
    if audit_retention is not None and not stopped:
        kept_since = now - audit_retention
        done["pruned_audit"], _ = await drain(
            lambda: audit.prune(db, kept_since, size), size, heard
        )
    return done


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
                done = await run_once(
                    res.db,
                    windows,
                    res.clock.now(),
                    size=BATCH,
                    more=more,
                    audit_retention=settings.audit_retention,
                )
            except TRANSIENT_ERRORS as exc:
                log.bind(action="db_error").warning("retention pass failed: {}", exc)
            else:
                if any(done.values()):
                    log.bind(action="retention_pass", stopped=stop.is_set(), **done).info(
                        "retention pass"
                    )
        if await wait_stop(stop, min(HEARTBEAT, max(0.05, next_pass - loop.time()))):
            return
