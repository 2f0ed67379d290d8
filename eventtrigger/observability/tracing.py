"""OpenTelemetry traces, when OTEL_EXPORTER_OTLP_ENDPOINT is set: one trace per event.

Off (no endpoint), nothing here runs: `Tracing.start` returns None, the SDK is not even
imported by the rest of the code (it names `Tracing` for type checking only), there is no
tracer provider and no exporter thread, and each hook costs one `is not None` check.

On, every event is one trace, whichever processes its job passes through:

- `event <trigger type>` (the root, INTERNAL) where the event is created: an API call
  (webhook, trigger test, test run, replay) or the scheduler's firing. It starts at the
  event's `fired_at` and ends when its row is durable.
- `send <topic>` (PRODUCER) for each publish of its job to Kafka: the first one, and each
  re-publish (a retry that came due, a job a crash left unpublished, a parked job, its
  dead-letter copy).
- `delivery attempt <n>` (CLIENT) for each HTTP request a worker made, with its real start
  and end, the method, the URL as the attempt history shows it (`shown_url`: query values,
  fragment and password masked), the status code and the outcome (success, retrying,
  failure). A failed attempt's status says only what kind of failure it was (`HTTP 503`,
  `timeout`, an exception's class): never the receiver's text, which is its own data.

Tracing never breaks the work it observes: each hook the roles call (`headers`, `event`,
`published`, `attempt`, `shutdown`) catches whatever the SDK, a span processor or an
exporter raises and logs a warning, at most one a minute per hook (with how many failed
since), so a delivery's outcome is always queued and a firing's answer always given.

Propagation carries no context in the job: the ids are derived from the event id. The
trace id is the event id's 128 bits (an event id is a ULID: 48 bits of milliseconds, 80
random bits, so the trace id's low 56 bits are random as samplers need); an id that is not
a ULID hashes to one instead. The root span's id is a hash of the event id. So the
publisher, a worker, the re-publisher after a crash, a retry parked as a row for hours:
each attaches its spans to the event's root with nothing but the event id, and no
message, row or queue had to carry anything. The sampling decision is derived the same
way: the configured sampler's root decision for that trace id (deterministic for the
standard samplers: always on or off, trace id ratio), so every process keeps or drops the
same traces.

Kafka: each published job also gets a W3C `traceparent` header naming the event's root
span. The worker does not need it (it derives the same context); it is there for other
readers of the topic, whose tools join the trace from it. The message body is unchanged.

Links: an API call that arrived with a `traceparent` header is linked from the root span
(a link, not the parent: the caller's trace is the caller's, and one call may create
many events, as a bulk replay does), and a replay's root links to its original event's.

The SDK reads the standard variables itself: OTEL_SERVICE_NAME and
OTEL_RESOURCE_ATTRIBUTES (the service name defaults to `eventtrigger`), OTEL_TRACES_SAMPLER,
OTEL_BSP_* for the batch processor, OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT and _COMPRESSION.
Spans go to `<endpoint>/v1/traces` (OTLP over HTTP, protobuf), the endpoint as the
settings read it (so a `.env` file works too; OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is not
consulted). The provider is this process's own, not installed globally. At shutdown the
spans still queued are sent, for FLUSH_SECONDS at most.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar
from urllib.parse import urlsplit

from loguru import logger
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import (
    SERVICE_NAME,
    SERVICE_VERSION,
    OTELResourceDetector,
    Resource,
)
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.trace import (
    INVALID_SPAN_ID,
    INVALID_TRACE_ID,
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    get_current_span,
    set_span_in_context,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

from eventtrigger import __version__
from eventtrigger.delivery import shown_url
from eventtrigger.domain.jobs import NewEvent
from eventtrigger.domain.times import iso
from eventtrigger.ids import ID_PATTERN

if TYPE_CHECKING:
    from eventtrigger.delivery import Result
    from eventtrigger.store.deliveries import Attempt

SERVICE = "eventtrigger"
ROLES_ATTRIBUTE = "eventtrigger.roles"
TRACES_PATH = "/v1/traces"
FLUSH_SECONDS = 5.0  # at shutdown, for the spans still queued
WARN_EVERY_SECONDS = 60.0  # at most one warning per hook that failed, in this long
_CROCKFORD = {c: i for i, c in enumerate("0123456789ABCDEFGHJKMNPQRSTVWXYZ")}
_ROOT_PERSON = b"et-root-span"  # domain separation for the root span id's hash
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PROPAGATOR = TraceContextTextMapPropagator()


# -- the pure core: ids, contexts, attributes ----------------------------------------------


def trace_id_of(event_id: str) -> int:
    """The trace id of an event: its ULID's 128 bits, or the first 128 bits of the SHA-256
    of an id that is not a ULID. Never the invalid id 0."""
    if ID_PATTERN.fullmatch(event_id) and event_id[0] in "01234567":
        value = 0
        for char in event_id:
            value = value << 5 | _CROCKFORD[char]
        if value != INVALID_TRACE_ID:
            return value
    value = int.from_bytes(hashlib.sha256(event_id.encode()).digest()[:16], "big")
    return value or 1


def root_span_id_of(event_id: str) -> int:
    """The span id of an event's root span: a 64-bit hash of the event id, never 0."""
    digest = hashlib.blake2b(event_id.encode(), digest_size=8, person=_ROOT_PERSON).digest()
    return int.from_bytes(digest, "big") or 1


