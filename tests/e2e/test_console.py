"""The console (/dashboard) in a real browser: Debian's Chromium driven by Playwright,
against the real process with MariaDB and Kafka.

One test walks every page the way an operator would (create a trigger through the form,
see the API's own message for a bad cron, pause, resume, test-run it and watch the event
succeed, open events, look at a failed one and its replay button, delete); another seeds
1,000 triggers and 100,000 events and checks each page answers within 2 s and asks the
API for one page only.

Set CONSOLE_SCREENSHOTS=<dir> to save a picture of each step of the walk there (to look at;
the screenshots in docs/console come from scripts/screenshots.py, a real run).
"""

from __future__ import annotations

import os
import random
import shutil
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import orjson
import pytest
from playwright.async_api import ConsoleMessage, Error, Page, async_playwright

from eventtrigger.ids import new_id
from eventtrigger.store import series
from eventtrigger.store.db import Database
from tests.conftest import TEST_API_KEY
from tests.e2e.browser import CHROMIUM, CHROMIUM_ARGS
from tests.e2e.conftest import (
    Sink,
    create_trigger,
    fire_webhook,
    wait_for_event,
    wait_until,
)
from tests.process import EventtriggerProcess

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'"
)
SCREENSHOTS = os.environ.get("CONSOLE_SCREENSHOTS")
# Chromium logs every non-2xx fetch as a console error. The walk makes exactly one on
# purpose (the bad cron, to see the API's 400 in the form); anything else fails the test.
EXPECTED_400 = "the server responded with a status of 400"


@dataclass
class Browser:
    page: Page
    console_errors: list[tuple[str, str]] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    api_calls: list[str] = field(default_factory=list)

    def calls(self, path: str) -> list[dict[str, list[str]]]:
        """Query strings of the API calls made to `path` (e.g. /api/v1/triggers)."""
        found = []
        for url in self.api_calls:
            parts = urlsplit(url)
            if parts.path == path:
                found.append(parse_qs(parts.query))
        return found

    def unexpected_errors(self, allowed: int = 0) -> list[tuple[str, str]]:
        expected = [e for e in self.console_errors if EXPECTED_400 in e[0]]
        others = [e for e in self.console_errors if EXPECTED_400 not in e[0]]
        return others + expected[allowed:]

    async def shot(self, name: str) -> None:
        if not SCREENSHOTS:
            return
        path = _screenshot_path(name)
        await self.page.wait_for_timeout(300)  # let charts and late rows settle
        await self.page.screenshot(path=str(path))
        assert path.stat().st_size < 300_000, name


def _screenshot_path(name: str) -> Path:
    out = Path(SCREENSHOTS or ".")
    out.mkdir(parents=True, exist_ok=True)
    return out / f"{name}.png"


@asynccontextmanager
async def console(proc: EventtriggerProcess) -> AsyncIterator[Browser]:
    """A logged-in console page; records console errors, page errors and API calls."""
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: run `bash scripts/browser.sh` (or `make test`)")
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(viewport={"width": 1360, "height": 900})
            # "Copy webhook URL" writes to the clipboard; the test reads it back.
            await context.grant_permissions(["clipboard-read", "clipboard-write"])
            page = await context.new_page()
            b = Browser(page)

            def on_console(message: ConsoleMessage) -> None:
                if message.type == "error":
                    b.console_errors.append((message.text, str(message.location)))

            def on_page_error(error: Error) -> None:
                b.page_errors.append(str(error))

            page.on("console", on_console)
            page.on("pageerror", on_page_error)
            page.on(
                "request",
                lambda r: b.api_calls.append(r.url) if "/api/v1/" in r.url else None,
            )
            loaded = await page.goto(f"{proc.base_url}/dashboard")
            assert loaded is not None and loaded.status == 200
            assert loaded.headers["content-security-policy"] == CSP
            await page.wait_for_selector("#need-key")
            await page.fill("#key", TEST_API_KEY)
            await page.click("#keyform button[type=submit]")
            await page.wait_for_selector('[data-metric="outcomes.success"] .value')
            yield b
        finally:
            await browser.close()


