"""GET /api/v1/events/stream: new events and their status changes as server-sent events,
filtered, from one shared poller per process; bounded per stream; ended when the process
stops, without holding up the HTTP server's graceful shutdown.

Over the real `--roles=api` process where a client sees it; the hub, the change log and
the response in-process (with the real database) where timing must be driven."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from aiokafka import TopicPartition
from loguru import logger

from eventtrigger.clock import FrozenClock, SystemClock
from eventtrigger.config import Settings
from eventtrigger.delivery import Result
from eventtrigger.domain.jobs import NewEvent
from eventtrigger.domain.keys import StoredKey, key_hash, new_key
from eventtrigger.domain.retention import Windows
from eventtrigger.ids import new_id
from eventtrigger.observability.health import Health
from eventtrigger.observability.metrics import Metrics
from eventtrigger.observability.stats import StatsKeeper
from eventtrigger.resources import Resources
from eventtrigger.roles import worker as worker_module
from eventtrigger.roles.api import stream
from eventtrigger.roles.api.app import build_app
from eventtrigger.roles.api.problems import Problem
from eventtrigger.roles.api.stream import (
    DROPPED,
    KEEPALIVE,
    OVERLAP,
    STOPPING,
    ChangeLog,
    EventStreamResponse,
    StreamFilter,
    StreamHub,
    Subscriber,
)
from eventtrigger.roles.worker import Held, Worker
from eventtrigger.store import deliveries, eventstream, keys
from eventtrigger.store.db import Database
from eventtrigger.store.deliveries import Attempt
from eventtrigger.store.events import in_list, insert_events
from eventtrigger.store.queries import Q
from tests.api._support import assert_invalid
from tests.conftest import TEST_API_KEY
from tests.conftest import test_environ as environ_for_tests
from tests.e2e.conftest import wait_until
from tests.process import EventtriggerProcess, free_port

STREAM = "/api/v1/events/stream"
AUTH = {"Authorization": f"Bearer {TEST_API_KEY}", "Accept": "text/event-stream"}
T0 = datetime(2030, 1, 1, tzinfo=UTC)


# ---- reading a stream -------------------------------------------------------------------


@dataclass
class Message:
    fields: dict[str, str] = field(default_factory=dict)
    comments: list[str] = field(default_factory=list)

    @property
    def data(self) -> Any:
        return orjson.loads(self.fields["data"])


class Tail:
    """The messages of an open text/event-stream, one at a time."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.lines = response.aiter_lines()

    async def next(self, timeout: float = 15.0) -> Message | None:
        """The next message (or comment block); None when the stream ended."""
        message = Message()
        async with asyncio.timeout(timeout):
            async for line in self.lines:
                if line == "":
                    if message.fields or message.comments:
                        return message
                    continue
                if line.startswith(":"):
                    message.comments.append(line[1:].strip())
                    continue
                name, _, value = line.partition(":")
                message.fields[name] = value.removeprefix(" ")
        return message if message.fields or message.comments else None

    async def event(self, timeout: float = 15.0) -> Message:
        """The next `event: event` message, skipping comments and the retry hint."""
        deadline = time.monotonic() + timeout
        while True:
            message = await self.next(max(0.1, deadline - time.monotonic()))
            assert message is not None, "the stream ended"
            if message.fields.get("event") == "event":
                return message


@contextlib.asynccontextmanager
async def tail(base_url: str, **params: str) -> AsyncIterator[Tail]:
    async with (
        httpx.AsyncClient(base_url=base_url, headers=AUTH, timeout=None) as c,
        c.stream("GET", STREAM, params=params) as response,
    ):
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        opened = Tail(response)
        first = await opened.next()  # sent once the stream is subscribed
        assert first is not None and first.fields == {"retry": "3000"}
        yield opened


# ---- writing events ---------------------------------------------------------------------


async def add_event(
    db: Database, *, trigger_id: str | None = None, source: str = "api", payload: Any = None
) -> str:
    now = datetime.now(UTC)
    event = new_event(now, trigger_id=trigger_id, source=source, payload=payload)
    async with db.transaction() as tx:
        await insert_events(tx, [event], now)
    return event.id


