"""Observability end to end: /health follows its dependencies (Kafka, the database) down
and back up, /metrics counts what was done, request ids reach the logs, and no secret
ever does."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from eventtrigger.store.db import Database
from tests.conftest import TEST_API_KEY
from tests.conftest import test_environ as base_environ
from tests.e2e.conftest import (
    Sink,
    create_trigger,
    e2e_environ,
    event_rows,
    fire_webhook,
    log_lines,
    start_test_run,
    wait_until,
)
from tests.process import EventtriggerProcess, free_port

ROOT = Path(__file__).parents[2]
KAFKA_PIDFILE = ROOT / ".local" / "kafka" / "kafka.pid"
# The health check's Kafka ping gives up after 2 s; a generous bound for the turn-around.
HEALTH_TIMEOUT = 30.0

Metric = tuple[str, frozenset[tuple[str, str]]]


# ---- helpers ------------------------------------------------------------------------------


async def _health(proc: EventtriggerProcess) -> httpx.Response:
    async with httpx.AsyncClient(base_url=proc.base_url, timeout=15) as anonymous:
        return await anonymous.get("/health")


async def _wait_for_health(
    proc: EventtriggerProcess, status_code: int, check: str, check_status: str
) -> dict[str, Any]:
    """Poll /health until it answers `status_code` with checks[check] == check_status."""

    async def matches() -> dict[str, Any] | None:
        response = await _health(proc)
        body = response.json()
        if response.status_code == status_code and body["checks"][check]["status"] == check_status:
            return body  # type: ignore[no-any-return]
        return None

    return await wait_until(matches, timeout=HEALTH_TIMEOUT, interval=0.2)  # type: ignore[no-any-return]


async def _scrape(proc: EventtriggerProcess) -> dict[Metric, float]:
    async with httpx.AsyncClient(base_url=proc.base_url, timeout=10) as anonymous:
        response = await anonymous.get("/metrics")
    assert response.status_code == 200, response.text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def _m(name: str, **labels: str) -> Metric:
    return (name, frozenset(labels.items()))


# ---- health: Kafka ------------------------------------------------------------------------


def _our_kafka_pid() -> int:
    """The broker this checkout's `make services` started (scripts/services.sh).

    Pausing any other broker (one another checkout or `docker compose` runs, which this
    test finds reused, or cannot reach as a process at all) would break work that is not
    ours, so without our own broker the test is skipped and says why.
    """
    needs = (
        "this test pauses the Kafka broker, and may only pause one this checkout's "
        f"`make services` started (pid file {KAFKA_PIDFILE})"
    )
    if not KAFKA_PIDFILE.exists():
        pytest.skip(f"{needs}: the pid file does not exist (the broker is someone else's)")
    text = KAFKA_PIDFILE.read_text().strip()
    if not text.isdigit():
        pytest.fail(f"{needs}: the pid file holds {text!r}")
    pid = int(text)
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        pytest.skip(f"{needs}: no process {pid} is running (a stale pid file)")
    if "kafka.Kafka" not in cmdline:
        pytest.skip(f"{needs}: process {pid} is not a Kafka broker ({cmdline[:200]!r})")
    return pid


async def test_health_turns_503_when_kafka_stops_and_200_when_it_returns(
    launch: Callable[..., EventtriggerProcess],
) -> None:
    pid = _our_kafka_pid()
    proc = launch()
    healthy = await _wait_for_health(proc, 200, "kafka", "ok")
    assert healthy["status"] == "ok"

    os.kill(pid, signal.SIGSTOP)  # frozen, not killed: its data and state stay as they are
    try:
        down = await _wait_for_health(proc, 503, "kafka", "unavailable")
    finally:
        os.kill(pid, signal.SIGCONT)
    assert down["status"] == "unavailable"
    assert down["checks"]["kafka"]["latency_ms"] is None
    assert down["checks"]["database"]["status"] == "ok"  # only Kafka is blamed

    back = await _wait_for_health(proc, 200, "kafka", "ok")
    assert back["status"] == "ok"
    assert back["checks"]["kafka"]["latency_ms"] >= 0
    assert all(role["status"] == "ok" for role in back["roles"].values()), back


# ---- health: the database -----------------------------------------------------------------


class TcpProxy:
    """127.0.0.1:port -> upstream, that can be cut (listener and live connections) and
    restored on the same port.

    It runs its own event loop in a thread: `launch` blocks the test's loop while the
    process starts, and the process needs the database (through us) to start.
    """

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def _call(self, coro: Coroutine[Any, Any, None]) -> None:
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))

    async def start(self) -> None:
        if not self._thread.is_alive():
            self._thread.start()
        await self._call(self._listen())

    async def cut(self) -> None:
        """Stop listening and drop every open connection (both sides)."""
        await self._call(self._cut())

    async def close(self) -> None:
        await self.cut()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", self.port, reuse_address=True
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        for task in (
            asyncio.create_task(self._pipe(reader, up_writer)),
            asyncio.create_task(self._pipe(up_reader, writer)),
        ):
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


@pytest.fixture
async def db_proxy() -> AsyncIterator[TcpProxy]:
    url = urlsplit(base_environ()["EVENTTRIGGER_DATABASE_URL"])
    proxy = TcpProxy(url.hostname or "127.0.0.1", url.port or 3306)
    await proxy.start()
    yield proxy
    await proxy.close()


def _via(proxy: TcpProxy) -> str:
    """The test database URL with the proxy as its server (same user and database)."""
    url = urlsplit(base_environ()["EVENTTRIGGER_DATABASE_URL"])
    userinfo, _, _ = url.netloc.rpartition("@")
    netloc = f"{userinfo}@127.0.0.1:{proxy.port}" if userinfo else f"127.0.0.1:{proxy.port}"
    return urlunsplit(url._replace(netloc=netloc))


async def test_health_turns_503_when_the_database_is_unreachable_and_200_when_it_returns(
    launch: Callable[..., EventtriggerProcess], db_proxy: TcpProxy
) -> None:
    proc = launch(EVENTTRIGGER_DATABASE_URL=_via(db_proxy))
    healthy = await _wait_for_health(proc, 200, "database", "ok")
    assert healthy["status"] == "ok"

    await db_proxy.cut()
    down = await _wait_for_health(proc, 503, "database", "unavailable")
    assert down["status"] == "unavailable"
    assert down["checks"]["database"]["latency_ms"] is None
    assert down["checks"]["kafka"]["status"] == "ok"  # only the database is blamed

    async def roles_noticed() -> bool:  # the outage is felt by the roles too, not just /health
        return any(
            line.get("action") == "db_error" and line.get("role") == "scheduler"
            for line in log_lines(proc.log_path)
        )

    await wait_until(roles_noticed, timeout=15)
    assert proc.proc is not None and proc.proc.poll() is None, "the process died"

    await db_proxy.start()  # the same port again: the pool must reconnect by itself
    back = await _wait_for_health(proc, 200, "database", "ok")
    assert back["status"] == "ok"
    assert back["checks"]["database"]["latency_ms"] >= 0
    assert all(role["status"] == "ok" for role in back["roles"].values()), back


# ---- metrics ------------------------------------------------------------------------------


async def test_processed_counter_and_histograms_rise_by_n_after_n_firings(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    sink: Sink,
    db: Database,
) -> None:
    n_webhook, n_scheduled = 5, 3
    processed = _m("eventtrigger_jobs_processed_total", outcome="success")
    attempts = _m("eventtrigger_delivery_attempts_total", outcome="success")
    delivery = _m("eventtrigger_delivery_latency_seconds_count")
    lateness = _m("eventtrigger_fire_lateness_seconds_count")

    proc = launch()
    async with api(proc) as client:
        before = await _scrape(proc)
        for metric in (processed, attempts, delivery, lateness):
            assert metric in before, metric

        # N webhook calls: each a job processed, one successful attempt, one latency.
        counted_hook = await create_trigger(
            client,
            "webhook",
            {"endpoint": sink.url("/counted"), "schema": {"type": "object"}},
            name="counted",
        )
        for i in range(n_webhook):
            await fire_webhook(counted_hook["webhook_url"], {"i": i})

        async def webhook_successes() -> bool:
            rows = await event_rows(db, "status = 'success'")
            return len(rows) == n_webhook

        await wait_until(webhook_successes)

        async def counted(expected: dict[Metric, float]) -> dict[Metric, float] | None:
            now = await _scrape(proc)
            return now if all(now[m] >= v for m, v in expected.items()) else None

        after = await wait_until(
            lambda: counted(
                {processed: before[processed] + n_webhook, delivery: before[delivery] + n_webhook}
            )
        )
        assert after[processed] - before[processed] == n_webhook
        assert after[attempts] - before[attempts] == n_webhook
        assert after[delivery] - before[delivery] == n_webhook
        assert after[lateness] == before[lateness]  # webhooks are not scheduled firings
        assert (
            after[_m("eventtrigger_jobs_processed_total", outcome="failure")]
            == before[_m("eventtrigger_jobs_processed_total", outcome="failure")]
        )

        async def stats_success(count: int) -> dict[str, Any] | None:
            stats = (await client.get("/api/v1/stats")).json()
            return stats if stats["outcomes"]["success"] == count else None

        stats = await wait_until(lambda: stats_success(n_webhook), timeout=15)
        assert stats["outcomes"]["failure"] == 0
        assert stats["this_process"]["jobs_processed"]["success"] == after[processed]

        # N scheduled firings: each one also a fire-lateness observation.
        for i in range(n_scheduled):
            await create_trigger(
                client,
                "time_scheduled",
                {"endpoint": sink.url("/once"), "run_in": "2s", "payload": {"i": i}},
                name=f"once {i}",
            )

        async def all_successes() -> bool:
            rows = await event_rows(db, "status = 'success'")
            return len(rows) == n_webhook + n_scheduled

        await wait_until(all_successes)
        final = await wait_until(
            lambda: counted(
                {lateness: after[lateness] + n_scheduled, processed: after[processed] + n_scheduled}
            )
        )
        assert final[lateness] - after[lateness] == n_scheduled
        assert final[processed] - after[processed] == n_scheduled
        assert final[attempts] - after[attempts] == n_scheduled
        assert final[delivery] - after[delivery] == n_scheduled
        for q in ("0.5", "0.95", "0.99"):
            recent = final[_m("eventtrigger_fire_lateness_recent_seconds", quantile=q)]
            assert 0 <= recent < 5, (q, recent)  # observed now, so a number and not NaN

        stats = await wait_until(lambda: stats_success(n_webhook + n_scheduled), timeout=15)
        assert stats["outcomes"]["success"] == n_webhook + n_scheduled


# ---- logs ---------------------------------------------------------------------------------


async def test_request_id_sent_in_is_found_in_the_logs_of_that_request(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    sink: Sink,
) -> None:
    proc = launch()
    request_id = f"test-req-{secrets.token_hex(8)}"
    async with api(proc) as client:
        created = await client.post(
            "/api/v1/triggers",
            headers={"X-Request-Id": request_id},
            json={
                "name": "traced",
                "type": "webhook",
                "config": {"endpoint": sink.url("/traced"), "schema": {"type": "object"}},
            },
        )
        assert created.status_code == 201, created.text
        assert created.headers["x-request-id"] == request_id

        without_id = await client.get("/api/v1/triggers")
        assert without_id.status_code == 200
        generated = without_id.headers.get("x-request-id")
        assert generated and generated != request_id

    def logged(rid: str) -> list[dict[str, Any]]:
        return [
            line
            for line in log_lines(proc.log_path)
            if line.get("request_id") == rid and line.get("action") == "http_request"
        ]

    async def found() -> list[dict[str, Any]]:
        return logged(request_id) and logged(generated)

    await wait_until(found, timeout=10)  # log lines are written by a queue: poll
    [line] = logged(request_id)
    assert line["method"] == "POST"
    assert line["path"] == "/api/v1/triggers"
    assert line["status"] == 201
    [other] = logged(generated)
    assert other["method"] == "GET"
    assert other["status"] == 200


async def test_no_api_key_or_signing_secret_appears_in_the_logs(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    sink: Sink,
    db: Database,
) -> None:
    proc = launch(env=e2e_environ(EVENTTRIGGER_LOG_LEVEL="DEBUG"))
    wrong_key = f"wrong-key-{secrets.token_hex(12)}"
    signing_secrets: list[str] = []
    async with api(proc) as client:
        hook = await create_trigger(
            client,
            "webhook",
            {
                "endpoint": sink.url("/secret"),
                "schema": {"type": "object"},
                "headers": {"X-Tenant": "acme"},
            },
            name="secretive",
        )
        signing_secrets.append(hook["signing_secret"])
        once = await create_trigger(
            client,
            "time_scheduled",
            {"endpoint": sink.url("/secret"), "run_in": "1s", "payload": {"a": 1}},
            name="secretive once",
        )
        signing_secrets.append(once["signing_secret"])

        async with httpx.AsyncClient() as anonymous:
            for i in range(3):
                fired = await anonymous.post(hook["webhook_url"], json={"i": i})
                assert fired.status_code == 202, fired.text
            invalid = await anonymous.post(
                hook["webhook_url"],
                content=b"{not json",
                headers={"Content-Type": "application/json"},
            )
            assert invalid.status_code == 400, invalid.text
            refused = await anonymous.get(
                f"{proc.base_url}/api/v1/triggers",
                headers={"Authorization": f"Bearer {wrong_key}"},
            )
            assert refused.status_code == 401
            refused = await anonymous.get(
                f"{proc.base_url}/api/v1/stats", headers={"X-API-Key": wrong_key}
            )
            assert refused.status_code == 401

        test_run = await start_test_run(
            client, "webhook", {"endpoint": sink.url("/secret"), "schema": {}}, {}
        )
        signing_secrets.append(test_run["signing_secret"])
        bad = await client.post("/api/v1/triggers", json={"name": "", "type": "nope"})
        assert bad.status_code == 400, bad.text

        await sink.wait_for("/secret", 3 + 1 + 1)

        async def all_done() -> bool:
            rows = await event_rows(db)
            return len(rows) == 5 and all(r["status"] == "success" for r in rows)

        await wait_until(all_done)

    # Let the logger's queue catch up: the last delivery's line is in the file.
    async def delivered_logged() -> bool:
        delivered = [line for line in log_lines(proc.log_path) if line.get("action") == "delivered"]
        return len(delivered) == 5

    await wait_until(delivered_logged, timeout=10)

    text = proc.log_path.read_text()
    assert any(line.get("level") == "DEBUG" for line in log_lines(proc.log_path))
    forbidden = {"the API key": TEST_API_KEY, "the wrong key": wrong_key}
    for i, secret in enumerate(signing_secrets):
        assert secret.startswith("whsec_"), secret
        forbidden[f"signing secret {i}"] = secret
        forbidden[f"signing secret {i} (base64 part)"] = secret.removeprefix("whsec_")
    leaked = {what: value for what, value in forbidden.items() if value in text}
    assert not leaked, f"secrets in the log {proc.log_path}: {sorted(leaked)}"