def traceparent(event_id: str, sampled: bool) -> str:
    """The W3C `traceparent` value naming the event's root span."""
    flags = "01" if sampled else "00"
    return f"00-{trace_id_of(event_id):032x}-{root_span_id_of(event_id):016x}-{flags}"


def remote_context(header: str | None) -> SpanContext | None:
    """The span context a W3C `traceparent` value names; None when absent or malformed."""
    if not header:
        return None
    context = _PROPAGATOR.extract({"traceparent": header})
    found = get_current_span(context).get_span_context()
    return found if found.is_valid else None


def traces_url(endpoint: str) -> str:
    """Where OTLP/HTTP sends spans for a base endpoint (the spec appends /v1/traces)."""
    return endpoint.rstrip("/") + TRACES_PATH


def nanoseconds(at: datetime) -> int:
    """`at` as the nanoseconds since the epoch that spans carry (exact, no float)."""
    return (at - _EPOCH) // timedelta(microseconds=1) * 1000


def status_description(result: Result) -> str:
    """A failed attempt's span status: the kind of failure (`HTTP 503`, `timeout`,
    `egress_refused`, an exception's class), never `result.error`, which holds the
    receiver's body or an exception's text (which may quote the URL)."""
    if result.status_code is not None:
        return f"HTTP {result.status_code}"
    return error_type(result)


def error_type(result: Result) -> str:
    """`error.type` for a failed attempt: the status code, or a short name for the error."""
    if result.status_code is not None:
        return str(result.status_code)
    error = result.error or ""
    if error.startswith("timed out"):
        return "timeout"
    if error.startswith("refused"):
        return "egress_refused"
    head = error.split(":", 1)[0]
    return head if head.isidentifier() else "_OTHER"


def event_attributes(
    event_id: str, trigger_id: str | None, trigger_type: str | None
) -> dict[str, AttributeValue]:
    """The attributes every span of an event carries: `webhook.id` is the `webhook-id`
    header's value (the event id)."""
    attributes: dict[str, AttributeValue] = {
        "webhook.id": event_id,
        "eventtrigger.event_id": event_id,
    }
    if trigger_id is not None:
        attributes["eventtrigger.trigger_id"] = trigger_id
    if trigger_type is not None:
        attributes["eventtrigger.trigger_type"] = trigger_type
    return attributes


def service_resource(roles: Sequence[str]) -> Resource:
    """The process's resource: service `eventtrigger` unless OTEL_SERVICE_NAME or
    OTEL_RESOURCE_ATTRIBUTES name another, and the roles it runs."""
    given = OTELResourceDetector().detect().attributes  # the OTEL_* variables
    return Resource.create(
        {
            SERVICE_NAME: SERVICE,
            SERVICE_VERSION: __version__,
            **given,
            ROLES_ATTRIBUTE: ",".join(roles),
        }
    )


# -- the I/O shell: the SDK -----------------------------------------------------------------

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _never_raises(
    hook: Callable[Concatenate[Tracing, _P], _R],
) -> Callable[Concatenate[Tracing, _P], _R | None]:
    """Make a hook of `Tracing` return None instead of raising: the hooks sit in the middle
    of a delivery or a firing, outside their error handling, and a trace is never worth an
    event stuck or a firing answered 500 after it was stored."""

    @functools.wraps(hook)
    def guarded(self: Tracing, /, *args: _P.args, **kwargs: _P.kwargs) -> _R | None:
        try:
            return hook(self, *args, **kwargs)
        except Exception as exc:  # whatever the SDK, a processor or an exporter raised
            self._failed(hook.__name__, exc)
            return None

    return guarded


class EventIds(IdGenerator):
    """Random ids, except while `root` is open: the one span started then (an event's
    root) gets the event's derived ids."""

    def __init__(self) -> None:
        self._random = RandomIdGenerator()
        self._root: tuple[int, int] | None = None

    @contextlib.contextmanager
    def root(self, trace_id: int, span_id: int) -> Iterator[None]:
        # Safe without a lock: spans are started on the event loop's thread, and starting
        # one does not yield.
        self._root = (trace_id, span_id)
        try:
            yield
        finally:
            self._root = None

    def generate_trace_id(self) -> int:
        return self._root[0] if self._root is not None else self._random.generate_trace_id()

    def generate_span_id(self) -> int:
        if self._root is not None:
            return self._root[1]
        span_id = self._random.generate_span_id()
        return span_id if span_id != INVALID_SPAN_ID else 1

    def is_trace_id_random(self) -> bool:
        return True  # a ULID's low 80 bits are random; a hash's look it


