"""Abuse limits on webhook ingestion, over the real API: a trigger's own
`config.ingest_rate_limit` and the per-client-address limit (EVENTTRIGGER_INGEST_IP_RATE).

A refused call is answered 429 problem+json with Retry-After in whole seconds and leaves
nothing behind. Where the exact timing matters, the API app runs in this process with a
clock that moves only when told (the same app the server runs, over ASGI); the rest talks
to the real `eventtrigger run --roles=api` process.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from eventtrigger.clock import FrozenClock
from eventtrigger.config import IPNetwork, Settings
from eventtrigger.domain.retention import Windows
from eventtrigger.observability.health import Health
from eventtrigger.observability.metrics import Metrics
from eventtrigger.observability.stats import StatsKeeper
from eventtrigger.resources import Resources
from eventtrigger.roles.api.app import build_app
from eventtrigger.store.db import Database
from tests.api._support import TRIGGERS, assert_invalid, assert_problem, create, trigger_body
from tests.conftest import test_environ as environ_for_tests  # (not collected as a test)
from tests.process import EventtriggerProcess

UNKNOWN_HOOK = "/api/v1/webhook/" + "x" * 32  # well-formed, matches no trigger
METRIC = "eventtrigger_ingest_rate_limited_total"


def limited(per_second: float, burst: int, **config: Any) -> dict[str, Any]:
    return trigger_body(
        "webhook", ingest_rate_limit={"per_second": per_second, "burst": burst}, **config
    )


def retry_after(response: httpx.Response) -> int:
    """The 429's Retry-After: whole seconds, at least 1."""
    body = assert_problem(response, 429)
    assert "rate limit" in body["detail"] or "Too many" in body["detail"], body
    value = response.headers["retry-after"]
    assert re.fullmatch(r"[1-9][0-9]*", value), value
    return int(value)


async def rows(db: Database, trigger_id: str) -> dict[str, int]:
    """Rows a webhook call to the trigger could have written: its events and its
    Idempotency-Key mappings (scoped by trigger id)."""
    async with db.connection() as tx:
        counts = {}
        for table, column in (("event_logs", "trigger_id"), ("idempotency_keys", "scope")):
            sql = f"SELECT COUNT(*) AS n FROM {table} WHERE {column} = %s"
            row = await tx.fetch_one(sql, (trigger_id,))
            assert row is not None
            counts[table] = int(row["n"])
    return counts


async def scraped(client: httpx.AsyncClient, scope: str) -> float:
    """The process's eventtrigger_ingest_rate_limited_total{scope} from /metrics."""
    text = (await client.get("/metrics")).text
    match = re.search(rf'^{METRIC}{{scope="{scope}"}} ([0-9.e+]+)$', text, re.MULTILINE)
    assert match, text
    return float(match[1])


def hook_path(trigger: dict[str, Any]) -> str:
    return "/api/v1/webhook/" + trigger["webhook_url"].rsplit("/", 1)[1]


# --- a trigger's own limit, against the API process --------------------------------------


async def test_a_limit_is_stored_returned_and_removed_with_the_config(
    client: httpx.AsyncClient,
) -> None:
    trigger = await create(client, limited(2.5, 10))
    assert trigger["config"]["ingest_rate_limit"] == {"per_second": 2.5, "burst": 10}
    read = (await client.get(f"{TRIGGERS}/{trigger['id']}")).json()
    assert read["config"]["ingest_rate_limit"] == {"per_second": 2.5, "burst": 10}

    config = {k: v for k, v in trigger["config"].items() if k != "ingest_rate_limit"}
    patched = await client.patch(f"{TRIGGERS}/{trigger['id']}", json={"config": config})
    assert patched.status_code == 200, patched.text
    assert "ingest_rate_limit" not in patched.json()["config"]


