"""Half-open database connections against the real MariaDB, through a TCP proxy that can
turn into a black hole: it stops forwarding in both directions and closes nothing, as the
old server's connections look to a client after a failover. Every wait is bounded (a
statement, a checkout that has to connect, the health ping), the error is transient, and
a connection that timed out is never handed out again.

`BlackHole` is also the fault tests' proxy (`tests/fault/test_half_open_db.py`). It runs
its own event loop in a thread, so a test that blocks its loop (starting a process) does
not stop the traffic it carries.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace

import pytest

from eventtrigger.config import Settings
from eventtrigger.observability.health import Health
from eventtrigger.store.db import TRANSIENT_ERRORS, Database
from tests.process import free_port

CHUNK = 65536


@dataclass(eq=False)
class _Pair:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    # Once dark, always dark: the server side of this path is gone for good and the
    # client is never told. Only the client closing its end ends it.
    dark: bool = False
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


class BlackHole:
    """127.0.0.1:`port` -> `host`:`upstream_port`. `go_dark()`: every open connection and
    every new one goes silent for good (bytes read and dropped, nothing closed towards the
    client, its server side closed so the server rolls back what it held). `restore()`:
    connections made from then on are forwarded again."""

    def __init__(self, host: str, upstream_port: int) -> None:
        self.host = host
        self.upstream_port = upstream_port
        self.port = free_port()
        self._dark = False
        self._pairs: set[_Pair] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    def _call(self, coro: object) -> object:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)  # type: ignore[arg-type]

    def start(self) -> None:
        self._thread.start()
        self._call(self._start())

    def stop(self) -> None:
        self._call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def go_dark(self) -> None:
        self._call(self._go_dark())

    def restore(self) -> None:
        self._call(self._restore())

    @property
    def open_connections(self) -> int:
        return len(self._pairs)

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for pair in list(self._pairs):
            self._close(pair)
        for pair in list(self._pairs):
            for task in pair.tasks:
                task.cancel()

    async def _go_dark(self) -> None:
        self._dark = True
        for pair in self._pairs:
            self._darken(pair)

    async def _restore(self) -> None:
        self._dark = False

    def _darken(self, pair: _Pair) -> None:
        pair.dark = True
        if pair.upstream is not None:
            pair.upstream.close()

    def _close(self, pair: _Pair) -> None:
        for writer in (pair.client, pair.upstream):
            if writer is not None:
                writer.close()
        self._pairs.discard(pair)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        pair = _Pair(writer, dark=self._dark)
        self._pairs.add(pair)
        try:
            if not pair.dark:
                up_reader, pair.upstream = await asyncio.open_connection(
                    self.host, self.upstream_port
                )
                if self._dark:  # went dark while connecting
                    self._darken(pair)
                else:
                    pair.tasks.append(asyncio.create_task(self._pump(up_reader, pair, False)))
            await self._pump(reader, pair, True)
        except OSError:
            pass
        finally:
            self._close(pair)

    async def _pump(self, reader: asyncio.StreamReader, pair: _Pair, from_client: bool) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while data := await reader.read(CHUNK):
                if pair.dark:
                    continue  # swallowed: no answer, no close
                target = pair.upstream if from_client else pair.client
                assert target is not None
                target.write(data)
                await target.drain()
            if from_client or not pair.dark:
                self._close(pair)


@pytest.fixture
async def hole(migrated: Settings) -> AsyncIterator[BlackHole]:
    proxy = BlackHole(migrated.database.host, migrated.database.port)
    proxy.start()
    yield proxy
    proxy.stop()


@pytest.fixture
async def proxied(migrated: Settings, hole: BlackHole) -> AsyncIterator[Database]:
    """A pool through the proxy, with a short statement deadline to keep the test short."""
    database = Database(
        replace(migrated.database, host="127.0.0.1", port=hole.port),
        statement_timeout=1.0,
        acquire_timeout=3.0,
    )
    await database.connect()
    yield database
    await database.close()


async def timed(what: object, limit: float = 20.0) -> tuple[float, BaseException | None]:
    """(seconds taken, the error raised or None); a hang past `limit` fails the test."""
    started = time.monotonic()
    try:
        await asyncio.wait_for(what, limit)  # type: ignore[arg-type]
    except TimeoutError:
        if time.monotonic() - started >= limit:
            pytest.fail(f"still waiting after {limit} s: the wait is not bounded")
        return time.monotonic() - started, TimeoutError()
    except BaseException as exc:
        return time.monotonic() - started, exc
    return time.monotonic() - started, None


async def select_one(db: Database) -> None:
    async with db.connection() as tx:
        assert await tx.fetch_one("SELECT 1 AS ok") == {"ok": 1}


async def test_a_statement_on_a_half_open_connection_fails_in_time_and_the_connection_is_dropped(
    proxied: Database, hole: BlackHole
) -> None:
    await select_one(proxied)  # the pool's connection is open and idle
    hole.go_dark()
    took, error = await timed(select_one(proxied))
    assert isinstance(error, TRANSIENT_ERRORS), repr(error)
    assert took < 3.0, took
    hole.restore()
    # The dead connection is not handed out again: the next statement gets a new one
    # and answers at once (on the old one it would wait out the deadline again).
    took, error = await timed(select_one(proxied))
    assert error is None, repr(error)
    assert took < 0.9, took


async def test_a_checkout_that_must_connect_into_the_hole_fails_in_time(
    proxied: Database, hole: BlackHole
) -> None:
    hole.go_dark()
    # The pooled connection times out and is dropped; the next checkout has to connect
    # (TCP succeeds, the server's greeting never comes) and must not hang either.
    for _ in range(2):
        took, error = await timed(select_one(proxied))
        assert isinstance(error, TRANSIENT_ERRORS), repr(error)
        assert took < 4.0, took
    hole.restore()
    took, error = await timed(select_one(proxied))
    assert error is None, repr(error)


async def test_the_health_check_answers_in_time_and_recovers_after_a_stuck_statement(
    migrated: Settings, hole: BlackHole
) -> None:
    # One connection, taken by a statement when the path goes dark: without a deadline it
    # holds the pool's only connection forever, and the check never sees the database
    # again even once the path is back.
    db = Database(
        replace(migrated.database, host="127.0.0.1", port=hole.port, pool_size=1),
        statement_timeout=1.0,
    )
    await db.connect()
    try:
        health = Health((), {"database": lambda: db.ping(1.5)}, cache_seconds=0)
        assert (await health.report())[0]
        hole.go_dark()
        stuck = asyncio.create_task(select_one(db))
        started = time.monotonic()
        ok, body = await asyncio.wait_for(health.report(), 10)
        assert time.monotonic() - started < 2.5
        assert not ok
        assert body["checks"]["database"]["status"] == "unavailable"
        hole.restore()
        _, error = await timed(stuck)
        assert isinstance(error, TRANSIENT_ERRORS), repr(error)

        async def healthy() -> bool:
            return (await health.report())[0]

        started = time.monotonic()
        while not await healthy():
            assert time.monotonic() - started < 5.0, "the database check did not recover"
            await asyncio.sleep(0.1)
    finally:
        await db.close()
