"""`GET /api/v1/events/stream`: a live tail of the event log as server-sent events.

Each new event, and each change of an event afterwards (an attempt's outcome: pending ->
retrying -> success or failure), is sent as

    event: event
    id: <event id>
    data: <the event, as an item of GET /api/v1/events>

to every open stream whose filters (`trigger_id`, `status`, `source`) it matches, with a
`: keep-alive` comment every KEEPALIVE_SECONDS. The client must ask for it (`Accept:
text/event-stream`, as EventSource does); other callers get a 406, not an endless
answer, and HEAD a 405. A stream starts with what changes after it opened (changes
stamped earlier are not sent: history is GET /api/v1/events).

No polling storm: one poller per API process (`StreamHub`), started with the first open
stream and ended after the last one closed, reads what changed about once a second and
fans it out. Reading "what changed" is an index-only range scan of `ix_events_updated`
(migration 0015): `updated_at` is written with an event's insert and with each outcome,
and only then. A change is stamped before its transaction commits, so a row may appear
with a time the poller has already passed; each read therefore goes back OVERLAP before
the newest change it saw, and a memory of the (id, updated_at) pairs seen since then
keeps the overlap from sending anything twice (`ChangeLog`, pure). Of the rows not seen,
only the columns the filters look at are read (by primary key); only rows some stream
wants are read in full. Processes' clocks must agree within OVERLAP for no change to be
missed. A read that hits its limit (a burst of more changes a second than a person can
follow) continues where it stopped, without overlap; a poller more than MAX_BEHIND
behind on new changes skips ahead and says so in a comment to every stream. The poller
survives any failure of a turn (logged, counted, retried after a pause).

Memory stays bounded: a stream keeps only the latest state of each event it has not
written yet, at most QUEUE_BYTES of them; one turn with more than that is replaced by a
`: skipped N changes` comment. A client that has not taken what was queued for it by the
next turn reads slower than changes come: it is sent a final comment and its stream
ends (it may reconnect). At most MAX_STREAMS streams are open per process and
MAX_STREAMS_PER_KEY per API key (503 / 429 beyond). The key check happens when a stream
opens, so the poller checks the managed keys of open streams again every
KEY_CHECK_SECONDS: a stream whose key was revoked or has expired meanwhile ends with a
comment (a reconnect is refused 401). When the process stops, every stream ends at once
with a comment, so the HTTP server's graceful shutdown does not wait on them.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import orjson
from loguru import logger
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from eventtrigger.clock import wait_stop
from eventtrigger.domain.errors import FieldError
from eventtrigger.domain.retention import Windows
from eventtrigger.ids import looks_like_id
from eventtrigger.resources import Resources
from eventtrigger.roles.api.events import SOURCES, STATUSES, event_json
from eventtrigger.roles.api.http import query_choice
from eventtrigger.roles.api.principal import ANONYMOUS, Principal
from eventtrigger.roles.api.problems import Problem
from eventtrigger.store import eventstream
from eventtrigger.store.db import TRANSIENT_ERRORS, Row

KEEPALIVE_SECONDS = 15.0
POLL_SECONDS = 1.0
FAILED_POLL_MAX_SECONDS = 30.0  # the longest pause after failed turns in a row
FAILURE_LOG_SECONDS = 60.0  # at most one traceback of a failing poller this often
OVERLAP = timedelta(seconds=3)  # how far each read goes back for late commits
CHANGES_LIMIT = 5000  # (id, updated_at) pairs per read
MAX_BEHIND = timedelta(seconds=30)  # past this, a saturated poller skips ahead
QUEUE_BYTES = 4 * 1024 * 1024  # waiting per stream; one turn's worth past it is skipped
MAX_STREAMS = 100  # open streams per process
MAX_STREAMS_PER_KEY = 10  # ... and per API key
KEY_CHECK_SECONDS = 30.0  # how often the keys of open streams are checked again
SEND_SECONDS = 30.0  # a write the client does not take within this ends its stream
RETRY_MS = 3000  # what EventSource clients wait before reconnecting
MEDIA_TYPE = "text/event-stream"

KEEPALIVE = b": keep-alive\n\n"
DROPPED = b": dropped: this client read slower than events came; reconnect to go on\n\n"
STOPPING = b": the server is stopping; reconnect to go on\n\n"
SKIPPED = b": skipped: more changes than the stream can carry; some were left out\n\n"
KEY_ENDED = b": the key of this stream was revoked or has expired\n\n"


def message(row: Row, view: str) -> bytes:
    """One server-sent event for an event row (orjson writes no newline inside)."""
    data = orjson.dumps(event_json(row, view))
    event_id = str(row["id"]).encode()
    return b"event: event\nid: " + event_id + b"\ndata: " + data + b"\n\n"


def skipped_comment(count: int) -> bytes:
    return f": skipped {count} changes: more than the stream can carry at once\n\n".encode()


@dataclass(frozen=True)
class StreamFilter:
    trigger_id: str | None = None
    status: str | None = None
    source: str | None = None

    def matches(self, row: Row) -> bool:
        return (
            (self.trigger_id is None or row["trigger_id"] == self.trigger_id)
            and (self.status is None or row["status"] == self.status)
            and (self.source is None or row["source"] == self.source)
        )


@dataclass
class ChangeLog:
    """Which changes a poller has seen, and where its next read starts (pure).

    `frontier` is the newest (updated_at, id) ever read; `seen` the updated_at of each row
    read since OVERLAP before it, so re-reading the overlap sends nothing twice. `cursor`
    is where the last read stopped when it hit its limit: the next read goes on from
    there. `seen` is never pruned by the cursor, only by the frontier: a read that stopped
    early says nothing about the rows of the overlap it did not reach.
    """

    frontier: tuple[datetime, str]
    cursor: tuple[datetime, str] | None = None
    seen: dict[str, datetime] = field(default_factory=dict)

    @classmethod
    def starting(cls, now: datetime) -> ChangeLog:
        return cls(frontier=(now, ""))

    @property
    def saturated(self) -> bool:
        """The last read hit its limit: the next one goes on from its end."""
        return self.cursor is not None

    def next_read(self) -> tuple[datetime, str]:
        """(since, after_id) for the next read of changes."""
        if self.cursor is not None:
            return self.cursor
        return self.frontier[0] - OVERLAP, ""

    def take(
        self, changes: Sequence[tuple[str, datetime]], now: datetime, limit: int
    ) -> tuple[list[str], bool]:
        """The ids among `changes` (one read, in order) not seen as they are now, and
        whether the poller skipped ahead (it fell more than MAX_BEHIND behind)."""
        fresh = []
        for event_id, at in changes:
            if self.seen.get(event_id) != at:
                fresh.append(event_id)
                self.seen[event_id] = at
        previous = self.frontier
        last = (changes[-1][1], changes[-1][0]) if changes else None
        self.cursor = last if len(changes) >= limit else None
        if last is not None:
            self.frontier = max(self.frontier, last)
        # Behind only on changes past what was read before: a full read of the overlap
        # (a burst just behind the frontier) is no news, however old the frontier is.
        skipped = self.cursor is not None and self.cursor > previous
        skipped = skipped and self.frontier[0] < now - MAX_BEHIND
        if skipped:
            self.frontier, self.cursor = (now, ""), None
        floor = self.frontier[0] - OVERLAP
        self.seen = {k: t for k, t in self.seen.items() if t >= floor}
        return fresh, skipped

    def saw(self, event_id: str, at: datetime) -> None:
        """A row read by id was changed again meanwhile: its newer time is seen."""
        if at > self.seen.get(event_id, at - OVERLAP):
            self.seen[event_id] = at


class Subscriber:
    """One open stream: its filter and the messages waiting to be written, the latest
    state of each event only, bounded in bytes.

    The hub offers a turn's messages between `begin_turn` and `end_turn`, with no pause
    between, so how many a turn brings says nothing about the client: slowness is what
    was queued at the end of one turn still not taken by the writer at the next.
    """

    def __init__(
        self,
        where: StreamFilter,
        since: datetime,
        key_id: str | None = None,
        on_drop: Callable[[], None] | None = None,
        *,
        managed_key: bool = False,
    ) -> None:
        self.where = where
        self.since = since  # changes stamped before the stream opened are not its own
        self.key_id = key_id  # the key it was opened with (None: auth is off)
        self.managed_key = managed_key  # ... a managed one, which may be revoked
        self.on_drop = on_drop
        self.pending: dict[str, bytes] = {}  # by event id, in order of change
        self.size = 0
        self.ending: bytes | None = None  # the final comment, once the stream must end
        self.wake = asyncio.Event()
        self.held = False  # pending at the end of the last turn, not taken since
        self.skipped = 0  # changes left out this turn (it overflowed QUEUE_BYTES)
        self._comments = 0

    def begin_turn(self) -> None:
        if self.ending is None and self.held and self.pending:
            self.end(DROPPED)
            if self.on_drop is not None:
                self.on_drop()

    def end_turn(self) -> None:
        if self.ending is None and self.skipped:
            self.comment(skipped_comment(self.skipped))
            self.skipped = 0
        self.held = bool(self.pending)

    def offer(self, data: bytes, event_id: str | None = None) -> None:
        """Queue `data`: an event's message (replacing any of the same event not written
        yet) or, without an id, a comment."""
        if self.ending is not None:
            return
        if event_id is None:
            self.comment(data)
            return
        if self.skipped:  # this turn overflowed already: the rest is only counted
            self.skipped += 1
            return
        older = self.pending.pop(event_id, None)
        if older is not None:
            self.size -= len(older)
        if self.size + len(data) > QUEUE_BYTES:
            # One turn brought more than a stream holds: left out, and said so once.
            self.skipped = 1 + sum(1 for k in self.pending if not k.startswith(":"))
            self.pending = {k: v for k, v in self.pending.items() if k.startswith(":")}
            self.size = sum(len(v) for v in self.pending.values())
            return
        self.pending[event_id] = data
        self.size += len(data)
        self.wake.set()

    def comment(self, data: bytes) -> None:
        if self.ending is not None:
            return
        self._comments += 1
        self.pending[f":{self._comments}"] = data  # ids never start with ':'
        self.size += len(data)
        self.wake.set()

    def end(self, comment: bytes) -> None:
        if self.ending is None:
            self.ending = comment
            self.pending.clear()  # nothing more goes out: free it now
            self.size = 0
            self.wake.set()

    def take(self) -> bytes:
        data = b"".join(self.pending.values())
        self.pending.clear()
        self.size = 0
        self.held = False
        return data


class StreamHub:
    """The process's one poller and its open streams."""

    def __init__(
        self, res: Resources, stop: asyncio.Event, *, key_check: float = KEY_CHECK_SECONDS
    ) -> None:
        self.res = res
        self.stop = stop
        self.key_check = key_check
        self.windows = Windows(res.settings.retention_active, res.settings.retention_total)
        self.subscribers: set[Subscriber] = set()
        self._poller: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._last_failure_log = -FAILURE_LOG_SECONDS
        self.log = logger.bind(role="api")

    def subscribe(
        self, where: StreamFilter, key_id: str | None = None, *, managed_key: bool = False
    ) -> Subscriber:
        """A new stream for `where`, opened by the key `key_id` (None: no key, auth is
        off, and only the per-process cap applies); a managed key is checked again while
        the stream is open."""
        if self.stop.is_set():
            raise Problem(503, "The server is stopping; try again.", headers={"Retry-After": "1"})
        if len(self.subscribers) >= MAX_STREAMS:
            raise Problem(
                503,
                f"This process serves {MAX_STREAMS} live streams already; try again later.",
                headers={"Retry-After": "5"},
            )
        if (
            key_id is not None
            and sum(1 for s in self.subscribers if s.key_id == key_id) >= MAX_STREAMS_PER_KEY
        ):
            raise Problem(
                429,
                f"This key has {MAX_STREAMS_PER_KEY} live streams open here already; close "
                "one or try again later.",
                headers={"Retry-After": "5"},
            )
        subscriber = Subscriber(
            where,
            self.res.clock.now(),
            key_id,
            self.res.metrics.event_streams_dropped.inc,
            managed_key=managed_key and key_id is not None,
        )
        self.subscribers.add(subscriber)
        self.res.metrics.event_streams_open.set(len(self.subscribers))
        # In contexts of their own, so their log lines do not carry this request's id.
        if self._watcher is None:
            self._watcher = asyncio.create_task(
                self._end_all_at_stop(), name="event-stream-stop", context=contextvars.Context()
            )
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(
                self._poll(), name="event-stream", context=contextvars.Context()
            )
            self._poller.add_done_callback(self._poller_ended)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        # The poller sees that nobody listens on its next turn and ends by itself (never
        # cancelled mid-query, which would leave its connection in doubt).
        self.subscribers.discard(subscriber)
        self.res.metrics.event_streams_open.set(len(self.subscribers))

    def end_all(self, comment: bytes) -> None:
        for subscriber in self.subscribers:
            subscriber.end(comment)

    async def _end_all_at_stop(self) -> None:
        await self.stop.wait()
        self.end_all(STOPPING)

    def _poller_ended(self, task: asyncio.Task[None]) -> None:
        """The poller ends only when nobody listens or the process stops; anything else
        would leave open streams with keep-alives only, so it is said loudly."""
        if task is not self._poller:
            return  # ended as the last stream closed; a new one already took over
        if task.cancelled():
            if not self.stop.is_set():
                self.log.bind(action="stream_poller_ended").error("live tail poller cancelled")
            return
        exc = task.exception()
        if exc is not None:
            self.log.bind(action="stream_poller_ended").opt(exception=exc).error(
                "live tail poller ended by an error"
            )
        elif self.subscribers and not self.stop.is_set():
            self.log.bind(action="stream_poller_ended").error(
                "live tail poller ended with streams open"
            )

    async def _poll(self) -> None:
        changes = ChangeLog.starting(self.res.clock.now())
        failures = 0
        keys_checked = time.monotonic()
        while self.subscribers and not self.stop.is_set():
            pause = POLL_SECONDS
            try:
                await self._turn(changes)
                if time.monotonic() - keys_checked >= self.key_check:
                    await self._check_keys()
                    keys_checked = time.monotonic()
                failures = 0
            except (*TRANSIENT_ERRORS, TimeoutError) as exc:
                # The streams stay open; the next turn reads from where this one would have.
                failures += 1
                self.res.metrics.event_stream_poll_failures.inc()
                self.log.bind(action="stream_poll_failed").warning("live tail read failed: {}", exc)
                pause = min(FAILED_POLL_MAX_SECONDS, POLL_SECONDS * 2**failures)
            except Exception:
                # A fault, not an outage: still no reason to leave the streams unfed.
                failures += 1
                self.res.metrics.event_stream_poll_failures.inc()
                if time.monotonic() - self._last_failure_log >= FAILURE_LOG_SECONDS:
                    self._last_failure_log = time.monotonic()
                    self.log.bind(action="stream_poll_failed").exception("live tail turn failed")
                pause = min(FAILED_POLL_MAX_SECONDS, POLL_SECONDS * 2**failures)
            if await wait_stop(self.stop, pause):
                break

    async def _turn(self, changes: ChangeLog) -> None:
        since, after_id = changes.next_read()
        found = await eventstream.changed(self.res.db, since, after_id, CHANGES_LIMIT)
        now = self.res.clock.now()
        fresh, skipped = changes.take(found, now, CHANGES_LIMIT)
        if skipped:
            self.log.bind(action="stream_skipped").warning("live tail skipped ahead")
        rows: list[Row] = []
        if fresh and self.subscribers:
            wanted_ids = []
            for head in await eventstream.heads(self.res.db, fresh):
                changes.saw(head["id"], head["updated_at"])
                if self._wanted(head):
                    wanted_ids.append(head["id"])
            if wanted_ids:
                rows = await eventstream.rows(self.res.db, wanted_ids)
        # From here on without a pause: every stream gets this turn's messages at once.
        subscribers = list(self.subscribers)
        for subscriber in subscribers:
            subscriber.begin_turn()
        if skipped:
            for subscriber in subscribers:
                subscriber.offer(SKIPPED)
        for row in rows:
            changes.saw(row["id"], row["updated_at"])
            view = self.windows.view_of(row["fired_at"], now)
            if view is None:
                continue
            data: bytes | None = None  # encoded once, whatever the number of streams
            for subscriber in subscribers:
                if row["updated_at"] >= subscriber.since and subscriber.where.matches(row):
                    data = data if data is not None else message(row, view)
                    subscriber.offer(data, row["id"])
        for subscriber in subscribers:
            subscriber.end_turn()

    async def _check_keys(self) -> None:
        """End the streams whose managed key was revoked or has expired since they opened."""
        ids = {s.key_id for s in self.subscribers if s.managed_key and s.key_id is not None}
        if not ids:
            return
        held = await eventstream.keys_in_force(self.res.db, ids, self.res.clock.now())
        for subscriber in list(self.subscribers):
            if subscriber.managed_key and subscriber.key_id not in held:
                subscriber.end(KEY_ENDED)

    def _wanted(self, head: Row) -> bool:
        """Some open stream's filter takes the row as `head` shows it."""
        return any(
            head["updated_at"] >= s.since and s.where.matches(head) for s in self.subscribers
        )


