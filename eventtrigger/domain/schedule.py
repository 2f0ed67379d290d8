"""When does a trigger fire next? Pure schedule arithmetic for cron, interval and one-shot triggers.

Nothing here reads a clock or does I/O: the caller passes `after` (usually "now" or the previous
fire time) and gets back the next fire time as an aware UTC datetime, or None when there is none.
Every datetime argument must be timezone-aware (ValueError otherwise); they are compared as
instants, whatever zone they carry.

Cron expressions
----------------
* 5 fields: `minute hour day-of-month month day-of-week` (Debian/Vixie cron syntax).
* 6 fields: the same with a SECONDS field FIRST, as in Quartz, Spring and node-cron:
  `*/10 * * * * *` is every 10 seconds, `0 30 2 * * *` is 02:30:00 every day.
* Supported syntax (parsing is delegated to `cronsim`): `*`, lists `1,5`, ranges `1-5`, steps
  `*/15` and `10-50/20`, names `JAN`-`DEC` and `SUN`-`SAT` (any case), day-of-week 0-7 where both
  0 and 7 are Sunday, `L` and `LW` in day-of-month, `5L` (last Friday) and `MON#2` (second Monday)
  in day-of-week. As in Debian cron, when day-of-month and day-of-week are both restricted (neither
  starts with `*`) a day matches if EITHER matches; otherwise both must match.
* `cron_error` rejects expressions that can never fire (`0 0 30 2 *`, or `* * */20 * 1L`: the 1st
  or 21st that is also the last Monday). `next_cron` never loops forever: it returns None when no
  fire time exists (cronsim gives up after a 50-year search) or the datetime range is exhausted.

Time zones and daylight-saving time
-----------------------------------
Cron times are local wall-clock times in the trigger's IANA zone `tz`. Where a DST change makes
local times skipped or repeated, expressions fall into two kinds, decided by the HOUR field:

* Time-of-day expressions: the hour field does not start with `*` (`30 2 * * *`, `0 9-17 * * 1-5`,
  `*/15 2 * * *`, `0 30 1 * * *`). The wall clock rules:
  - A local time SKIPPED by a spring-forward jump fires once, at the instant of the jump (the first
    valid local time after it). New York, 2025-03-09, `30 2 * * *` fires at 03:00 EDT (07:00 UTC).
    Several skipped times collapse into that single fire (`15,45 2 * * *` fires once at 03:00),
    and a match exactly at the jump joins it too (`0 2,3 * * *` fires once, at 03:00 EDT).
  - A local time REPEATED by a fall-back fires ONCE, at its first occurrence (the earlier offset).
    New York, 2025-11-02, `30 1 * * *` fires at 01:30 EDT (05:30 UTC), not again at 01:30 EST.
* Periodic expressions: the hour field starts with `*` (`*/15 * * * *`, `30 * * * *`,
  `0 */2 * * *`, `*/10 * * * * *`). These fire at every real instant whose local time matches,
  so elapsed-time spacing stays regular: during a fall-back the repeated hour fires in BOTH passes
  (`*/15 * * * *` fires 01:00-01:45 EDT and again 01:00-01:45 EST, every 15 real minutes), and local
  times skipped by a spring-forward do not fire at all (`30 * * * *` fires 01:30 EST then 03:30 EDT,
  one real hour apart, with no extra fire at 03:00).

This matches cronsim's (Debian cron's) own behaviour for 5-field expressions, except that Debian
treats a `*` minute field with a fixed hour (`*/15 2 * * *`) as periodic, which would make such a
job skip the spring-forward day entirely; here it follows the time-of-day rules. cronsim applies no
DST handling at all to 6-field expressions (`0 30 1 * * *` would fire twice on fall-back and
`0 30 2 * * *` not at all on spring-forward); here they follow the same rules as 5-field ones.
To get this, cronsim is only used to parse expressions and to walk NAIVE local wall-clock times;
the mapping of wall times to instants is done here. Requires cronsim >= 2.7 (first release that
accepts the seconds-first 6-field form).

Intervals and one-shots
-----------------------
An interval trigger fires at `anchor + k * every` (k = 0, 1, 2, ...), computed with exact integer
microseconds from the anchor, so it never drifts however many times it is advanced. A one-shot
trigger fires once, at `run_at`. Bounds: `start_at` is inclusive (a fire at exactly `start_at` is
allowed), `end_at` is inclusive (a fire at exactly `end_at` is allowed, later ones are not).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import Enum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

__all__ = ["cron_error", "next_cron", "next_interval", "next_once"]

_MICROSECOND = timedelta(microseconds=1)
_SECOND = timedelta(seconds=1)
# Fixed, arbitrary reference for validation probes (keeps this module clock-free).
_PROBE_START = datetime(2000, 1, 1)

_FIELDS_5 = ("minute", "hour", "day-of-month", "month", "day-of-week")
_FIELDS_6 = ("second", *_FIELDS_5)
_ALLOWED = {
    "second": "0-59",
    "minute": "0-59",
    "hour": "0-23",
    "day-of-month": "1-31, L or LW",
    "month": "1-12 or JAN-DEC",
    "day-of-week": "0-7 or SUN-SAT (0 and 7 are Sunday), optionally with L or #N (e.g. 5L, MON#2)",
}


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def cron_error(expr: str) -> str | None:
    """None if `expr` is a valid 5-field cron, or a 6-field one with SECONDS FIRST
    (Quartz/Spring/node-cron style: `*/10 * * * * *` = every 10 s); else a human-readable message.
    """
    if not isinstance(expr, str):
        return "a cron expression must be a string"
    fields = expr.split()
    if len(fields) not in (5, 6):
        return (
            f"a cron expression needs 5 fields (minute hour day-of-month month day-of-week) "
            f"or 6 with seconds first (second minute hour day-of-month month day-of-week); "
            f"got {len(fields)}"
        )
    normalised = " ".join(fields)
    try:
        probe = CronSim(normalised, _PROBE_START)
    except CronSimError:
        return _explain_rejection(fields)
    try:
        next(probe)
    except StopIteration:
        return f"{normalised!r} never fires: no date satisfies its day, month and weekday fields"
    except OverflowError:  # pragma: no cover - a probe from 2000 cannot reach year 9999
        return f"{normalised!r} never fires"
    return None


def next_cron(
    expr: str,
    tz: str,
    after: datetime,
    *,
    start_at: datetime | None = None,
    end_at: datetime | None = None,
) -> datetime | None:
    """The first fire time strictly after `after` (and not before `start_at`, i.e. >= start_at),
    evaluated in IANA zone `tz`; None if it would be after `end_at` (end_at inclusive: a fire
    exactly at end_at is allowed) or if none exists.

    Returns an aware UTC datetime. Raises ValueError for a malformed expression (see
    `cron_error`), an unknown time zone or a naive datetime. DST rules: see the module docstring.
    """
    zone = _zone(tz)
    floor = _utc(after, "after")
    if start_at is not None and (start := _utc(start_at, "start_at")) > floor:
        # "> floor" with floor = start_at - 1 µs is exactly ">= start_at" at datetime resolution.
        floor = start - _MICROSECOND
    limit = None if end_at is None else _utc(end_at, "end_at")
    fields = expr.split() if isinstance(expr, str) else []
    if len(fields) not in (5, 6):
        raise ValueError(cron_error(expr) or "invalid cron expression")
    normalised = " ".join(fields)
    try:
        CronSim(normalised, _PROBE_START)
    except CronSimError as exc:
        raise ValueError(cron_error(normalised) or str(exc)) from None
    if limit is not None and limit <= floor:
        return None
    # The hour field decides between time-of-day and periodic DST handling (module docstring).
    time_of_day = not fields[len(fields) - 4].startswith("*")
    try:
        found = _search(normalised, zone, floor, time_of_day=time_of_day)
    except OverflowError:  # the search ran past datetime.max: there is no next fire
        return None
    if found is None or (limit is not None and found > limit):
        return None
    return found


def next_interval(
    every: timedelta, anchor: datetime, after: datetime, *, end_at: datetime | None = None
) -> datetime | None:
    """Occurrences are anchor + k*every for integer k >= 0; return the first strictly after
    `after` (so a future anchor returns the anchor itself, and anchor == creation time gives
    creation + every). Exact integer microsecond arithmetic, never drift. None if past end_at
    (inclusive).

    Returns an aware UTC datetime (None also if the next occurrence is beyond datetime.max).
    Raises ValueError if `every` is not positive or a datetime is naive.
    """
    step = every // _MICROSECOND
    if step <= 0:
        raise ValueError("an interval must be positive")
    origin = _utc(anchor, "anchor")
    floor = _utc(after, "after")
    limit = None if end_at is None else _utc(end_at, "end_at")
    # k = 0 for a future anchor, else the first k with anchor + k*every > after.
    k = 0 if floor < origin else (floor - origin) // _MICROSECOND // step + 1
    try:
        found = origin + timedelta(microseconds=k * step)
    except OverflowError:
        return None
    if limit is not None and found > limit:
        return None
    return found


def next_once(run_at: datetime, after: datetime) -> datetime | None:
    """run_at if run_at > after else None (as an aware UTC datetime)."""
    when = _utc(run_at, "run_at")
    return when if when > _utc(after, "after") else None


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _utc(value: datetime, name: str) -> datetime:
    """`value` as an aware UTC datetime; ValueError if it is naive."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")
    return value.astimezone(UTC)


