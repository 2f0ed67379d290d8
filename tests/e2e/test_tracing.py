"""Traces end to end: the real process, with OTEL_EXPORTER_OTLP_ENDPOINT pointing at an
OTLP/HTTP receiver in this test, sends one trace per event (a webhook call through the
API, a scheduled firing, a replay) with the event's root span, a `send` span per publish
to Kafka and a `delivery attempt` span per attempt (a retry included), under the event's
derived trace id; the jobs in Kafka carry a traceparent header naming the root."""

from __future__ import annotations

import asyncio
import gzip
import shlex
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from aiokafka import AIOKafkaConsumer
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from eventtrigger.observability.tracing import root_span_id_of, trace_id_of, traceparent
from eventtrigger.store.db import Database
from tests.e2e.conftest import (
    Sink,
    create_trigger,
    rfc3339,
    serve_every_path,
    wait_for_event,
    wait_until,
)
from tests.process import EventtriggerProcess
from tests.source_tree import require

DOC = Path(__file__).parents[2] / "docs" / "operations" / "tracing.md"
RETRY = {"max_attempts": 3, "initial_delay": "200ms", "max_delay": "1s"}
CALLER = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    return None if kind is None else getattr(value, kind)


def _attributes(pairs: Any) -> dict[str, Any]:
    items: list[KeyValue] = list(pairs)
    return {kv.key: _value(kv.value) for kv in items}


@dataclass
class Received:
    """A span as the receiver decoded it, with its resource's attributes."""

    span: Span
    resource: dict[str, Any]

    @property
    def attributes(self) -> dict[str, Any]:
        return _attributes(self.span.attributes)


@dataclass
class OtlpReceiver:
    """An OTLP/HTTP trace receiver: POST /v1/traces, protobuf, gzip or not."""

    spans: list[Received] = field(default_factory=list)
    paths: set[str] = field(default_factory=set)
    port: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.paths.add(request.path)
        body = await request.read()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        export = ExportTraceServiceRequest()
        export.ParseFromString(body)
        for resource_spans in export.resource_spans:
            resource = _attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                self.spans += [Received(s, resource) for s in scope_spans.spans]
        return web.Response(
            body=ExportTraceServiceResponse().SerializeToString(),
            content_type="application/x-protobuf",
        )

    def trace(self, event_id: str) -> list[Received]:
        wanted = trace_id_of(event_id).to_bytes(16, "big")
        return [r for r in self.spans if r.span.trace_id == wanted]

    def named(self, event_id: str, name: str) -> list[Received]:
        return [r for r in self.trace(event_id) if r.span.name == name]


@pytest.fixture
async def receiver() -> AsyncIterator[OtlpReceiver]:
    received = OtlpReceiver()
    runner, received.port = await serve_every_path(received.handle, "127.0.0.1")
    yield received
    await runner.cleanup()


def _traced(
    launch: Callable[..., EventtriggerProcess], receiver: OtlpReceiver, delay_ms: int = 100
) -> EventtriggerProcess:
    return launch(
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{receiver.port}",
        OTEL_BSP_SCHEDULE_DELAY=str(delay_ms),
        OTEL_SERVICE_NAME="",
        OTEL_RESOURCE_ATTRIBUTES="",
        OTEL_TRACES_SAMPLER="parentbased_always_on",
    )


async def _whole_trace(receiver: OtlpReceiver, event_id: str, attempts: int) -> None:
    """Wait until the receiver has the event's root and `attempts` attempt spans."""

    async def arrived() -> bool:
        names = [r.span.name for r in receiver.trace(event_id)]
        return sum(n.startswith("event ") for n in names) == 1 and all(
            f"delivery attempt {n}" in names for n in range(1, attempts + 1)
        )

    await wait_until(arrived, timeout=20)