class EventStreamResponse(Response):
    """A `text/event-stream` answer fed by one subscriber until the client leaves, the
    stream is dropped or its key no longer holds, or the process stops."""

    media_type = MEDIA_TYPE

    def __init__(self, hub: StreamHub, subscriber: Subscriber) -> None:
        self.hub = hub
        self.subscriber = subscriber
        self.status_code = 200
        self.background = None
        # No body attribute: no Content-Length. Proxies must pass each message at once.
        self.init_headers({"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        left = asyncio.create_task(_disconnected(receive))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            if await self._write(send, f"retry: {RETRY_MS}\n\n".encode()):
                await self._pump(send, left)
        finally:
            left.cancel()
            self.hub.unsubscribe(self.subscriber)

    async def _pump(self, send: Send, left: asyncio.Task[None]) -> None:
        subscriber = self.subscriber
        while True:
            if not subscriber.pending and subscriber.ending is None:
                subscriber.wake.clear()
                woken = asyncio.ensure_future(subscriber.wake.wait())
                done, _ = await asyncio.wait(
                    {woken, left},
                    timeout=KEEPALIVE_SECONDS,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                woken.cancel()
                if left in done:
                    return  # the client went away: nobody to write to
                if not done:
                    if not await self._write(send, KEEPALIVE):
                        return
                    continue
            if subscriber.ending is not None:
                if await self._write(send, subscriber.ending):
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            if not await self._write(send, subscriber.take()):
                return

    async def _write(self, send: Send, data: bytes) -> bool:
        """Write `data`; False if the client did not take it within SEND_SECONDS."""
        try:
            async with asyncio.timeout(SEND_SECONDS):
                await send({"type": "http.response.body", "body": data, "more_body": True})
        except TimeoutError:
            return False
        return True


async def _disconnected(receive: Receive) -> None:
    """Returns when the client has gone away."""
    while True:
        received: Message = await receive()
        if received["type"] == "http.disconnect":
            return


class StreamRoute:
    """`GET /api/v1/events/stream` (scope events:read)."""

    def __init__(self, res: Resources, stop: asyncio.Event) -> None:
        self.hub = StreamHub(res, stop)

    async def get(self, request: Request) -> Response:
        if request.method == "HEAD":
            # The router answers HEAD with GET's handler; a never-ending answer without
            # a body would hold a connection and a stream slot for nothing.
            raise Problem(
                405, "This route answers GET only (a live stream).", headers={"Allow": "GET"}
            )
        trigger_id = request.query_params.get("trigger_id") or None
        if trigger_id is not None and not looks_like_id(trigger_id):
            raise Problem(
                400, "Invalid query parameter.", [FieldError("trigger_id", "must be a trigger id")]
            )
        where = StreamFilter(
            trigger_id=trigger_id,
            status=query_choice(request, "status", STATUSES),
            source=query_choice(request, "source", SOURCES),
        )
        if MEDIA_TYPE not in request.headers.get("accept", "").lower():
            # An answer that never ends only for a client that asked for one (EventSource
            # always does): a script or a probe that did not gets a problem, not a hang.
            raise Problem(
                406, f"This route answers a never-ending {MEDIA_TYPE}: send Accept: {MEDIA_TYPE}."
            )
        principal: Principal = getattr(request.state, "principal", ANONYMOUS)
        key_id = None if principal is ANONYMOUS else principal.key_id
        subscriber = self.hub.subscribe(where, key_id, managed_key=not principal.bootstrap)
        return EventStreamResponse(self.hub, subscriber)
