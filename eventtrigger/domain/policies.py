"""Scheduling policies of scheduled triggers (pure; `now` is always passed in).

Occurrences have a *nominal* time (the schedule's: `start_at + k*every`, a cron match,
`run_at`) and a *fire* time: nominal plus the trigger's jitter offset. The offset is a
hash of the trigger id and the nominal time, so every scheduler process computes the
same one and an occurrence keeps it across restarts; the schedule itself advances from
nominal times, so jitter never makes it drift or skip.

Misfires: an occurrence found more than `misfire_grace` after its fire time (an outage,
a stopped scheduler) is handled by `misfire`: `fire_once` fires the latest missed
occurrence once, `skip` fires none, `fire_all` fires each missed one (the first
FIRE_ALL_MAX). Either way the schedule then continues with the next future occurrence.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from eventtrigger.domain.durations import parse_duration

FIRE_ONCE, SKIP, FIRE_ALL = "fire_once", "skip", "fire_all"
DEFAULT_MISFIRE, DEFAULT_GRACE = FIRE_ONCE, timedelta(seconds=60)
FIRE_ALL_MAX = 100
_US = timedelta(microseconds=1)

Next = Callable[[datetime], datetime | None]  # the first nominal time strictly after


def jitter_of(config: dict[str, Any]) -> timedelta:
    return parse_duration(config.get("jitter", 0))


def jitter_offset(trigger_id: str, nominal: datetime, jitter: timedelta) -> timedelta:
    """A fixed pseudo-random offset in [0, jitter): a hash of the trigger id and the
    nominal instant (microseconds since the epoch, so the zone it is written in does
    not matter)."""
    span = jitter // _US
    if span <= 0:
        return timedelta(0)
    instant = round(nominal.timestamp() * 1_000_000)
    digest = hashlib.sha256(f"{trigger_id}|{instant}".encode()).digest()
    return timedelta(microseconds=int.from_bytes(digest[:8], "big") % span)


def fire_time(trigger_id: str, config: dict[str, Any], nominal: datetime) -> datetime:
    """When the occurrence at `nominal` fires: nominal plus its jitter offset."""
    return nominal + jitter_offset(trigger_id, nominal, jitter_of(config))


@dataclass(frozen=True)
class Plan:
    """What to do with one due occurrence."""

    fire: tuple[datetime, ...]  # nominal times to fire now (each one event)
    after: datetime  # the next occurrence is the first nominal time strictly after this
    misfired: bool  # found more than misfire_grace late
    policy: str


def plan(
    config: dict[str, Any], nominal: datetime, fire_at: datetime, now: datetime, nxt: Next
) -> Plan:
    """The misfire decision for the occurrence at `nominal` (firing at `fire_at`), found
    due at `now`; `nxt(t)` is the schedule's first nominal time strictly after t."""
    policy = str(config.get("misfire", DEFAULT_MISFIRE))
    grace = parse_duration(config.get("misfire_grace", DEFAULT_GRACE.total_seconds()))
    if now - fire_at <= grace:
        # On time (or late within the grace): fire it. The next one follows on from it,
        # but never from before now minus the jitter: a short stall skips no more than
        # it used to, and jittered occurrences keep their own window.
        return Plan((nominal,), max(nominal, now - jitter_of(config)), False, policy)
    if policy == SKIP:
        return Plan((), now, True, policy)
    if policy == FIRE_ALL:
        missed = [nominal]
        while len(missed) < FIRE_ALL_MAX and (n := nxt(missed[-1])) is not None and n <= now:
            missed.append(n)
        return Plan(tuple(missed), now, True, policy)
    return Plan((latest_missed(nominal, now, nxt),), now, True, policy)


def latest_missed(nominal: datetime, now: datetime, nxt: Next) -> datetime:
    """The last nominal time at or before `now`, from `nominal` (itself at or before now).

    A binary search over instants (about 40 steps for an outage of days), since a cron
    schedule can only be walked forward and a fine one may have millions of missed
    times: `nxt(lo)` stays at or before now, `nxt(hi)` after it.
    """
    first = nxt(nominal)
    if first is None or first > now:
        return nominal
    lo, hi = nominal, now
    while hi - lo > _US:
        mid = lo + (hi - lo) / 2
        n = nxt(mid)
        if n is not None and n <= now:
            lo = mid
        else:
            hi = mid
    found = nxt(lo)
    return found if found is not None and found <= now else nominal


def count_failures(count: int, outcomes: list[str], limit: int) -> tuple[int, bool]:
    """Consecutive final failures after `outcomes` (in order: "success" / "failure"),
    from `count`; and whether they reached `limit` (the trigger is then paused, and
    outcomes after that point are not counted)."""
    for outcome in outcomes:
        count = count + 1 if outcome == "failure" else 0
        if count >= limit:
            return count, True
    return count, False


def pause_reason(count: int, event_id: str, error: str | None) -> str:
    why = f"auto-paused after {count} consecutive failed deliveries; last: event {event_id}"
    return (why + (f" ({error})" if error else ""))[:500]
