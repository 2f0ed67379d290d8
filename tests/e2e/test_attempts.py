"""Attempt history end to end: every delivery attempt of an event is listed, oldest first,
with what the endpoint answered and when the next attempt was due."""

from __future__ import annotations

import socket
from collections.abc import Callable
from datetime import datetime, timedelta

import httpx

from eventtrigger.store.db import Database
from tests.e2e.conftest import Sink, create_trigger, fire_webhook, wait_for_event
from tests.process import EventtriggerProcess


def _time(raw: str) -> datetime:
    return datetime.fromisoformat(raw.replace("Z", "+00:00"))


async def test_failing_then_succeeding_endpoint_lists_both_attempts_in_order(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    sink: Sink,
    db: Database,
) -> None:
    sink.respond("/flaky", (500, {}, 0.0), (200, {}, 0.0))
    proc = launch()
    async with api(proc) as client:
        trigger = await create_trigger(
            client,
            "webhook",
            {
                "endpoint": sink.url("/flaky"),
                "schema": {"type": "object"},
                "retry": {"max_attempts": 3, "initial_delay": "200ms", "max_delay": "1s"},
            },
        )
        event_id = await fire_webhook(trigger["webhook_url"], {"n": 1})
        await wait_for_event(db, event_id, "success")

        answer = await client.get(f"/api/v1/events/{event_id}/attempts")
        assert answer.status_code == 200, answer.text
        first, second = answer.json()["items"]

    assert [first["attempt"], second["attempt"]] == [1, 2]
    assert first["status_code"] == 500
    assert first["error"].startswith("HTTP 500")
    assert first["response_body"] == "sink"  # what the sink answers
    assert second["status_code"] == 200
    assert second["error"] is None
    assert second["response_body"] == "sink"
    assert second["next_attempt_at"] is None  # the last attempt
    # The first attempt names when the second was due: one backoff (>= 200 ms) after it
    # started, and the second did not start before then.
    due = _time(first["next_attempt_at"])
    assert due >= _time(first["started_at"]) + timedelta(milliseconds=200)
    assert _time(second["started_at"]) >= due
    assert all(a["duration_ms"] >= 0 for a in (first, second))


async def test_network_error_has_no_status_code_and_unknown_event_is_404(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    db: Database,
) -> None:
    with socket.socket() as probe:  # a port nothing listens on: connection refused
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    proc = launch()
    async with api(proc) as client:
        trigger = await create_trigger(
            client,
            "webhook",
            {
                "endpoint": f"http://127.0.0.1:{closed}/gone",
                "schema": {"type": "object"},
                "retry": {"max_attempts": 1},
            },
        )
        event_id = await fire_webhook(trigger["webhook_url"], {"n": 2})
        await wait_for_event(db, event_id, "failure")
        answer = await client.get(f"/api/v1/events/{event_id}/attempts")
        missing = await client.get("/api/v1/events/01ARZ3NDEKTSV4RRFFQ69G5FAV/attempts")

    assert answer.status_code == 200, answer.text
    [only] = answer.json()["items"]
    assert only["status_code"] is None
    assert only["error"]  # the connection error, named
    assert only["response_body"] is None
    assert only["next_attempt_at"] is None
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