@pytest.mark.parametrize(
    ("limit", "field"),
    [
        ({"per_second": 0, "burst": 5}, "config.ingest_rate_limit.per_second"),
        ({"per_second": 1, "burst": 0}, "config.ingest_rate_limit.burst"),
        ({"per_second": 1, "burst": 2.5}, "config.ingest_rate_limit.burst"),
        ({"per_second": 1}, "config.ingest_rate_limit.burst"),
        ({"per_second": 1, "burst": 1, "period": 1}, "config.ingest_rate_limit.period"),
        ("10/s", "config.ingest_rate_limit"),
    ],
)
async def test_a_bad_limit_is_a_400_naming_the_field(
    client: httpx.AsyncClient, db: Database, limit: Any, field: str
) -> None:
    assert_invalid(await client.post(TRIGGERS, json=trigger_body(ingest_rate_limit=limit)), field)
    async with db.connection() as tx:
        assert await tx.fetch_one("SELECT id FROM triggers") is None


async def test_only_a_webhook_trigger_takes_a_limit(client: httpx.AsyncClient) -> None:
    limit = {"per_second": 1, "burst": 1}
    refused = await client.post(
        TRIGGERS, json=trigger_body("cron_scheduled", ingest_rate_limit=limit)
    )
    body = assert_invalid(refused, "config.ingest_rate_limit")
    assert "only webhook triggers" in str(body["errors"])

    cron = await create(client, trigger_body("cron_scheduled"))
    config = {**cron["config"], "ingest_rate_limit": limit}
    patched = await client.patch(f"{TRIGGERS}/{cron['id']}", json={"config": config})
    assert_invalid(patched, "config.ingest_rate_limit")
    read = (await client.get(f"{TRIGGERS}/{cron['id']}")).json()
    assert read["config"] == cron["config"]


async def test_calls_beyond_the_burst_get_429_and_leave_nothing_behind(
    client: httpx.AsyncClient, anonymous: httpx.AsyncClient, db: Database
) -> None:
    # 0.01 a second: the next token is 100 s away, whatever this machine's pace.
    trigger = await create(client, limited(0.01, 2))
    before = await scraped(anonymous, "trigger")
    for n in range(2):
        accepted = await anonymous.post(trigger["webhook_url"], json={"n": n})
        assert accepted.status_code == 202, accepted.text
    stored = await rows(db, trigger["id"])
    assert stored == {"event_logs": 2, "idempotency_keys": 0}

    refused = await anonymous.post(
        trigger["webhook_url"], json={"n": 2}, headers={"Idempotency-Key": "k-1"}
    )
    assert 90 <= retry_after(refused) <= 100
    # Judged before the body is even read: a bad body is refused by the limit too.
    garbage = await anonymous.post(trigger["webhook_url"], content=b"{")
    assert 90 <= retry_after(garbage) <= 100

    assert await rows(db, trigger["id"]) == stored
    assert await scraped(anonymous, "trigger") == before + 2
    # Another trigger is not held back by this one's limit.
    other = await create(client, trigger_body("webhook", name="other"))
    assert (await anonymous.post(other["webhook_url"], json={})).status_code == 202


async def test_a_changed_limit_governs_the_very_next_call_although_the_trigger_is_cached(
    client: httpx.AsyncClient, anonymous: httpx.AsyncClient, db: Database
) -> None:
    trigger = await create(client, limited(0.001, 1))
    url, at = trigger["webhook_url"], f"{TRIGGERS}/{trigger['id']}"
    plain = {k: v for k, v in trigger["config"].items() if k != "ingest_rate_limit"}

    async def limit(value: dict[str, Any] | None) -> None:
        config = plain if value is None else {**plain, "ingest_rate_limit": value}
        patched = await client.patch(at, json={"config": config})
        assert patched.status_code == 200, patched.text

    assert (await anonymous.post(url, json={})).status_code == 202  # cached now
    assert retry_after(await anonymous.post(url, json={})) > 900

    await limit({"per_second": 1000, "burst": 1})  # raised: the wait is a millisecond
    assert (await anonymous.post(url, json={})).status_code == 202
    await limit(None)  # removed
    for _ in range(3):
        assert (await anonymous.post(url, json={})).status_code == 202
    await limit({"per_second": 0.001, "burst": 1})  # back: a full burst of one
    assert (await anonymous.post(url, json={})).status_code == 202
    assert retry_after(await anonymous.post(url, json={})) > 900
    assert (await rows(db, trigger["id"]))["event_logs"] == 6