def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(
            f"unknown time zone {tz!r}; use an IANA name like 'Europe/London'"
        ) from None


def _explain_rejection(fields: list[str]) -> str:
    """Why cronsim rejected `fields`: name the offending field, or say it can never fire."""
    names = _FIELDS_6 if len(fields) == 6 else _FIELDS_5
    for index, (name, value) in enumerate(zip(names, fields, strict=True)):
        alone = ["*"] * len(fields)
        alone[index] = value
        try:
            CronSim(" ".join(alone), _PROBE_START)
        except CronSimError:
            return f"invalid {name} field {value!r}: expected {_ALLOWED[name]}"
    # Every field is fine on its own; cronsim refuses the combination because the day-of-month
    # is larger than any month in the month field has (e.g. `0 0 30 2 *`).
    return (
        f"{' '.join(fields)!r} never fires: day-of-month {fields[-3]!r} does not exist in "
        f"month(s) {fields[-2]!r}"
    )


class _Kind(Enum):
    NORMAL = "normal"  # the wall time occurs exactly once
    SKIPPED = "skipped"  # the wall time falls in a spring-forward gap
    REPEATED = "repeated"  # the wall time occurs twice (fall-back)


def _classify(wall: datetime, zone: ZoneInfo) -> tuple[_Kind, datetime, datetime]:
    """Classify naive local `wall` and return its (fold=0, fold=1) readings as UTC instants.

    For a repeated time, fold=0 is the first occurrence and fold=1 the second. For a skipped
    time (PEP 495) fold=0 reads it with the offset before the jump and fold=1 with the offset
    after, so the fold=1 instant is before the jump and the fold=0 instant at or after it.
    """
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if first == second:
        return _Kind.NORMAL, first, second
    if _wall(first, zone) != wall:
        return _Kind.SKIPPED, first, second
    return _Kind.REPEATED, first, second


