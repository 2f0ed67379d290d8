"""A producer poisoned by OutOfOrderSequenceNumber (a batch in flight when the broker
stopped) is replaced, so publishing recovers without a restart. The Kafka side is a stub:
what is under test is only the decision to renew and the swap (the fault tests stop a
real broker: tests/fault/test_kafka_outage.py)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka.errors import KafkaTimeoutError, OutOfOrderSequenceNumber

from eventtrigger.bus import Publisher
from eventtrigger.config import load_settings


class _Stub:
    def __init__(self, error: BaseException | None) -> None:
        self.error = error
        self.started = self.stopped = False
        self.sent: list[bytes] = []

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def send(self, topic: str, value: bytes, key: bytes | None = None) -> Any:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.error is not None:
            future.set_exception(self.error)
        else:
            self.sent.append(value)
            future.set_result(None)
        return future


class _Publisher(Publisher):
    def __init__(self, errors: list[BaseException | None]) -> None:
        self.made: list[_Stub] = []
        self._errors = errors
        super().__init__(load_settings(environ={}, env_file=None))

    def _make(self) -> Any:
        self.made.append(_Stub(self._errors[len(self.made)]))
        return self.made[-1]


JOB = {"v": 1, "event_id": "e1", "trigger_id": "t1"}


async def test_a_poisoned_producer_is_replaced_and_the_next_publish_goes_through() -> None:
    publisher = _Publisher([OutOfOrderSequenceNumber(), None])
    await publisher.start()
    assert await publisher.publish([JOB]) is False
    assert len(publisher.made) == 2, "no new producer after OutOfOrderSequenceNumber"
    broken, fresh = publisher.made
    assert broken.stopped and fresh.started
    assert await publisher.publish([JOB]) is True
    assert len(fresh.sent) == 1


async def test_an_ordinary_failure_keeps_the_producer() -> None:
    publisher = _Publisher([KafkaTimeoutError(), None])
    await publisher.start()
    assert await publisher.publish([JOB]) is False
    assert len(publisher.made) == 1