class Tracing:
    """This process's tracer, and the spans of events, publishes and delivery attempts."""

    def __init__(
        self,
        provider: TracerProvider,
        ids: EventIds,
        clock: Callable[[], float] = time.monotonic,  # for the warnings' pace
    ) -> None:
        self._provider = provider
        self._clock = clock
        self._ids = ids
        self._tracer = provider.get_tracer("eventtrigger", __version__)
        self.failures: dict[str, int] = {}  # hook -> times it raised (and was contained)
        self._warned: dict[str, tuple[float, int]] = {}  # hook -> (when, failures then)
        self._lock = threading.Lock()  # `shutdown` runs on a thread of its own

    def _failed(self, hook: str, exc: Exception) -> None:
        """Count a hook's failure; warn at most once per WARN_EVERY_SECONDS per hook."""
        now = self._clock()
        with self._lock:
            count = self.failures[hook] = self.failures.get(hook, 0) + 1
            warned = self._warned.get(hook)
            if warned is not None and now - warned[0] < WARN_EVERY_SECONDS:
                return
            counted = 0 if warned is None else warned[1]
            self._warned[hook] = (now, count)
        logger.bind(action="tracing_failed", hook=hook, failures=count - counted).warning(
            "tracing hook {} failed ({} time(s) since the last warning), spans are lost: {}",
            hook,
            count - counted,
            f"{type(exc).__name__}: {exc}"[:200],
        )

    @classmethod
    def start(
        cls, endpoint: str | None, roles: Sequence[str], exporter: SpanExporter | None = None
    ) -> Tracing | None:
        """The process's tracing, exporting to `endpoint` (or to `exporter`); None when
        there is no endpoint: tracing is off and nothing is built."""
        if not endpoint:
            return None
        ids = EventIds()
        provider = TracerProvider(
            resource=service_resource(roles), id_generator=ids, shutdown_on_exit=False
        )
        provider.add_span_processor(
            BatchSpanProcessor(exporter or OTLPSpanExporter(endpoint=traces_url(endpoint)))
        )
        logger.bind(action="tracing_started", endpoint=traces_url(endpoint)).info(
            "exporting traces to {}", traces_url(endpoint)
        )
        return cls(provider, ids)

    @property
    def resource(self) -> Resource:
        return self._provider.resource

    def shutdown(self, seconds: float = FLUSH_SECONDS) -> bool:
        """Send the spans still queued, then stop the exporter; True if done in time.

        Blocks for `seconds` at most: a collector that does not answer is left to a daemon
        thread, so the process's exit never waits for the exporter's own retries and
        timeouts (which the SDK's flush does not bound)."""
        try:
            closing = threading.Thread(target=self._close, name="otel-shutdown", daemon=True)
            closing.start()
            closing.join(seconds)
            return not closing.is_alive()
        except Exception as exc:  # e.g. no thread to be had: the exit goes on without spans
            self._failed("shutdown", exc)
            return False

    def _close(self) -> None:
        try:
            self._provider.force_flush()
            self._provider.shutdown()
        except Exception as exc:  # on its own thread: nobody else would see it
            self._failed("shutdown", exc)

    def _sampled(self, trace_id: int, name: str) -> bool:
        """The root's sampling decision for a trace: the same in every process."""
        result = self._provider.sampler.should_sample(Context(), trace_id, name)
        return result.decision is Decision.RECORD_AND_SAMPLE

    def _root_context(self, event_id: str, trigger_type: str) -> SpanContext:
        trace_id = trace_id_of(event_id)
        sampled = self._sampled(trace_id, f"event {trigger_type}")
        return SpanContext(
            trace_id,
            root_span_id_of(event_id),
            is_remote=True,
            trace_flags=TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT),
        )

    def _under_root(self, event_id: str, trigger_type: str) -> Context:
        root = NonRecordingSpan(self._root_context(event_id, trigger_type))
        return set_span_in_context(root, Context())

    @_never_raises
    def headers(self, message: dict[str, Any]) -> list[tuple[str, bytes]] | None:
        """The Kafka headers of a job message: its event's `traceparent`."""
        event_id = message.get("event_id")
        if not isinstance(event_id, str) or message.get("rejected"):
            return None
        trace_id = trace_id_of(event_id)
        sampled = self._sampled(trace_id, f"event {message.get('trigger_type')}")
        return [("traceparent", traceparent(event_id, sampled).encode())]

    @_never_raises
    def event(
        self,
        event: NewEvent,
        end: datetime,
        *,
        caller: str | None = None,
        error: str | None = None,
    ) -> None:
        """The root span of a new event: from its `fired_at` to `end` (its row durable).
        `caller`: the API call's `traceparent` header, linked; `error`: an event recorded
        as failed at once (its firing failed)."""
        attributes = event_attributes(event.id, event.trigger_id, event.trigger_type)
        attributes["eventtrigger.source"] = event.source
        attributes["eventtrigger.test_run"] = event.is_test_run
        attributes["eventtrigger.scheduled_at"] = iso(event.scheduled_at)
        links = []
        if (called := remote_context(caller)) is not None:
            links.append(Link(called, {"eventtrigger.link": "caller"}))
        if event.replay_of is not None:
            attributes["eventtrigger.replay_of"] = event.replay_of
            original = self._root_context(event.replay_of, event.trigger_type)
            links.append(Link(original, {"eventtrigger.link": "replay_of"}))
        with self._ids.root(trace_id_of(event.id), root_span_id_of(event.id)):
            span = self._tracer.start_span(
                f"event {event.trigger_type}",
                context=Context(),
                kind=SpanKind.INTERNAL,
                attributes=attributes,
                links=links,
                start_time=nanoseconds(event.fired_at),
            )
        if error is not None:
            span.set_status(Status(StatusCode.ERROR, error))
        span.end(end_time=max(nanoseconds(end), nanoseconds(event.fired_at)))

    @_never_raises
    def published(
        self, messages: Sequence[dict[str, Any]], topic: str, start: int, end: int, failed: int
    ) -> None:
        """A `send <topic>` span per job of a publish (times in ns); `failed`: how many of
        the batch Kafka did not take (which, the producer does not say)."""
        for message in messages:
            event_id = message.get("event_id")
            if not isinstance(event_id, str) or message.get("rejected"):
                continue
            trigger_type = str(message.get("trigger_type"))
            attributes = event_attributes(event_id, message.get("trigger_id"), trigger_type)
            attributes.update(
                {
                    "messaging.system": "kafka",
                    "messaging.operation.type": "send",
                    "messaging.operation.name": "send",
                    "messaging.destination.name": topic,
                    "messaging.batch.message_count": len(messages),
                }
            )
            if isinstance(message.get("attempt"), int):
                attributes["eventtrigger.attempt"] = message["attempt"]
            span = self._tracer.start_span(
                f"send {topic}",
                context=self._under_root(event_id, trigger_type),
                kind=SpanKind.PRODUCER,
                attributes=attributes,
                start_time=start,
            )
            if failed:
                span.set_status(
                    Status(
                        StatusCode.ERROR,
                        f"{failed} of {len(messages)} job(s) of this batch were not published; "
                        "they are re-published when their row's deadline passes",
                    )
                )
            span.end(end_time=end)

    @_never_raises
    def attempt(
        self,
        job: dict[str, Any],
        result: Result,
        outcome: Attempt,
        started_at: datetime,
        seconds: float,
    ) -> None:
        """The `delivery attempt <n>` span of an attempt that started at `started_at` and
        took `seconds`."""
        event_id = job["event_id"]
        number = int(job["attempt"])
        request = job["request"]
        trigger_type = str(job.get("trigger_type"))
        attributes = event_attributes(event_id, job.get("trigger_id"), trigger_type)
        parts = urlsplit(request["url"])
        attributes.update(
            {
                "http.request.method": request["method"],
                "url.full": shown_url(request["url"]),
                "server.address": parts.hostname or "",
                "eventtrigger.attempt": number,
                "eventtrigger.outcome": outcome.status,
                "eventtrigger.test_run": bool(job.get("is_test_run")),
            }
        )
        with contextlib.suppress(ValueError):
            port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
            if port is not None:
                attributes["server.port"] = port
        if number > 1:
            attributes["http.request.resend_count"] = number - 1
        if result.status_code is not None:
            attributes["http.response.status_code"] = result.status_code
        if outcome.next_attempt_at is not None and outcome.status == "retrying":
            attributes["eventtrigger.next_attempt_at"] = iso(outcome.next_attempt_at)
        if result.error is not None:
            attributes["error.type"] = error_type(result)
        start = nanoseconds(started_at)
        span = self._tracer.start_span(
            f"delivery attempt {number}",
            context=self._under_root(event_id, trigger_type),
            kind=SpanKind.CLIENT,
            attributes=attributes,
            start_time=start,
        )
        if result.error is not None:
            span.set_status(Status(StatusCode.ERROR, status_description(result)))
        span.end(end_time=start + int(seconds * 1e9))
