"""GroupCommit with a fake flush: batching, deadlines, queue caps, and that nothing is
stored for a caller that was answered an error. Deadlines are short (tens of ms) and the
tests wait on futures and events, never on sleeps."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import pytest

from eventtrigger.groupcommit import Expired, Gate, GroupCommit, QueueFull, Stalled, admits


class FakeStore:
    """A flush that "commits" (records the items) when its gate lets it, and can be held
    before its commit (`hold`) or between its commit and the commit's answer (`hang`)."""

    def __init__(self) -> None:
        self.stored: list[str] = []
        self.flushed: list[list[str]] = []  # every batch handed in, committed or not
        self.hold = asyncio.Event()
        self.hold.set()
        self.hang = asyncio.Event()
        self.hang.set()
        self.fail_after_commit: Exception | None = None
        self.fail: Exception | None = None
        self.bad: set[str] = set()
        self.committing = asyncio.Event()
        self.ended = 0  # flushes that returned or raised

    async def flush(self, items: Sequence[str], gate: Gate[str]) -> list[str]:
        try:
            return await self._flush(items, gate)
        finally:
            self.ended += 1

    async def _flush(self, items: Sequence[str], gate: Gate[str]) -> list[str]:
        self.flushed.append(list(items))
        # Cancellation may come late to a real flush (a rollback on a dead connection);
        # whatever it does next, the gate must refuse the commit.
        with contextlib.suppress(asyncio.CancelledError):
            await self.hold.wait()
        if self.fail is not None:
            raise self.fail
        if self.bad & set(items):
            raise ValueError("a bad item")
        results = [f"ok:{i}" for i in items]
        gate.commit(results)
        self.committing.set()
        await self.hang.wait()
        if self.fail_after_commit is not None:
            raise self.fail_after_commit
        self.stored.extend(items)
        return results


async def test_concurrent_calls_share_one_flush_and_get_their_own_result() -> None:
    store = FakeStore()
    store.hold.clear()
    commit: GroupCommit[str, str] = GroupCommit(store.flush, writers=1, stall_after=60)
    first = asyncio.create_task(commit.submit("a"))
    await wait_for(lambda: len(store.flushed) == 1)
    rest = [asyncio.create_task(commit.submit(x)) for x in "bcd"]
    await asyncio.sleep(0)  # let them queue
    store.hold.set()
    assert await first == "ok:a"
    assert await asyncio.gather(*rest) == ["ok:b", "ok:c", "ok:d"]
    assert store.flushed == [["a"], ["b", "c", "d"]]


async def test_a_batch_past_its_deadline_is_answered_expired_and_never_commits() -> None:
    store = FakeStore()
    store.hold.clear()  # the database does not answer
    commit: GroupCommit[str, str] = GroupCommit(store.flush, writers=1, timeout=0.05)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(Expired):
        await commit.submit("a")
    assert loop.time() - started < 0.5
    store.hold.set()  # the database answers again
    await wait_for(lambda: store.ended == 1)
    assert store.flushed == [["a"]]
    assert store.stored == []


async def test_calls_queued_behind_a_stuck_batch_expire_and_are_never_flushed() -> None:
    store = FakeStore()
    store.hang.clear()  # the first batch commits, and its answer never comes back
    commit: GroupCommit[str, str] = GroupCommit(store.flush, writers=1, timeout=0.3)
    first = asyncio.create_task(commit.submit("a"))
    await store.committing.wait()
    soon = asyncio.get_running_loop().time() + 0.03  # before the stuck batch's deadline
    queued = [asyncio.create_task(commit.submit(x, deadline=soon)) for x in "bcd"]
    results = await asyncio.gather(*queued, return_exceptions=True)
    assert all(isinstance(r, Expired) for r in results), results
    assert await first == "ok:a"  # in doubt: answered as committed, never as an error
    store.hang.set()
    await wait_for(lambda: store.stored == ["a"])
    # The writer is free again: nothing it was handed since is a call that expired.
    assert await commit.submit("e") == "ok:e"
    assert store.flushed == [["a"], ["e"]]
    assert store.stored == ["a", "e"]


async def test_a_full_queue_refuses_at_once() -> None:
    store = FakeStore()
    store.hold.clear()
    commit: GroupCommit[str, str] = GroupCommit(
        store.flush, writers=1, max_items=2, timeout=5, stall_after=60
    )
    first = asyncio.create_task(commit.submit("a"))  # taken by the writer
    await wait_for(lambda: len(store.flushed) == 1)
    queued = [asyncio.create_task(commit.submit(x)) for x in "bc"]
    await asyncio.sleep(0)
    with pytest.raises(QueueFull):
        commit.admit()
    with pytest.raises(QueueFull):
        await commit.submit("d")
    store.hold.set()
    assert [await first, *await asyncio.gather(*queued)] == ["ok:a", "ok:b", "ok:c"]
    assert "d" not in store.stored
    commit.admit()  # room again


