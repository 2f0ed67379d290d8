"""Health: each role's loop heartbeat, plus database and Kafka checks, with latencies.

`/health` is public, so a flood of calls must not turn into a flood of connections to
the database and Kafka: the dependency checks run at most once per `cache_seconds`, and
callers arriving while a check runs wait for that one instead of starting their own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

Check = Callable[[], Awaitable[float]]  # returns latency in ms, raises when unhealthy


class Health:
    """Shared by every role in the process. Roles call `beat(role)` on each loop turn."""

    def __init__(
        self,
        roles: tuple[str, ...],
        checks: dict[str, Check],
        stale_after: float = 30.0,
        cache_seconds: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self._monotonic = monotonic
        self._beats = {role: monotonic() for role in roles}
        self._checks = checks
        self._stale_after = stale_after
        self._cache_seconds = cache_seconds
        self._checked: tuple[float, bool, dict[str, Any]] | None = None
        self._checking = asyncio.Lock()

    def beat(self, role: str) -> None:
        self._beats[role] = self._monotonic()

    async def report(self, check_timeout: float = 2.0) -> tuple[bool, dict[str, Any]]:
        checks_ok, checks = await self._dependencies(check_timeout)
        now = self._monotonic()
        roles = {}
        healthy = checks_ok
        for role, last in self._beats.items():
            ago = now - last
            ok = ago <= self._stale_after
            healthy &= ok
            roles[role] = {
                "status": "ok" if ok else "stalled",
                "last_beat_seconds_ago": round(ago, 3),
            }
        body = {"status": "ok" if healthy else "unavailable", "roles": roles, "checks": checks}
        return healthy, body

    def _fresh(self) -> tuple[bool, dict[str, Any]] | None:
        if self._checked is None:
            return None
        at, ok, checks = self._checked
        if self._monotonic() - at >= self._cache_seconds:
            return None
        return ok, checks

    async def _dependencies(self, check_timeout: float) -> tuple[bool, dict[str, Any]]:
        """The checks' results, at most `cache_seconds` old."""
        if (cached := self._fresh()) is not None:
            return cached
        async with self._checking:
            if (cached := self._fresh()) is not None:  # another caller just ran them
                return cached
            names = list(self._checks)
            results = await asyncio.gather(
                *(asyncio.wait_for(self._checks[n](), check_timeout) for n in names),
                return_exceptions=True,
            )
            ok = True
            checks: dict[str, Any] = {}
            for name, result in zip(names, results, strict=True):
                if isinstance(result, BaseException):
                    ok = False
                    error = str(result) or type(result).__name__
                    checks[name] = {
                        "status": "unavailable",
                        "latency_ms": None,
                        "error": error[:300],
                    }
                else:
                    checks[name] = {"status": "ok", "latency_ms": round(result, 2)}
            self._checked = (self._monotonic(), ok, checks)
            return ok, checks