def _wall(instant: datetime, zone: ZoneInfo) -> datetime:
    """The naive local wall-clock reading of `instant` in `zone`."""
    return instant.astimezone(zone).replace(tzinfo=None)


def _transition(lo: datetime, hi: datetime, zone: ZoneInfo) -> datetime:
    """The UTC offset change in (lo, hi]: the earliest instant there with hi's offset.

    `lo` and `hi` bracket exactly one transition (they are the two readings of one skipped or
    repeated wall time); zoneinfo exposes no transition list, so binary-search for it.
    """
    target = hi.astimezone(zone).utcoffset()
    low, high = 0, (hi - lo) // _MICROSECOND  # offset(lo + low) != target == offset(lo + high)
    while high - low > 1:
        middle = (low + high) // 2
        if (lo + timedelta(microseconds=middle)).astimezone(zone).utcoffset() == target:
            high = middle
        else:
            low = middle
    return lo + timedelta(microseconds=high)


def _search(expr: str, zone: ZoneInfo, floor: datetime, *, time_of_day: bool) -> datetime | None:
    """The first fire instant strictly after `floor` (UTC), or None if cronsim finds none."""
    found = _walk(expr, zone, floor, time_of_day=time_of_day)
    if time_of_day:
        return found
    # Periodic expressions also fire in the second pass of a repeated hour. `_walk` sees those
    # instants only for wall times after `floor`'s own reading; when `floor` is in the FIRST pass,
    # the second pass (which starts at the jump) also holds fires of wall times at or before it.
    kind, first, second = _classify(_wall(floor, zone), zone)
    if kind is not _Kind.REPEATED or floor != first:
        return found
    jump = _transition(first, second, zone)
    if found is not None and found < jump:
        return found  # a first-pass fire comes before the whole second pass
    repeat_start = _wall(jump, zone)  # the repeated span, read with the later offset
    repeat_end = _wall(jump + (second - first), zone)
    try:
        wall = next(CronSim(expr, repeat_start - _SECOND))
    except StopIteration:  # pragma: no cover - `found` would be None and so would this
        return found
    if wall < repeat_end:
        return wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    return found


def _walk(expr: str, zone: ZoneInfo, floor: datetime, *, time_of_day: bool) -> datetime | None:
    """Walk cronsim's matches forward from `floor`'s wall-clock reading to the first fire > floor.

    cronsim walks naive local wall times (no tzinfo, so it applies no DST logic of its own);
    each matching wall time is turned into instants here. Mapped this way (a repeated time to its
    first occurrence, a skipped time to the jump) instants never decrease along the walk, so the
    first one after `floor` is the answer, except for second passes of a repeated hour, which
    `_search` handles for periodic expressions.
    """
    start = _wall(floor, zone)
    while True:
        # cronsim drops microseconds, ticks one second, then yields matches > that second.
        for wall in CronSim(expr, start):
            kind, first, second = _classify(wall, zone)
            if kind is _Kind.NORMAL:
                if first > floor:
                    return first
                continue  # pragma: no cover - a later normal wall time is a later instant
            if kind is _Kind.SKIPPED:
                jump = _transition(second, first, zone)
                if time_of_day and jump > floor:
                    return jump  # a skipped time of day fires once, right after the jump
                # Periodic: skipped times do not exist, so do not fire. Either way, resume the
                # walk at the first real wall time after the gap (skipping the rest of the gap).
                start = max(_wall(jump, zone) - _SECOND, wall)  # max(): always make progress
                break
            # Repeated wall time: `first` (earlier offset) < `second` (later offset).
            if first > floor:
                return first
            # `floor` lies in the second pass of this repeated span.
            if not time_of_day and second > floor:
                return second  # periodic expressions fire in both passes
            # Time of day: it fired in the first pass already. Resume after the repeated span.
            jump = _transition(first, second, zone)
            start = max(_wall(jump + (second - first), zone) - _SECOND, wall)
            break
        else:
            return None  # cronsim gave up: no match within its 50-year search window