def new_event(
    now: datetime, *, trigger_id: str | None = None, source: str = "api", payload: Any = None
) -> NewEvent:
    return NewEvent(
        id=new_id(now),
        trigger_id=trigger_id or new_id(now),
        trigger_type="webhook",
        source=source,
        scheduled_at=now,
        fired_at=now,
        payload=payload,
        request={
            "url": "https://example.com/hook",
            "method": "POST",
            "headers": {},
            "timeout": "10s",
            "retry": {"max_attempts": 3, "initial_delay": "2s", "max_delay": "5m"},
            "signing_secret": "whsec_c2VjcmV0",
        },
        next_attempt_at=now + timedelta(seconds=30),
    )


async def outcome(db: Database, event_id: str, attempt: int, status: str) -> None:
    """An attempt's outcome stored as the worker stores it."""
    now = datetime.now(UTC)
    code = 200 if status == "success" else 503
    result = Attempt(
        event_id,
        attempt,
        status,
        code,
        None if status == "success" else "HTTP 503: busy",
        now if status == "success" else None,
        now + timedelta(seconds=5) if status == "retrying" else None,
        started_at=now,
    )
    async with db.transaction() as tx:
        assert await deliveries.record_attempts(tx, [result], now) == [True]


# ---- over the real process --------------------------------------------------------------


async def test_new_events_and_status_changes_are_streamed_as_the_list_shows_them(
    server: EventtriggerProcess, client: httpx.AsyncClient, db: Database
) -> None:
    async with tail(server.base_url) as events:
        event_id = await add_event(db, payload={"order": 7})
        created = await events.event()
        assert created.fields["id"] == event_id
        assert created.data["status"] == "pending"
        [listed] = (await client.get("/api/v1/events")).json()["items"]
        assert created.data == listed  # the same JSON as GET /events items

        await outcome(db, event_id, 1, "retrying")
        retrying = await events.event()
        assert (retrying.fields["id"], retrying.data["status"]) == (event_id, "retrying")
        assert retrying.data["attempts"] == 1 and retrying.data["last_status_code"] == 503

        await outcome(db, event_id, 2, "success")
        done = await events.event()
        assert (done.fields["id"], done.data["status"]) == (event_id, "success")
        assert done.data["delivered_at"] is not None


async def test_filters_pick_the_events_a_stream_gets(
    server: EventtriggerProcess, db: Database
) -> None:
    mine = new_id(datetime.now(UTC))
    async with (
        tail(server.base_url, trigger_id=mine) as by_trigger,
        tail(server.base_url, status="success") as successes,
        tail(server.base_url, source="replay") as replays,
    ):
        other = await add_event(db)
        ours = await add_event(db, trigger_id=mine)
        replayed = await add_event(db, source="replay")
        await outcome(db, other, 1, "success")
        # Each stream's first message is the one its filter names, in order of change.
        got = await by_trigger.event()
        assert (got.fields["id"], got.data["trigger_id"]) == (ours, mine)
        got = await successes.event()
        assert (got.fields["id"], got.data["status"]) == (other, "success")
        got = await replays.event()
        assert (got.fields["id"], got.data["source"]) == (replayed, "replay")
        # And nothing else came to them meanwhile: each one's next message is its next
        # matching change (a failure is not for the success stream; a success is).
        await outcome(db, ours, 1, "failure")
        got = await by_trigger.event()
        assert (got.fields["id"], got.data["status"]) == (ours, "failure")
        await outcome(db, replayed, 1, "success")
        got = await successes.event()
        assert (got.fields["id"], got.data["status"]) == (replayed, "success")