def _assert_retried_trace(
    receiver: OtlpReceiver, event_id: str, trigger_id: str, root_name: str, sink: Sink, path: str
) -> Received:
    """The checks every event's trace must pass; returns its root span."""
    [root] = receiver.named(event_id, root_name)
    assert root.span.span_id == root_span_id_of(event_id).to_bytes(8, "big")
    assert root.span.parent_span_id == b""
    assert root.attributes["webhook.id"] == event_id
    assert root.attributes["eventtrigger.trigger_id"] == trigger_id
    assert root.resource["service.name"] == "eventtrigger"
    assert root.resource["eventtrigger.roles"] == "api,scheduler,worker,retention"

    requests = sink.at(path)
    assert [r.headers["webhook-id"] for r in requests] == [event_id, event_id]
    for number, (status, code) in enumerate([(503, Status.STATUS_CODE_ERROR), (200, 0)], 1):
        [attempt] = receiver.named(event_id, f"delivery attempt {number}")
        span, attributes = attempt.span, attempt.attributes
        assert span.parent_span_id == root.span.span_id  # a child of the event's root
        assert span.kind == Span.SPAN_KIND_CLIENT
        assert span.status.code == code
        assert attributes["webhook.id"] == requests[number - 1].headers["webhook-id"]
        assert attributes["eventtrigger.event_id"] == event_id
        assert attributes["eventtrigger.trigger_id"] == trigger_id
        assert attributes["eventtrigger.attempt"] == number
        assert attributes["http.response.status_code"] == status
        assert attributes["http.request.method"] == "POST"
        assert attributes["url.full"] == sink.url(path)
        # The real times: the request reached the sink while the span was open.
        arrived_ns = int(requests[number - 1].at * 1e9)
        assert span.start_time_unix_nano <= arrived_ns <= span.end_time_unix_nano
        assert span.start_time_unix_nano >= root.span.start_time_unix_nano
    first, second = (receiver.named(event_id, f"delivery attempt {n}")[0] for n in (1, 2))
    assert first.attributes["eventtrigger.outcome"] == "retrying"
    assert first.attributes["error.type"] == "503"
    assert second.attributes["eventtrigger.outcome"] == "success"
    assert second.span.start_time_unix_nano > first.span.end_time_unix_nano
    # Every span naming the event is in its trace, and nowhere else.
    mine = [r for r in receiver.spans if r.attributes.get("webhook.id") == event_id]
    assert {r.span.trace_id for r in mine} == {trace_id_of(event_id).to_bytes(16, "big")}
    return root


