"""Tracing (observability/tracing.py): the ids every process derives from an event id, the
spans and their attributes (the URL masked, no receiver text), the resource, sampling kept
whole per trace, hooks that never raise whatever the SDK does, and nothing at all (no
provider, no thread, not even the SDK imported) when no endpoint is set."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
from loguru import logger
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind, StatusCode, TraceState
from opentelemetry.util.types import Attributes

from eventtrigger.config import load_settings
from eventtrigger.delivery import Result
from eventtrigger.domain.jobs import NewEvent
from eventtrigger.ids import new_id
from eventtrigger.observability.tracing import (
    WARN_EVERY_SECONDS,
    EventIds,
    Tracing,
    nanoseconds,
    remote_context,
    root_span_id_of,
    trace_id_of,
    traceparent,
    traces_url,
)
from eventtrigger.roles import runner
from eventtrigger.store.deliveries import Attempt
from tests.conftest import test_environ as environ_for_tests

NOW = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
ROLES = ("api", "scheduler", "worker")
CALLER = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def _event(event_id: str, **extra: object) -> NewEvent:
    fields: dict[str, object] = {
        "id": event_id,
        "trigger_id": "01JTRIGGER0000000000000000",
        "trigger_type": "webhook",
        "source": "api",
        "scheduled_at": NOW,
        "fired_at": NOW,
        "payload": {"n": 1},
        "request": {},
        "next_attempt_at": NOW + timedelta(seconds=5),
    }
    fields.update(extra)
    return NewEvent(**fields)  # type: ignore[arg-type]


def _job(event_id: str, attempt: int) -> dict[str, object]:
    return {
        "v": 1,
        "event_id": event_id,
        "trigger_id": "01JTRIGGER0000000000000000",
        "trigger_type": "webhook",
        "source": "api",
        "is_test_run": False,
        "attempt": attempt,
        "request": {
            "url": "https://user:pw@hooks.example.com:8443/in/path?token=s3cret#frag",
            "method": "POST",
            "headers": {},
            "body": {"n": 1},
        },
    }


def _attempt(event_id: str, number: int, status: str) -> Attempt:
    return Attempt(
        event_id=event_id,
        attempt=number,
        status=status,
        status_code=None,
        error=None,
        delivered_at=None,
        next_attempt_at=NOW + timedelta(seconds=1) if status == "retrying" else None,
    )


@pytest.fixture
def exported(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Tracing, InMemorySpanExporter]]:
    for name in ("OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_TRACES_SAMPLER"):
        monkeypatch.delenv(name, raising=False)
    memory = InMemorySpanExporter()
    tracing = Tracing.start("http://127.0.0.1:4318", ROLES, exporter=memory)
    assert tracing is not None
    yield tracing, memory
    tracing.shutdown()


def _spans(tracing: Tracing, memory: InMemorySpanExporter) -> list[ReadableSpan]:
    tracing.shutdown()  # flushes the batch processor
    return list(memory.get_finished_spans())


def test_the_trace_id_is_the_event_ids_ulid_bits_and_the_root_span_id_a_stable_hash() -> None:
    # The ULID specification's example and its 128 bits.
    assert trace_id_of("01ARZ3NDEKTSV4RRFFQ69G5FAV") == 0x01563E3AB5D3D6764C61EFB99302BD5B
    event_id = new_id(NOW)
    assert trace_id_of(event_id) == trace_id_of(event_id)
    # The ULID's 48-bit millisecond time is the trace id's top 48 bits.
    assert trace_id_of(event_id) >> 80 == int(NOW.timestamp() * 1000)
    assert root_span_id_of(event_id) == root_span_id_of(event_id)
    assert 0 < root_span_id_of(event_id) < 2**64
    other = new_id(NOW)
    assert trace_id_of(other) != trace_id_of(event_id)
    assert root_span_id_of(other) != root_span_id_of(event_id)


def test_an_id_that_is_no_ulid_hashes_to_a_valid_trace_id() -> None:
    for odd in ("not-a-ulid", "", "00000000000000000000000000", "ZZZZZZZZZZZZZZZZZZZZZZZZZZ"):
        value = trace_id_of(odd)
        assert 0 < value < 2**128, odd
        assert value == trace_id_of(odd)
    assert trace_id_of("a") != trace_id_of("b")


def test_traceparent_names_the_events_root_span() -> None:
    event_id = new_id(NOW)
    header = traceparent(event_id, sampled=True)
    context = remote_context(header)
    assert context is not None
    assert context.trace_id == trace_id_of(event_id)
    assert context.span_id == root_span_id_of(event_id)
    assert context.trace_flags.sampled
    assert header.endswith("-01") and traceparent(event_id, sampled=False).endswith("-00")
    assert remote_context("garbage") is None
    assert remote_context(None) is None


def test_spans_go_to_the_endpoints_traces_path() -> None:
    assert traces_url("http://collector:4318/") == "http://collector:4318/v1/traces"


def test_no_endpoint_builds_nothing_and_sends_nothing() -> None:
    settings = load_settings(environ=environ_for_tests(), env_file=None)
    assert settings.otel_endpoint is None
    before = {t.name for t in threading.enumerate()}
    assert runner._tracing(settings, ROLES) is None
    assert Tracing.start(None, ROLES) is None
    assert Tracing.start("", ROLES) is None
    assert {t.name for t in threading.enumerate()} == before  # no exporter thread
    # No provider was installed anywhere: the API's global one is still the no-op proxy.
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


def test_with_tracing_off_a_process_never_imports_the_sdk() -> None:
    program = (
        "import sys\n"
        "from eventtrigger.config import load_settings\n"
        "from eventtrigger.roles import runner\n"
        "from tests.conftest import test_environ\n"
        "settings = load_settings(environ=test_environ(), env_file=None)\n"
        "assert runner._tracing(settings, ('api',)) is None\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry.sdk')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout


def test_the_root_span_has_the_events_ids_times_and_links(
    exported: tuple[Tracing, InMemorySpanExporter],
) -> None:
    tracing, memory = exported
    original = new_id(NOW)
    event_id = new_id(NOW)
    tracing.event(_event(event_id), NOW + timedelta(milliseconds=3), caller=CALLER)
    tracing.event(
        _event(new_id(NOW), source="replay", replay_of=original), NOW, caller="not a header"
    )
    root, replayed = _spans(tracing, memory)

    assert root.name == "event webhook"
    assert root.parent is None
    assert root.kind is SpanKind.INTERNAL
    assert root.context.trace_id == trace_id_of(event_id)
    assert root.context.span_id == root_span_id_of(event_id)
    assert root.start_time == nanoseconds(NOW)
    assert root.end_time == nanoseconds(NOW) + 3_000_000
    assert root.attributes is not None
    assert root.attributes["webhook.id"] == event_id
    assert root.attributes["eventtrigger.event_id"] == event_id
    assert root.attributes["eventtrigger.trigger_id"] == "01JTRIGGER0000000000000000"
    assert root.attributes["eventtrigger.source"] == "api"
    [link] = root.links
    assert f"{link.context.trace_id:032x}" == CALLER.split("-")[1]
    assert f"{link.context.span_id:016x}" == CALLER.split("-")[2]

    # A replay links to its original event's root; a malformed caller header is ignored.
    [link] = replayed.links
    assert link.context.trace_id == trace_id_of(original)
    assert link.context.span_id == root_span_id_of(original)
    assert replayed.attributes is not None
    assert replayed.attributes["eventtrigger.replay_of"] == original


def test_attempt_and_send_spans_are_children_of_the_events_root(
    exported: tuple[Tracing, InMemorySpanExporter],
) -> None:
    tracing, memory = exported
    event_id = new_id(NOW)
    failed = Result(503, "HTTP 503: the receiver's own text", None)
    tracing.attempt(_job(event_id, 1), failed, _attempt(event_id, 1, "retrying"), NOW, 0.25)
    later = NOW + timedelta(seconds=2)
    tracing.attempt(
        _job(event_id, 2), Result(200, None, None), _attempt(event_id, 2, "success"), later, 0.5
    )
    tracing.published([_job(event_id, 2), {"rejected": True}], "jobs", 10, 20, failed=0)
    first, second, sent = _spans(tracing, memory)

    for span in (first, second, sent):
        assert span.context.trace_id == trace_id_of(event_id)
        assert span.parent is not None
        assert span.parent.span_id == root_span_id_of(event_id)
        assert span.attributes is not None
        assert span.attributes["webhook.id"] == event_id
        assert span.attributes["eventtrigger.trigger_id"] == "01JTRIGGER0000000000000000"
    assert first.name == "delivery attempt 1"
    assert first.kind is SpanKind.CLIENT
    assert first.start_time == nanoseconds(NOW)
    assert first.end_time == nanoseconds(NOW) + 250_000_000
    assert first.status.status_code is StatusCode.ERROR
    assert first.status.description == "HTTP 503"  # never the receiver's text
    assert first.attributes is not None
    assert first.attributes["http.request.method"] == "POST"
    # As the attempt history shows it: query values, fragment and password masked.
    assert first.attributes["url.full"] == (
        "https://user:***@hooks.example.com:8443/in/path?token=***#***"
    )
    assert first.attributes["server.port"] == 8443
    assert first.attributes["http.response.status_code"] == 503
    assert first.attributes["error.type"] == "503"
    assert first.attributes["eventtrigger.attempt"] == 1
    assert first.attributes["eventtrigger.outcome"] == "retrying"
    assert "eventtrigger.next_attempt_at" in first.attributes
    assert second.name == "delivery attempt 2"
    assert second.status.status_code is StatusCode.UNSET
    assert second.attributes is not None
    assert second.attributes["http.request.resend_count"] == 1
    assert second.attributes["http.response.status_code"] == 200
    assert "error.type" not in second.attributes
    assert sent.name == "send jobs"
    assert sent.kind is SpanKind.PRODUCER
    assert (sent.start_time, sent.end_time) == (10, 20)
    assert sent.attributes is not None
    assert sent.attributes["messaging.destination.name"] == "jobs"
    assert sent.attributes["eventtrigger.attempt"] == 2


def test_the_resource_names_the_service_and_roles_and_obeys_otel_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=staging")
    tracing = Tracing.start("http://127.0.0.1:4318", ROLES, exporter=InMemorySpanExporter())
    assert tracing is not None
    attributes = tracing.resource.attributes
    tracing.shutdown()
    assert attributes["service.name"] == "eventtrigger"
    assert attributes["eventtrigger.roles"] == "api,scheduler,worker"
    assert attributes["deployment.environment"] == "staging"

    monkeypatch.setenv("OTEL_SERVICE_NAME", "hooks-eu")
    tracing = Tracing.start("http://127.0.0.1:4318", ("worker",), exporter=InMemorySpanExporter())
    assert tracing is not None
    attributes = tracing.resource.attributes
    tracing.shutdown()
    assert attributes["service.name"] == "hooks-eu"
    assert attributes["eventtrigger.roles"] == "worker"


def test_a_sampler_keeps_or_drops_each_trace_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.5")
    memory = InMemorySpanExporter()
    tracing = Tracing.start("http://127.0.0.1:4318", ROLES, exporter=memory)
    assert tracing is not None
    ids = [new_id(NOW) for _ in range(64)]
    headers = {}
    for event_id in ids:  # as if created in one process and delivered in another
        tracing.event(_event(event_id), NOW)
        tracing.attempt(
            _job(event_id, 1), Result(200, None, None), _attempt(event_id, 1, "success"), NOW, 0.1
        )
        [(header, value)] = tracing.headers(_job(event_id, 1)) or []
        assert header == "traceparent"
        headers[event_id] = value.decode()
    spans = _spans(tracing, memory)
    kept: dict[int, set[str]] = {}
    for span in spans:
        kept.setdefault(span.context.trace_id, set()).add(span.name)
    assert 0 < len(kept) < len(ids)  # some traces kept, some dropped...
    for event_id in ids:  # ...each whole, and the header says which
        names = kept.get(trace_id_of(event_id))
        assert names in (None, {"event webhook", "delivery attempt 1"}), names
        assert headers[event_id] == traceparent(event_id, sampled=names is not None)


class _Collector(BaseHTTPRequestHandler):
    """Records the span names of each OTLP/HTTP export it is sent."""

    received: ClassVar[list[tuple[str, list[str]]]] = []

    def do_POST(self) -> None:
        export = ExportTraceServiceRequest()
        export.ParseFromString(self.rfile.read(int(self.headers["Content-Length"])))
        names = [
            span.name
            for resource in export.resource_spans
            for scope in resource.scope_spans
            for span in scope.spans
        ]
        self.received.append((self.path, names))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_shutdown_sends_what_is_queued_over_otlp_http(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "600000")  # only the shutdown sends
    _Collector.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    try:
        tracing = Tracing.start(f"http://127.0.0.1:{server.server_address[1]}/", ROLES)
        assert tracing is not None
        tracing.event(_event(new_id(NOW)), NOW)
        assert _Collector.received == []
        assert tracing.shutdown()
    finally:
        server.shutdown()
    assert _Collector.received == [("/v1/traces", ["event webhook"])]


def test_shutdown_does_not_wait_for_a_collector_that_never_answers() -> None:
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        tracing = Tracing.start(f"http://127.0.0.1:{silent.getsockname()[1]}", ROLES)
        assert tracing is not None
        tracing.event(_event(new_id(NOW)), NOW)
        began = time.monotonic()
        assert not tracing.shutdown(seconds=0.5)
        assert time.monotonic() - began < 2.0


@pytest.mark.parametrize(
    ("result", "description"),
    [
        (Result(502, "HTTP 502: <html>internal details of the receiver</html>", None), "HTTP 502"),
        (Result(None, "timed out after 10s", None), "timeout"),
        (Result(None, "refused: 10.0.0.1 is a private address", None), "egress_refused"),
        (
            Result(None, "InvalidUrlClientError: https://h.example/?token=s3cret", None),
            "InvalidUrlClientError",
        ),
        (Result(None, "something odd: with text", None), "_OTHER"),
    ],
)
def test_a_failed_attempts_status_names_the_kind_of_failure_only(
    exported: tuple[Tracing, InMemorySpanExporter], result: Result, description: str
) -> None:
    tracing, memory = exported
    event_id = new_id(NOW)
    tracing.attempt(_job(event_id, 1), result, _attempt(event_id, 1, "retrying"), NOW, 0.1)
    [span] = _spans(tracing, memory)
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == description
    assert result.error is not None
    assert span.attributes is not None
    for value in (span.status.description, *map(str, span.attributes.values())):
        assert "s3cret" not in value and "internal details" not in value


class _RaisingProcessor(SpanProcessor):
    """A span processor that fails on every span, as a broken one would."""

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        raise RuntimeError("processor broke")

    def on_end(self, span: ReadableSpan) -> None:
        raise RuntimeError("processor broke")

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        raise RuntimeError("processor broke")


class _RaisingSampler(Sampler):
    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        raise RuntimeError("sampler broke")

    def get_description(self) -> str:
        return "raising"


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def warnings() -> Iterator[list[str]]:
    seen: list[str] = []
    handler = logger.add(lambda message: seen.append(str(message)), level="WARNING")
    yield seen
    logger.remove(handler)


def _broken(sampler: Sampler | None, clock: _Clock) -> Tracing:
    ids = EventIds()
    provider = TracerProvider(id_generator=ids, shutdown_on_exit=False, sampler=sampler)
    provider.add_span_processor(_RaisingProcessor())
    return Tracing(provider, ids, clock=clock)


@pytest.mark.parametrize("sampler", [None, _RaisingSampler()], ids=["processor", "sampler"])
def test_no_hook_raises_whatever_the_sdk_raises(
    sampler: Sampler | None, warnings: list[str]
) -> None:
    tracing = _broken(sampler, _Clock())
    event_id = new_id(NOW)
    job: dict[str, Any] = _job(event_id, 1)
    tracing.event(_event(event_id), NOW, caller=CALLER, error="could not compute")
    tracing.attempt(job, Result(503, "HTTP 503", None), _attempt(event_id, 1, "retrying"), NOW, 1)
    tracing.published([job], "jobs", 10, 20, failed=1)
    headers = tracing.headers(job)
    assert tracing.shutdown(1.0) is True  # the flush failed on its thread, and was contained

    assert headers is None or headers[0][0] == "traceparent"
    failed = {"event", "attempt", "published", "shutdown"} | ({"headers"} if sampler else set())
    assert set(tracing.failures) == failed
    assert len(warnings) == len(failed)
    assert all("tracing hook" in w and "broke" in w for w in warnings)


def test_a_failing_hook_warns_at_most_once_a_minute(warnings: list[str]) -> None:
    clock = _Clock()
    tracing = _broken(None, clock)
    event_id = new_id(NOW)
    outcome = _attempt(event_id, 1, "success")
    for _ in range(5):
        tracing.attempt(_job(event_id, 1), Result(200, None, None), outcome, NOW, 0.1)
    assert tracing.failures == {"attempt": 5}
    assert len(warnings) == 1

    clock.now += WARN_EVERY_SECONDS - 1
    tracing.attempt(_job(event_id, 1), Result(200, None, None), outcome, NOW, 0.1)
    assert len(warnings) == 1
    tracing.event(_event(event_id), NOW)  # another hook has its own pace
    assert len(warnings) == 2

    clock.now += 1
    tracing.attempt(_job(event_id, 1), Result(200, None, None), outcome, NOW, 0.1)
    assert len(warnings) == 3
    assert "(6 time(s) since the last warning)" in warnings[-1]  # the 2nd to the 7th
    assert tracing.failures == {"attempt": 7, "event": 1}
