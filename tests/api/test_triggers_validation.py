"""POST /api/v1/triggers with invalid input: 400 problem+json naming each field, nothing saved."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from eventtrigger.store.db import Database
from tests.api._support import (
    ENDPOINT,
    TRIGGERS,
    assert_invalid,
    assert_nothing_written,
    trigger_body,
)

PAST = (datetime.now(UTC) - timedelta(days=1)).replace(microsecond=0).isoformat()
FUTURE = "2035-01-01T00:00:00Z"


def _without(body: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != key}


# (id, body, expected fields; a tuple means "any one of these")
CASES: list[tuple[str, Any, tuple[str | tuple[str, ...], ...]]] = [
    # unknown and missing fields
    (
        "unknown-config-field-endpont",
        {"name": "t", "type": "webhook", "config": {"endpont": ENDPOINT, "schema": {}}},
        ("config.endpont", "config.endpoint"),
    ),
    ("unknown-top-level-field", {**trigger_body(), "nmae": "x"}, ("nmae",)),
    ("unknown-retry-field", trigger_body(retry={"backoff": "2s"}), ("config.retry.backoff",)),
    ("payload-on-webhook", trigger_body(payload={"a": 1}), ("config.payload",)),
    (
        "cron-field-on-interval",
        trigger_body("interval_scheduled", cron="* * * * *"),
        ("config.cron",),
    ),
    ("missing-name", _without(trigger_body(), "name"), ("name",)),
    ("missing-type", _without(trigger_body(), "type"), ("type",)),
    ("missing-config", _without(trigger_body(), "config"), ("config",)),
    ("missing-endpoint", trigger_body(endpoint=None), ("config.endpoint",)),
    ("missing-webhook-schema", trigger_body(schema=None), ("config.schema",)),
    ("missing-cron", trigger_body("cron_scheduled", cron=None), ("config.cron",)),
    ("missing-every", trigger_body("interval_scheduled", every=None), ("config.every",)),
    (
        "neither-run-at-nor-run-in",
        trigger_body("time_scheduled", run_in=None),
        (("config.run_at", "config.run_in"),),
    ),
    # top-level values
    ("unknown-type", trigger_body() | {"type": "sometimes"}, ("type",)),
    ("status-completed-on-create", trigger_body(status="completed"), ("status",)),
    ("status-unknown", trigger_body(status="sleeping"), ("status",)),
    ("config-not-object", trigger_body() | {"config": "x"}, ("config",)),
    ("name-empty", trigger_body(name=""), ("name",)),
    ("name-201-chars", trigger_body(name="x" * 201), ("name",)),
    ("name-not-string", trigger_body() | {"name": 7}, ("name",)),
    ("name-null", trigger_body() | {"name": None}, ("name",)),
    # cron and timezone
    ("cron-minute-61", trigger_body("cron_scheduled", cron="61 * * * *"), ("config.cron",)),
    ("cron-4-fields", trigger_body("cron_scheduled", cron="* * * *"), ("config.cron",)),
    ("cron-7-fields", trigger_body("cron_scheduled", cron="* * * * * * *"), ("config.cron",)),
    ("cron-words", trigger_body("cron_scheduled", cron="every monday"), ("config.cron",)),
    ("cron-never-fires", trigger_body("cron_scheduled", cron="0 0 30 2 *"), ("config.cron",)),
    ("cron-empty", trigger_body("cron_scheduled", cron=""), ("config.cron",)),
    ("cron-not-string", trigger_body("cron_scheduled", cron=5), ("config.cron",)),
    (
        "timezone-unknown",
        trigger_body("cron_scheduled", timezone="Mars/Olympus_Mons"),
        ("config.timezone",),
    ),
    ("timezone-empty", trigger_body("cron_scheduled", timezone=""), ("config.timezone",)),
    (
        "timezone-path",
        trigger_body("cron_scheduled", timezone="../../etc/passwd"),
        ("config.timezone",),
    ),
    # one-time schedule
    (
        "run-at-in-the-past",
        trigger_body("time_scheduled", run_in=None, run_at=PAST),
        ("config.run_at",),
    ),
    (
        "run-at-without-offset",
        trigger_body("time_scheduled", run_in=None, run_at="2035-01-01T00:00:00"),
        ("config.run_at",),
    ),
    (
        "run-at-date-only",
        trigger_body("time_scheduled", run_in=None, run_at="2035-01-01"),
        ("config.run_at",),
    ),
    (
        "run-at-not-a-time",
        trigger_body("time_scheduled", run_in=None, run_at="tomorrow"),
        ("config.run_at",),
    ),
    (
        "run-at-impossible-date",
        trigger_body("time_scheduled", run_in=None, run_at="2035-02-30T00:00:00Z"),
        ("config.run_at",),
    ),
    (
        "run-at-and-run-in",
        trigger_body("time_scheduled", run_at=FUTURE, run_in="1h"),
        (("config.run_at", "config.run_in"),),
    ),
    ("run-in-not-a-duration", trigger_body("time_scheduled", run_in="soon"), ("config.run_in",)),
    ("run-in-negative", trigger_body("time_scheduled", run_in=-5), ("config.run_in",)),
    ("run-in-bool", trigger_body("time_scheduled", run_in=True), ("config.run_in",)),
    # interval
    ("every-500ms", trigger_body("interval_scheduled", every="500ms"), ("config.every",)),
    ("every-zero", trigger_body("interval_scheduled", every=0), ("config.every",)),
    ("every-fraction-of-second", trigger_body("interval_scheduled", every=0.5), ("config.every",)),
    ("every-words", trigger_body("interval_scheduled", every="often"), ("config.every",)),
    (
        "interval-start-after-end",
        trigger_body(
            "interval_scheduled", start_at="2035-01-02T00:00:00Z", end_at="2035-01-01T00:00:00Z"
        ),
        (("config.start_at", "config.end_at"),),
    ),
    (
        "cron-start-equals-end",
        trigger_body(
            "cron_scheduled", start_at="2035-01-01T00:00:00Z", end_at="2035-01-01T00:00:00Z"
        ),
        (("config.start_at", "config.end_at"),),
    ),
    (
        "interval-end-in-the-past",
        trigger_body("interval_scheduled", start_at="2020-01-01T00:00:00Z", end_at=PAST),
        ("config.end_at",),
    ),
    (
        "start-at-without-offset",
        trigger_body("interval_scheduled", start_at="2035-01-01T00:00:00"),
        ("config.start_at",),
    ),
    # endpoint
    ("endpoint-ftp", trigger_body(endpoint="ftp://example.com/x"), ("config.endpoint",)),
    ("endpoint-no-scheme", trigger_body(endpoint="example.com/x"), ("config.endpoint",)),
    ("endpoint-no-host", trigger_body(endpoint="http:///x"), ("config.endpoint",)),
    ("endpoint-empty", trigger_body(endpoint=""), ("config.endpoint",)),
    ("endpoint-not-string", trigger_body(endpoint=42), ("config.endpoint",)),
    ("endpoint-with-spaces", trigger_body(endpoint="https://exa mple.com/"), ("config.endpoint",)),
    (
        "endpoint-bad-port",
        trigger_body(endpoint="https://example.com:99999/"),
        ("config.endpoint",),
    ),
    (
        "endpoint-credentials",
        trigger_body(endpoint="https://user:pw@example.com/"),
        ("config.endpoint",),
    ),
    (
        "endpoint-too-long",
        trigger_body(endpoint="https://example.com/" + "a" * 2100),
        ("config.endpoint",),
    ),
    # SSRF at save time
    ("ssrf-127.0.0.1", trigger_body(endpoint="http://127.0.0.1:8080/x"), ("config.endpoint",)),
    ("ssrf-localhost", trigger_body(endpoint="http://localhost/x"), ("config.endpoint",)),
    ("ssrf-LOCALHOST-dot", trigger_body(endpoint="http://LOCALHOST./x"), ("config.endpoint",)),
    ("ssrf-sub-localhost", trigger_body(endpoint="http://api.localhost/x"), ("config.endpoint",)),
    ("ssrf-ipv6-loopback", trigger_body(endpoint="http://[::1]:80/x"), ("config.endpoint",)),
    (
        "ssrf-ipv4-mapped-ipv6",
        trigger_body(endpoint="http://[::ffff:127.0.0.1]/x"),
        ("config.endpoint",),
    ),
    ("ssrf-private-10", trigger_body(endpoint="http://10.0.0.5/x"), ("config.endpoint",)),
    ("ssrf-private-192.168", trigger_body(endpoint="https://192.168.1.1/"), ("config.endpoint",)),
    (
        "ssrf-metadata",
        trigger_body(endpoint="http://169.254.169.254/latest/meta-data"),
        ("config.endpoint",),
    ),
    ("ssrf-unspecified", trigger_body(endpoint="http://0.0.0.0/"), ("config.endpoint",)),
    # method, headers
    ("method-unknown", trigger_body(method="FETCH"), ("config.method",)),
    ("method-lowercase", trigger_body(method="post"), ("config.method",)),
    ("header-value-number", trigger_body(headers={"X-Count": 1}), ("config.headers.X-Count",)),
    ("header-value-null", trigger_body(headers={"X-A": None}), ("config.headers.X-A",)),
    ("header-value-crlf", trigger_body(headers={"X-A": "a\r\nB: c"}), ("config.headers.X-A",)),
    ("header-name-space", trigger_body(headers={"Bad Name": "v"}), ("config.headers.Bad Name",)),
    (
        "header-reserved",
        trigger_body(headers={"Webhook-Signature": "v1,x"}),
        ("config.headers.Webhook-Signature",),
    ),
    ("headers-not-object", trigger_body(headers=["X-A: b"]), ("config.headers",)),
    # timeout and retry bounds
    ("timeout-50ms", trigger_body(timeout="50ms"), ("config.timeout",)),
    ("timeout-3m", trigger_body(timeout="3m"), ("config.timeout",)),
    ("timeout-words", trigger_body(timeout="fast"), ("config.timeout",)),
    ("retry-attempts-0", trigger_body(retry={"max_attempts": 0}), ("config.retry.max_attempts",)),
    ("retry-attempts-21", trigger_body(retry={"max_attempts": 21}), ("config.retry.max_attempts",)),
    (
        "retry-attempts-string",
        trigger_body(retry={"max_attempts": "3"}),
        ("config.retry.max_attempts",),
    ),
    (
        "retry-initial-10ms",
        trigger_body(retry={"initial_delay": "10ms"}),
        ("config.retry.initial_delay",),
    ),
    ("retry-max-2h", trigger_body(retry={"max_delay": "2h"}), ("config.retry.max_delay",)),
    (
        "retry-max-below-initial",
        trigger_body(retry={"initial_delay": "1m", "max_delay": "10s"}),
        ("config.retry.max_delay",),
    ),
    (
        "retry-span-beyond-active-window",
        trigger_body(retry={"max_attempts": 20, "initial_delay": "1h", "max_delay": "1h"}),
        ("config.retry",),
    ),
    ("retry-not-object", trigger_body(retry=3), ("config.retry",)),
    # webhook JSON Schema
    ("schema-bad-type-keyword", trigger_body(schema={"type": "nope"}), ("config.schema.type",)),
    (
        "schema-negative-min-length",
        trigger_body(schema={"minLength": -1}),
        ("config.schema.minLength",),
    ),
    ("schema-bad-regex", trigger_body(schema={"pattern": "("}), ("config.schema",)),
    ("schema-not-object", trigger_body(schema="object"), ("config.schema",)),
    (
        "schema-unknown-dialect",
        trigger_body(schema={"$schema": "http://evil.example/schema"}),
        ("config.schema.$schema",),
    ),
    (
        "schema-remote-ref",
        trigger_body(schema={"$ref": "http://evil.example/x.json"}),
        ("config.schema",),
    ),
    # values too large to compute with must be refused, not crash the server
    (
        "every-overflowing-number",
        trigger_body("interval_scheduled", every=1e308),
        ("config.every",),
    ),
    (
        "every-overflowing-days",
        trigger_body("interval_scheduled", every="99999999999d"),
        ("config.every",),
    ),
    (
        "run-in-beyond-year-9999",
        trigger_body("time_scheduled", run_in="3650000d"),
        ("config.run_in",),
    ),
    ("timeout-overflowing-number", trigger_body(timeout=1e20), ("config.timeout",)),
    (
        "run-at-beyond-year-9999-in-utc",
        trigger_body("time_scheduled", run_in=None, run_at="9999-12-31T23:59:59-01:00"),
        ("config.run_at",),
    ),
    (
        "start-at-before-year-1-in-utc",
        trigger_body("interval_scheduled", start_at="0001-01-01T00:00:00+01:00"),
        ("config.start_at",),
    ),
]


@pytest.mark.parametrize(("body", "fields"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_create_with_invalid_field_is_400_naming_the_field_and_saves_nothing(
    client: httpx.AsyncClient, db: Database, body: Any, fields: tuple[str | tuple[str, ...], ...]
) -> None:
    response = await client.post(TRIGGERS, json=body)
    assert_invalid(response, *fields)
    await assert_nothing_written(db)


async def test_create_unknown_field_error_suggests_the_known_name(
    client: httpx.AsyncClient,
) -> None:
    body = {"name": "t", "type": "webhook", "config": {"endpont": ENDPOINT, "schema": {}}}
    problem = assert_invalid(await client.post(TRIGGERS, json=body), "config.endpont")
    message = next(e["message"] for e in problem["errors"] if e["field"] == "config.endpont")
    assert "endpoint" in message


async def test_create_reports_top_level_and_config_errors_together(
    client: httpx.AsyncClient, db: Database
) -> None:
    body = trigger_body("cron_scheduled", name="x" * 201, cron="61 * * * *", timezone="Nowhere")
    assert_invalid(await client.post(TRIGGERS, json=body), "name", "config.cron", "config.timezone")
    await assert_nothing_written(db)


async def test_create_reports_every_bad_config_field_at_once(
    client: httpx.AsyncClient, db: Database
) -> None:
    body = trigger_body(
        "interval_scheduled",
        endpoint="http://127.0.0.1/x",
        every="10ms",
        timeout="1h",
        retry={"max_attempts": 50},
    )
    # Schema errors (max_attempts) come first; the semantic ones need a schema-valid config.
    assert_invalid(await client.post(TRIGGERS, json=body), "config.retry.max_attempts")
    body["config"]["retry"] = {"max_attempts": 2}
    assert_invalid(
        await client.post(TRIGGERS, json=body), "config.endpoint", "config.every", "config.timeout"
    )
    await assert_nothing_written(db)
