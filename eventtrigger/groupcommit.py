"""Group commit: many concurrent callers, one transaction.

Each caller hands in an item and awaits its own result. A writer task takes whatever has
queued up and stores it with one call of `flush`, so the cost of a commit (a log flush,
a round trip) is shared by every call that arrived while the last one ran. No timer
batches anything: an idle system writes a lone item at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from loguru import logger

T = TypeVar("T")
R = TypeVar("R")


class GroupCommit(Generic[T, R]):
    def __init__(
        self,
        flush: Callable[[Sequence[T]], Awaitable[Sequence[R]]],
        max_batch: int = 500,
        writers: int = 2,
    ) -> None:
        self._flush = flush
        self._max_batch = max_batch
        self._writers = writers
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        self._ready = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        self._ready.set()
        if len(self._tasks) < self._writers:
            # Started lazily, in the serving loop; each writer lives as long as it.
            self._tasks.append(asyncio.create_task(self._write(), name="group-commit"))
        return await future

    async def _write(self) -> None:
        while True:
            await self._ready.wait()
            batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
            if not self._queue:
                self._ready.clear()
            if batch:
                await self._store(batch)

    async def _store(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            results = await self._flush([item for item, _ in batch])
        except Exception as exc:
            if len(batch) == 1:
                if not batch[0][1].done():
                    batch[0][1].set_exception(exc)
                return
            # One bad item must not fail the calls it shared a transaction with: each
            # on its own, so only the bad one gets the error.
            logger.bind(action="group_commit_split").warning(
                "batch of {} failed ({!r}); storing one by one", len(batch), exc
            )
            for one in batch:
                await self._store([one])
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():  # the caller may have gone (client disconnected)
                future.set_result(result)
