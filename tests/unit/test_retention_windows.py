"""Retention windows: which view an event belongs to, exactly at the edges, from its fired
time and `now` alone (active: fired_at >= now - active; archived: now - total <= fired_at
< now - active; gone before that)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest

from eventtrigger.domain.retention import Windows
from eventtrigger.store.retention import drain

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ACTIVE = timedelta(hours=2)
TOTAL = timedelta(hours=48)
US = timedelta(microseconds=1)
WINDOWS = Windows(active=ACTIVE, total=TOTAL)


@pytest.mark.parametrize(
    ("fired_at", "view"),
    [
        (NOW + timedelta(seconds=5), "active"),  # clock skew: a fired time ahead of now
        (NOW, "active"),
        (NOW - ACTIVE + US, "active"),
        (NOW - ACTIVE, "active"),  # exactly at the active edge: still active
        (NOW - ACTIVE - US, "archived"),
        (NOW - timedelta(hours=24), "archived"),
        (NOW - TOTAL + US, "archived"),
        (NOW - TOTAL, "archived"),  # exactly at the total edge: still kept
        (NOW - TOTAL - US, None),
        (NOW - timedelta(days=365), None),
    ],
)
def test_view_of_at_and_around_the_edges(fired_at: datetime, view: str | None) -> None:
    assert WINDOWS.view_of(fired_at, NOW) == view


def test_bounds_of_each_view() -> None:
    assert WINDOWS.bounds("active", NOW) == (NOW - ACTIVE, None)
    assert WINDOWS.bounds("archived", NOW) == (NOW - TOTAL, NOW - ACTIVE)
    assert WINDOWS.active_since(NOW) == NOW - ACTIVE
    assert WINDOWS.kept_since(NOW) == NOW - TOTAL


def _in(bounds: tuple[datetime, datetime | None], at: datetime) -> bool:
    lower, upper = bounds
    return lower <= at and (upper is None or at < upper)


@pytest.mark.parametrize(
    "fired_at",
    [
        NOW + timedelta(hours=1),
        NOW,
        NOW - ACTIVE + US,
        NOW - ACTIVE,
        NOW - ACTIVE - US,
        NOW - TOTAL + US,
        NOW - TOTAL,
        NOW - TOTAL - US,
        NOW - TOTAL - timedelta(hours=1),
    ],
)
def test_bounds_agree_with_view_of(fired_at: datetime) -> None:
    """[lower, upper) of each view holds exactly the times view_of puts in it, and the
    views do not overlap, so a list and GET one never disagree."""
    members = [v for v in ("active", "archived") if _in(WINDOWS.bounds(v, NOW), fired_at)]
    expected = WINDOWS.view_of(fired_at, NOW)
    assert members == ([] if expected is None else [expected])


def test_views_move_with_now_for_a_fixed_fired_time() -> None:
    """The same event changes view as time passes, at the exact instants."""
    fired = NOW
    assert WINDOWS.view_of(fired, fired + ACTIVE) == "active"
    assert WINDOWS.view_of(fired, fired + ACTIVE + US) == "archived"
    assert WINDOWS.view_of(fired, fired + TOTAL) == "archived"
    assert WINDOWS.view_of(fired, fired + TOTAL + US) is None


def test_accelerated_windows_in_seconds() -> None:
    fast = Windows(active=timedelta(seconds=3), total=timedelta(seconds=6))
    fired = NOW
    assert fast.view_of(fired, fired + timedelta(seconds=3)) == "active"
    assert fast.view_of(fired, fired + timedelta(seconds=3) + US) == "archived"
    assert fast.view_of(fired, fired + timedelta(seconds=6)) == "archived"
    assert fast.view_of(fired, fired + timedelta(seconds=6) + US) is None
    assert fast.bounds("archived", NOW) == (
        NOW - timedelta(seconds=6),
        NOW - timedelta(seconds=3),
    )


def batches(sizes: list[int]) -> Callable[[], Awaitable[int]]:
    """A batch that returns the next of `sizes` on each call (no database)."""
    left = iter(sizes)

    async def batch() -> int:
        return next(left)

    return batch


async def test_a_drain_hears_after_every_batch_and_ends_on_a_short_one() -> None:
    heard: list[int] = []

    def more() -> bool:
        heard.append(1)
        return True

    total, finished = await drain(batches([10, 10, 10, 4]), 10, more)
    assert (total, finished) == (34, True)
    assert len(heard) == 4  # the short last batch included: a pass beats to its end


async def test_a_drain_ends_between_batches_when_told_and_says_the_pass_stops() -> None:
    heard: list[int] = []

    def more() -> bool:
        heard.append(1)
        return len(heard) < 2

    total, finished = await drain(batches([10, 10, 10, 10]), 10, more)
    assert (total, finished) == (20, False)  # the third batch never ran
    assert len(heard) == 2


async def test_a_stop_during_the_last_batch_of_a_step_ends_the_pass_there() -> None:
    total, onwards = await drain(batches([3]), 10, lambda: False)
    assert (total, onwards) == (3, False)  # the next step does not start