async def go(b: Browser, hash_: str, ready: str, timeout: float = 15_000) -> float:
    """Navigate inside the app; seconds until `ready` (a selector) is visible."""
    started = time.monotonic()
    await b.page.evaluate("(h) => { location.hash = h; }", hash_)
    await b.page.wait_for_selector(ready, timeout=timeout)
    return time.monotonic() - started


async def test_console_walks_every_page(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    sink: Sink,
    db: Database,
) -> None:
    sink.respond("/missing", (404, {}, 0.0))  # a 404 is final: the event fails at once
    proc = launch()
    async with api(proc) as client, console(proc) as b:
        page = b.page
        orders = await create_trigger(
            client,
            "webhook",
            {"endpoint": sink.url("/orders"), "schema": {"type": "object"}},
            name="new orders",
        )
        broken = await create_trigger(
            client,
            "webhook",
            {"endpoint": sink.url("/missing"), "schema": {"type": "object"}},
            name="billing sync",
        )
        for i in range(3):
            await wait_for_event(db, await fire_webhook(orders["webhook_url"], {"order": i}))
        failed_id = await fire_webhook(broken["webhook_url"], {"invoice": 7})
        await wait_for_event(db, failed_id, "failure")

        # Every asset is ours, as a JavaScript/CSS type the browser must not sniff.
        for asset, kind in (("app.js", "javascript"), ("vendor/uplot/uPlot.esm.js", "javascript"),
                            ("console.css", "text/css")):  # fmt: skip
            served = await client.get(f"/dashboard/assets/{asset}")
            assert served.status_code == 200 and kind in served.headers["content-type"]
            assert served.headers["x-content-type-options"] == "nosniff"
            assert served.headers["cache-control"] == "no-cache"

        # Overview: tiles, the charts, the failure named by its trigger.
        await go(b, "#/overview", "#charts canvas")
        row = f'#failures tr[data-event="{failed_id}"]'
        await page.wait_for_selector(row, timeout=15_000)
        assert "billing sync" in await page.inner_text(row)
        assert await page.locator("#charts .chart canvas").count() == 3
        # The charts refresh on their own (the series answer may be a few seconds old).
        await page.wait_for_selector('[data-chart="firings"][data-total="4"]', timeout=20_000)

        # Triggers list.
        await go(b, "#/triggers", '#trigger-rows tr[data-trigger] a.name:text("new orders")')
        await page.fill("#trigger-search", "billing")
        assert await page.locator("#trigger-rows tr[data-trigger]:visible").count() == 1
        await page.fill("#trigger-search", "")
        await page.wait_for_selector("#trigger-rows td.last .badge")

        # Create through the form: a bad cron shows the API's own message at the field.
        await page.click("#new-trigger")
        await page.wait_for_selector("#trigger-form")
        await page.fill('input[name="name"]', "nightly report")
        await page.select_option('select[name="type"]', "cron_scheduled")
        await page.fill('input[name="endpoint"]', sink.url("/report"))
        await page.fill('input[name="cron"]', "61 * * * *")
        await page.fill('input[name="timezone"]', "Europe/Paris")
        await page.fill('textarea[name="payload"]', '{"report": "daily"}')
        await page.click("#save")
        cron_error = '[data-field="config.cron"] .field-error'
        await page.wait_for_selector(f"{cron_error}:not(:empty)")
        shown = await page.inner_text(cron_error)
        direct = await client.post(
            "/api/v1/triggers",
            json={
                "name": "nightly report",
                "type": "cron_scheduled",
                "config": {"endpoint": sink.url("/report"), "cron": "61 * * * *"},
            },
        )
        assert direct.status_code == 400
        messages = [e["message"] for e in direct.json()["errors"] if e["field"] == "config.cron"]
        assert shown == messages[0], (shown, messages)
        await b.shot("trigger-form-error")

        await page.fill('input[name="cron"]', "0 3 * * 1-5")
        await page.click("#save")
        await page.wait_for_selector("#schedule")
        trigger_id = page.url.rsplit("/", 1)[-1]
        assert await page.inner_text("#schedule") == "At 03:00 on Monday to Friday (Europe/Paris)"
        created = (await client.get(f"/api/v1/triggers/{trigger_id}")).json()
        assert created["name"] == "nightly report"
        assert created["config"]["cron"] == "0 3 * * 1-5"
        assert created["config"]["payload"] == {"report": "daily"}

        # Pause and resume.
        await page.click("#toggle:text('Pause')")
        await page.wait_for_selector("#toggle:text('Resume')")
        assert (await client.get(f"/api/v1/triggers/{trigger_id}")).json()["status"] == "paused"
        await page.click("#toggle:text('Resume')")
        await page.wait_for_selector("#toggle:text('Pause')")
        assert (await client.get(f"/api/v1/triggers/{trigger_id}")).json()["status"] == "active"

        # Edit: rename through the same form.
        await page.click("#edit")
        await page.wait_for_selector("#trigger-form")
        await page.fill('input[name="name"]', "weekday report")
        await page.click("#save")
        await page.wait_for_selector("h1:text('weekday report')")
        edited = (await client.get(f"/api/v1/triggers/{trigger_id}")).json()
        assert edited["name"] == "weekday report"
        assert edited["config"]["cron"] == "0 3 * * 1-5"

        # Test run, then follow its event to success.
        await page.click("#test")
        await page.wait_for_selector("#test-event")
        test_event = (await page.get_attribute("#test-event", "href") or "").rsplit("/", 1)[-1]
        await wait_for_event(db, test_event, "success")
        await page.wait_for_selector(
            f'#trigger-events tr[data-event="{test_event}"][data-status="success"]'
        )
        await b.shot("trigger")
        await page.click("#test-event")
        await page.wait_for_selector("#event-detail")
        await page.wait_for_selector("h1 .badge.success", timeout=15_000)
        assert '"report": "daily"' in await page.inner_text("#payload")
        await b.shot("event")
        assert (await sink.wait_for("/report", 1))[0].json() == {"report": "daily"}

        # Events: filters narrow the list (through the form, as a user would).
        await go(b, "#/events", f'#event-rows tr[data-event="{test_event}"]')
        await page.select_option("#filter-status", "failure")
        await page.click("#event-filters button[type=submit]")
        await page.wait_for_function(
            "() => location.hash.includes('status=failure') && "
            "document.querySelectorAll('#event-rows tr[data-event]').length === 1"
        )
        statuses = await page.eval_on_selector_all(
            "#event-rows tr[data-event]", "rows => rows.map(r => r.dataset.status)"
        )
        assert statuses == ["failure"]
        assert "billing sync" in await page.inner_text("#event-rows")
        await page.select_option("#filter-status", "")
        await page.fill("#filter-trigger_id", orders["id"])
        await page.click("#event-filters button[type=submit]")
        await page.wait_for_function(
            "() => document.querySelectorAll('#event-rows tr[data-event]').length === 3"
        )
        await page.select_option("#filter-source", "manual-test")
        await page.fill("#filter-trigger_id", "")
        await page.click("#event-filters button[type=submit]")
        await page.wait_for_function(
            "() => location.hash.includes('source=manual-test') && "
            "document.querySelectorAll('#event-rows tr[data-event]').length === 1"
        )
        await go(b, "#/events", f'#event-rows tr[data-event="{failed_id}"]')

        # A failed event: its detail, and replay (or why it is not offered yet).
        await go(b, f"#/events/{failed_id}", "h1 .badge.failure")
        replay = page.locator("#replay")
        offers_replay = any(
            path.endswith("/replay") and "/events/{" in path
            for path in (await client.get("/openapi.json")).json()["paths"]
        )
        if offers_replay:
            await replay.click()
            await page.wait_for_function(f"() => !location.hash.endsWith('{failed_id}')")
            replayed = page.url.rsplit("/", 1)[-1]
            event = (await client.get(f"/api/v1/events/{replayed}")).json()
            assert event["replay_of"] == failed_id
        else:
            assert await replay.is_disabled()
            title = await replay.get_attribute("title") or ""
            assert "POST /api/v1/events/{id}/replay" in title, title
        await b.shot("event-failed")

        # A webhook trigger's page: copy its URL.
        await go(b, f"#/triggers/{orders['id']}", "#copy-url")
        assert await page.inner_text("#webhook-url") == orders["webhook_url"]
        await page.click("#copy-url")
        await page.wait_for_selector("#toast:text('Webhook URL copied')")
        assert await page.evaluate("navigator.clipboard.readText()") == orders["webhook_url"]

        # Per-trigger aggregate over 48 h, with names.
        await go(b, "#/aggregate", f'#aggregate-rows tr[data-trigger="{orders["id"]}"]')
        text = await page.inner_text(f'#aggregate-rows tr[data-trigger="{orders["id"]}"]')
        assert "new orders" in text and "\t3\t" in text

        # Delete, with confirmation.
        await go(b, f"#/triggers/{trigger_id}", "#delete")
        await page.click("#delete")
        await page.wait_for_selector("#confirm[open]")
        await page.click("#confirm-ok")
        await page.wait_for_function("() => location.hash === '#/triggers'")
        assert (await client.get(f"/api/v1/triggers/{trigger_id}")).status_code == 404

        assert not b.page_errors, b.page_errors
        assert not b.unexpected_errors(allowed=1), b.console_errors


