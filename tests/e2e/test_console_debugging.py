"""The console's debugging views in a real browser (Debian's Chromium via Playwright)
against the real process with MariaDB and Kafka: the request an event sent and each
attempt's answer, copy as curl, search by event id, time range presets, sortable
columns with thousands separators, bulk replay of a filtered list, and the live tail.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
from playwright.async_api import Page

from eventtrigger.ids import new_id
from eventtrigger.store.db import Database
from tests.e2e.conftest import (
    Sink,
    create_trigger,
    event_rows,
    fire_webhook,
    wait_for_event,
    wait_until,
)
from tests.e2e.test_console import Browser, console, go
from tests.process import EventtriggerProcess

SCHEMA = {"type": "object"}
# Chromium logs each non-2xx answer as a console error; these are the ones a test asks for.
NOT_FOUND = "the server responded with a status of 404"


def _errors_besides(b: Browser, *expected: str) -> list[tuple[str, str]]:
    return [e for e in b.console_errors if not any(x in e[0] for x in expected)]


async def _api_calls_to(b: Browser, path: str, count: int) -> list[dict[str, list[str]]]:
    """Wait until the page made `count` calls to `path`; their query strings."""

    async def made() -> list[dict[str, list[str]]] | None:
        calls = b.calls(path)
        return calls if len(calls) >= count else None

    found: list[dict[str, list[str]]] = await wait_until(made, timeout=15)
    return found


async def test_event_detail_shows_the_request_sent_and_each_answer_with_copy_as_curl(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    sink: Sink,
    db: Database,
) -> None:
    # The first attempt gets a 503 with a header of its own, the second a 200.
    sink.respond("/flaky", (503, {"X-Reason": "busy"}, 0.0), (200, {"X-Reason": "fine"}, 0.0))
    proc = launch()
    async with api(proc) as client, console(proc) as b:
        page = b.page
        trigger = await create_trigger(
            client,
            "webhook",
            {
                "endpoint": sink.url("/flaky"),
                "schema": SCHEMA,
                "headers": {"X-Tenant": "acme"},
                "retry": {"max_attempts": 3, "initial_delay": "200ms", "max_delay": "1s"},
            },
            name="flaky orders",
        )
        # A quote in the payload: the curl command must escape it for the shell.
        payload = {"note": "it's here", "n": 1}
        event_id = await fire_webhook(trigger["webhook_url"], payload)
        await wait_for_event(db, event_id, "success")
        first, second = await sink.wait_for("/flaky", 2)
        assert first.headers["webhook-id"] == event_id

        await go(b, f"#/events/{event_id}", "h1 .badge.success")
        await page.wait_for_selector('#attempts details[data-attempt="2"]')

        # The request sent: method, URL, the headers with webhook-id and the signature.
        assert await page.inner_text("#request-url") == sink.url("/flaky")
        headers = "#request-headers"
        assert await page.inner_text(f'{headers} tr[data-header="webhook-id"] td') == event_id
        shown_signature = await page.inner_text(f'{headers} tr[data-header="webhook-signature"] td')
        assert shown_signature == second.headers["webhook-signature"]
        assert await page.inner_text(f'{headers} tr[data-header="x-tenant"] td') == "acme"
        assert orjson.loads(await page.inner_text("#request-body")) == payload

        # Each attempt: its status, its response headers and body, its duration.
        failed = page.locator('#attempts details[data-attempt="1"]')
        assert await failed.get_attribute("data-status-code") == "503"
        await failed.locator("> summary").click()
        assert await failed.locator(".status-code").inner_text() == "503"
        reason = failed.locator('[id="attempt-1-response-headers"] tr[data-header="x-reason"] td')
        assert await reason.inner_text() == "busy"
        assert await failed.locator('[id="attempt-1-response-body"]').inner_text() == "sink"
        assert "ms" in await failed.locator("> summary").inner_text()
        ok = page.locator('#attempts details[data-attempt="2"]')
        assert await ok.get_attribute("data-status-code") == "200"
        fine = ok.locator('[id="attempt-2-response-headers"] tr[data-header="x-reason"] td')
        assert await fine.inner_text() == "fine"
        sent_first = failed.locator(
            '[id="attempt-1-request-headers"] tr[data-header="webhook-id"] td'
        )
        assert await sent_first.inner_text() == event_id

        # Copy as curl: the clipboard holds a command that sends the same request again.
        await page.click("#copy-curl")
        await page.wait_for_selector("#toast:text('curl command copied')")
        command = await page.evaluate("navigator.clipboard.readText()")
        assert command == await page.text_content("#request-curl")
        assert command.startswith(f"curl -X POST '{sink.url('/flaky')}'")
        assert f"-H 'webhook-id: {event_id}'" in command
        assert "--data-raw '" in command and "it'\\''s here" in command
        run = await asyncio.to_thread(
            subprocess.run,
            ["bash", "-c", command.replace("curl ", "curl -s -o /dev/null ", 1)],
            capture_output=True,
            timeout=20,
        )
        assert run.returncode == 0, run.stderr
        replayed = (await sink.wait_for("/flaky", 3))[2]
        assert replayed.body == second.body
        assert replayed.headers["webhook-id"] == event_id
        assert replayed.headers["webhook-signature"] == second.headers["webhook-signature"]
        assert replayed.headers["X-Tenant"] == "acme"

        assert not b.page_errors, b.page_errors
        assert not _errors_besides(b), b.console_errors


async def test_search_by_event_id_opens_the_event_or_says_it_is_unknown(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    sink: Sink,
    db: Database,
) -> None:
    proc = launch()
    async with api(proc) as client, console(proc) as b:
        page = b.page
        trigger = await create_trigger(
            client, "webhook", {"endpoint": sink.url("/ok"), "schema": SCHEMA}, name="orders"
        )
        event_id = await fire_webhook(trigger["webhook_url"], {"order": 1})
        await wait_for_event(db, event_id)

        await go(b, "#/events", "#event-id-search")
        unknown = new_id(datetime.now(UTC))
        await page.fill("#event-id-search", unknown)
        await page.press("#event-id-search", "Enter")
        await page.wait_for_selector("#search-result:visible")
        assert f"No event with id {unknown}" in await page.inner_text("#search-result")
        assert page.url.endswith("#/events")

        await page.fill("#event-id-search", f"  {event_id} ")
        await page.click("#event-search button[type=submit]")
        await page.wait_for_function(f"() => location.hash === '#/events/{event_id}'")
        await page.wait_for_selector("#event-detail dl")
        assert event_id in await page.inner_text("h1")

        assert not b.page_errors, b.page_errors
        assert not _errors_besides(b, NOT_FOUND), b.console_errors


async def test_time_presets_set_the_range_asked_for_and_the_tiles_say_their_window(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    sink: Sink,
    db: Database,
) -> None:
    proc = launch()
    async with api(proc) as client, console(proc) as b:
        page = b.page
        trigger = await create_trigger(
            client, "webhook", {"endpoint": sink.url("/ok"), "schema": SCHEMA}, name="orders"
        )
        recent = await fire_webhook(trigger["webhook_url"], {"order": 1})
        older = await fire_webhook(trigger["webhook_url"], {"order": 2})
        for event_id in (recent, older):
            await wait_for_event(db, event_id)
        # One event fired 90 minutes ago: inside 6 h, outside 1 h.
        async with db.connection() as tx:
            await tx.execute(
                "UPDATE event_logs SET fired_at = fired_at - INTERVAL 90 MINUTE,"
                " scheduled_at = scheduled_at - INTERVAL 90 MINUTE WHERE id = %s",
                (older,),
            )

        # Overview: a preset asks the series for that range; the window tiles say it.
        await go(b, "#/overview", '[data-metric="window.fired"]')
        label = '[data-metric="window.fired"] .label'
        assert "last 1 h" in await page.inner_text(label)
        b.api_calls.clear()
        await page.click('#charts [data-range="6h"]')
        calls = await _api_calls_to(b, "/api/v1/stats/series", 1)
        assert calls[0]["range"] == ["6h"]
        await page.wait_for_selector(f"{label}:has-text('last 6 h')")
        await page.wait_for_selector('[data-metric="window.fired"] .value:text("2")')
        assert await page.get_attribute('#charts [data-range="6h"]', "aria-pressed") == "true"
        assert "range=6h" in page.url
        b.api_calls.clear()
        await page.click('#charts [data-range="15m"]')
        await _api_calls_to(b, "/api/v1/stats/series", 1)
        await page.wait_for_selector(f"{label}:has-text('last 15 min')")
        await page.wait_for_selector('[data-metric="window.fired"] .value:text("1")')
        # A custom window: from and to go to the series; the tiles name the window.
        b.api_calls.clear()
        await page.click('#charts [data-range="custom"]')
        await page.fill("#range-from", await _local(page, datetime.now(UTC) - timedelta(hours=2)))
        await page.fill("#range-to", await _local(page, datetime.now(UTC) - timedelta(minutes=30)))
        await page.click("#custom-range button[type=submit]")
        custom = (await _api_calls_to(b, "/api/v1/stats/series", 1))[-1]
        assert set(custom) >= {"from", "to"} and "range" not in custom, custom
        await page.wait_for_selector(f"{label}:has-text(' to ')")
        await page.wait_for_selector('[data-metric="window.fired"] .value:text("1")')

        # Events: a preset sends `since` = now - preset; the older event drops out.
        await go(b, "#/events", f'#event-rows tr[data-event="{older}"]')
        b.api_calls.clear()
        clicked = datetime.now(UTC)
        await page.click('#event-range [data-range="1h"]')
        await page.wait_for_function(
            "() => location.hash.includes('range=1h') && "
            "document.querySelectorAll('#event-rows tr[data-event]').length === 1"
        )
        since = (await _api_calls_to(b, "/api/v1/events", 1))[-1]["since"][0]
        asked = datetime.fromisoformat(since.replace("Z", "+00:00"))
        assert abs(asked - (clicked - timedelta(hours=1))) < timedelta(seconds=30), since
        assert await page.get_attribute("#event-rows tr[data-event]", "data-event") == recent
        assert await page.inner_text("#event-window") == "last 1 h"
        await page.click('#event-range [data-range="6h"]')
        await page.wait_for_selector(f'#event-rows tr[data-event="{older}"]')

        assert not b.page_errors, b.page_errors
        assert not _errors_besides(b), b.console_errors


async def _local(page: Page, at: datetime) -> str:
    """`at` as a datetime-local input's value in the browser's zone."""
    value: str = await page.evaluate(
        """(ms) => { const d = new Date(ms), p = (n) => String(n).padStart(2, "0");
        return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T` +
          `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`; }""",
        at.timestamp() * 1000,
    )
    return value


def _sql_time(at: datetime) -> str:
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")


async def _insert_events(db: Database, trigger_id: str, count: int) -> None:
    """`count` delivered events of one trigger, written straight into the table."""
    now = datetime.now(UTC)
    request = orjson.dumps({"url": "http://127.0.0.1:9/x", "method": "POST", "headers": {}})
    rows: list[Any] = []
    for i in range(count):
        fired = now - timedelta(minutes=30) + timedelta(milliseconds=i)
        at = _sql_time(fired)
        rows += [new_id(fired), trigger_id, "webhook", "api", at, at, request.decode(), at, at, at]
    marks = ", ".join(["(%s, %s, %s, %s, %s, %s, '{}', %s, 'success', 1, 200, %s, %s, %s)"] * count)
    async with db.connection() as tx:
        await tx.execute(
            "INSERT INTO event_logs (id, trigger_id, trigger_type, source, scheduled_at,"
            " fired_at, payload, request, status, attempts, last_status_code, delivered_at,"
            f" created_at, updated_at) VALUES {marks}",
            rows,
        )


async def _column(b: Browser, rows: str, index: int) -> list[str]:
    texts: list[str] = await b.page.eval_on_selector_all(
        rows, f"rows => rows.map(r => r.children[{index}].textContent.trim())"
    )
    return texts


async def test_columns_sort_both_ways_and_counts_have_thousands_separators(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    db: Database,
) -> None:
    proc = launch(roles="api")
    async with api(proc) as client, console(proc) as b:
        page = b.page
        made = {}
        for name, host in (("beta", "b.example.com"), ("alpha", "c.example.com"), ("gamma", "a.example.com")):  # fmt: skip
            config = {"endpoint": f"https://{host}/hooks/in", "schema": SCHEMA}
            made[name] = await create_trigger(client, "webhook", config, name=name)
        await _insert_events(db, made["alpha"]["id"], 1234)
        await _insert_events(db, made["gamma"]["id"], 3)

        # Triggers: newest first as loaded; Name sorts ascending, again descending.
        rows = "#trigger-rows tr[data-trigger]"
        await go(b, "#/triggers", rows)
        assert await _column(b, rows, 0) == ["gamma", "alpha", "beta"]
        assert await _column(b, rows, 1) == [
            "a.example.com/hooks/in", "c.example.com/hooks/in", "b.example.com/hooks/in",
        ]  # fmt: skip
        name = '#triggers th[data-column="Name"]'
        await page.click(f"{name} button")
        assert await _column(b, rows, 0) == ["alpha", "beta", "gamma"]
        assert await page.get_attribute(name, "aria-sort") == "ascending"
        await page.focus(f"{name} button")
        await page.keyboard.press("Enter")  # the header is a button: the keyboard sorts too
        assert await _column(b, rows, 0) == ["gamma", "beta", "alpha"]
        assert await page.get_attribute(name, "aria-sort") == "descending"
        endpoint = '#triggers th[data-column="Endpoint"]'
        await page.click(f"{endpoint} button")
        assert await _column(b, rows, 0) == ["gamma", "beta", "alpha"]
        assert await page.get_attribute(endpoint, "aria-sort") == "ascending"
        assert await page.get_attribute(name, "aria-sort") == "none"

        # The 48 h table: names, separators, and sorting by a count.
        rows = "#aggregate-rows tr[data-trigger]"
        await go(b, "#/aggregate", rows)
        total = '#aggregate th[data-column="Total"]'
        await page.click(f"{total} button")
        assert await _column(b, rows, 0) == ["gamma", "alpha"]
        assert await _column(b, rows, 6) == ["3", f"{1234:,}"]
        await page.click(f"{total} button")
        assert await _column(b, rows, 0) == ["alpha", "gamma"]
        assert await page.get_attribute(total, "aria-sort") == "descending"

        assert not b.page_errors, b.page_errors
        assert not _errors_besides(b), b.console_errors


async def test_bulk_replay_replays_exactly_the_filtered_events(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    sink: Sink,
    db: Database,
) -> None:
    sink.respond("/missing", (404, {}, 0.0))  # a 404 is final: the event fails at once
    proc = launch()
    async with api(proc) as client, console(proc) as b:
        page = b.page
        config = {"endpoint": sink.url("/missing"), "schema": SCHEMA}
        billing = await create_trigger(client, "webhook", config, name="billing sync")
        other = await create_trigger(client, "webhook", config, name="other sync")
        ok = await create_trigger(
            client, "webhook", {"endpoint": sink.url("/ok"), "schema": SCHEMA}, name="fine"
        )
        wanted = [await fire_webhook(billing["webhook_url"], {"i": i}) for i in range(3)]
        others = [await fire_webhook(other["webhook_url"], {"i": i}) for i in range(2)]
        others.append(await fire_webhook(ok["webhook_url"], {"i": 9}))
        for event_id in wanted + others:
            await wait_for_event(db, event_id)

        await go(
            b, f"#/events?status=failure&trigger_id={billing['id']}", "#event-rows tr[data-event]"
        )
        await page.wait_for_function(
            "() => document.querySelectorAll('#event-rows tr[data-event]').length === 3"
        )
        await page.click("#bulk-replay")
        await page.wait_for_selector("#confirm[open]")
        question = await page.inner_text("#confirm-text")
        assert question.startswith("Replay 3 events of billing sync with status failure"), question
        assert await page.inner_text("#confirm-ok") == "Replay 3"
        await page.click("#confirm-ok")
        await page.wait_for_selector('#bulk-result[data-count="3"]')
        assert "Replayed 3 of 3 events" in await page.inner_text("#bulk-result")

        replays = await event_rows(db, "replay_of IS NOT NULL")
        assert sorted(r["replay_of"] for r in replays) == sorted(wanted)
        assert {r["source"] for r in replays} == {"replay"}

        # The link to the replays lists them.
        await page.click("#bulk-replays")
        await page.wait_for_function(
            "() => location.hash.includes('source=replay') && "
            "document.querySelectorAll('#event-rows tr[data-event]').length === 3"
        )
        # A filter the bulk call cannot express turns the button off, saying why.
        await go(b, "#/events?source=api", "#event-rows tr[data-event]")
        assert await page.is_disabled("#bulk-replay")
        assert "clear source" in (await page.get_attribute("#bulk-replay", "title") or "")

        # A key that may only read is not offered bulk replay (it may still follow events).
        reader = await client.post(
            "/api/v1/keys", json={"name": "reader", "scopes": ["triggers:read", "events:read"]}
        )
        assert reader.status_code == 201, reader.text
        await page.click("#forget")
        await page.fill("#key", reader.json()["key"])
        await page.click("#keyform button[type=submit]")
        await page.wait_for_selector("#who:text('signed in as reader')")
        await go(b, "#/events", "#event-rows tr[data-event]")
        assert not await page.is_visible("#bulk-replay")
        assert await page.is_visible("#live") and await page.is_visible("#event-id-search")

        assert not b.page_errors, b.page_errors
        assert not _errors_besides(b), b.console_errors


async def test_live_tail_shows_new_events_and_their_outcome_without_reloading(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    sink: Sink,
    db: Database,
) -> None:
    sink.respond("/slow", (200, {}, 1.5))  # slow enough to see the event pending first
    proc = launch()
    async with api(proc) as client, console(proc) as b:
        page = b.page
        trigger = await create_trigger(
            client, "webhook", {"endpoint": sink.url("/slow"), "schema": SCHEMA}, name="tail me"
        )
        other = await create_trigger(
            client, "webhook", {"endpoint": sink.url("/ok"), "schema": SCHEMA}, name="not me"
        )
        await go(b, f"#/events?trigger_id={trigger['id']}", "#event-rows tr")
        await page.evaluate("() => { window.unreloaded = true; }")
        await page.click("#live")
        await page.wait_for_selector('#live-status[data-state="open"]', timeout=15_000)
        assert await page.get_attribute("#live", "aria-pressed") == "true"

        started = time.monotonic()
        event_id = await fire_webhook(trigger["webhook_url"], {"live": True})
        skipped = await fire_webhook(other["webhook_url"], {"live": False})
        row = f'#event-rows tr[data-event="{event_id}"]'
        await page.wait_for_selector(row, timeout=20_000)
        await wait_for_event(db, event_id, "success")
        await page.wait_for_selector(f'{row}[data-status="success"]', timeout=20_000)
        print(f"\nlive tail: fired to success on screen in {time.monotonic() - started:.2f}s")
        assert await page.locator(row).count() == 1  # updated in place, not added twice
        await wait_for_event(db, skipped)
        assert await page.locator(f'#event-rows tr[data-event="{skipped}"]').count() == 0
        assert await page.evaluate("() => window.unreloaded === true")
        # One stream for the open view, not a request per refresh.
        assert len(b.calls("/api/v1/events/stream")) == 1

        # Off again: the stream is closed.
        await page.click("#live")
        assert await page.get_attribute("#live", "aria-pressed") == "false"

        assert not b.page_errors, b.page_errors
        assert not _errors_besides(b), b.console_errors
