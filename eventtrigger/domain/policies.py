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
`fire_all` also fires each occurrence missed within the grace (a short stall); the other
policies fire the late one and continue from now. Missed times that do not fire are
counted in the plan (up to SKIPPED_COUNT_MAX), for the scheduler's misfire log and metric.
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
SKIPPED_COUNT_MAX = 100  # missed times counted one by one (each costs a schedule step)
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
    misfired: bool  # found more than misfire_grace late, or fire_all had to drop some
    policy: str
    upcoming: datetime | None = None  # that next nominal time (None: the schedule ended)
    # Missed nominal times neither fired nor to come, counted one by one up to
    # SKIPPED_COUNT_MAX (a fine cron misses millions in an outage); `skipped_more`: more.
    skipped: int = 0
    skipped_more: bool = False


def plan(
    config: dict[str, Any],
    nominal: datetime,
    fire_at: datetime,
    now: datetime,
    nxt: Next,
    fire_time_of: Callable[[datetime], datetime] | None = None,
) -> Plan:
    """The misfire decision for the occurrence at `nominal` (firing at `fire_at`), found
    due at `now`; `nxt(t)` is the schedule's first nominal time strictly after t, and
    `fire_time_of(t)` the fire time of the one at t (t itself without jitter)."""
    policy = str(config.get("misfire", DEFAULT_MISFIRE))
    grace = parse_duration(config.get("misfire_grace", DEFAULT_GRACE.total_seconds()))
    late = now - fire_at > grace
    if policy == FIRE_ALL:
        return _fire_all(nominal, now, nxt, fire_time_of or (lambda t: t), late)
    if not late:
        # On time (or late within the grace): fire it. The next one follows on from it,
        # but never from before now minus the jitter: a short stall skips no more than
        # it used to, and jittered occurrences keep their own window. What it skips is
        # counted.
        after = max(nominal, now - jitter_of(config))
        skipped, more, upcoming = _count(nxt(nominal), after, nxt)
        return Plan((nominal,), after, False, policy, upcoming, skipped, more)
    missed, more, upcoming = _count(nominal, now, nxt)
    if policy == SKIP:
        return Plan((), now, True, policy, upcoming, missed, more)
    latest = latest_missed(nominal, now, nxt)
    return Plan((latest,), now, True, policy, upcoming, missed - 1, more)


def _fire_all(
    nominal: datetime, now: datetime, nxt: Next, due: Callable[[datetime], datetime], late: bool
) -> Plan:
    """Each missed occurrence whose fire time has come fires, late within the grace or
    past it, oldest first, at most FIRE_ALL_MAX; the ones past the cap are counted and
    dropped, and the schedule continues after now."""
    fired = [nominal]
    n = nxt(nominal)
    while n is not None and due(n) <= now and len(fired) < FIRE_ALL_MAX:
        fired.append(n)
        n = nxt(n)
    if n is None or due(n) > now:  # all of them: the next is the first not due yet
        return Plan(tuple(fired), fired[-1], late, FIRE_ALL, n)
    dropped, more, upcoming = _count(n, now, nxt)
    return Plan(tuple(fired), now, True, FIRE_ALL, upcoming, dropped, more)


def _count(first: datetime | None, until: datetime, nxt: Next) -> tuple[int, bool, datetime | None]:
    """How many nominal times from `first` (inclusive) are at or before `until`, counted
    up to SKIPPED_COUNT_MAX (then True: there are more); and the first one after `until`."""
    n, count = first, 0
    while n is not None and n <= until:
        if count == SKIPPED_COUNT_MAX:
            return count, True, nxt(until)
        count += 1
        n = nxt(n)
    return count, False, n


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
