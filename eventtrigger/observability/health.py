"""Health: each role's loop heartbeat, plus database and Kafka checks, with latencies."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

Check = Callable[[], Awaitable[float]]  # returns latency in ms, raises when unhealthy


class Health:
    """Shared by every role in the process. Roles call `beat(role)` on each loop turn."""

    def __init__(self, roles: tuple[str, ...], checks: dict[str, Check], stale_after: float = 30.0):
        self._beats = {role: time.monotonic() for role in roles}
        self._checks = checks
        self._stale_after = stale_after

    def beat(self, role: str) -> None:
        self._beats[role] = time.monotonic()

    async def report(self, check_timeout: float = 2.0) -> tuple[bool, dict[str, Any]]:
        now = time.monotonic()
        roles = {}
        healthy = True
        for role, last in self._beats.items():
            ago = now - last
            ok = ago <= self._stale_after
            healthy &= ok
            roles[role] = {
                "status": "ok" if ok else "stalled",
                "last_beat_seconds_ago": round(ago, 3),
            }
        names = list(self._checks)
        results = await asyncio.gather(
            *(asyncio.wait_for(self._checks[n](), check_timeout) for n in names),
            return_exceptions=True,
        )
        checks: dict[str, Any] = {}
        for name, result in zip(names, results, strict=True):
            if isinstance(result, BaseException):
                healthy = False
                error = str(result) or type(result).__name__
                checks[name] = {"status": "unavailable", "latency_ms": None, "error": error[:300]}
            else:
                checks[name] = {"status": "ok", "latency_ms": round(result, 2)}
        body = {"status": "ok" if healthy else "unavailable", "roles": roles, "checks": checks}
        return healthy, body
