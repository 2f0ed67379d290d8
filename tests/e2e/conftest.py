"""End-to-end fixtures: the real `eventtrigger` program (subprocess), the real MariaDB and
Kafka, and an HTTP sink on 127.0.0.1 that records what the platform delivers.

Each test gets its own Kafka topic and consumer group, so jobs left over by one test can
never be delivered in another, and an emptied database.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiohttp import web

from eventtrigger.store.db import Database
from tests.conftest import TEST_API_KEY, test_environ
from tests.process import EventtriggerProcess


@dataclass
class Received:
    path: str
    method: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.time() when the request arrived

    def json(self) -> Any:
        return orjson.loads(self.body) if self.body else None


@dataclass
class Script:
    """Answers for a path, in order; the last one repeats."""

    answers: list[tuple[int, dict[str, str], float]] = field(default_factory=list)


async def serve_every_path(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]], host: str
) -> tuple[web.AppRunner, int]:
    """Serve `handler` for every method and path on a free port of `host`."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]


class Sink:
    """An HTTP endpoint that records every request and answers as scripted."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self._scripts: dict[str, Script] = {}
        self._counts: dict[str, int] = defaultdict(int)
        self._changed = asyncio.Condition()
        self.port = 0
        self._runner: web.AppRunner | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def respond(self, path: str, *answers: tuple[int, dict[str, str], float]) -> None:
        """Script answers (status, headers, delay seconds) for `path`."""
        self._scripts[path] = Script(list(answers))

    def at(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    async def wait_for(self, path: str | None, count: int, timeout: float = 30.0) -> list[Received]:
        """Wait until `count` requests arrived (for `path`, or any path if None)."""

        def ready() -> bool:
            got = self.received if path is None else self.at(path)
            return len(got) >= count

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(ready), timeout)
        return self.received if path is None else self.at(path)

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        path = request.path
        index = self._counts[path]
        self._counts[path] += 1
        script = self._scripts.get(path)
        status, headers, delay = (200, {}, 0.0)
        if script is not None and script.answers:
            status, headers, delay = script.answers[min(index, len(script.answers) - 1)]
        arrived = time.time()
        if delay:
            await asyncio.sleep(delay)
        async with self._changed:
            self.received.append(
                Received(path, request.method, dict(request.headers), body, arrived)
            )
            self._changed.notify_all()
        return web.Response(status=status, headers=headers, text="sink")

    async def start(self) -> None:
        self._runner, self.port = await serve_every_path(self._handle, "127.0.0.1")

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    s = Sink()
    await s.start()
    yield s
    await s.stop()


def e2e_environ(**overrides: str) -> dict[str, str]:
    """Test settings plus a private topic and group, local egress, quick recovery."""
    suffix = secrets.token_hex(4)
    return test_environ(
        EVENTTRIGGER_KAFKA_TOPIC=f"e2e.{suffix}",
        EVENTTRIGGER_KAFKA_GROUP=f"e2e-{suffix}",
        EVENTTRIGGER_KAFKA_PARTITIONS="4",
        EVENTTRIGGER_EGRESS_ALLOW_CIDRS="127.0.0.0/8",
        EVENTTRIGGER_RECOVERY_AFTER="2s",
        EVENTTRIGGER_SHUTDOWN_GRACE="10s",
        **overrides,
    )


@pytest.fixture
def launch(db: Database, tmp_path: Path) -> Iterator[Callable[..., EventtriggerProcess]]:
    """Start `eventtrigger run` processes; all are stopped (SIGTERM) after the test.

    `launch(roles="all", env=None, **overrides)`; pass the same `env` to several calls to
    run several processes against one topic.
    """
    started: list[EventtriggerProcess] = []

    def _launch(
        roles: str = "all", env: dict[str, str] | None = None, **overrides: str
    ) -> EventtriggerProcess:
        environ = dict(env or e2e_environ())
        environ.update(overrides)
        proc = EventtriggerProcess(environ, roles, tmp_path / f"eventtrigger-{len(started)}.log")
        proc.env = environ
        proc.start()
        started.append(proc)
        return proc

    yield _launch
    for proc in started:
        proc.stop()


@pytest.fixture
def api() -> Callable[[EventtriggerProcess], httpx.AsyncClient]:
    def _client(proc: EventtriggerProcess) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=proc.base_url,
            headers={"Authorization": f"Bearer {TEST_API_KEY}"},
            timeout=10,
        )

    return _client


async def event_rows(
    db: Database, where: str = "1=1", args: tuple[Any, ...] = ()
) -> list[dict[str, Any]]:
    async with db.connection() as tx:
        return await tx.fetch_all(f"SELECT * FROM event_logs WHERE {where} ORDER BY fired_at", args)


async def wait_until(check: Callable[[], Any], timeout: float = 30.0, interval: float = 0.1) -> Any:
    """Poll an async condition until it returns something truthy (then return it)."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {result!r})")
        await asyncio.sleep(interval)


async def wait_for_event(
    db: Database, event_id: str, *statuses: str, timeout: float = 30.0, interval: float = 0.1
) -> dict[str, Any]:
    """Poll until event `event_id` has one of `statuses` (by default a final one: success or
    failure), then return its row."""
    wanted = statuses or ("success", "failure")

    async def reached() -> dict[str, Any] | None:
        rows = await event_rows(db, "id = %s", (event_id,))
        return rows[0] if rows and rows[0]["status"] in wanted else None

    row: dict[str, Any] = await wait_until(reached, timeout, interval)
    return row


async def create_trigger(
    client: httpx.AsyncClient, kind: str, config: dict[str, Any], name: str = "t", **extra: Any
) -> dict[str, Any]:
    """Create a trigger through the API (`extra`: more body fields, e.g. status); it must
    answer 201. Returns the created trigger."""
    created = await client.post(
        "/api/v1/triggers", json={"name": name, "type": kind, "config": config, **extra}
    )
    assert created.status_code == 201, created.text
    trigger: dict[str, Any] = created.json()
    return trigger


async def start_test_run(
    client: httpx.AsyncClient, kind: str, config: dict[str, Any], payload: Any
) -> dict[str, Any]:
    """POST an ephemeral test run; it must answer 202. Returns the answer (event_id,
    signing_secret)."""
    answered = await client.post(
        "/api/v1/test-runs", json={"type": kind, "config": config, "payload": payload}
    )
    assert answered.status_code == 202, answered.text
    body: dict[str, Any] = answered.json()
    return body


async def fire_webhook(webhook_url: str, payload: Any) -> str:
    """Call a webhook trigger's public URL (no API key); it must answer 202. Returns the
    event id."""
    async with httpx.AsyncClient() as anonymous:
        answer = await anonymous.post(webhook_url, json=payload)
    assert answer.status_code == 202, answer.text
    event_id: str = answer.json()["event_id"]
    return event_id


def signature_for(secret: str, delivery: Received) -> str:
    """The webhook-signature header a delivery signed with `secret` must carry."""
    signed = (
        f"{delivery.headers['webhook-id']}.{delivery.headers['webhook-timestamp']}.".encode()
        + delivery.body
    )
    key = base64.b64decode(secret.removeprefix("whsec_"))
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def rfc3339(at: datetime) -> str:
    """`at` in UTC, with milliseconds and a Z, as the API takes times."""
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def log_lines(path: Path) -> list[dict[str, Any]]:
    """The JSON objects in a process's log file (other lines are skipped)."""
    lines = []
    for raw in path.read_bytes().splitlines():
        try:
            line = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        if isinstance(line, dict):
            lines.append(line)
    return lines
