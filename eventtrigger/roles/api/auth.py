"""Who may call which management route: one table of scopes and one guard that checks
every `/api/v1` route against it before the route's handler runs.

A key comes as `Authorization: Bearer <key>` or `X-API-Key: <key>`. Bootstrap keys
(EVENTTRIGGER_API_KEYS, the generated key file) are compared in constant time and act
as `admin`; any other key is looked up by its hash (domain/keys.py) in the database,
through a per-process cache whose entries live at most `CACHE_SECONDS`, so a key
revoked in one process is refused by every process within a second. The guard sets
`request.state.principal` for the handler (and the audit trail).

Refusals are counted by reason (`eventtrigger_auth_failures_total`), and an address
that keeps failing is answered slowly: past `auth_failure_burst` refusals (refilling one
a second) each further 401 to it waits a second, so guessing gets no faster by trying
harder. Its memory is bounded (domain/ratelimit.py's LRU of addresses).
"""

from __future__ import annotations

import asyncio
import contextvars
import hmac
import time
from dataclasses import dataclass
from datetime import datetime
from typing import NoReturn

from loguru import logger
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from eventtrigger.config import Settings
from eventtrigger.domain import keys as domain
from eventtrigger.domain.ratelimit import KeyedLimiter, Rate
from eventtrigger.resources import Resources
from eventtrigger.roles.api.http import caller_address
from eventtrigger.roles.api.middleware import WEBHOOK_ROUTE
from eventtrigger.roles.api.principal import ANONYMOUS, Principal
from eventtrigger.roles.api.problems import Problem
from eventtrigger.store import keys as store
from eventtrigger.store.db import TRANSIENT_ERRORS

ANY_KEY = "any valid key"  # a route any key may call, whatever its scopes

# Every /api/v1 route but the webhook (whose URL token is its credential): the app will
# not start with a route missing here, so a new route cannot slip in unguarded.
ROUTE_SCOPES: dict[tuple[str, str], str] = {
    ("GET", "/api/v1/triggers"): "triggers:read",
    ("POST", "/api/v1/triggers"): "triggers:write",
    ("GET", "/api/v1/triggers/{trigger_id}"): "triggers:read",
    ("PATCH", "/api/v1/triggers/{trigger_id}"): "triggers:write",
    ("DELETE", "/api/v1/triggers/{trigger_id}"): "triggers:write",
    ("POST", "/api/v1/triggers/{trigger_id}/test"): "triggers:write",
    ("POST", "/api/v1/triggers/{trigger_id}/rotate-webhook-url"): "triggers:write",
    ("POST", "/api/v1/triggers/{trigger_id}/rotate-secret"): "triggers:write",
    ("POST", "/api/v1/test-runs"): "triggers:write",
    ("GET", "/api/v1/events"): "events:read",
    ("GET", "/api/v1/events/stream"): "events:read",
    ("GET", "/api/v1/events/{event_id}"): "events:read",
    ("GET", "/api/v1/events/{event_id}/attempts"): "events:read",
    ("POST", "/api/v1/events/replay"): "events:write",
    ("POST", "/api/v1/events/{event_id}/replay"): "events:write",
    # Figures about firings and deliveries: what an events reader sees.
    ("GET", "/api/v1/stats"): "events:read",
    ("GET", "/api/v1/stats/series"): "events:read",
    ("GET", "/api/v1/keys"): "keys:admin",
    ("POST", "/api/v1/keys"): "keys:admin",
    ("GET", "/api/v1/keys/self"): ANY_KEY,
    ("DELETE", "/api/v1/keys/{key_id}"): "keys:admin",
    ("GET", "/api/v1/audit"): "admin",
}

CACHE_SECONDS = 0.5  # a revocation reaches every process within this (plus a query)
CACHE_LIMIT = 10_000  # cached key hashes; beyond that the cache starts afresh
FAILURE_DELAY = 1.0  # seconds each 401 to an address over its burst waits
FAILURE_ADDRESSES = 10_000  # addresses whose failures are remembered (LRU)
USAGE_FLUSH_SECONDS = 2.0  # last_used_at is written within this of a due use
WRITTEN_LIMIT = 100_000  # keys whose last written use is remembered

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="eventtrigger"'}


def presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.headers.get("x-api-key") or None


def scope_for(method: str, path: str) -> str | None:
    """The scope route `path` (its template) needs for `method`; None if it is not an
    API route the table knows (HEAD is checked as GET)."""
    return ROUTE_SCOPES.get(("GET" if method == "HEAD" else method, path))


def bootstrap_name(index: int, count: int) -> str:
    return "bootstrap key" if count == 1 else f"bootstrap key {index + 1}"


