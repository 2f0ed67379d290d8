"""The only source of "now". Tests replace it with a controllable clock.

Pure code never calls this: it takes `now` as an argument. The I/O shell asks a Clock
once per unit of work and passes the value down.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """Wall-clock time in UTC, microsecond precision."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock:
    """A clock that only moves when told to (unit tests)."""

    def __init__(self, start: datetime) -> None:
        self._now = start

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        self._now += delta


async def sleep_until(clock: Clock, when: datetime, stop: asyncio.Event) -> bool:
    """Sleep until `when` or until `stop` is set; True if the time came first.

    Event loop timers (uvloop's especially) have millisecond resolution and may wake a
    little early, so the clock is read again until `when` has really come: a trigger
    never fires before its time.
    """
    while (delay := (when - clock.now()).total_seconds()) > 0:
        try:
            await asyncio.wait_for(stop.wait(), timeout=delay)
        except TimeoutError:
            continue
        return False
    return not stop.is_set()


async def wait_stop(stop: asyncio.Event, seconds: float) -> bool:
    """Wait up to `seconds` for `stop`; True if it was set (the caller should return).

    Every periodic loop paces itself with this, so a SIGTERM is seen within one pause.
    """
    try:
        await asyncio.wait_for(stop.wait(), timeout=max(0.0, seconds))
    except TimeoutError:
        return False
    return True
