"""The worker's offsets: per partition, which consumed offsets are still open, so a commit
never passes a job whose outcome is not stored (or whose row does not make sure it is
sent again)."""

from __future__ import annotations

from aiokafka import TopicPartition


class Offsets:
    """Per partition: which offsets are still open, to commit only what is settled."""

    def __init__(self) -> None:
        self._open: dict[TopicPartition, set[int]] = {}
        self._next: dict[TopicPartition, int] = {}

    def add(self, tp: TopicPartition, offset: int) -> None:
        self._open.setdefault(tp, set()).add(offset)
        self._next[tp] = max(self._next.get(tp, 0), offset + 1)

    def done(self, tp: TopicPartition, offset: int) -> None:
        if tp in self._open:  # a revoked partition is forgotten: nothing to commit there
            self._open[tp].discard(offset)

    def committable(self, only: set[TopicPartition] | None = None) -> dict[TopicPartition, int]:
        """For each partition, the offset to commit: the lowest still open, else the next."""
        return {
            tp: min(self._open[tp]) if self._open[tp] else nxt
            for tp, nxt in self._next.items()
            if only is None or tp in only
        }

    def forget(self, partitions: set[TopicPartition]) -> None:
        for tp in partitions:
            self._open.pop(tp, None)
            self._next.pop(tp, None)