def shown_prefix(key: str) -> str:
    """A bootstrap key's prefix in lists: 8 characters of a generated key (`etk_` and 20
    random bits of 256), but only 3 of a key an operator chose, which may be short."""
    if key.startswith(domain.KEY_PREFIX) and len(key) >= 40:
        return domain.prefix_of(key)
    return key[:3] + "..."


@dataclass(frozen=True)
class BootstrapKey:
    secret: bytes
    principal: Principal
    prefix: str  # as lists show it


def bootstrap_keys(settings: Settings) -> list[BootstrapKey]:
    """The configured keys (EVENTTRIGGER_API_KEYS, or the key file's), as principals."""
    keys = [str(k) for k in settings.api_keys]
    return [
        BootstrapKey(
            k.encode("utf-8", "surrogateescape"),
            domain.bootstrap_principal(k, bootstrap_name(i, len(keys))),
            shown_prefix(k),
        )
        for i, k in enumerate(keys)
    ]


def match_bootstrap(key: str, keys: list[BootstrapKey]) -> BootstrapKey | None:
    """The bootstrap key `key` is, if any. Compared against every one, in constant time,
    so timing does not tell which (or how many) matched."""
    given = key.encode("utf-8", "surrogateescape")
    found = None
    for candidate in keys:
        if hmac.compare_digest(given, candidate.secret):
            found = candidate
    return found


class Usage:
    """Uses of managed keys waiting to be written to `last_used_at` (in-process batch).

    A key's first use is written on the next flush (every USAGE_FLUSH_SECONDS); after
    that a use is written only once the stored time is a minute old, so a busy key costs
    one UPDATE a minute, not one per request.
    """

    def __init__(self) -> None:
        self.pending: dict[str, datetime] = {}
        self.written: dict[str, datetime] = {}

    def note(self, key: domain.StoredKey, now: datetime) -> None:
        if key.id in self.pending:
            self.pending[key.id] = max(self.pending[key.id], now)
            return
        seen = [t for t in (key.last_used_at, self.written.get(key.id)) if t is not None]
        if domain.usage_due(max(seen, default=None), now):
            self.pending[key.id] = now

    def take(self) -> dict[str, datetime]:
        batch, self.pending = self.pending, {}
        return batch

    def done(self, batch: dict[str, datetime]) -> None:
        if len(self.written) + len(batch) > WRITTEN_LIMIT:
            self.written.clear()  # at worst a few early rewrites
        self.written.update(batch)

    def retry(self, batch: dict[str, datetime]) -> None:
        for key_id, at in batch.items():
            self.pending[key_id] = max(at, self.pending.get(key_id, at))