async def test_a_call_is_counted_once_when_its_cached_trigger_was_edited_since(
    client: httpx.AsyncClient, anonymous: httpx.AsyncClient, db: Database
) -> None:
    # The call after the edit is judged by the cached trigger, then (its commit finding
    # the trigger changed) by a fresh read of the same limit: one call, one token.
    trigger = await create(client, limited(0.001, 2))
    assert (await anonymous.post(trigger["webhook_url"], json={})).status_code == 202
    config = {**trigger["config"], "schema": {"type": "object", "required": ["n"]}}
    edited = await client.patch(f"{TRIGGERS}/{trigger['id']}", json={"config": config})
    assert edited.status_code == 200, edited.text
    assert (await anonymous.post(trigger["webhook_url"], json={"n": 1})).status_code == 202
    assert retry_after(await anonymous.post(trigger["webhook_url"], json={"n": 2})) > 900
    assert (await rows(db, trigger["id"]))["event_logs"] == 2


# --- the app in this process, on a clock of the test's -----------------------------------


@pytest.fixture
def in_process(
    migrated: Settings, db: Database
) -> Callable[..., tuple[Callable[[str], httpx.AsyncClient], FrozenClock, Metrics]]:
    """The API app on a FrozenClock with these settings; clients as given peer addresses."""

    def make(
        **overrides: Any,
    ) -> tuple[Callable[[str], httpx.AsyncClient], FrozenClock, Metrics]:
        settings = replace(migrated, **overrides)
        clock = FrozenClock(datetime.now(UTC))
        metrics = Metrics()
        res = Resources(
            settings=settings,
            clock=clock,
            db=db,
            health=Health(("api",), {}),
            metrics=metrics,
            stats=StatsKeeper(
                db, Windows(settings.retention_active, settings.retention_total), metrics
            ),
        )
        app = build_app(res, api=True)

        def peer(address: str) -> httpx.AsyncClient:
            transport = httpx.ASGITransport(app=app, client=(address, 40000))
            return httpx.AsyncClient(transport=transport, base_url="http://test")

        return peer, clock, metrics

    return make


def refusals(metrics: Metrics, scope: str) -> float:
    value = metrics.registry.get_sample_value(METRIC, {"scope": scope})
    assert value is not None
    return value


async def test_retry_after_is_whole_seconds_rounded_up_and_the_call_is_accepted_then(
    client: httpx.AsyncClient, db: Database, in_process: Callable[..., Any]
) -> None:
    trigger = await create(client, limited(0.25, 2))  # a token every 4 s
    peer, clock, metrics = in_process()
    async with peer("198.51.100.7") as api:
        path = hook_path(trigger)
        for n in range(2):
            assert (await api.post(path, json={"n": n})).status_code == 202
        assert retry_after(await api.post(path, json={})) == 4
        clock.advance(timedelta(seconds=2.5))
        assert retry_after(await api.post(path, json={})) == 2  # 1.5 s left, rounded up
        clock.advance(timedelta(seconds=1.49))
        assert retry_after(await api.post(path, json={})) == 1  # 10 ms left: still 1
        clock.advance(timedelta(seconds=0.01))
        assert (await api.post(path, json={"n": 2})).status_code == 202
        assert retry_after(await api.post(path, json={})) == 4
    assert (await rows(db, trigger["id"]))["event_logs"] == 3
    assert refusals(metrics, "trigger") == 4
    assert refusals(metrics, "address") == 0