async def test_the_byte_cap_refuses_what_does_not_fit() -> None:
    store = FakeStore()
    store.hold.clear()
    commit: GroupCommit[str, str] = GroupCommit(
        store.flush, writers=1, max_bytes=100, timeout=5, stall_after=60
    )
    first = asyncio.create_task(commit.submit("a", size=60))
    await wait_for(lambda: len(store.flushed) == 1)
    with pytest.raises(QueueFull):
        await commit.submit("b", size=41)
    small = asyncio.create_task(commit.submit("c", size=40))
    store.hold.set()
    assert (await first, await small) == ("ok:a", "ok:c")
    assert store.stored == ["a", "c"]


def test_admits_counts_items_and_bytes() -> None:
    assert admits(0, 0, 10, max_items=1, max_bytes=5)  # one oversized item into an empty queue
    assert not admits(1, 0, 0, max_items=1, max_bytes=5)
    assert admits(1, 3, 2, max_items=2, max_bytes=5)
    assert not admits(1, 3, 3, max_items=2, max_bytes=5)


async def test_a_commit_that_fails_after_the_callers_were_answered_is_settled() -> None:
    store = FakeStore()
    store.hang.clear()
    settled: list[tuple[list[str], list[str]]] = []

    async def settle(items: Sequence[str], results: Sequence[str]) -> None:
        settled.append((list(items), list(results)))

    commit: GroupCommit[str, str] = GroupCommit(store.flush, writers=1, timeout=0.05, settle=settle)
    assert await commit.submit("a") == "ok:a"  # answered at its deadline, as committed
    store.fail_after_commit = ConnectionError("lost after COMMIT")
    store.hang.set()
    await wait_for(lambda: settled == [(["a"], ["ok:a"])])
    assert store.stored == []


async def test_an_error_before_the_commit_reaches_every_caller_and_stores_nothing() -> None:
    store = FakeStore()
    store.hold.clear()
    store.fail = ConnectionError("the database is away")
    commit: GroupCommit[str, str] = GroupCommit(
        store.flush,
        writers=1,
        stall_after=60,
        split=lambda exc: not isinstance(exc, ConnectionError),
    )
    calls = [asyncio.create_task(commit.submit(x)) for x in "ab"]
    await asyncio.sleep(0)
    store.hold.set()
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    assert store.flushed == [["a", "b"]]  # not retried one by one
    assert store.stored == []


async def test_one_bad_item_fails_alone() -> None:
    store = FakeStore()
    store.hold.clear()
    store.bad = {"b"}
    commit: GroupCommit[str, str] = GroupCommit(store.flush, writers=1, stall_after=60)
    calls = [asyncio.create_task(commit.submit(x)) for x in "abc"]
    await asyncio.sleep(0)
    store.hold.set()
    a, b, c = await asyncio.gather(*calls, return_exceptions=True)
    assert (a, c) == ("ok:a", "ok:c")
    assert isinstance(b, ValueError)
    assert store.stored == ["a", "c"]


async def wait_for(check: object, timeout: float = 5.0) -> None:
    assert callable(check)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "condition not met"
        await asyncio.sleep(0.001)


async def test_while_the_database_is_silent_one_batch_probes_and_the_rest_fail_fast() -> None:
    store = FakeStore()
    store.hold.clear()  # silent
    commit: GroupCommit[str, str] = GroupCommit(store.flush, writers=1, timeout=0.05)
    with pytest.raises(Expired):
        await commit.submit("a")  # waited out its deadline: the database is silent
    probe = asyncio.create_task(commit.submit("b"))  # nothing in flight: b probes
    await wait_for(lambda: len(store.flushed) == 2)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(Stalled):
        await commit.submit("c")
    assert loop.time() - started < 0.01  # at once, not at its deadline
    with pytest.raises(Expired):
        await probe
    store.hold.set()  # the database answers again
    assert await commit.submit("d") == "ok:d"
    assert await commit.submit("e") == "ok:e"  # no longer refused
    await wait_for(lambda: store.ended == len(store.flushed))
    assert store.stored == ["d", "e"]


async def test_a_batch_unanswered_for_stall_after_makes_new_calls_fail_fast() -> None:
    store = FakeStore()
    store.hold.clear()
    commit: GroupCommit[str, str] = GroupCommit(store.flush, writers=1, timeout=5, stall_after=0.05)
    first = asyncio.create_task(commit.submit("a"))
    await wait_for(lambda: len(store.flushed) == 1)
    queued = asyncio.create_task(commit.submit("b"))  # before the stall: it waits
    await asyncio.sleep(0)
    loop = asyncio.get_running_loop()
    since = loop.time()
    await wait_for(lambda: loop.time() - since > 0.06)
    with pytest.raises(Stalled):
        commit.admit()
    with pytest.raises(Stalled):
        await commit.submit("c")
    store.hold.set()
    assert (await first, await queued) == ("ok:a", "ok:b")
    assert await commit.submit("d") == "ok:d"  # answered: no longer stalled
    assert store.stored == ["a", "b", "d"]
