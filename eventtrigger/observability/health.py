"""Health: a heartbeat per loop of each role, plus database and Kafka checks, with latencies.

A role is as healthy as its stalest loop: a scheduler whose claim loop turns while its
firing loop is stuck behind a locked row is stalled, and the report names the loop. Each
loop beats under its own name on every turn (and while it waits, at least every few
seconds); a loop that has not beaten for `stale_after` seconds is stalled.

`/health` is public, so a flood of calls must not turn into a flood of connections to
the database and Kafka: the dependency checks run at most once per `cache_seconds`, and
callers arriving while a check runs wait for that one instead of starting their own.

The report also says how signing secrets are stored (`secrets`: "encrypted" with
EVENTTRIGGER_SECRET_KEY set, "plaintext" without), so an operator sees it at a glance.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

Check = Callable[[], Awaitable[float]]  # returns latency in ms, raises when unhealthy


def secrets_mode(encrypted: bool) -> str:
    """The report's `secrets` field: how signing secrets are written."""
    return "encrypted" if encrypted else "plaintext"


class Health:
    """Shared by every role in the process. Each loop of a role calls `beat(role, loop)`
    on every turn; `beat(role)` is the role's main loop."""

    def __init__(
        self,
        roles: tuple[str, ...],
        checks: dict[str, Check],
        stale_after: float = 30.0,
        cache_seconds: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
        secrets: str | None = None,  # `secrets_mode`; None: not reported
    ):
        self._monotonic = monotonic
        self._secrets = secrets
        # role -> loop -> last beat; the main loop (named as the role) is known from the
        # start, the others from their first beat.
        self._beats: dict[str, dict[str, float]] = {role: {role: monotonic()} for role in roles}
        self._checks = checks
        self._stale_after = stale_after
        self._cache_seconds = cache_seconds
        self._checked: tuple[float, bool, dict[str, Any]] | None = None
        self._checking = asyncio.Lock()

    def beat(self, role: str, loop: str | None = None) -> None:
        self._beats.setdefault(role, {})[loop or role] = self._monotonic()

    def forget(self, role: str, loop: str) -> None:
        """A loop that ended on purpose (at stop) is no longer expected to beat."""
        self._beats.get(role, {}).pop(loop, None)

    async def report(self, check_timeout: float = 2.0) -> tuple[bool, dict[str, Any]]:
        checks_ok, checks = await self._dependencies(check_timeout)
        now = self._monotonic()
        roles = {}
        healthy = checks_ok
        for role, loops in self._beats.items():
            ages = {loop: round(now - last, 3) for loop, last in loops.items()}
            stalled = sorted(loop for loop, ago in ages.items() if ago > self._stale_after)
            healthy &= not stalled
            roles[role] = {
                "status": "stalled" if stalled else "ok",
                "last_beat_seconds_ago": max(ages.values(), default=0.0),
                "loops": ages,
                "stalled_loops": stalled,
            }
        body = {"status": "ok" if healthy else "unavailable", "roles": roles, "checks": checks}
        if self._secrets is not None:
            body["secrets"] = self._secrets
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