async def test_the_per_address_limit_holds_back_one_address_only(
    client: httpx.AsyncClient, db: Database, in_process: Callable[..., Any]
) -> None:
    trigger = await create(client, trigger_body("webhook"))
    path = hook_path(trigger)
    peer, clock, metrics = in_process(ingest_ip_rate=0.5, ingest_ip_burst=2)
    async with peer("203.0.113.9") as noisy, peer("203.0.113.10") as quiet:
        assert (await noisy.post(path, json={})).status_code == 202
        assert (await noisy.post(UNKNOWN_HOOK, json={})).status_code == 404  # counts too
        assert retry_after(await noisy.post(path, json={})) == 2
        assert retry_after(await noisy.post(UNKNOWN_HOOK, json={})) == 2
        assert (await quiet.post(path, json={})).status_code == 202
        # Management routes are not webhook calls: the limit leaves them alone.
        assert (await noisy.get("/health/live")).status_code == 200
        clock.advance(timedelta(seconds=2))
        assert (await noisy.post(path, json={})).status_code == 202
        assert retry_after(await noisy.post(path, json={})) == 2
    assert (await rows(db, trigger["id"]))["event_logs"] == 3
    assert refusals(metrics, "address") == 3
    assert refusals(metrics, "trigger") == 0


async def test_x_forwarded_for_counts_only_from_a_trusted_proxy(
    client: httpx.AsyncClient, in_process: Callable[..., Any]
) -> None:
    proxies: tuple[IPNetwork, ...] = (ipaddress.ip_network("10.0.0.0/8"),)
    peer, _, _ = in_process(ingest_ip_rate=0.001, ingest_ip_burst=1, trusted_proxies=proxies)

    def via(address: str) -> dict[str, str]:
        return {"X-Forwarded-For": f"6.6.6.6, {address}"}  # the first entry is the client's own

    async with peer("10.0.0.2") as proxy, peer("203.0.113.9") as direct:
        assert (await proxy.post(UNKNOWN_HOOK, headers=via("198.51.100.1"))).status_code == 404
        retry_after(await proxy.post(UNKNOWN_HOOK, headers=via("198.51.100.1")))
        # Another client behind the same proxy has a bucket of its own.
        assert (await proxy.post(UNKNOWN_HOOK, headers=via("198.51.100.2"))).status_code == 404
        # A peer that is no trusted proxy cannot pick its bucket with the header.
        assert (await direct.post(UNKNOWN_HOOK, headers=via("198.51.100.3"))).status_code == 404
        retry_after(await direct.post(UNKNOWN_HOOK, headers=via("198.51.100.4")))


async def test_an_address_refused_costs_the_database_nothing(
    client: httpx.AsyncClient, db: Database, in_process: Callable[..., Any]
) -> None:
    trigger = await create(client, trigger_body("webhook"))
    path = hook_path(trigger)
    peer, _, _ = in_process(ingest_ip_rate=0.001, ingest_ip_burst=1)
    async with peer("198.51.100.8") as api:
        assert (await api.post(path, json={}, headers={"Idempotency-Key": "a"})).status_code == 202
        before = await rows(db, trigger["id"])
        await db.close()  # a read or a write now fails (a 500), so a 429 touched neither
        try:
            retry_after(await api.post(path, json={}, headers={"Idempotency-Key": "b"}))
        finally:
            await db.connect()
    assert await rows(db, trigger["id"]) == before == {"event_logs": 1, "idempotency_keys": 1}


# --- the per-address limit, set by the environment of a real process ---------------------


@pytest.fixture
def strict_server(migrated: Settings, tmp_path: Path) -> Iterator[EventtriggerProcess]:
    env = environ_for_tests(EVENTTRIGGER_INGEST_IP_RATE="0.001", EVENTTRIGGER_INGEST_IP_BURST="2")
    proc = EventtriggerProcess(env, "api", tmp_path / "eventtrigger.log")
    proc.start()
    yield proc
    assert proc.stop() == 0, proc.log_path.read_text()


async def test_the_per_address_setting_limits_a_real_process(
    strict_server: EventtriggerProcess,
) -> None:
    async with httpx.AsyncClient(base_url=strict_server.base_url, timeout=10) as api:
        for _ in range(2):
            assert (await api.post(UNKNOWN_HOOK, json={})).status_code == 404
        assert retry_after(await api.post(UNKNOWN_HOOK, json={})) > 900
        assert await scraped(api, "address") == 1
