"""SSRF matrix: every spelling of a private address is refused, at save time (400) or at
connect time (the event fails with a clear error), and no connection ever reaches it.

The "private" target is a TCP listener on 127.0.0.1 that counts every connection it
accepts (not just HTTP requests), so a refused form proves it made no connection at all.
The redirect case uses an operator-allowed listener on 127.0.0.2 (allowed by
EVENTTRIGGER_EGRESS_ALLOW_CIDRS=127.0.0.2/32) answering 302 to the private one: the
redirect must not be followed.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from eventtrigger.store.db import Database
from tests.e2e.conftest import event_rows, wait_until
from tests.fault.conftest import client
from tests.process import EventtriggerProcess

RETRY = {"max_attempts": 2, "initial_delay": "100ms", "max_delay": "200ms"}


class CountingListener:
    """A TCP listener that counts accepted connections and answers a fixed HTTP reply."""

    def __init__(self, host: str, reply: bytes) -> None:
        self.host = host
        self.reply = reply
        self.connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            writer.write(self.reply)
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, TimeoutError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@pytest.fixture
async def private() -> AsyncIterator[CountingListener]:
    listener = CountingListener(
        "127.0.0.1", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
    )
    await listener.start()
    yield listener
    await listener.stop()


def _loopback_name() -> str:
    """A DNS name (not `localhost`, which is judged at save time) resolving to 127.0.0.1."""
    for name in (socket.gethostname(), "loopback.test"):
        try:
            infos = socket.getaddrinfo(name, None, socket.AF_INET)
        except socket.gaierror:
            continue
        if {info[4][0] for info in infos} == {"127.0.0.1"}:
            return name
    pytest.skip("no host name here resolves to 127.0.0.1 only (needed for the DNS case)")


def _save_time_forms(port: int) -> dict[str, str]:
    """Spellings of 127.0.0.1 (and other private addresses) that are IP literals."""
    return {
        "literal": f"http://127.0.0.1:{port}/",
        "other loopback": f"http://127.0.0.2:{port}/",
        "localhost": f"http://localhost:{port}/",
        "decimal": f"http://2130706433:{port}/",
        "octal": f"http://0177.0.0.1:{port}/",
        "hex": f"http://0x7f.0.0.1:{port}/",
        "hex whole": f"http://0x7f000001:{port}/",
        "short": f"http://127.1:{port}/",
        "zero": f"http://0.0.0.0:{port}/",
        "ipv4-mapped": f"http://[::ffff:127.0.0.1]:{port}/",
        "ipv4-mapped hex": f"http://[::ffff:7f00:1]:{port}/",
        "ipv6 loopback": f"http://[::1]:{port}/",
        "private 10/8": f"http://10.0.0.1:{port}/",
        "metadata": f"http://169.254.169.254:{port}/",
    }


async def _refused_at_save(proc: EventtriggerProcess, endpoint: str) -> tuple[int, Any]:
    async with client(proc) as api:
        answer = await api.post(
            "/api/v1/triggers",
            json={
                "name": "ssrf",
                "type": "webhook",
                "config": {"endpoint": endpoint, "schema": {"type": "object"}},
            },
        )
    return answer.status_code, answer.json()


async def _fire(proc: EventtriggerProcess, endpoint: str) -> str:
    async with client(proc) as api:
        answer = await api.post(
            "/api/v1/test-runs",
            json={
                "type": "webhook",
                "config": {"endpoint": endpoint, "schema": {"type": "object"}, "retry": RETRY},
                "payload": {"probe": True},
            },
        )
    assert answer.status_code == 202, answer.text
    event_id: str = answer.json()["event_id"]
    return event_id


async def _final(db: Database, event_id: str) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        rows = await event_rows(db, "id = %s", (event_id,))
        return rows[0] if rows and rows[0]["status"] in ("success", "failure") else None

    row: dict[str, Any] = await wait_until(done, timeout=30)
    return row


async def test_every_spelling_of_a_private_address_is_refused_and_never_connected(
    flaunch: Callable[..., EventtriggerProcess], fdb: Database, private: CountingListener
) -> None:
    proc = flaunch(EVENTTRIGGER_EGRESS_ALLOW_CIDRS="")
    for form, endpoint in _save_time_forms(private.port).items():
        status, body = await _refused_at_save(proc, endpoint)
        assert status == 400, (form, endpoint, body)
        assert [e["field"] for e in body["errors"]] == ["config.endpoint"], (form, body)
        assert "EGRESS_ALLOW_CIDRS" in body["errors"][0]["message"], (form, body)

    # A DNS name is accepted when saved; what it resolves to is refused when connecting.
    event_id = await _fire(proc, f"http://{_loopback_name()}:{private.port}/")
    row = await _final(fdb, event_id)
    assert row["status"] == "failure", row
    assert row["attempts"] == 1, row  # refused by policy: retrying cannot help
    assert row["last_status_code"] is None
    assert "refused" in row["last_error"] and "127.0.0.1" in row["last_error"], row
    assert private.connections == 0


async def test_6to4_address_embedding_a_private_ipv4_is_refused_at_save(
    flaunch: Callable[..., EventtriggerProcess], fdb: Database, private: CountingListener
) -> None:
    proc = flaunch(EVENTTRIGGER_EGRESS_ALLOW_CIDRS="")
    for endpoint in (
        f"http://[2002:7f00:1::1]:{private.port}/",  # 6to4 of 127.0.0.1
        f"http://[2002:a00:1::1]:{private.port}/",  # 6to4 of 10.0.0.1
    ):
        status, body = await _refused_at_save(proc, endpoint)
        assert status == 400, (endpoint, body)
    assert private.connections == 0


async def test_redirect_to_a_private_address_is_not_followed(
    flaunch: Callable[..., EventtriggerProcess], fdb: Database, private: CountingListener
) -> None:
    redirector = CountingListener(
        "127.0.0.2",
        b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:%d/\r\nContent-Length: 0\r\n"
        b"Connection: close\r\n\r\n" % private.port,
    )
    await redirector.start()
    try:
        proc = flaunch(EVENTTRIGGER_EGRESS_ALLOW_CIDRS="127.0.0.2/32")
        event_id = await _fire(proc, f"http://127.0.0.2:{redirector.port}/")
        row = await _final(fdb, event_id)
    finally:
        await redirector.stop()
    assert redirector.connections >= 1  # the allowed host was reached...
    assert row["last_status_code"] == 302, row  # ...its 302 is the answer, not followed
    assert row["status"] == "failure", row  # a 3xx is not a 2xx success
    assert private.connections == 0
