"""Group commit: many concurrent callers, one transaction, each caller answered in time.

Each caller hands in an item and awaits its own result. A writer task takes whatever has
queued up and stores it with one call of `flush`, so the cost of a commit (a log flush,
a round trip) is shared by every call that arrived while the last one ran. No timer
batches anything: an idle system writes a lone item at once.

Bounded, so that a database that stops answering (a partition: no error, just silence)
cannot hold callers for minutes nor grow memory without limit:

- the queue holds at most `max_items` items and `max_bytes` bytes (what callers declare
  per item); a call beyond that is refused at once (`QueueFull`);
- every call has a deadline. An item whose deadline passes while it waits in the queue is
  dropped and its caller told `Expired`; a batch whose transaction has not finished by the
  earliest deadline in it is abandoned (`Expired` for all) provided its COMMIT has not been
  sent: `flush` calls `gate.commit(results)` right before it sends COMMIT, and an abandoned
  gate refuses, so an abandoned batch can never commit afterwards. A refused or expired
  call is therefore never stored.
- while the database is silent (a batch has waited `stall_after` for its answer, or the
  last batch passed its deadline unanswered and none has been answered since), one batch
  at a time probes it and every other call is refused at once (`Stalled`), instead of
  each waiting out its deadline: a partition then costs the callers nothing but a fast
  503, and the process holds no backlog (nor a burst of answers when it is given up);
- a batch whose COMMIT was sent but not answered by the deadline (or whose connection
  broke after it) has an unknown outcome. Its callers are answered with the results the
  transaction computed, i.e. as if it committed (never with an error: the rows may well
  be there), and `settle` is handed the batch if the commit turns out to have failed, to
  store what is missing. A caller answered "stored" thus never needs to retry, at the cost
  of holding such a batch in memory until the database answers again (lost if the process
  dies before: the window is one COMMIT round trip).

On the happy path a batch costs one task, one future and one timer; a call, only its
queue entry and the admission check (measured: about 3 us more per call than without
the bounds, with batches of two; a webhook call costs about 300 us of CPU).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, TypeVar

from loguru import logger

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_TIMEOUT = 1.5  # seconds from submit to answer, at most (plus one loop turn)
DEFAULT_MAX_ITEMS = 4096
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
# A batch takes milliseconds; one unanswered for this long means a database in trouble.
DEFAULT_STALL_AFTER = 0.5
# uvloop's millisecond timers can fire up to a millisecond early.
_TIMER_SLACK = 0.002


class Refused(Exception):
    """The call was not stored, and never will be: the caller may retry after a while."""

    retry_after = 1  # seconds
    reason = "refused"


class QueueFull(Refused):
    reason = "queue_full"


class Expired(Refused):
    retry_after = 2
    reason = "deadline"


class Stalled(Refused):
    retry_after = 2
    reason = "stalled"


class Abandoned(Exception):
    """Raised by `Gate.commit` when the batch's callers were answered already."""


_OPEN, _COMMITTING, _ABANDONED = 0, 1, 2


class Gate(Generic[R]):
    """Decides, once, whether a batch commits or is abandoned.

    `flush` calls `commit(results)` just before it sends COMMIT (nothing may be awaited
    between the two, or only what cannot make the COMMIT go out early); the group
    commit calls `abandon()` when the batch's deadline passes. Whichever comes first wins:
    both run on the event loop, so there is no race between them.
    """

    __slots__ = ("_state", "results")

    def __init__(self) -> None:
        self._state = _OPEN
        self.results: list[R] | None = None

    def commit(self, results: Sequence[R]) -> None:
        if self._state == _ABANDONED:
            raise Abandoned("the batch's deadline passed before its commit")
        self._state = _COMMITTING
        self.results = list(results)

    def abandon(self) -> bool:
        """True if the batch is now abandoned (its COMMIT had not been sent)."""
        if self._state == _OPEN:
            self._state = _ABANDONED
        return self._state == _ABANDONED

    @property
    def committing(self) -> bool:
        return self._state == _COMMITTING


@dataclass(slots=True)
class _Entry(Generic[T, R]):
    item: T
    future: asyncio.Future[R]
    size: int
    deadline: float  # loop time


