"""Open-loop webhook load for the fault tests: calls at a fixed rate whatever the answers,
so an outage shows up as slow or failed answers rather than as a quietly lower rate."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

import aiohttp
import orjson


@dataclass
class Call:
    n: int
    sent: float  # time.time() when sent
    answered: float
    status: int  # 0: no HTTP answer (connection error or client timeout)
    event_id: str | None


@dataclass
class Load:
    """`rate` webhook calls a second to `url` for `seconds`; at most `in_flight` at once."""

    url: str
    rate: float
    seconds: float
    in_flight: int = 256
    calls: list[Call] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0

    @property
    def accepted(self) -> set[str]:
        return {c.event_id for c in self.calls if c.event_id and 200 <= c.status < 300}

    @property
    def statuses(self) -> Counter[int]:
        return Counter(c.status for c in self.calls)

    @property
    def achieved_rate(self) -> float:
        span = self.finished - self.started
        return len(self.calls) / span if span > 0 else 0.0

    def during(self, start: float, end: float) -> list[Call]:
        return [c for c in self.calls if start <= c.sent <= end]

    async def run(self) -> None:
        total = int(self.rate * self.seconds)
        slots = asyncio.Semaphore(self.in_flight)
        connector = aiohttp.TCPConnector(limit=self.in_flight)
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

            async def one(n: int) -> None:
                sent = time.time()
                status, event_id = 0, None
                try:
                    async with session.post(
                        self.url,
                        data=orjson.dumps({"n": n}),
                        headers={"Content-Type": "application/json"},
                    ) as answer:
                        status = answer.status
                        body = await answer.read()
                        if 200 <= status < 300:
                            event_id = orjson.loads(body)["event_id"]
                except (aiohttp.ClientError, OSError, TimeoutError):
                    pass
                finally:
                    slots.release()
                self.calls.append(Call(n, sent, time.time(), status, event_id))

            tasks = []
            self.started = time.time()
            start = time.monotonic()
            for n in range(total):
                # The schedule is fixed; when `in_flight` calls are open the generator
                # waits for a slot (and reports the lower rate it achieved).
                delay = start + n / self.rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                await slots.acquire()
                tasks.append(asyncio.create_task(one(n)))
            await asyncio.gather(*tasks)
            self.finished = time.time()