async def test_events_before_the_stream_opened_are_not_sent(
    server: EventtriggerProcess, db: Database
) -> None:
    before = await add_event(db)
    async with tail(server.base_url) as events:
        after = await add_event(db)
        got = await events.event()
        assert got.fields["id"] == after != before


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "done"}, "status"),
        ({"source": "cron"}, "source"),
        ({"trigger_id": "not an id"}, "trigger_id"),
    ],
)
async def test_bad_filters_are_400_naming_the_field(
    client: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    assert_invalid(await client.get(STREAM, params=params), field)


async def test_a_client_that_does_not_ask_for_a_stream_gets_406_not_a_hang(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(STREAM, headers={"Accept": "application/json"})
    assert response.status_code == 406
    assert "text/event-stream" in response.json()["detail"]
    assert (await client.get(STREAM)).status_code == 406  # httpx's */* is no request for one


async def test_the_stream_needs_a_key_with_events_read(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.get(STREAM)
    assert response.status_code == 401
    document = (await anonymous.get("/openapi.json")).json()
    operation = document["paths"][STREAM]["get"]
    assert operation["x-required-scope"] == "events:read"
    assert "text/event-stream" in operation["responses"]["200"]["content"]


def test_the_change_query_is_an_index_only_range_scan() -> None:
    """Read once a second: it must never scan the table (checked on the real schema)."""
    assert "FORCE INDEX (ix_events_updated)" in Q["eventstream.changed"]


async def test_the_change_query_plan_uses_the_updated_index(db: Database) -> None:
    async with db.connection() as tx:
        [plan] = await tx.fetch_all(
            "EXPLAIN " + Q["eventstream.changed"], (T0, T0, "", stream.CHANGES_LIMIT)
        )
    assert plan["key"] == "ix_events_updated"
    assert plan["type"] == "range"
    assert "Using index" in (plan["Extra"] or "")
    assert "filesort" not in (plan["Extra"] or "")


async def test_the_filter_columns_of_changed_rows_are_read_by_primary_key(db: Database) -> None:
    ids = [await add_event(db) for _ in range(3)]
    async with db.connection() as tx:
        [plan] = await tx.fetch_all("EXPLAIN " + in_list(Q["eventstream.heads"], ids), ids)
    assert plan["key"] == "PRIMARY"
    assert plan["type"] in ("range", "const")


# ---- the change log (pure) --------------------------------------------------------------


def test_change_log_sends_each_change_once_across_overlapping_reads() -> None:
    log = ChangeLog.starting(T0)
    assert log.next_read() == (T0 - OVERLAP, "")
    t1, t2 = T0 + timedelta(seconds=1), T0 + timedelta(seconds=2)
    assert log.take([("a", t1), ("b", t2)], T0, 100) == (["a", "b"], False)
    assert log.next_read() == (t2 - OVERLAP, "")
    # The same rows read again (the overlap), one of them changed since: only that one.
    t3 = T0 + timedelta(seconds=3)
    assert log.take([("a", t1), ("b", t3)], T0, 100) == (["b"], False)


def test_change_log_catches_a_late_commit_stamped_before_the_newest_change() -> None:
    log = ChangeLog.starting(T0)
    t5 = T0 + timedelta(seconds=5)
    log.take([("a", t5)], T0, 100)
    late = t5 - timedelta(seconds=1)  # committed after a was read, stamped before it
    assert log.next_read()[0] <= late
    assert log.take([("late", late), ("a", t5)], T0, 100) == (["late"], False)


def test_change_log_continues_a_full_read_from_its_end_and_skips_ahead_when_far_behind() -> None:
    log = ChangeLog.starting(T0)
    t1 = T0 + timedelta(seconds=1)
    fresh, skipped = log.take([("a", t1), ("b", t1)], T0 + timedelta(seconds=2), 2)
    assert (fresh, skipped) == (["a", "b"], False)
    assert log.next_read() == (t1, "b")  # saturated: from where it stopped, no overlap
    now = t1 + stream.MAX_BEHIND + timedelta(seconds=1)
    fresh, skipped = log.take([("c", t1), ("d", t1)], now, 2)
    assert fresh == ["c", "d"] and skipped
    assert log.next_read() == (now - OVERLAP, "")


def test_change_log_sends_a_burst_once_and_then_nothing_while_quiet() -> None:
    """6,000 changes within 1.8 s (more than one read takes, and more than one read of
    the overlap takes), then a minute of quiet: each change goes out once, nothing is
    said to be skipped, and a change after the burst still goes out at once."""
    burst_start = T0 + timedelta(seconds=0.5)
    table = [(f"{n:05d}", burst_start + timedelta(microseconds=300 * n)) for n in range(6000)]
    log = ChangeLog.starting(T0)
    sent: list[str] = []
    skips = 0

    def turn(now: datetime) -> list[str]:
        nonlocal skips
        since, after_id = log.next_read()
        visible = sorted(
            (at, i)
            for i, at in table
            if at <= now and (at > since or (at == since and i > after_id))
        )
        read = [(i, at) for at, i in visible[: stream.CHANGES_LIMIT]]
        fresh, skipped = log.take(read, now, stream.CHANGES_LIMIT)
        skips += skipped
        sent.extend(fresh)
        return fresh

    for second in range(1, 64):
        turn(T0 + timedelta(seconds=second))
    assert skips == 0
    assert len(sent) == len(table) and sorted(sent) == sorted(i for i, _ in table)
    # New traffic after the burst is not held up by re-reading it.
    now = T0 + timedelta(seconds=64)
    table.append(("new", now))
    got = turn(now) + turn(now + timedelta(seconds=1))
    assert got == ["new"]
    assert skips == 0


def _event_message(event_id: str, state: str) -> bytes:
    return f'event: event\nid: {event_id}\ndata: {{"status": "{state}"}}\n\n'.encode()


def test_a_turn_of_thousands_of_changes_reaches_a_client_that_drains_without_a_drop() -> None:
    drops: list[None] = []
    subscriber = Subscriber(StreamFilter(), T0, on_drop=lambda: drops.append(None))
    # 3,000 changes of 1,500 events in one turn (each pending, then retrying): only the
    # latest state of an event not written yet is kept.
    subscriber.begin_turn()
    for state in ("pending", "retrying"):
        for n in range(1500):
            subscriber.offer(_event_message(f"e{n}", state), f"e{n}")
    subscriber.end_turn()
    assert subscriber.ending is None
    written = subscriber.take()
    assert written.count(b"event: event") == 1500
    assert b"pending" not in written and written.count(b"retrying") == 1500
    # And the next turn, 3,000 other events: the client drained, so it is served.
    subscriber.begin_turn()
    for n in range(3000):
        subscriber.offer(_event_message(f"f{n}", "success"), f"f{n}")
    subscriber.end_turn()
    assert subscriber.ending is None and not drops
    assert subscriber.take().count(b"event: event") == 3000


def test_a_subscriber_that_does_not_drain_by_the_next_turn_is_dropped_and_holds_nothing() -> None:
    drops: list[None] = []
    subscriber = Subscriber(StreamFilter(), T0, on_drop=lambda: drops.append(None))
    subscriber.begin_turn()
    subscriber.offer(_event_message("a", "pending"), "a")
    subscriber.end_turn()
    subscriber.begin_turn()  # nothing taken since the last turn: slower than changes come
    assert subscriber.ending == DROPPED and len(drops) == 1
    assert not subscriber.pending and subscriber.size == 0
    subscriber.offer(b"later\n\n", "b")  # nothing queues after the end
    assert not subscriber.pending
    subscriber.end_turn()
    subscriber.begin_turn()
    assert len(drops) == 1  # dropped once
    # A quiet client that holds nothing is never dropped, however long it stays.
    idle = Subscriber(StreamFilter(), T0, on_drop=lambda: drops.append(None))
    for _ in range(5):
        idle.begin_turn()
        idle.end_turn()
    assert idle.ending is None and len(drops) == 1


def test_a_turn_past_the_byte_cap_becomes_one_skipped_comment() -> None:
    subscriber = Subscriber(StreamFilter(), T0)
    big = b"x" * (256 * 1024)
    count = 2 * stream.QUEUE_BYTES // len(big)
    subscriber.begin_turn()
    for n in range(count):
        subscriber.offer(big, f"e{n}")
        assert subscriber.size <= stream.QUEUE_BYTES  # the hard cap holds at every step
    subscriber.end_turn()
    assert subscriber.ending is None
    assert subscriber.take() == stream.skipped_comment(count)
    assert subscriber.skipped == 0


# ---- the hub and the response, in-process -----------------------------------------------


@pytest.fixture
def resources(migrated: Settings, db: Database) -> Iterator[Resources]:
    metrics = Metrics()
    windows = Windows(migrated.retention_active, migrated.retention_total)
    yield Resources(
        settings=migrated,
        clock=SystemClock(),
        db=db,
        health=Health((), {}),
        metrics=metrics,
        stats=StatsKeeper(db, windows, metrics),
    )


class FakeClient:
    """The ASGI side of one client: what was sent to it; it leaves when told."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.gone = asyncio.Event()
        self.changed = asyncio.Condition()

    async def receive(self) -> dict[str, Any]:
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        async with self.changed:
            self.sent.append(message)
            self.changed.notify_all()

    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent)

    async def wait_for(self, data: bytes, timeout: float = 10.0) -> None:
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(lambda: data in self.body()), timeout)


async def test_keep_alive_comments_come_while_nothing_changes(
    resources: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stream, "KEEPALIVE_SECONDS", 0.2)
    stop = asyncio.Event()
    hub = StreamHub(resources, stop)
    subscriber = hub.subscribe(StreamFilter())
    fake = FakeClient()
    answering = asyncio.create_task(
        EventStreamResponse(hub, subscriber)({"type": "http"}, fake.receive, fake.send)
    )
    await fake.wait_for(KEEPALIVE + KEEPALIVE)  # two in a row: nothing else came
    fake.gone.set()
    await asyncio.wait_for(answering, 5)
    assert subscriber not in hub.subscribers
    stop.set()


class StuckClient(FakeClient):
    """A client that takes the opening of the stream, then nothing more."""

    def __init__(self) -> None:
        super().__init__()
        self.stuck = asyncio.Event()

    async def send(self, message: dict[str, Any]) -> None:
        if message.get("body", b"").startswith(b"event:"):
            self.stuck.set()
            await asyncio.Event().wait()  # never taken (until SEND_SECONDS)
        await super().send(message)


async def test_a_stream_that_does_not_drain_is_dropped_with_a_final_comment_and_counted(
    resources: Resources,
) -> None:
    stop = asyncio.Event()
    hub = StreamHub(resources, stop)
    subscriber = hub.subscribe(StreamFilter())
    registry = resources.metrics.registry
    assert registry.get_sample_value("eventtrigger_event_streams_open") == 1
    fake = FakeClient()
    answering = asyncio.create_task(
        EventStreamResponse(hub, subscriber)({"type": "http"}, fake.receive, fake.send)
    )
    await fake.wait_for(b"retry: 3000\n\n")
    # Two turns with changes while the writer has not taken the first one's (no await
    # between them, as when the client does not read).
    for n in range(2):
        subscriber.begin_turn()
        subscriber.offer(_event_message(f"e{n}", "pending"), f"e{n}")
        subscriber.end_turn()
    await asyncio.wait_for(answering, 5)
    assert fake.body().endswith(DROPPED)
    assert fake.sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
    assert subscriber not in hub.subscribers
    assert registry.get_sample_value("eventtrigger_event_streams_dropped_total") == 1
    assert registry.get_sample_value("eventtrigger_event_streams_open") == 0
    stop.set()


async def test_a_client_stuck_on_a_write_is_dropped_at_the_next_turn(
    resources: Resources, db: Database
) -> None:
    stop = asyncio.Event()
    hub = StreamHub(resources, stop)
    subscriber = hub.subscribe(StreamFilter())
    fake = StuckClient()
    answering = asyncio.create_task(
        EventStreamResponse(hub, subscriber)({"type": "http"}, fake.receive, fake.send)
    )
    await add_event(db)
    await asyncio.wait_for(fake.stuck.wait(), 10)  # the first change is being written
    await add_event(db)  # queued behind it, never taken: dropped a turn later
    await wait_until(lambda: _true(subscriber.ending == DROPPED), 10, 0.05)
    assert subscriber.pending == {}
    answering.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await answering
    stop.set()


async def _true(value: bool) -> bool:
    return value


async def test_one_poller_serves_every_stream_and_stops_with_the_last(
    resources: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[float] = []
    four = asyncio.Event()
    real = eventstream.changed

    async def counted(*args: Any, **kwargs: Any) -> list[tuple[str, datetime]]:
        reads.append(time.monotonic())
        if len(reads) >= 4:
            four.set()
        return await real(*args, **kwargs)

    monkeypatch.setattr(eventstream, "changed", counted)
    stop = asyncio.Event()
    hub = StreamHub(resources, stop)
    subscribers = [hub.subscribe(StreamFilter()) for _ in range(20)]
    pollers = [t for t in asyncio.all_tasks() if t.get_name() == "event-stream"]
    assert len(pollers) == 1
    started = time.monotonic()

    await asyncio.wait_for(four.wait(), 10)
    elapsed = time.monotonic() - started
    # About one read a second for all 20 streams, not one per stream.
    assert len(reads) <= elapsed / stream.POLL_SECONDS + 2
    for subscriber in subscribers:
        hub.unsubscribe(subscriber)
    await asyncio.wait_for(pollers[0], 5)  # ends by itself once nobody listens
    stop.set()


async def test_the_hub_delivers_changes_to_matching_subscribers(
    resources: Resources, db: Database
) -> None:
    stop = asyncio.Event()
    hub = StreamHub(resources, stop)
    mine = new_id(datetime.now(UTC))
    everything = hub.subscribe(StreamFilter())
    ours = hub.subscribe(StreamFilter(trigger_id=mine))
    first = await add_event(db)
    second = await add_event(db, trigger_id=mine)

    async def delivered(subscriber: Subscriber, count: int) -> list[bytes]:
        got: list[bytes] = []
        while len(got) < count:
            await subscriber.wake.wait()
            subscriber.wake.clear()
            got += list(subscriber.pending.values())
            subscriber.take()
        return got

    both = await asyncio.wait_for(delivered(everything, 2), 10)
    assert [m.split(b"\n")[1] for m in both] == [f"id: {first}".encode(), f"id: {second}".encode()]
    [only] = await asyncio.wait_for(delivered(ours, 1), 10)
    assert only.startswith(b"event: event\nid: " + second.encode() + b"\ndata: {")
    stop.set()
    assert everything.ending is None or everything.ending == STOPPING


class _Server(uvicorn.Server):
    """uvicorn as the process runs it: no signal handlers of its own."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def test_streams_end_at_stop_so_graceful_shutdown_does_not_wait(
    resources: Resources,
) -> None:
    stop = asyncio.Event()
    port = free_port()
    config = uvicorn.Config(
        build_app(resources, api=True, stop=stop),
        host="127.0.0.1",
        port=port,
        loop="none",
        lifespan="off",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=30,  # a hang would show as a 30 s wait
    )
    server = _Server(config)
    serving = asyncio.create_task(server.serve())
    try:

        async def started() -> bool:
            return bool(server.started)

        await wait_until(started, 10, 0.02)
        async with tail(f"http://127.0.0.1:{port}") as events:
            began = time.monotonic()
            stop.set()  # what SIGTERM does in `eventtrigger run`
            server.should_exit = True
            last = None
            while (message := await events.next(10)) is not None:
                last = message
            assert last is not None and last.comments == [STOPPING.decode()[1:].strip()]
            await asyncio.wait_for(serving, 10)
        assert time.monotonic() - began < 5
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(serving, 35)


async def test_sigterm_ends_open_streams_and_the_process_exits_promptly(
    migrated: Settings, tmp_path: Path
) -> None:
    proc = EventtriggerProcess(
        environ_for_tests(EVENTTRIGGER_SHUTDOWN_GRACE="30s"), "api", tmp_path / "api.log"
    )
    proc.start()
    try:
        async with tail(proc.base_url) as events:
            began = time.monotonic()
            assert proc.proc is not None
            proc.proc.send_signal(signal.SIGTERM)
            last = None
            while (message := await events.next(10)) is not None:
                last = message
            assert last is not None and STOPPING.decode()[1:].strip() in last.comments
        assert await asyncio.to_thread(proc.proc.wait, 10) == 0
        assert time.monotonic() - began < 5, (tmp_path / "api.log").read_text()
    finally:
        proc.stop()


# ---- a burst, failures, filters read cheaply, revoked keys, limits ----------------------


async def test_a_burst_of_thousands_in_one_turn_reaches_a_draining_stream_in_full(
    resources: Resources, db: Database
) -> None:
    stop = asyncio.Event()
    hub = StreamHub(resources, stop)
    subscriber = hub.subscribe(StreamFilter())
    now = datetime.now(UTC)
    events = [new_event(now) for _ in range(3000)]
    async with db.transaction() as tx:  # one commit: one turn reads them all
        await insert_events(tx, events, now)
    got: set[bytes] = set()
    while len(got) < len(events):
        await asyncio.wait_for(subscriber.wake.wait(), 10)
        subscriber.wake.clear()
        assert subscriber.ending is None, "a fast client was dropped"
        got |= {m.split(b"\n")[1] for m in subscriber.take().split(b"\n\n") if m}
    assert got == {f"id: {e.id}".encode() for e in events}
    assert (
        resources.metrics.registry.get_sample_value("eventtrigger_event_streams_dropped_total") == 0
    )
    stop.set()


async def test_the_poller_outlives_an_unexpected_error_logs_and_counts_it(
    resources: Resources, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = eventstream.changed
    calls = 0

    async def faulty(*args: Any, **kwargs: Any) -> list[tuple[str, datetime]]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("a fault that is no outage")
        return await real(*args, **kwargs)

    monkeypatch.setattr(eventstream, "changed", faulty)
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="WARNING")
    stop = asyncio.Event()
    try:
        hub = StreamHub(resources, stop)
        subscriber = hub.subscribe(StreamFilter())
        event_id = await add_event(db)
        await asyncio.wait_for(subscriber.wake.wait(), 15)
        assert f"id: {event_id}".encode() in subscriber.take()
    finally:
        stop.set()
        logger.remove(sink)
    registry = resources.metrics.registry
    assert registry.get_sample_value("eventtrigger_event_stream_poll_failures_total") == 1
    assert any("live tail turn failed" in line and "RuntimeError" in line for line in lines)


async def test_a_poller_that_ends_with_streams_open_is_logged(
    resources: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(self: StreamHub) -> None:
        raise BaseException("escaped")  # nothing the loop catches

    monkeypatch.setattr(StreamHub, "_poll", broken)
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="ERROR")
    stop = asyncio.Event()
    try:
        hub = StreamHub(resources, stop)
        hub.subscribe(StreamFilter())
        assert hub._poller is not None
        with contextlib.suppress(BaseException):
            await hub._poller
        await wait_until(lambda: _true(bool(lines)), 5, 0.01)
    finally:
        stop.set()
        logger.remove(sink)
    assert "live tail poller ended by an error" in lines[0]


async def test_only_rows_some_stream_wants_are_read_in_full(
    resources: Resources, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    read_in_full: list[str] = []
    real = eventstream.rows

    async def recorded(db: Database, ids: Any) -> list[Any]:
        read_in_full.extend(ids)
        return await real(db, ids)

    monkeypatch.setattr(eventstream, "rows", recorded)
    stop = asyncio.Event()
    hub = StreamHub(resources, stop)
    mine = new_id(datetime.now(UTC))
    ours = hub.subscribe(StreamFilter(trigger_id=mine))
    replays = hub.subscribe(StreamFilter(source="replay"))
    others = [await add_event(db) for _ in range(5)]
    wanted = {await add_event(db, trigger_id=mine), await add_event(db, source="replay")}
    for subscriber in (ours, replays):
        await asyncio.wait_for(subscriber.wake.wait(), 10)
    stop.set()
    assert wanted <= set(read_in_full)
    assert not set(others) & set(read_in_full)


async def stored_key(db: Database, *, expires_at: datetime | None = None) -> str:
    now = datetime.now(UTC)
    key = new_key()
    stored = StoredKey(
        new_id(now), "stream test", frozenset({"events:read"}), key[:12], now, expires_at,
        None, None,
    )  # fmt: skip
    async with db.transaction() as tx:
        await keys.insert(tx, stored, key_hash(key))
    return stored.id


async def test_a_stream_whose_key_is_revoked_or_expires_ends_at_the_next_key_check(
    resources: Resources, db: Database
) -> None:
    revoked = await stored_key(db)
    expiring = await stored_key(db, expires_at=datetime.now(UTC) + timedelta(seconds=2))
    kept = await stored_key(db)
    stop = asyncio.Event()
    hub = StreamHub(resources, stop, key_check=0.2)
    by_revoked = hub.subscribe(StreamFilter(), revoked, managed_key=True)
    by_expiring = hub.subscribe(StreamFilter(), expiring, managed_key=True)
    by_kept = hub.subscribe(StreamFilter(), kept, managed_key=True)
    bootstrap = hub.subscribe(StreamFilter(), "bootstrap-1")  # not in the table: never checked
    fake = FakeClient()
    answering = asyncio.create_task(
        EventStreamResponse(hub, by_revoked)({"type": "http"}, fake.receive, fake.send)
    )
    await fake.wait_for(b"retry: 3000\n\n")
    async with db.transaction() as tx:
        assert await keys.revoke(tx, revoked, datetime.now(UTC))
    await asyncio.wait_for(answering, 10)  # ended by the poller, no reconnect needed
    assert fake.body().endswith(stream.KEY_ENDED)
    assert fake.sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
    await wait_until(lambda: _true(by_expiring.ending == stream.KEY_ENDED), 10, 0.05)
    assert by_kept.ending is None and bootstrap.ending is None
    stop.set()


def test_a_key_opens_at_most_its_share_of_streams(resources: Resources) -> None:
    hub = StreamHub(resources, asyncio.Event())
    hub._poller = hub._watcher = asyncio.Future()  # type: ignore[assignment]  # no loop here
    for _ in range(stream.MAX_STREAMS_PER_KEY):
        hub.subscribe(StreamFilter(), "key-a")
    with pytest.raises(Problem) as refused:
        hub.subscribe(StreamFilter(), "key-a")
    assert refused.value.status == 429 and refused.value.headers == {"Retry-After": "5"}
    hub.subscribe(StreamFilter(), "key-b")  # another key still may
    for _ in range(stream.MAX_STREAMS_PER_KEY + 1):
        hub.subscribe(StreamFilter(), None)  # no key (auth off): the process cap only


async def test_head_is_refused_not_an_endless_stream(client: httpx.AsyncClient) -> None:
    response = await asyncio.wait_for(client.head(STREAM, headers=AUTH), 10)
    assert response.status_code == 405
    assert response.headers["allow"] == "GET"


async def test_an_outcome_stored_after_an_outage_is_stamped_at_its_commit_so_the_tail_sees_it(
    migrated: Settings, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker retries a failed store through an outage; the retry must not carry the
    time of the first try, which the tail's look-back (OVERLAP) has long passed."""
    clock = FrozenClock(datetime.now(UTC))
    metrics = Metrics()
    windows = Windows(migrated.retention_active, migrated.retention_total)
    res = Resources(
        settings=migrated, clock=clock, db=db, health=Health(("worker",), {}),
        metrics=metrics, stats=StatsKeeper(db, windows, metrics),
    )  # fmt: skip
    w = Worker(res, None)  # type: ignore[arg-type]  # publishes nothing here
    event_id = await add_event(db)
    real = worker_module.store_outcomes
    tries = 0

    async def outage(*args: Any) -> Any:
        nonlocal tries
        tries += 1
        if tries == 1:
            clock.advance(OVERLAP * 3)  # the database comes back well after OVERLAP
            raise OSError("connection lost")
        return await real(*args)

    monkeypatch.setattr(worker_module, "store_outcomes", outage)
    tp = TopicPartition("jobs", 0)
    w.offsets.add(tp, 0)
    started = clock.now()
    held = Held(tp, 0, {"event_id": event_id, "attempt": 1, "trigger_id": "t", "scheduled_at": started.isoformat()}, "127.0.0.1:9")  # fmt: skip
    attempt = Attempt(event_id, 1, "success", 200, None, started, None, started_at=started)
    try:
        await asyncio.wait_for(w._store_outcomes((held, attempt, Result(200, None, None))), 10)
    finally:
        await w.consumer.stop()  # never started; stopping it keeps aiokafka from warning
    assert tries == 2
    [(_, stamped)] = await eventstream.changed(db, clock.now() - OVERLAP, "", 10)
    assert stamped == clock.now() > started + OVERLAP
