"""Scheduling policies (pure): jitter offsets, misfire decisions, auto-pause counting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from eventtrigger.domain import policies
from eventtrigger.domain.schedule import next_cron, next_interval

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
EVERY_MINUTE = {"every": "1m", "start_at": "2026-03-01T12:00:00Z"}


def minutely(after: datetime) -> datetime | None:
    return next_interval(MIN, T0, after)


# -- jitter ------------------------------------------------------------------------------


def test_jitter_offsets_stay_in_window_and_spread() -> None:
    jitter = timedelta(seconds=30)
    offsets = [policies.jitter_offset("01TRIGGER", T0 + k * MIN, jitter) for k in range(2000)]
    assert all(timedelta(0) <= o < jitter for o in offsets)
    # Spread over the window, not bunched at one end: every 3 s slice gets some.
    slices = {o // timedelta(seconds=3) for o in offsets}
    assert slices == set(range(10))


def test_jitter_offset_is_a_function_of_trigger_and_nominal_time() -> None:
    jitter = timedelta(minutes=10)
    a = policies.jitter_offset("01TRIGGER", T0, jitter)
    assert policies.jitter_offset("01TRIGGER", T0, jitter) == a  # deterministic
    # The same instant written in another zone is the same occurrence.
    other_zone = T0.astimezone(timezone(timedelta(hours=5)))
    assert policies.jitter_offset("01TRIGGER", other_zone, jitter) == a
    assert policies.jitter_offset("01OTHER", T0, jitter) != a
    assert policies.jitter_offset("01TRIGGER", T0 + MIN, jitter) != a


def test_no_jitter_fires_at_the_nominal_time() -> None:
    assert policies.fire_time("01TRIGGER", {}, T0) == T0
    assert policies.fire_time("01TRIGGER", {"jitter": "0s"}, T0) == T0
    fired = policies.fire_time("01TRIGGER", {"jitter": "20s"}, T0)
    assert T0 <= fired < T0 + timedelta(seconds=20)


# -- misfires ----------------------------------------------------------------------------

STALE = T0 + 5 * MIN  # an occurrence the scheduler finds at NOW, 4.5 minutes late
NOW = T0 + 9 * MIN + timedelta(seconds=30)


@pytest.mark.parametrize(
    ("config", "fire", "after", "misfired"),
    [
        ({}, (T0 + 9 * MIN,), NOW, True),  # default fire_once: the latest missed, once
        ({"misfire": "fire_once"}, (T0 + 9 * MIN,), NOW, True),
        ({"misfire": "skip"}, (), NOW, True),
        ({"misfire": "fire_all"}, tuple(T0 + k * MIN for k in range(5, 10)), NOW, True),
        # Within the grace it is no misfire: it fires, and the schedule follows on.
        ({"misfire": "skip", "misfire_grace": "5m"}, (STALE,), NOW, False),
    ],
)
def test_misfire_policies_after_an_outage(
    config: dict[str, object],
    fire: tuple[datetime, ...],
    after: datetime,
    misfired: bool,
) -> None:
    plan = policies.plan({**EVERY_MINUTE, **config}, STALE, STALE, NOW, minutely)
    assert plan.fire == fire
    assert plan.misfired is misfired
    assert plan.after == after
    assert minutely(plan.after) == T0 + 10 * MIN  # the schedule continues in the future


def test_late_within_default_grace_is_not_a_misfire() -> None:
    now = STALE + timedelta(seconds=60)  # exactly the grace: still on time
    plan = policies.plan(EVERY_MINUTE, STALE, STALE, now, minutely)
    assert (plan.fire, plan.misfired) == ((STALE,), False)
    late = policies.plan(EVERY_MINUTE, STALE, STALE, now + timedelta(microseconds=1), minutely)
    assert late.misfired


def test_fire_all_fires_at_most_100() -> None:
    now = STALE + 1000 * MIN
    plan = policies.plan({"misfire": "fire_all"}, STALE, STALE, now, minutely)
    assert plan.fire == tuple(STALE + k * MIN for k in range(100))
    assert plan.after == now


def test_grace_is_measured_from_the_jittered_fire_time() -> None:
    fire_at = STALE + timedelta(seconds=50)  # nominal + offset
    now = fire_at + timedelta(seconds=60)
    assert not policies.plan(EVERY_MINUTE, STALE, fire_at, now, minutely).misfired


def test_latest_missed_of_a_fine_cron_after_a_long_outage() -> None:
    """Every 10 s for two days: found by bisection, not by walking 17,280 times."""

    def cron(after: datetime) -> datetime | None:
        return next_cron("*/10 * * * * *", "UTC", after)

    now = T0 + timedelta(days=2, seconds=7)
    assert policies.latest_missed(T0, now, cron) == T0 + timedelta(days=2)
    assert policies.latest_missed(T0, T0 + timedelta(seconds=9), cron) == T0


def test_one_time_trigger_misfire() -> None:
    run_at = T0

    def once(after: datetime) -> datetime | None:
        return run_at if run_at > after else None

    now = T0 + timedelta(hours=1)
    assert policies.plan({}, T0, T0, now, once).fire == (T0,)
    assert policies.plan({"misfire": "skip"}, T0, T0, now, once).fire == ()
    assert policies.plan({"misfire": "fire_all"}, T0, T0, now, once).fire == (T0,)


# -- auto-pause --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "outcomes", "limit", "expected"),
    [
        (0, ["failure", "failure"], 3, (2, False)),
        (2, ["failure"], 3, (3, True)),
        (2, ["success", "failure"], 3, (1, False)),  # a success resets the run
        (0, ["failure", "failure", "failure", "success"], 3, (3, True)),  # stops at the limit
        (0, ["failure"], 1, (1, True)),
    ],
)
def test_count_failures(
    start: int, outcomes: list[str], limit: int, expected: tuple[int, bool]
) -> None:
    assert policies.count_failures(start, outcomes, limit) == expected
