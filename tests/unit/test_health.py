"""Health checks are shared: a flood of /health calls runs the dependency checks once per
second, not once per call; role heartbeats are read fresh every time."""

from __future__ import annotations

import asyncio

from eventtrigger.observability.health import Health


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


async def test_concurrent_and_repeated_calls_share_one_run_of_the_checks() -> None:
    clock = Clock()
    calls = 0
    release = asyncio.Event()

    async def kafka() -> float:
        nonlocal calls
        calls += 1
        await release.wait()
        return 1.5

    health = Health(("api",), {"kafka": kafka}, monotonic=clock)
    flood = [asyncio.create_task(health.report()) for _ in range(200)]
    await asyncio.sleep(0)
    release.set()
    reports = await asyncio.gather(*flood)
    assert calls == 1
    assert all(ok for ok, _ in reports)
    clock.t += 0.9
    await health.report()
    assert calls == 1  # still fresh
    clock.t += 0.2
    ok, body = await health.report()
    assert calls == 2 and ok
    assert body["checks"] == {"kafka": {"status": "ok", "latency_ms": 1.5}}


async def test_a_failed_check_is_cached_too_and_heartbeats_stay_live() -> None:
    clock = Clock()
    calls = 0

    async def database() -> float:
        nonlocal calls
        calls += 1
        raise OSError("connection refused")

    health = Health(("worker",), {"database": database}, stale_after=30, monotonic=clock)
    ok, body = await health.report()
    assert not ok and body["checks"]["database"]["status"] == "unavailable"
    clock.t += 0.5
    ok, body = await health.report()
    assert calls == 1 and not ok
    assert body["roles"]["worker"]["last_beat_seconds_ago"] == 0.5


async def test_a_stuck_loop_stalls_its_role_whatever_its_other_loops_say() -> None:
    clock = Clock()
    health = Health(("scheduler",), {}, stale_after=30, monotonic=clock)
    health.beat("scheduler", "firing")
    for _ in range(40):  # the claim loop keeps turning; the firing loop does not
        clock.t += 1
        health.beat("scheduler")
    ok, body = await health.report()
    role = body["roles"]["scheduler"]
    assert not ok and body["status"] == "unavailable"
    assert role["status"] == "stalled"
    assert role["stalled_loops"] == ["firing"]
    assert role["loops"] == {"scheduler": 0.0, "firing": 40.0}
    assert role["last_beat_seconds_ago"] == 40.0

    health.beat("scheduler", "firing")  # it made progress again
    ok, body = await health.report()
    assert ok and body["roles"]["scheduler"]["stalled_loops"] == []


async def test_a_loop_that_ended_on_purpose_is_no_longer_expected() -> None:
    clock = Clock()
    health = Health(("retention",), {}, stale_after=30, monotonic=clock)
    health.beat("retention", "pass")
    health.forget("retention", "pass")
    clock.t += 10
    health.beat("retention")
    clock.t += 31
    health.beat("retention")
    ok, body = await health.report()
    assert ok and body["roles"]["retention"]["loops"] == {"retention": 0.0}