# ---- 1,000 triggers and 100,000 events ------------------------------------------------

N_TRIGGERS = 1_000
N_EVENTS = 100_000
ROWS_PER_INSERT = 5_000


def _sql_time(at: datetime) -> str:
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")


async def _seed(db: Database, endpoint: str) -> list[str]:
    """Triggers and events written straight into the tables, in multi-row INSERTs."""
    now = datetime.now(UTC)
    rng = random.Random(12)
    trigger_ids = []
    rows: list[tuple[Any, ...]] = []
    for i in range(N_TRIGGERS):
        created = now - timedelta(hours=3) + timedelta(milliseconds=i)
        trigger_id = new_id(created)
        trigger_ids.append(trigger_id)
        if i % 2:
            kind, config = "webhook", {"endpoint": endpoint, "schema": {"type": "object"}}
        else:
            kind, config = "cron_scheduled", {"endpoint": endpoint, "cron": f"{i % 60} * * * *"}
        status = "paused" if i % 7 == 0 else "active"
        secret = "whsec_" + "A" * 44
        rows.append((trigger_id, f"load trigger {i:04d}", kind, status, orjson.dumps(config).decode(), secret, _sql_time(created), _sql_time(created)))  # fmt: skip
    async with db.connection() as tx:
        marks = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s)"] * len(rows))
        await tx.execute(
            "INSERT INTO triggers (id, name, type, status, config, signing_secret, created_at,"
            f" updated_at) VALUES {marks}",
            [v for r in rows for v in r],
        )
        request = orjson.dumps({"url": endpoint, "method": "POST", "headers": {}}).decode()
        for table, share, oldest, newest in (
            ("event_logs", 0.6, timedelta(minutes=110), timedelta(seconds=5)),
            ("event_logs_archive", 0.4, timedelta(hours=47), timedelta(hours=3)),
        ):
            count = int(N_EVENTS * share)
            for start in range(0, count, ROWS_PER_INSERT):
                batch = []
                for _ in range(min(ROWS_PER_INSERT, count - start)):
                    fired = now - oldest + (oldest - newest) * rng.random()
                    status = "failure" if rng.random() < 0.05 else "success"
                    delivered = fired + timedelta(milliseconds=rng.lognormvariate(3.5, 1.0))
                    i = rng.randrange(N_TRIGGERS)
                    # Even triggers are cron triggers: their events are scheduled, a few
                    # milliseconds late; odd ones are webhooks, fired when called.
                    kind, source = ("cron_scheduled", "scheduled") if i % 2 == 0 else ("webhook", "api")  # fmt: skip
                    late = timedelta(milliseconds=rng.lognormvariate(0.5, 0.8) if i % 2 == 0 else 0)
                    batch.append((new_id(fired), trigger_ids[i], kind, source, _sql_time(fired - late), _sql_time(fired), request, status, 1, 200 if status == "success" else 500, _sql_time(delivered), _sql_time(fired), _sql_time(delivered)))  # fmt: skip
                marks = ", ".join(["(%s, %s, %s, %s, %s, %s, '{}', %s, %s, %s, %s, %s, %s, %s)"] * len(batch))  # fmt: skip
                await tx.execute(
                    f"INSERT INTO {table} (id, trigger_id, trigger_type, source, scheduled_at,"
                    " fired_at, payload, request, status, attempts, last_status_code,"
                    f" delivered_at, created_at, updated_at) VALUES {marks}",
                    [v for r in batch for v in r],
                )
        # The retention role keeps these per-minute counts of the archive; the stats read
        # them instead of counting archived rows.
        await tx.execute("DELETE FROM event_archive_counts")
        await tx.execute(
            "INSERT INTO event_archive_counts (minute, n)"
            " SELECT TIMESTAMPDIFF(MINUTE, '1970-01-01', fired_at) AS m, COUNT(*)"
            " FROM event_logs_archive GROUP BY m"
        )
    return trigger_ids


