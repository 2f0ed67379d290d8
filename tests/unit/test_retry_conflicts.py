"""A transaction that loses a deadlock is run again; other errors are not retried."""

from __future__ import annotations

import pytest
from asyncmy.errors import OperationalError

from eventtrigger.store.db import retry_conflicts


async def test_a_deadlock_victim_is_retried_until_it_succeeds() -> None:
    calls = 0

    async def work() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise OperationalError(1213, "Deadlock found when trying to get lock")
        return "done"

    assert await retry_conflicts(work) == "done"
    assert calls == 3


async def test_other_database_errors_are_not_retried() -> None:
    calls = 0

    async def work() -> None:
        nonlocal calls
        calls += 1
        raise OperationalError(2013, "Lost connection")

    with pytest.raises(OperationalError):
        await retry_conflicts(work)
    assert calls == 1


async def test_a_conflict_that_persists_is_raised_after_the_last_attempt() -> None:
    async def work() -> None:
        raise OperationalError(1205, "Lock wait timeout exceeded")

    with pytest.raises(OperationalError):
        await retry_conflicts(work, attempts=2)
