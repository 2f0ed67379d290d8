"""`eventtrigger run`: build shared resources once, run each role as a named task.

One stop event: SIGTERM/SIGINT only set it. Roles see it, stop taking work, finish what
they hold within the grace period and return. A role that dies takes the process down
(TaskGroup cancels the rest) so the orchestrator restarts it, rather than running on
half-dead.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Coroutine, Iterator
from typing import TYPE_CHECKING, Any

import uvicorn
from aiokafka.errors import KafkaError
from loguru import logger

from eventtrigger.bus import KafkaProbe, Publisher, ensure_topics
from eventtrigger.clock import SystemClock
from eventtrigger.config import Settings
from eventtrigger.domain.retention import Windows
from eventtrigger.observability.health import Check, Health, secrets_mode
from eventtrigger.observability.metrics import Metrics
from eventtrigger.observability.stats import StatsKeeper
from eventtrigger.resources import Resources
from eventtrigger.roles import retention, scheduler, tune_gc, worker
from eventtrigger.roles.api.app import build_app
from eventtrigger.store.db import TRANSIENT_ERRORS, Database

if TYPE_CHECKING:
    from eventtrigger.observability.tracing import Tracing

KEEP_ALIVE_SECONDS = 75
Role = Callable[[Resources, asyncio.Event], Coroutine[Any, Any, None]]
HEARTBEAT = 1.0
# Inside /health's 2 s per check: a half-open connection makes the check fail in time
# (and is dropped) instead of leaving /health to the outer timeout.
DATABASE_CHECK_TIMEOUT = 1.5
KAFKA_ERRORS = (KafkaError, OSError)


async def api_role(res: Resources, stop: asyncio.Event) -> None:
    """The API routes are served by the process's HTTP server; this loop is its heartbeat."""
    while not stop.is_set():
        res.health.beat("api")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), HEARTBEAT)


def _roles() -> dict[str, Role]:
    return {
        "api": api_role,
        "scheduler": scheduler.run,
        "worker": worker.run,
        "retention": retention.run,
    }


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: our stop event owns shutdown."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _serve_http(server: _Server, stop: asyncio.Event) -> None:
    serving = asyncio.create_task(server.serve(), name="http-server")
    stopping = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if serving in done:
        stopping.cancel()
        serving.result()  # re-raise a failed start (e.g. port in use)
        raise RuntimeError("the HTTP server stopped on its own")
    server.should_exit = True
    await serving


async def _wait_for(
    what: str,
    connect: Callable[[], Coroutine[Any, Any, None]],
    errors: tuple[type[BaseException], ...],
    stop: asyncio.Event,
    attempts: int = 60,
) -> None:
    """A dependency may still be starting (compose); wait for it a little while."""
    for attempt in range(1, attempts + 1):
        try:
            await connect()
            return
        except errors as exc:
            if attempt == attempts or stop.is_set():
                raise
            logger.bind(action="dependency_wait").warning("{} not reachable yet: {!r}", what, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)


def _tracing(settings: Settings, roles: tuple[str, ...]) -> Tracing | None:
    """OpenTelemetry tracing when OTEL_EXPORTER_OTLP_ENDPOINT is set; otherwise None,
    and the SDK is not even imported."""
    if not settings.otel_endpoint:
        return None
    from eventtrigger.observability.tracing import Tracing

    return Tracing.start(settings.otel_endpoint, roles)


async def run(settings: Settings, roles: tuple[str, ...]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    tracing = _tracing(settings, roles)
    db = Database(settings.database)
    await _wait_for("database", db.connect, TRANSIENT_ERRORS, stop)
    checks: dict[str, Check] = {"database": lambda: db.ping(DATABASE_CHECK_TIMEOUT)}
    publisher = None
    probe = KafkaProbe(settings)
    if set(roles) & {"api", "scheduler", "worker"}:
        checks["kafka"] = probe.ping
        await _wait_for("kafka", lambda: ensure_topics(settings), KAFKA_ERRORS, stop)
        publisher = Publisher(settings, tracing)
        await _wait_for("kafka", publisher.start, KAFKA_ERRORS, stop)
    metrics = Metrics()
    windows = Windows(settings.retention_active, settings.retention_total)
    res = Resources(
        settings=settings,
        clock=SystemClock(),
        db=db,
        health=Health(roles, checks, secrets=secrets_mode(settings.database.secrets.enabled)),
        metrics=metrics,
        stats=StatsKeeper(db, windows, metrics),
        publisher=publisher,
        tracing=tracing,
    )
    config = uvicorn.Config(
        build_app(res, api="api" in roles, stop=stop),
        host=settings.http_host,
        port=settings.http_port,
        loop="none",
        http="httptools",
        lifespan="off",
        # The app reads X-Forwarded-For itself, and only from EVENTTRIGGER_TRUSTED_PROXIES;
        # uvicorn's default would trust it from any local peer.
        proxy_headers=False,
        log_config=None,
        access_log=False,
        # Longer than clients keep idle connections (aiohttp 15 s, load balancers 60 s):
        # with uvicorn's 5 s, a client reusing a pooled connection just as we closed it
        # got a reset instead of an answer (1 of 10,000 creates in bench S5).
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        timeout_graceful_shutdown=int(settings.shutdown_grace.total_seconds()) or None,
    )
    # Whatever the roles: a burst of webhook calls allocates per call as much as firing
    # and delivering do per job. Now that the long-lived objects (pools, clients, app)
    # exist, so the collector stops walking them.
    tune_gc()
    logger.bind(action="started", roles=list(roles)).info(
        "eventtrigger serving {} on {}:{}", ",".join(roles), settings.http_host, settings.http_port
    )
    registry = _roles()
    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(_serve_http(_Server(config), stop), name="http")
            if "api" in roles:  # the snapshot serves /metrics gauges, stats and dashboard
                group.create_task(res.stats.run(res.clock, stop), name="stats")
            for role in roles:
                group.create_task(registry[role](res, stop), name=role)
    finally:
        await probe.close()
        if publisher is not None:
            await publisher.stop()
        await db.close()
        if tracing is not None:  # last: the publishes and deliveries above make spans
            await asyncio.to_thread(tracing.shutdown)
    logger.bind(action="stopped").info("eventtrigger stopped")
