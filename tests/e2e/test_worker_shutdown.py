"""A worker that stops (SIGTERM) never commits past a job whose outcome is not stored, hands
that job to the next worker at once, and exits within its grace period even while the
database is unreachable."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from aiokafka.admin import AIOKafkaAdminClient

from eventtrigger.store.db import Database
from tests.e2e.conftest import (
    Sink,
    create_trigger,
    e2e_environ,
    event_rows,
    fire_webhook,
    log_lines,
    wait_for_event,
    wait_until,
)
from tests.process import EventtriggerProcess, free_port


async def _committed(env: dict[str, str]) -> int:
    """The sum of the offsets the workers' group committed on the job topic."""
    admin = AIOKafkaAdminClient(bootstrap_servers=env["EVENTTRIGGER_KAFKA_BOOTSTRAP"])
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(env["EVENTTRIGGER_KAFKA_GROUP"])
    finally:
        await admin.close()
    topic = env["EVENTTRIGGER_KAFKA_TOPIC"]
    return sum(max(0, meta.offset) for tp, meta in offsets.items() if tp.topic == topic)


async def _webhook(client: httpx.AsyncClient, endpoint: str) -> str:
    trigger = await create_trigger(
        client, "webhook", {"endpoint": endpoint, "schema": {"type": "object"}, "timeout": "8s"}
    )
    url: str = trigger["webhook_url"]
    return url


async def test_a_delivery_cut_at_shutdown_is_not_committed_and_the_next_worker_takes_it_at_once(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    sink: Sink,
    db: Database,
) -> None:
    sink.respond("/cut", (200, {}, 6.0), (200, {}, 0.0))
    # A long lease: if the job came back through lease expiry, it would take > 20 s.
    proc = launch(EVENTTRIGGER_SHUTDOWN_GRACE="1s", EVENTTRIGGER_RECOVERY_AFTER="30s")
    async with api(proc) as client:
        url = await _webhook(client, sink.url("/cut"))
    event_id = await fire_webhook(url, {"n": 1})

    async def arrived() -> bool:
        return sink._counts["/cut"] >= 1

    await wait_until(arrived, timeout=20, interval=0.02)
    assert await asyncio.to_thread(proc.stop) == 0  # the delivery is cut after 1 s

    [row] = await event_rows(db, "id = %s", (event_id,))
    assert (row["status"], row["attempts"]) == ("pending", 0)
    assert row["lease_owner"] is None  # handed back, not left to run out
    assert await _committed(proc.env) == 0  # not committed past the unfinished job

    cut_at = time.monotonic()
    successor = launch(env=proc.env)
    done = await wait_for_event(db, event_id, "success", timeout=20)
    assert time.monotonic() - cut_at < 15  # well before the 30 s lease would have run out
    assert done["attempts"] == 1
    assert all(r.headers["webhook-id"] == event_id for r in sink.at("/cut"))

    # Log lines reach the file from the process's writer thread a while after the
    # database shows the outcome: wait for the delivery's line before counting.
    async def delivered_logged() -> list[str | None]:
        actions = [line.get("action") for line in log_lines(successor.log_path)]
        return actions if "delivered" in actions else []

    actions = await wait_until(delivered_logged, timeout=15)
    assert "republished" not in actions  # it came back through Kafka, not recovery
    assert actions.count("delivered") == 1


class _Proxy:
    """A TCP proxy to the database that can be cut: open connections dropped, new ones
    refused. It runs its own event loop in a thread, since starting the process under
    test blocks the test's loop."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(5)

    def cut(self) -> None:
        asyncio.run_coroutine_threadsafe(self._cut(), self._loop).result(5)

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def _cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, ConnectionError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def test_worker_exits_within_its_grace_period_while_the_database_is_down(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    sink: Sink,
    db: Database,
) -> None:
    sink.respond("/slow", (200, {}, 2.0))
    env = {**e2e_environ(), "EVENTTRIGGER_SHUTDOWN_GRACE": "3s"}
    url = urlsplit(env["EVENTTRIGGER_DATABASE_URL"])
    proxy = _Proxy(url.hostname or "127.0.0.1", url.port or 3306)
    proxy.start()
    try:
        await _stop_while_the_database_is_down(launch, api, sink, db, env, proxy)
    finally:
        proxy.stop()


async def _stop_while_the_database_is_down(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    sink: Sink,
    db: Database,
    env: dict[str, str],
    proxy: _Proxy,
) -> None:
    url = urlsplit(env["EVENTTRIGGER_DATABASE_URL"])
    # Same user and password (compose's database has one), the proxy's address.
    userinfo = url.netloc.rpartition("@")[0] or "root"
    env["EVENTTRIGGER_DATABASE_URL"] = urlunsplit(
        url._replace(netloc=f"{userinfo}@127.0.0.1:{proxy.port}")
    )
    proc = launch(env=env)
    async with api(proc) as client:
        webhook_url = await _webhook(client, sink.url("/slow"))
    event_id = await fire_webhook(webhook_url, {"n": 1})

    async def arrived() -> bool:
        return sink._counts["/slow"] >= 1

    await wait_until(arrived, timeout=20, interval=0.02)
    proxy.cut()  # the outcome of that delivery can no longer be stored
    await sink.wait_for("/slow", 1, timeout=10)

    def db_errors() -> list[dict[str, Any]]:
        return [line for line in log_lines(proc.log_path) if line.get("action") == "db_error"]

    async def retrying() -> bool:
        return bool(db_errors())

    await wait_until(retrying, timeout=10)
    started = time.monotonic()
    assert await asyncio.to_thread(proc.stop, 20.0) == 0
    assert time.monotonic() - started < 3 + 4  # the grace period, and a little to close
    [row] = await event_rows(db, "id = %s", (event_id,))
    assert row["status"] == "pending"  # never stored: it will be delivered again