async def test_console_pages_stay_fast_at_1000_triggers_and_100000_events(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    sink: Sink,
    db: Database,
) -> None:
    trigger_ids = await _seed(db, sink.url("/load"))
    await _series_reads_index_ranges(db, trigger_ids[0])
    # The api role alone: nothing fires or moves rows while pages are timed.
    proc = launch(roles="api")
    async with api(proc) as client:
        events = (await client.get("/api/v1/events", params={"limit": 1})).json()["items"]
        assert events, "the seeded events are visible through the API"
        await wait_until(
            lambda: _stats_ready(client, N_TRIGGERS), timeout=20
        )  # the 2-second snapshot
    async with console(proc) as b:
        page = b.page
        timings: dict[str, float] = {}

        b.api_calls.clear()
        timings["triggers"] = await go(b, "#/triggers", "#trigger-rows tr[data-trigger]")
        await page.wait_for_selector("#trigger-rows td.last .badge")
        await b.shot("triggers")
        assert await page.locator("#trigger-rows tr[data-trigger]").count() == 50
        assert [q.get("limit") for q in b.calls("/api/v1/triggers")] == [["50"]]
        first = await page.get_attribute("#trigger-rows tr[data-trigger]", "data-trigger")
        assert first == trigger_ids[-1]  # newest first
        await page.click("#more")
        await page.wait_for_function(
            "() => document.querySelectorAll('#trigger-rows tr[data-trigger]').length === 100"
        )
        assert len(b.calls("/api/v1/triggers")) == 2
        await page.fill("#trigger-search", "load trigger 0999")
        assert await page.locator("#trigger-rows tr[data-trigger]:visible").count() == 1
        await page.wait_for_function(
            "() => [...document.querySelectorAll('#trigger-rows td.last')]"
            ".every(td => td.querySelector('.badge') || td.textContent.includes('none'))",
            timeout=30_000,
        )

        b.api_calls.clear()
        timings["events"] = await go(b, "#/events", "#event-rows tr[data-event]")
        await b.shot("events")
        assert await page.locator("#event-rows tr[data-event]").count() == 50
        assert [q.get("limit") for q in b.calls("/api/v1/events")] == [["50"]]
        started = time.monotonic()
        await page.click("#next")
        await page.wait_for_selector("#page-info:text('Page 2')")
        timings["events page 2"] = time.monotonic() - started

        b.api_calls.clear()
        archived = "#/events?view=archived&status=failure"
        timings["archived failures"] = await go(b, archived, "#event-rows tr[data-event]")
        statuses = await page.eval_on_selector_all(
            "#event-rows tr[data-event]", "rows => rows.map(r => r.dataset.status)"
        )
        assert len(statuses) == 50 and set(statuses) == {"failure"}
        event_id = await page.get_attribute("#event-rows tr[data-event]", "data-event")
        timings["event detail"] = await go(b, f"#/events/{event_id}", "#event-detail dl")

        timings["aggregate"] = await go(b, "#/aggregate", "#aggregate-rows tr[data-trigger]")
        assert await page.locator("#aggregate-rows tr[data-trigger]").count() == 50
        await b.shot("aggregate")

        for name in ("1h", "48h"):
            b.api_calls.clear()
            timings[f"overview {name}"] = await go(
                b, f"#/overview?range={name}", "#charts .chart canvas"
            )
            await page.wait_for_function(
                "() => document.querySelectorAll('#charts .chart canvas').length === 3"
            )
            assert b.calls("/api/v1/stats/series")[0]["range"] == [name]
            await b.shot(f"overview-{name}")

        timings["trigger detail"] = await go(
            b, f"#/triggers/{trigger_ids[0]}", "#trigger-events tr"
        )

        print("\nconsole timings (s):", {k: round(v, 3) for k, v in timings.items()})
        slow = {k: v for k, v in timings.items() if v >= 2.0}
        assert not slow, slow
        # The walk never asked for more than one page of anything.
        limits = [
            int(q["limit"][0])
            for url in b.api_calls
            for q in [parse_qs(urlsplit(url).query)]
            if "limit" in q
        ]
        assert all(n <= 50 for n in limits), limits
        assert not b.page_errors, b.page_errors
        assert not b.unexpected_errors(), b.console_errors
    # After the timings, so the pages above met an empty series cache.
    async with api(proc) as client:
        await _series_count_every_event(client, db, trigger_ids[0])


