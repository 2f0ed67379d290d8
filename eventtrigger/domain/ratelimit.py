"""Token-bucket rate limits (pure; `now` is passed in, nothing here reads a clock).

A bucket holds up to `burst` tokens and gains `per_second` tokens a second; every call
takes one. When none is left, `take` answers how long to wait, in whole seconds rounded
up and at least 1: the value of an HTTP Retry-After header. A caller that waits exactly
that long finds a token.

`KeyedLimiter` keeps one bucket per key (a trigger id, a client address) in an LRU of
bounded size, so a flood of distinct keys cannot grow memory without limit. A bucket
that has refilled to `burst` is indistinguishable from a new one, so dropping it loses
nothing; such idle buckets are dropped first. Only when more than `max_keys` keys are
all still being limited does the least recently used lose its state (it starts again
with a full burst): bounded memory matters more than exactness for the oldest key.

The clock may step backwards (NTP); elapsed time is then taken as zero, never negative,
so a bucket neither refills nor drains because of it.

`client_address` and `address_key` say whose bucket a call from the network takes from:
the connection's peer, or, only when that peer is a trusted proxy, the nearest address
in X-Forwarded-For that is not one; IPv6 clients are counted by their /64.
"""

from __future__ import annotations

import functools
import ipaddress
import math
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)

# Refill maths in floats may leave a hair under a whole token where exactly one is due;
# this slack keeps a client that waited exactly its Retry-After from being refused (or
# told to wait a second more) for a rounding error.
_EPSILON = 1e-9
DEFAULT_MAX_KEYS = 10_000
# One IPv6 subscriber usually holds a whole /64: counting single addresses would give
# each client 2^64 buckets.
IPV6_PREFIX = 64
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Rate:
    """`per_second` tokens a second (> 0), at most `burst` (>= 1) saved up."""

    per_second: float
    burst: int

    def __post_init__(self) -> None:
        # NaN fails `> 0`; 1/per_second is the longest wait, which must be finite too
        # (1/5e-324 is inf).
        rate = self.per_second
        if not (rate > 0 and math.isfinite(rate) and math.isfinite(1 / rate)):
            raise ValueError("per_second must be a finite number > 0")
        if self.burst < 1:
            raise ValueError("burst must be >= 1")


class TokenBucket:
    """One bucket; starts full."""

    __slots__ = ("_last", "_rate", "_tokens")

    def __init__(self, per_second: float, burst: int) -> None:
        self._rate = Rate(per_second, burst)
        self._tokens = float(burst)
        self._last: datetime | None = None

    @property
    def rate(self) -> Rate:
        return self._rate

    def _refill(self, now: datetime) -> None:
        if self._last is not None:
            elapsed = max(0.0, (now - self._last).total_seconds())
            self._tokens = min(
                float(self._rate.burst), self._tokens + elapsed * self._rate.per_second
            )
        if self._last is None or now > self._last:
            self._last = now

    def take(self, now: datetime) -> int | None:
        """Take a token: None if allowed, else the seconds to wait (whole, >= 1)."""
        self._refill(now)
        if self._tokens >= 1 - _EPSILON:
            self._tokens -= 1
            return None
        wait = (1 - self._tokens) / self._rate.per_second
        return max(1, math.ceil(wait - _EPSILON))

    def is_full(self, now: datetime) -> bool:
        """True when the bucket has refilled to `burst` (it is as good as a new one)."""
        self._refill(now)
        return self._tokens >= self._rate.burst - _EPSILON


class KeyedLimiter(Generic[K]):
    """One bucket per key, at most `max_keys` of them (least recently used dropped).

    Either every key shares `default`, or each call passes its key's `rate` (a trigger's
    own limit). A key whose rate changed starts afresh, with a full bucket of the new
    rate: the change is only seen at a call, however long ago it was made, so carrying
    the old bucket over would judge the time in between by the old rate.
    """

    def __init__(self, default: Rate | None = None, *, max_keys: int = DEFAULT_MAX_KEYS) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be >= 1")
        self._default = default
        self._max_keys = max_keys
        self._buckets: OrderedDict[K, TokenBucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: K, now: datetime, rate: Rate | None = None) -> int | None:
        """Take a token from `key`'s bucket: None if allowed, else whole seconds to wait."""
        if rate is None:
            rate = self._default
        if rate is None:
            raise ValueError("no rate: pass one or give the limiter a default")
        bucket = self._buckets.get(key)
        if bucket is None:
            self._make_room(now)
            bucket = self._buckets[key] = TokenBucket(rate.per_second, rate.burst)
        elif bucket.rate != rate:
            del self._buckets[key]  # room is not an issue: it replaces itself
            bucket = self._buckets[key] = TokenBucket(rate.per_second, rate.burst)
        else:
            self._buckets.move_to_end(key)
        return bucket.take(now)

    def forget(self, key: K) -> None:
        """Drop `key`'s bucket (its limit was removed)."""
        self._buckets.pop(key, None)

    def _make_room(self, now: datetime) -> None:
        # Idle (full) buckets sit at the old end; each is dropped at most once, so this
        # costs O(1) amortised per new key.
        while self._buckets:
            oldest_key, oldest = next(iter(self._buckets.items()))
            if not oldest.is_full(now):
                break
            del self._buckets[oldest_key]
        while len(self._buckets) >= self._max_keys:
            self._buckets.popitem(last=False)


# The longest address a peer or proxy writes: `[` IPv6 with an embedded IPv4 and a zone
# `]:port`. Anything longer is no address (and is not cached).
MAX_ADDRESS_CHARS = 100


def _parse(text: str) -> IPAddress | None:
    """An address as a peer or a proxy writes it: bare, `[v6]:port` or `v4:port`."""
    text = text.strip()
    return _parse_short(text) if len(text) <= MAX_ADDRESS_CHARS else None


# Parsing an address costs microseconds, a good part of a webhook call's own work, and
# the same addresses call again and again. Bounded in entries and (above) in their size.
@functools.lru_cache(maxsize=4096)
def _parse_short(text: str) -> IPAddress | None:
    if text.startswith("[") and "]" in text:
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # a dual-stack socket's view of an IPv4 client
    return address


def client_address(
    peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[IPNetwork]
) -> str:
    """The address a call came from.

    The connection's peer, unless that peer is in `trusted` (a reverse proxy of ours):
    then X-Forwarded-For (every such header, in order) is read from the right, past the
    proxies in `trusted`, to the first address that is not one of them. Entries further
    left were written by the client and prove nothing. An entry that is not an address
    ends the walk at the last proxy passed. No peer at all (not a TCP connection) is
    "unknown", one shared bucket.
    """
    if peer is None:
        return "unknown"
    current = _parse(peer)
    if current is None:
        return peer
    if not _is_trusted(current, trusted):
        return str(current)
    hops = [hop for header in forwarded_for for hop in header.split(",") if hop.strip()]
    for hop in reversed(hops):
        address = _parse(hop)
        if address is None:
            break
        current = address
        if not _is_trusted(address, trusted):
            break
    return str(current)


def _is_trusted(address: IPAddress, trusted: Sequence[IPNetwork]) -> bool:
    return any(address.version == net.version and address in net for net in trusted)


def address_key(address: str) -> str:
    """The per-address limiter's key: an IPv6 address's /64, anything else as it is."""
    return _address_key(address) if len(address) <= MAX_ADDRESS_CHARS else address


@functools.lru_cache(maxsize=4096)
def _address_key(address: str) -> str:
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((parsed, IPV6_PREFIX), strict=False))
    return str(parsed)
