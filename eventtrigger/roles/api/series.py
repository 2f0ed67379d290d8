"""`GET /api/v1/stats/series`: per-bucket firings by outcome and p50/p99 fire lateness
and delivery latency, for the console's charts.

A preset `range` (15m, 1h, 6h, 24h, 48h) gives about 60 buckets of a round length (48h
keeps its 96 half-hour buckets), aligned on multiples of their length, the last one
holding now. A custom window, `from` and `to` (RFC 3339), must lie within the total
retention window; its buckets start at `from`, the smallest round length that needs at
most 60 of them, and the last one ends at `to`. The answer says its bucket length and
the window it covers (`from`, `to`), so a chart can say what it shows. `trigger_id`
narrows to one trigger.

Answers are cached per (window, trigger) for a fraction of a bucket, so any number of
open consoles polling cost the database one query each time; and one query runs at a
time per process (callers arriving meanwhile take its answer from the cache).
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from eventtrigger.domain.errors import FieldError
from eventtrigger.domain.times import iso, parse_rfc3339
from eventtrigger.ids import looks_like_id
from eventtrigger.resources import Resources
from eventtrigger.roles.api.http import json_response, query_choice
from eventtrigger.roles.api.problems import Problem
from eventtrigger.store import series as store

# range -> (bucket seconds, bucket count)
RANGES = {
    "15m": (15, 60),
    "1h": (60, 60),
    "6h": (360, 60),
    "24h": (1200, 72),
    "48h": (1800, 96),
}
# Bucket lengths a custom window may get (seconds): round numbers a chart can label.
ROUND_BUCKETS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600, 7200, 10800)
TARGET_BUCKETS = 60
# A browser's clock and ours may disagree a little: a window this far past our edges is
# still taken (it can only hold events that exist).
CLOCK_SLACK = timedelta(minutes=5)
CACHE_LIMIT = 256  # windows kept; beyond that the cache starts afresh


@dataclass(frozen=True)
class Window:
    """What a request asks for: a preset's name or "custom", and its buckets."""

    name: str
    span: store.Range

    def key(self, trigger_id: str | None) -> tuple[Any, ...]:
        if self.name == "custom":  # a fixed window: its own answer
            return (self.span.start, self.span.end, trigger_id)
        return (self.name, trigger_id)

    @property
    def ttl(self) -> float:
        """Seconds an answer may be reused: a twentieth of a bucket, 1 to 30 s."""
        return min(30.0, max(1.0, self.span.bucket / 20))


def _invalid(field: str, message: str) -> Problem:
    return Problem(400, "Invalid query parameter.", [FieldError(field, message)])


def custom_range(start: datetime, end: datetime) -> store.Range:
    """Buckets for [start, end) (pure): the smallest round length needing at most
    TARGET_BUCKETS of them."""
    seconds = (end - start).total_seconds()
    bucket = next(
        (b for b in ROUND_BUCKETS if seconds / b <= TARGET_BUCKETS),
        math.ceil(seconds / TARGET_BUCKETS),
    )
    return store.Range(start, bucket, max(1, math.ceil(seconds / bucket)), until=end)


def window(
    name: str | None,
    given_from: datetime | None,
    given_to: datetime | None,
    now: datetime,
    kept: timedelta,
) -> Window:
    """The window a request asks for (pure); a 400 naming the field if it cannot be."""
    if given_from is None and given_to is None:
        bucket, count = RANGES[name or "1h"]
        return Window(name or "1h", store.Range.ending_at(now, bucket, count))
    if name is not None:
        raise _invalid("range", "give either `range` or `from`/`to`, not both")
    if given_from is None:
        raise _invalid("from", "required with `to`")
    end = now if given_to is None else given_to
    if given_from < now - kept - CLOCK_SLACK:
        raise _invalid("from", f"must be within the last {_hours(kept)} (events are kept so long)")
    if end > now + CLOCK_SLACK:
        raise _invalid("to", "must not be in the future")
    if end <= given_from:
        raise _invalid("to", "must be later than `from`")
    return Window("custom", custom_range(given_from, end))


def _hours(span: timedelta) -> str:
    hours = span.total_seconds() / 3600
    return f"{hours:g} h"


def _time(request: Request, name: str) -> datetime | None:
    raw = request.query_params.get(name)
    if not raw:
        return None
    try:
        return parse_rfc3339(raw)
    except (ValueError, OverflowError):
        raise _invalid(name, "expected RFC 3339 with an offset") from None


class SeriesRoute:
    def __init__(self, res: Resources) -> None:
        self.res = res
        self._cache: dict[tuple[Any, ...], tuple[float, dict[str, Any]]] = {}
        # One query at a time per process: callers that arrive while it runs take its
        # answer from the cache instead of starting their own.
        self._lock = asyncio.Lock()

    async def get(self, request: Request) -> Response:
        name = query_choice(request, "range", tuple(RANGES))
        trigger_id = request.query_params.get("trigger_id") or None
        if trigger_id is not None and not looks_like_id(trigger_id):
            raise _invalid("trigger_id", "not a trigger id")
        asked = window(
            name,
            _time(request, "from"),
            _time(request, "to"),
            self.res.clock.now(),
            self.res.settings.retention_total,
        )
        key = asked.key(trigger_id)
        async with self._lock:
            cached = self._cache.get(key)
            if cached is not None and time.monotonic() - cached[0] < asked.ttl:
                return json_response(cached[1])
            body = await self._compute(asked, trigger_id)
            if len(self._cache) >= CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = (time.monotonic(), body)
        return json_response(body)

    async def _compute(self, asked: Window, trigger_id: str | None) -> dict[str, Any]:
        now = self.res.clock.now()
        span = asked.span
        if asked.name != "custom":  # the buckets as of now (the cache may have waited)
            span = store.Range.ending_at(now, span.bucket, span.count)
        points = await store.series(self.res.db, span, trigger_id)
        return {
            "range": asked.name,
            "bucket_seconds": span.bucket,
            "bucket_count": span.count,
            "from": iso(span.start),
            "to": iso(span.end),
            "trigger_id": trigger_id,
            "as_of": iso(now),
            "points": [{**p, "start": iso(p["start"])} for p in points],
        }
