"""Token buckets and the keyed limiter, driven by a clock that moves only when told."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta

import pytest

from eventtrigger.clock import FrozenClock
from eventtrigger.domain.ratelimit import (
    KeyedLimiter,
    Rate,
    TokenBucket,
    address_key,
    client_address,
)

START = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def seconds(n: float) -> timedelta:
    return timedelta(seconds=n)


def drain(bucket: TokenBucket, clock: FrozenClock, n: int) -> None:
    for _ in range(n):
        assert bucket.take(clock.now()) is None


def test_bucket_allows_the_burst_then_refuses() -> None:
    clock = FrozenClock(START)
    bucket = TokenBucket(per_second=1, burst=3)
    drain(bucket, clock, 3)
    assert bucket.take(clock.now()) == 1


def test_retry_after_is_exact_when_waited_exactly() -> None:
    clock = FrozenClock(START)
    bucket = TokenBucket(per_second=0.25, burst=2)
    drain(bucket, clock, 2)
    wait = bucket.take(clock.now())
    assert wait == 4
    clock.advance(seconds(wait - 0.001))
    assert bucket.take(clock.now()) == 1  # still short by a millisecond: rounded up to 1
    clock.advance(seconds(0.001))
    assert bucket.take(clock.now()) is None
    assert bucket.take(clock.now()) == 4


def test_retry_after_rounds_up_to_whole_seconds_and_is_at_least_one() -> None:
    clock = FrozenClock(START)
    fast = TokenBucket(per_second=1000, burst=1)
    drain(fast, clock, 1)
    assert fast.take(clock.now()) == 1  # 1 ms away, still 1 s (Retry-After has no fraction)
    slow = TokenBucket(per_second=0.4, burst=1)
    drain(slow, clock, 1)
    assert slow.take(clock.now()) == 3  # 2.5 s rounded up


@pytest.mark.parametrize("rate", [0.1, 0.3, 1 / 3, 0.7, 3.0, 7.0, 100.0])
def test_waiting_the_retry_after_always_finds_a_token(rate: float) -> None:
    # Float refill maths must not leave a client that waited as told one hair short.
    clock = FrozenClock(START)
    bucket = TokenBucket(per_second=rate, burst=1)
    for _ in range(50):
        while (wait := bucket.take(clock.now())) is None:
            pass
        clock.advance(seconds(wait))
        assert bucket.take(clock.now()) is None


def test_refill_never_exceeds_the_burst() -> None:
    clock = FrozenClock(START)
    bucket = TokenBucket(per_second=10, burst=2)
    drain(bucket, clock, 2)
    clock.advance(timedelta(hours=1))
    drain(bucket, clock, 2)
    assert bucket.take(clock.now()) == 1


def test_a_clock_stepping_backwards_neither_refills_nor_drains() -> None:
    clock = FrozenClock(START)
    bucket = TokenBucket(per_second=1, burst=2)
    drain(bucket, clock, 2)
    clock.advance(seconds(-30))
    assert bucket.take(clock.now()) == 1
    clock.advance(seconds(30))  # back where it was: still nothing gained
    assert bucket.take(clock.now()) == 1
    clock.advance(seconds(1))
    assert bucket.take(clock.now()) is None


def test_is_full_after_enough_idle_time() -> None:
    clock = FrozenClock(START)
    bucket = TokenBucket(per_second=2, burst=4)
    assert bucket.is_full(clock.now())
    drain(bucket, clock, 1)
    assert not bucket.is_full(clock.now())
    clock.advance(seconds(0.5))
    assert bucket.is_full(clock.now())


@pytest.mark.parametrize(
    ("per_second", "burst"),
    [(0, 1), (-1, 1), (float("inf"), 1), (float("nan"), 1), (5e-324, 1), (1, 0)],
)
def test_invalid_rates_are_refused(per_second: float, burst: int) -> None:
    with pytest.raises(ValueError):
        Rate(per_second, burst)


def test_keyed_limiter_keeps_one_bucket_per_key() -> None:
    clock = FrozenClock(START)
    limiter: KeyedLimiter[str] = KeyedLimiter(Rate(1, 1))
    assert limiter.take("a", clock.now()) is None
    assert limiter.take("a", clock.now()) == 1
    assert limiter.take("b", clock.now()) is None


def test_keyed_limiter_a_changed_rate_starts_a_full_bucket_of_the_new_rate() -> None:
    clock = FrozenClock(START)
    limiter: KeyedLimiter[str] = KeyedLimiter()
    assert limiter.take("t", clock.now(), Rate(0.001, 1)) is None
    assert limiter.take("t", clock.now(), Rate(0.001, 1)) == 1000
    # Raised: the next call goes through at once, and the new burst is all there.
    for _ in range(3):
        assert limiter.take("t", clock.now(), Rate(1, 3)) is None
    assert limiter.take("t", clock.now(), Rate(1, 3)) == 1
    # Lowered: a full burst of the new limit, then its (slower) pace.
    assert limiter.take("t", clock.now(), Rate(0.2, 1)) is None
    assert limiter.take("t", clock.now(), Rate(0.2, 1)) == 5
    # The same rate again keeps the bucket as it is.
    clock.advance(seconds(4))
    assert limiter.take("t", clock.now(), Rate(0.2, 1)) == 1
    assert len(limiter) == 1


def test_keyed_limiter_without_any_rate_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        KeyedLimiter[str]().take("k", START)


def test_memory_is_bounded_by_max_keys() -> None:
    clock = FrozenClock(START)
    limiter: KeyedLimiter[int] = KeyedLimiter(Rate(0.001, 1), max_keys=100)
    for key in range(10_000):
        limiter.take(key, clock.now())
        assert len(limiter) <= 100
    # The most recently used keys kept their (empty) buckets.
    assert limiter.take(9_999, clock.now()) is not None


def test_the_least_recently_used_key_is_evicted_first() -> None:
    clock = FrozenClock(START)
    limiter: KeyedLimiter[str] = KeyedLimiter(Rate(0.001, 1), max_keys=2)
    limiter.take("old", clock.now())
    limiter.take("used", clock.now())
    limiter.take("used", clock.now())  # "used" is now the most recent
    limiter.take("new", clock.now())  # full: "old" goes
    assert limiter.take("used", clock.now()) is not None  # kept its empty bucket
    assert limiter.take("old", clock.now()) is None  # forgotten: a fresh burst


def test_idle_full_buckets_are_dropped_before_busy_ones() -> None:
    clock = FrozenClock(START)
    limiter: KeyedLimiter[str] = KeyedLimiter(Rate(1, 1), max_keys=10)
    for key in "abcde":
        limiter.take(key, clock.now())
    clock.advance(seconds(5))  # all refilled: each is as good as new
    limiter.take("busy", clock.now())
    assert len(limiter) == 1
    # Dropping them lost nothing: each starts with its full burst, as it would have.
    for key in "abcde":
        assert limiter.take(key, clock.now()) is None


def test_forget_drops_a_key() -> None:
    clock = FrozenClock(START)
    limiter: KeyedLimiter[str] = KeyedLimiter(Rate(0.001, 1))
    limiter.take("t", clock.now())
    limiter.forget("t")
    assert limiter.take("t", clock.now()) is None


TRUSTED = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8"))


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        # Not a trusted proxy: its X-Forwarded-For is the caller's own invention.
        ("203.0.113.9", ["198.51.100.1"], "203.0.113.9"),
        # A trusted proxy: the address it saw is the client.
        ("10.0.0.2", ["198.51.100.1"], "198.51.100.1"),
        # Client-written entries left of the proxy's own are ignored.
        ("10.0.0.2", ["1.1.1.1, 198.51.100.1"], "198.51.100.1"),
        # Two trusted proxies in a row, one header each.
        ("10.0.0.2", ["6.6.6.6, 198.51.100.1", "10.0.0.3"], "198.51.100.1"),
        # A trusted proxy that sent no header: the proxy itself.
        ("10.0.0.2", [], "10.0.0.2"),
        # Garbage in the chain stops the walk at the last proxy passed.
        ("10.0.0.2", ["198.51.100.1, not-an-ip"], "10.0.0.2"),
        ("10.0.0.2", ["not-an-ip, 10.0.0.3"], "10.0.0.3"),
        # Ports and brackets, and IPv4 seen through a dual-stack socket.
        ("10.0.0.2", ["198.51.100.1:4711"], "198.51.100.1"),
        ("fd00::1", ["[2001:db8::7]:443"], "2001:db8::7"),
        ("::ffff:203.0.113.9", ["198.51.100.1"], "203.0.113.9"),
        (None, ["198.51.100.1"], "unknown"),
    ],
)
def test_client_address(peer: str | None, forwarded: list[str], expected: str) -> None:
    assert client_address(peer, forwarded, TRUSTED) == expected


def test_client_address_trusts_nothing_by_default() -> None:
    assert client_address("10.0.0.2", ["198.51.100.1"], ()) == "10.0.0.2"


def test_address_key_groups_ipv6_by_64_and_keeps_ipv4() -> None:
    assert address_key("2001:db8:1:2::1") == address_key("2001:db8:1:2:ffff::9")
    assert address_key("2001:db8:1:2::1") != address_key("2001:db8:1:3::1")
    assert address_key("203.0.113.9") == "203.0.113.9"
    assert address_key("203.0.113.9") != address_key("203.0.113.10")
    assert address_key("unknown") == "unknown"


def test_an_overlong_forwarded_entry_is_no_address() -> None:
    # Not parsed (nor cached): it ends the walk at the proxy, as any non-address does.
    assert client_address("10.0.0.2", ["1" * 5000], TRUSTED) == "10.0.0.2"
    assert address_key("x" * 5000) == "x" * 5000