class Guard:
    """Checks every guarded request's key and scope; one per api process."""

    def __init__(self, res: Resources) -> None:
        self.res = res
        self.bootstrap = bootstrap_keys(res.settings)
        self._cache: dict[bytes, tuple[float, domain.StoredKey | None]] = {}
        self.failures: KeyedLimiter[str] = KeyedLimiter(
            Rate(per_second=1.0, burst=res.settings.auth_failure_burst),
            max_keys=FAILURE_ADDRESSES,
        )
        self.usage = Usage()
        self._flusher: asyncio.Task[None] | None = None
        # Addresses with slowed refusals waiting: their lock and how many wait on it.
        self._slowed: dict[str, tuple[asyncio.Lock, int]] = {}

    def guard(self, route: BaseRoute) -> BaseRoute:
        """`route` behind the key check when it is a management API route."""
        if not isinstance(route, Route) or not route.path.startswith("/api/v1/"):
            return route
        if route.path == WEBHOOK_ROUTE:
            return route
        methods = sorted((route.methods or set()) - {"HEAD"})
        missing = [m for m in methods if scope_for(m, route.path) is None]
        if missing:
            raise RuntimeError(
                f"{', '.join(missing)} {route.path} has no scope in auth.ROUTE_SCOPES"
            )
        endpoint = route.endpoint
        path = route.path

        async def checked(request: Request) -> Response:
            scope = scope_for(request.method, path)
            assert scope is not None
            await self.authenticate(request, scope)
            response: Response = await endpoint(request)
            return response

        return Route(path, checked, methods=methods, name=route.name)

    def forget_cached(self) -> None:
        """Drop every cached key (this process revoked one: refuse it at once here)."""
        self._cache.clear()

    async def authenticate(self, request: Request, scope: str) -> Principal:
        """The request's principal, set on `request.state`; a 401/403 Problem otherwise."""
        settings = self.res.settings
        if not settings.auth_enabled:
            request.state.principal = ANONYMOUS
            request.state.key_prefix = ""
            return ANONYMOUS
        key = presented_key(request)
        if key is None:
            await self._refuse(
                request,
                "missing",
                "A valid API key is required: Authorization: Bearer <key> or X-API-Key: <key>.",
            )
        principal, prefix = await self._identify(request, key)
        if scope != ANY_KEY and not principal.allows(scope):
            self.res.metrics.auth_failures.labels("scope").inc()
            raise Problem(403, f"This key lacks the scope {scope!r}, which this route needs.")
        request.state.principal = principal
        request.state.key_prefix = prefix
        return principal

    async def _identify(self, request: Request, key: str) -> tuple[Principal, str]:
        found = match_bootstrap(key, self.bootstrap)
        if found is not None:
            if not self.res.settings.bootstrap_keys_enabled:
                detail = (
                    "Bootstrap keys are disabled (EVENTTRIGGER_BOOTSTRAP_KEYS=disabled): use "
                    "a managed key."
                )
                # Checked here, not at start (the database may not be up yet then): the
                # operator who locked everyone out learns how to get back in.
                if await store.key_admins(self.res.db, self.res.clock.now()) == 0:
                    detail += (
                        " No usable managed key has the scope admin or keys:admin: set "
                        "EVENTTRIGGER_BOOTSTRAP_KEYS=enabled, create one, then disable again."
                    )
                await self._refuse(request, "revoked", detail)
            return found.principal, found.prefix
        now = self.res.clock.now()
        stored = await self._lookup(domain.key_hash(key))
        reason = domain.refusal(stored, now)
        if reason is not None or stored is None:
            details = {
                "invalid": "The API key is not valid.",
                "revoked": "The API key has been revoked.",
                "expired": "The API key has expired.",
            }
            await self._refuse(request, reason or "invalid", details[reason or "invalid"])
        self._note_use(stored, now)
        return stored.principal(), stored.prefix

    async def _lookup(self, key_hash: bytes) -> domain.StoredKey | None:
        at = time.monotonic()
        cached = self._cache.get(key_hash)
        if cached is not None and at - cached[0] < CACHE_SECONDS:
            return cached[1]
        stored = await store.by_hash(self.res.db, key_hash)
        if len(self._cache) >= CACHE_LIMIT:
            self._cache.clear()
        # Stamped with the time the query started: an answer never outlives the limit.
        self._cache[key_hash] = (at, stored)
        return stored

    async def _refuse(self, request: Request, reason: str, detail: str) -> NoReturn:
        self.res.metrics.auth_failures.labels(reason).inc()
        # Behind a trusted proxy, the client it names: not one bucket for every caller.
        address = caller_address(request, self.res.settings)
        if self.failures.take(address, self.res.clock.now()) is not None:
            # One slowed answer at a time per address: guesses sent in parallel wait in
            # line, so they get no more answers a second than guesses sent one by one.
            # An entry lives only while refusals from its address wait.
            lock, waiting = self._slowed.get(address, (asyncio.Lock(), 0))
            self._slowed[address] = (lock, waiting + 1)
            try:
                async with lock:
                    await asyncio.sleep(FAILURE_DELAY)
            finally:
                lock, waiting = self._slowed[address]
                if waiting == 1:
                    del self._slowed[address]
                else:
                    self._slowed[address] = (lock, waiting - 1)
        raise Problem(401, detail, headers=_CHALLENGE)

    # ---- last_used_at ------------------------------------------------------------------

    def _note_use(self, key: domain.StoredKey, now: datetime) -> None:
        self.usage.note(key, now)
        if self.usage.pending and self._flusher is None:
            # Started by the first use, so a process serving no managed key runs no loop;
            # in a context of its own, so its log lines do not carry this request's id.
            self._flusher = asyncio.create_task(
                self._flush_loop(), name="key-usage", context=contextvars.Context()
            )

    async def _flush_loop(self) -> None:
        """Write batches of uses every USAGE_FLUSH_SECONDS; beats the api role's
        `key-usage` loop each turn, so /health says so if writing stalls."""
        health = self.res.health
        while True:
            health.beat("api", "key-usage")
            await asyncio.sleep(USAGE_FLUSH_SECONDS)
            await self.flush()

    async def flush(self) -> None:
        batch = self.usage.take()
        if not batch:
            return
        try:
            await store.touch(self.res.db, batch.items())
        except (*TRANSIENT_ERRORS, TimeoutError) as exc:
            self.usage.retry(batch)  # next turn; the key's use is not lost
            logger.bind(action="key_usage_deferred").warning("last_used_at not written: {}", exc)
            return
        self.usage.done(batch)