async def _series_reads_index_ranges(db: Database, trigger_id: str) -> None:
    """The chart queries walk an index range on fired_at (or trigger, fired_at), even
    when the range covers most of a table."""
    now = datetime.now(UTC)
    start = now - timedelta(hours=48)
    async with db.connection() as tx:
        for table, (by_time, by_trigger) in series.TABLES.items():
            for one in (False, True):
                args: tuple[Any, ...] = (start, 1800, start, now) + ((trigger_id,) if one else ())
                plan = await tx.fetch_all("EXPLAIN " + series.query(table, one), args)
                assert plan[0]["key"] == (by_trigger if one else by_time), plan
                assert plan[0]["type"] in ("range", "ref"), plan


async def _series_count_every_event(
    client: httpx.AsyncClient, db: Database, trigger_id: str
) -> None:
    """The chart series count each seeded event once, hot table and archive alike."""

    def total(body: dict[str, Any]) -> int:
        return sum(sum(p["counts"].values()) for p in body["points"])

    async def count(where: str, args: tuple[Any, ...]) -> int:
        async with db.connection() as tx:
            n = 0
            for table in ("event_logs", "event_logs_archive"):
                row = await tx.fetch_one(f"SELECT COUNT(*) AS n FROM {table} WHERE {where}", args)
                n += int(row["n"]) if row else 0
            return n

    day2 = (await client.get("/api/v1/stats/series", params={"range": "48h"})).json()
    assert len(day2["points"]) == 96 and day2["bucket_seconds"] == 1800
    assert total(day2) == N_EVENTS
    hour = (await client.get("/api/v1/stats/series", params={"range": "1h"})).json()
    start = datetime.fromisoformat(hour["points"][0]["start"].replace("Z", "+00:00"))
    assert total(hour) == await count("fired_at >= %s", (start,))
    late = [p["fire_lateness_ms"]["p50"] for p in hour["points"] if sum(p["counts"].values())]
    assert late and all(v is not None and 0.5 < v < 10 for v in late), late
    one = await client.get(
        "/api/v1/stats/series", params={"range": "48h", "trigger_id": trigger_id}
    )
    assert total(one.json()) == await count("trigger_id = %s", (trigger_id,))
    bad = await client.get("/api/v1/stats/series", params={"range": "7d"})
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "range"


async def _stats_ready(client: httpx.AsyncClient, triggers: int) -> bool:
    stats = (await client.get("/api/v1/stats")).json()
    return bool(stats["triggers"]["total"] == triggers)