def admits(items: int, queued_bytes: int, size: int, max_items: int, max_bytes: int) -> bool:
    """Whether a queue of `items` items and `queued_bytes` bytes takes one more of `size`.

    An item larger than `max_bytes` alone is still taken into an empty queue (the caller
    bounds item sizes itself), so the cap cannot refuse a call for ever.
    """
    if items >= max_items:
        return False
    return queued_bytes == 0 or queued_bytes + size <= max_bytes


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _flushed(waiter: asyncio.Future[None], task: asyncio.Future[object]) -> None:
    # Retrieved here: an abandoned flush ends with whatever its cancellation caused, and
    # nobody awaits it. (A future and two callbacks: cheaper per batch than asyncio.wait.)
    if not task.cancelled():
        task.exception()
    _wake(waiter)


class GroupCommit(Generic[T, R]):
    def __init__(
        self,
        flush: Callable[[Sequence[T], Gate[R]], Coroutine[Any, Any, Sequence[R]]],
        *,
        max_batch: int = 500,
        writers: int = 2,
        max_items: int = DEFAULT_MAX_ITEMS,
        max_bytes: int = DEFAULT_MAX_BYTES,
        timeout: float = DEFAULT_TIMEOUT,
        stall_after: float = DEFAULT_STALL_AFTER,
        split: Callable[[Exception], bool] = lambda exc: True,
        settle: Callable[[Sequence[T], Sequence[R]], Awaitable[None]] | None = None,
    ) -> None:
        """`split(exc)`: whether a batch that failed with `exc` is worth storing item by
        item (one bad item), as opposed to an error every item would meet (the database
        is away). `settle(items, results)`: store what a batch of unknown outcome, already
        answered with `results`, did not."""
        self._flush = flush
        self._max_batch = max_batch
        self._writers = writers
        self._max_items = max_items
        self._max_bytes = max_bytes
        self._timeout = timeout
        self._stall_after = stall_after
        self._split = split
        self._settle = settle
        self._queue: deque[_Entry[T, R]] = deque()
        self._bytes = 0  # declared sizes of the calls not answered yet
        self._ready = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[None]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._flushing: list[float] = []  # start times of the flushes writers wait on
        self._stalled = False  # the last batch went unanswered past its deadline

    def admit(self, size: int = 0) -> None:
        """Raise `Refused` if a call of `size` bytes would be refused now (callers check
        before they read a body or query anything: a refusal then costs nothing)."""
        if self._flushing and (
            self._stalled
            or asyncio.get_running_loop().time() - self._flushing[0] > self._stall_after
        ):
            raise Stalled()
        if not admits(len(self._queue), self._bytes, size, self._max_items, self._max_bytes):
            raise QueueFull()

    def deadline(self) -> float:
        """The deadline of a call that starts now (loop time)."""
        return asyncio.get_running_loop().time() + self._timeout

    async def submit(self, item: T, size: int = 0, deadline: float | None = None) -> R:
        """Store `item` (of about `size` bytes) by `deadline` (loop time; by default
        `timeout` from now), or raise `Refused` (never stored) or the flush's error."""
        self.admit(size)
        loop = asyncio.get_running_loop()
        if deadline is None:
            deadline = loop.time() + self._timeout
        future: asyncio.Future[R] = loop.create_future()
        self._queue.append(_Entry(item, future, size, deadline))
        self._bytes += size
        if self._timer is None:
            self._timer = loop.call_at(deadline, self._expire)
        self._ready.set()
        if len(self._tasks) < self._writers:
            # Started lazily, in the serving loop; each writer lives as long as it.
            self._tasks.append(asyncio.create_task(self._write(), name="group-commit"))
        try:
            return await future
        finally:
            self._bytes -= size

    def _expire(self) -> None:
        """Answer the queued calls whose deadline passed (the queue is in deadline order,
        near enough: a writer drops any other expired item when it takes it)."""
        self._timer = None
        loop = asyncio.get_running_loop()
        now = loop.time() + _TIMER_SLACK
        queue = self._queue
        expired = 0
        while queue and (queue[0].deadline <= now or queue[0].future.done()):
            entry = queue.popleft()
            if not entry.future.done():
                entry.future.set_exception(Expired())
                expired += 1
        if expired:
            logger.bind(action="group_commit_expired").warning(
                "{} queued calls passed their deadline unstored", expired
            )
        if queue:
            self._timer = loop.call_at(queue[0].deadline, self._expire)
        else:
            self._ready.clear()

    def _take(self, now: float) -> list[_Entry[T, R]]:
        batch: list[_Entry[T, R]] = []
        queue = self._queue
        while queue and len(batch) < self._max_batch:
            entry = queue.popleft()
            if entry.future.done():  # the caller went away: nobody is told it was stored
                continue
            if entry.deadline <= now:
                entry.future.set_exception(Expired())
                continue
            batch.append(entry)
        return batch

    async def _write(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._ready.wait()
            batch = self._take(loop.time())
            if not self._queue:
                self._ready.clear()
            if batch:
                await self._store(batch)

    async def _store(self, batch: list[_Entry[T, R]]) -> None:
        loop = asyncio.get_running_loop()
        gate: Gate[R] = Gate()
        task: asyncio.Task[Sequence[R]] = loop.create_task(
            self._flush([e.item for e in batch], gate)
        )
        waiter: asyncio.Future[None] = loop.create_future()
        task.add_done_callback(partial(_flushed, waiter))
        timer = loop.call_at(min(e.deadline for e in batch), _wake, waiter)
        started = loop.time()
        self._flushing.append(started)  # in start order: the oldest first
        try:
            await waiter
        finally:
            timer.cancel()
            self._flushing.remove(started)
        done = task.done()
        # Answered in time (even with an error): the database is there.
        self._stalled = not done
        if not done:
            if gate.abandon():
                # Not committed, and now it never will be: cancelling closes the
                # connection, and the server rolls the open transaction back.
                task.cancel()
                logger.bind(action="group_commit_abandoned").warning(
                    "a batch of {} passed its deadline before its commit", len(batch)
                )
                self._fail(batch, Expired())
            else:
                self._in_doubt(batch, gate, task)
            return
        exc = task.exception()
        if exc is None:
            self._answer(batch, task.result())
        elif gate.committing:
            self._in_doubt(batch, gate, task)
        elif len(batch) > 1 and isinstance(exc, Exception) and self._split(exc):
            # One bad item must not fail the calls it shared a transaction with: each on
            # its own (within its own deadline), so only the bad one gets the error.
            logger.bind(action="group_commit_split").warning(
                "batch of {} failed ({!r}); storing one by one", len(batch), exc
            )
            for one in batch:
                if not one.future.done():
                    await self._store([one])
        else:
            self._fail(batch, exc)

    def _answer(self, batch: list[_Entry[T, R]], results: Sequence[R]) -> None:
        for entry, result in zip(batch, results, strict=True):
            if not entry.future.done():  # the caller may have gone (client disconnected)
                entry.future.set_result(result)

    def _fail(self, batch: list[_Entry[T, R]], exc: BaseException) -> None:
        for entry in batch:
            if not entry.future.done():
                entry.future.set_exception(exc)

    def _in_doubt(
        self, batch: list[_Entry[T, R]], gate: Gate[R], task: asyncio.Task[Sequence[R]]
    ) -> None:
        """COMMIT was sent and its answer is late or lost: answer as committed, and have
        what it did not store stored once the outcome is known."""
        assert gate.results is not None
        results = gate.results
        self._answer(batch, results)
        items = [e.item for e in batch]
        follow = asyncio.create_task(self._follow(items, results, task), name="group-commit-doubt")
        self._background.add(follow)
        follow.add_done_callback(self._background.discard)

    async def _follow(
        self, items: list[T], results: list[R], task: asyncio.Task[Sequence[R]]
    ) -> None:
        log = logger.bind(action="group_commit_in_doubt")
        try:
            await asyncio.shield(task)
        except Exception as exc:
            log.warning("a commit of {} failed or was lost ({!r}); settling", len(items), exc)
            if self._settle is None:
                log.error("nothing settles a commit of unknown outcome; {} may be lost", len(items))
                return
            await self._settle(items, results)
        else:
            log.info("a late commit of {} succeeded", len(items))
