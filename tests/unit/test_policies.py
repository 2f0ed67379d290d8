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
        # fire_all: the next one follows the last fired (the first whose time has not come).
        ({"misfire": "fire_all"}, tuple(T0 + k * MIN for k in range(5, 10)), T0 + 9 * MIN, True),
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


def test_fire_all_fires_at_most_100_and_counts_what_the_cap_drops() -> None:
    now = STALE + 150 * MIN  # 151 missed: 100 fire, 51 are dropped
    plan = policies.plan({"misfire": "fire_all"}, STALE, STALE, now, minutely)
    assert plan.fire == tuple(STALE + k * MIN for k in range(100))
    assert plan.after == now
    assert (plan.skipped, plan.skipped_more, plan.misfired) == (51, False, True)
    assert plan.upcoming == now + MIN
    # A longer outage: counted one by one up to SKIPPED_COUNT_MAX, then "more".
    plan = policies.plan({"misfire": "fire_all"}, STALE, STALE, STALE + 1000 * MIN, minutely)
    assert (len(plan.fire), plan.skipped, plan.skipped_more) == (100, 100, True)
    assert plan.upcoming == STALE + 1001 * MIN


TEN_S = timedelta(seconds=10)


def every_ten_seconds(after: datetime) -> datetime | None:
    return next_interval(TEN_S, T0, after)


def test_fire_all_fires_each_occurrence_missed_within_the_grace() -> None:
    """A 50 s stall of a 10 s schedule, within the default 60 s grace: no misfire, and
    every missed occurrence fires, not just the first."""
    now = T0 + timedelta(seconds=55)
    plan = policies.plan({"misfire": "fire_all"}, T0, T0, now, every_ten_seconds)
    assert plan.fire == tuple(T0 + k * TEN_S for k in range(6))
    assert (plan.misfired, plan.skipped) == (False, 0)
    assert plan.after == T0 + 5 * TEN_S
    assert plan.upcoming == T0 + 6 * TEN_S  # the schedule goes on, nothing skipped


def test_fire_all_within_the_grace_leaves_an_occurrence_whose_jittered_time_has_not_come() -> None:
    now = T0 + timedelta(seconds=35)
    offsets = {T0 + 3 * TEN_S: timedelta(seconds=8)}  # fires at 38 s: not yet

    def fire_time(at: datetime) -> datetime:
        return at + offsets.get(at, timedelta(seconds=1))

    plan = policies.plan({"misfire": "fire_all"}, T0, T0, now, every_ten_seconds, fire_time)
    assert plan.fire == (T0, T0 + TEN_S, T0 + 2 * TEN_S)
    assert plan.upcoming == T0 + 3 * TEN_S  # it is next, at its own fire time
    assert (plan.misfired, plan.skipped) == (False, 0)


def test_fire_all_caps_a_stall_within_the_grace_too_and_counts_the_rest() -> None:
    config = {"misfire": "fire_all", "misfire_grace": "30m"}
    now = T0 + timedelta(seconds=1200)  # 121 missed, all within the grace of the first
    plan = policies.plan(config, T0, T0, now, every_ten_seconds)
    assert len(plan.fire) == 100
    assert (plan.skipped, plan.skipped_more, plan.misfired) == (21, False, True)
    assert plan.upcoming == now + TEN_S


@pytest.mark.parametrize(
    ("config", "fire", "skipped"),
    [
        ({"misfire": "fire_once"}, (T0 + 9 * MIN,), 4),  # 5 missed, the latest fires
        ({"misfire": "skip"}, (), 5),
    ],
)
def test_fire_once_and_skip_count_what_they_skip(
    config: dict[str, object], fire: tuple[datetime, ...], skipped: int
) -> None:
    plan = policies.plan({**EVERY_MINUTE, **config}, STALE, STALE, NOW, minutely)
    assert (plan.fire, plan.skipped, plan.skipped_more, plan.misfired) == (
        fire,
        skipped,
        False,
        True,
    )
    assert plan.upcoming == T0 + 10 * MIN


def test_a_stall_within_the_grace_fires_once_and_counts_what_it_skips() -> None:
    """fire_once and skip within the grace: the late occurrence fires, the schedule goes
    on from now (as documented), and the occurrences between are counted, not lost
    silently."""
    now = T0 + timedelta(seconds=55)
    for policy in ("fire_once", "skip"):
        plan = policies.plan({"misfire": policy}, T0, T0, now, every_ten_seconds)
        assert (plan.fire, plan.misfired) == ((T0,), False)
        assert (plan.skipped, plan.upcoming) == (5, T0 + 6 * TEN_S)
    on_time = policies.plan({}, T0, T0, T0 + timedelta(milliseconds=3), every_ten_seconds)
    assert (on_time.skipped, on_time.upcoming) == (0, T0 + TEN_S)


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
