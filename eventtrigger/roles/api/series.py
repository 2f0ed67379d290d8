"""`GET /api/v1/stats/series`: per-bucket firings by outcome and p50/p99 fire lateness
and delivery latency, for the console's charts.

`range=1h` gives 60 one-minute buckets, `range=48h` 96 half-hour buckets; `trigger_id`
narrows to one trigger. Answers are cached per (range, trigger) for a fraction of a
bucket, so any number of open consoles polling cost the database one query each time.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from eventtrigger.domain.errors import FieldError
from eventtrigger.domain.times import iso
from eventtrigger.ids import looks_like_id
from eventtrigger.resources import Resources
from eventtrigger.roles.api.http import json_response, query_choice
from eventtrigger.roles.api.problems import Problem
from eventtrigger.store import series as store

# range -> (bucket seconds, bucket count, seconds an answer may be reused)
RANGES = {"1h": (60, 60, 3.0), "48h": (1800, 96, 30.0)}
CACHE_LIMIT = 256  # (range, trigger) pairs kept; beyond that the cache starts afresh


class SeriesRoute:
    def __init__(self, res: Resources) -> None:
        self.res = res
        self._cache: dict[tuple[str, str | None], tuple[float, dict[str, Any]]] = {}
        # One query at a time per process: callers that arrive while it runs take its
        # answer from the cache instead of starting their own.
        self._lock = asyncio.Lock()

    async def get(self, request: Request) -> Response:
        name = query_choice(request, "range", tuple(RANGES)) or "1h"
        trigger_id = request.query_params.get("trigger_id") or None
        if trigger_id is not None and not looks_like_id(trigger_id):
            raise Problem(
                400, "Invalid query parameter.", [FieldError("trigger_id", "not a trigger id")]
            )
        bucket, count, ttl = RANGES[name]
        key = (name, trigger_id)
        async with self._lock:
            cached = self._cache.get(key)
            if cached is not None and time.monotonic() - cached[0] < ttl:
                return json_response(cached[1])
            body = await self._compute(name, trigger_id, bucket, count)
            if len(self._cache) >= CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = (time.monotonic(), body)
        return json_response(body)

    async def _compute(
        self, name: str, trigger_id: str | None, bucket: int, count: int
    ) -> dict[str, Any]:
        now = self.res.clock.now()
        span = store.Range.ending_at(now, bucket, count)
        points = await store.series(self.res.db, span, trigger_id)
        return {
            "range": name,
            "bucket_seconds": bucket,
            "trigger_id": trigger_id,
            "as_of": iso(now),
            "points": [{**p, "start": iso(p["start"])} for p in points],
        }
