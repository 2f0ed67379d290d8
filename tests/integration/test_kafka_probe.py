"""The Kafka health check keeps one admin connection: repeated checks do not open a new
connection to the cluster each time, and a failed check drops its client so the next one
starts afresh."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from eventtrigger.bus import KafkaProbe
from eventtrigger.config import Settings, load_settings
from tests import conftest


class CountingProxy:
    """A TCP relay to the broker that counts the connections made through it.

    Only bootstrap connections pass here (the broker advertises its own address for the
    rest), so the count is the number of clients that started."""

    def __init__(self, target: str) -> None:
        self.host, port = target.rsplit(":", 1)
        self.port = int(port)
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return f"127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        up_reader, up_writer = await asyncio.open_connection(self.host, self.port)
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(_pipe(src, dst))
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    async def stop(self) -> None:
        for task in list(self._pipes):
            task.cancel()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    try:
        while data := await src.read(65536):
            dst.write(data)
            await dst.drain()
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        with contextlib.suppress(OSError):
            dst.close()


@pytest.fixture
async def proxied(settings: Settings) -> AsyncIterator[tuple[Settings, CountingProxy]]:
    proxy = CountingProxy(settings.kafka_bootstrap[0])
    bootstrap = await proxy.start()
    yield (
        load_settings(
            environ=conftest.test_environ(EVENTTRIGGER_KAFKA_BOOTSTRAP=bootstrap), env_file=None
        ),
        proxy,
    )
    await proxy.stop()


async def test_repeated_checks_share_one_connection(
    proxied: tuple[Settings, CountingProxy],
) -> None:
    settings, proxy = proxied
    probe = KafkaProbe(settings)
    try:
        for _ in range(5):
            assert await probe.ping() > 0
    finally:
        await probe.close()
    # One client for five checks (a client per check made five bootstrap connections).
    assert proxy.connections == 1


async def test_a_failed_check_drops_its_client_and_the_next_starts_afresh(
    settings: Settings,
) -> None:
    made: list[AIOKafkaAdminClient] = []
    target = ["127.0.0.1:1"]  # nothing listens on port 1: the first check fails

    def make() -> AIOKafkaAdminClient:
        made.append(AIOKafkaAdminClient(bootstrap_servers=target[0], request_timeout_ms=2000))
        return made[-1]

    probe = KafkaProbe(settings, make_admin=make)
    with pytest.raises(KafkaError):
        await probe.ping()
    target[0] = settings.kafka_bootstrap[0]
    try:
        await probe.ping()
        await probe.ping()
    finally:
        await probe.close()
    assert len(made) == 2  # rebuilt once after the failure, then kept