async def _traceparent_headers(proc: EventtriggerProcess, event_ids: set[str]) -> dict[str, str]:
    """The traceparent header of each event's first job in the job topic."""
    consumer = AIOKafkaConsumer(
        proc.env["EVENTTRIGGER_KAFKA_TOPIC"],
        bootstrap_servers=proc.env["EVENTTRIGGER_KAFKA_BOOTSTRAP"],
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    found: dict[str, str] = {}
    try:
        async with asyncio.timeout(20):
            while not event_ids <= found.keys():
                batch = await consumer.getmany(timeout_ms=500)
                for record in (r for rs in batch.values() for r in rs):
                    event_id = record.value.split(b'"event_id":"')[1][:26].decode()
                    headers = dict(record.headers)
                    found.setdefault(event_id, headers.get("traceparent", b"").decode())
    finally:
        await consumer.stop()
    return found


async def test_webhook_and_scheduled_events_each_make_one_trace_through_kafka_and_retries(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    sink: Sink,
    db: Database,
    receiver: OtlpReceiver,
) -> None:
    sink.respond("/hook", (503, {}, 0.0), (200, {}, 0.0))
    sink.respond("/timed", (503, {}, 0.0), (200, {}, 0.0))
    proc = _traced(launch, receiver)
    async with api(proc) as client:
        hook = await create_trigger(
            client,
            "webhook",
            {"endpoint": sink.url("/hook"), "schema": {"type": "object"}, "retry": RETRY},
            name="traced-webhook",
        )
        run_at = datetime.now(UTC) + timedelta(seconds=2)
        timed = await create_trigger(
            client,
            "time_scheduled",
            {"endpoint": sink.url("/timed"), "run_at": rfc3339(run_at), "retry": RETRY},
            name="traced-timer",
        )
        # (a) a webhook call through the API, with the caller's own trace context.
        async with httpx.AsyncClient() as caller:
            answer = await caller.post(
                hook["webhook_url"], json={"n": 1}, headers={"traceparent": CALLER}
            )
        assert answer.status_code == 202, answer.text
        hook_event = answer.json()["event_id"]
        # (b) the scheduled trigger fires on its own.
        await sink.wait_for("/timed", 2, timeout=30)
        [timed_row] = await wait_until(lambda: _rows(db, timed["id"]), timeout=20)
        timed_event = timed_row["id"]
        for event_id in (hook_event, timed_event):
            row = await wait_for_event(db, event_id)
            assert (row["status"], row["attempts"]) == ("success", 2)
            await _whole_trace(receiver, event_id, attempts=2)

        hook_root = _assert_retried_trace(
            receiver, hook_event, hook["id"], "event webhook", sink, "/hook"
        )
        timed_root = _assert_retried_trace(
            receiver, timed_event, timed["id"], "event time_scheduled", sink, "/timed"
        )
        assert hook_root.attributes["eventtrigger.source"] == "api"
        assert timed_root.attributes["eventtrigger.source"] == "scheduled"
        # The API call's own trace is linked, not adopted.
        [link] = hook_root.span.links
        assert link.trace_id.hex() == CALLER.split("-")[1]
        assert link.span_id.hex() == CALLER.split("-")[2]
        assert not timed_root.span.links

        # Through Kafka: a send span per publish (the first, and the retry's re-publish),
        # under the root; and the job messages name the root in a traceparent header.
        topic = proc.env["EVENTTRIGGER_KAFKA_TOPIC"]
        for event_id, root in ((hook_event, hook_root), (timed_event, timed_root)):
            sends = receiver.named(event_id, f"send {topic}")
            assert sorted(s.attributes["eventtrigger.attempt"] for s in sends) == [1, 2]
            assert {s.span.parent_span_id for s in sends} == {root.span.span_id}
            assert {s.span.kind for s in sends} == {Span.SPAN_KIND_PRODUCER}
        headers = await _traceparent_headers(proc, {hook_event, timed_event})
        assert headers == {e: traceparent(e, sampled=True) for e in (hook_event, timed_event)}

        # A replay is a new event, so a new trace, whose root links to the original's.
        replayed = await client.post(f"/api/v1/events/{hook_event}/replay")
        assert replayed.status_code == 202, replayed.text
        replay_event = replayed.json()["event_id"]
        await wait_for_event(db, replay_event)
        await _whole_trace(receiver, replay_event, attempts=1)
    [replay_root] = receiver.named(replay_event, "event webhook")
    assert replay_root.attributes["eventtrigger.replay_of"] == hook_event
    [link] = replay_root.span.links
    assert link.trace_id == trace_id_of(hook_event).to_bytes(16, "big")
    assert link.span_id == root_span_id_of(hook_event).to_bytes(8, "big")
    [attempt] = receiver.named(replay_event, "delivery attempt 1")
    assert attempt.span.parent_span_id == replay_root.span.span_id
    assert receiver.paths == {"/v1/traces"}


async def _rows(db: Database, trigger_id: str) -> list[dict[str, Any]]:
    async with db.connection() as tx:
        rows: list[dict[str, Any]] = await tx.fetch_all(
            "SELECT id FROM event_logs WHERE trigger_id = %s", (trigger_id,)
        )
    return rows


async def test_spans_still_queued_are_sent_when_the_process_stops(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    sink: Sink,
    db: Database,
    receiver: OtlpReceiver,
) -> None:
    # The batch processor would wait ten minutes: only the shutdown's flush sends them.
    proc = _traced(launch, receiver, delay_ms=600_000)
    async with api(proc) as client:
        answer = await client.post(
            "/api/v1/test-runs",
            json={
                "type": "webhook",
                "config": {"endpoint": sink.url("/run"), "schema": {"type": "object"}},
                "payload": {},
            },
        )
    assert answer.status_code == 202, answer.text
    event_id = answer.json()["event_id"]
    await wait_for_event(db, event_id)
    assert receiver.spans == []
    # In a thread: the receiver answers the flush on this test's event loop meanwhile.
    assert await asyncio.to_thread(proc.stop) == 0
    names = sorted(r.span.name for r in receiver.trace(event_id))
    topic = proc.env["EVENTTRIGGER_KAFKA_TOPIC"]
    assert names == ["delivery attempt 1", "event webhook", f"send {topic}"]
    [root] = receiver.named(event_id, "event webhook")
    assert root.attributes["eventtrigger.source"] == "manual-test"
    assert root.attributes["eventtrigger.test_run"] is True
    assert "eventtrigger.trigger_id" not in root.attributes  # a test run has no trigger


def test_the_documented_event_id_to_trace_id_command_prints_what_the_page_says() -> None:
    require("docs/operations/tracing.md")
    lines = DOC.read_text().splitlines()
    [at] = [i for i, line in enumerate(lines) if line.startswith("python -c ")]
    command, expected = shlex.split(lines[at]), lines[at + 1].removeprefix("# ")
    done = subprocess.run(
        [sys.executable, *command[1:]], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == expected
    assert expected == f"{trace_id_of(command[-1]):032x}"
