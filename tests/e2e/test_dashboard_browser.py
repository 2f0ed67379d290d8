"""The console's overview (/dashboard) in a real browser: headless Chromium (Debian's
`chromium` package, see scripts/browser.sh) driven by Playwright, against the real
process. Its tiles must show the figures /api/v1/stats reports; test_console.py walks
the rest of the console."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import ConsoleMessage, Error, async_playwright

from eventtrigger.store.db import Database
from tests.conftest import TEST_API_KEY
from tests.e2e.browser import CHROMIUM, CHROMIUM_ARGS
from tests.e2e.conftest import Sink, create_trigger, event_rows, fire_webhook, wait_until
from tests.process import EventtriggerProcess

# Tile (data-metric) -> where /api/v1/stats has the same figure.
TILES = {
    "jobs.pending": ("jobs", "pending"),
    "events.active": ("events", "active"),
    "outcomes.success": ("outcomes", "success"),
    "outcomes.failure": ("outcomes", "failure"),
    "triggers.total": ("triggers", "total"),
}


async def test_dashboard_shows_the_numbers_the_api_reports(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    sink: Sink,
    db: Database,
    tmp_path: Path,
) -> None:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: run `bash scripts/browser.sh` (or `make test`)")
    n_ok, n_failed = 3, 2
    sink.respond("/missing", (404, {}, 0.0))  # a 404 is final: the event fails at once

    proc = launch()
    async with api(proc) as client:
        triggers = {}
        for name, path in (("ok", "/ok"), ("failing", "/missing")):
            triggers[name] = await create_trigger(
                client,
                "webhook",
                {"endpoint": sink.url(path), "schema": {"type": "object"}},
                name=name,
            )
        await create_trigger(
            client,
            "cron_scheduled",
            {"endpoint": sink.url("/nightly"), "cron": "0 3 * * *"},
            name="nightly",
            status="paused",
        )

        failed_ids = []
        for name, count in (("ok", n_ok), ("failing", n_failed)):
            for i in range(count):
                fired_id = await fire_webhook(triggers[name]["webhook_url"], {"i": i})
                if name == "failing":
                    failed_ids.append(fired_id)

        async def finished() -> bool:
            rows = await event_rows(db)
            return sorted(r["status"] for r in rows) == ["failure"] * n_failed + ["success"] * n_ok

        await wait_until(finished)

        async def stats_caught_up() -> dict[str, Any] | None:
            stats = (await client.get("/api/v1/stats")).json()
            done = (
                stats["outcomes"]["success"] == n_ok
                and stats["outcomes"]["failure"] == n_failed
                and stats["jobs"]["pending"] == 0
                and stats["triggers"]["total"] == 3
                and {f["id"] for f in stats["latest_failures"]} == set(failed_ids)
            )
            return stats if done else None

        await wait_until(stats_caught_up, timeout=15)

        console_errors: list[str] = []
        page_errors: list[str] = []

        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error":
                console_errors.append(message.text)

        def on_page_error(error: Error) -> None:
            page_errors.append(str(error))

        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = await browser.new_page(viewport={"width": 1280, "height": 900})
                page.on("console", on_console)
                page.on("pageerror", on_page_error)
                loaded = await page.goto(f"{proc.base_url}/dashboard")
                assert loaded is not None and loaded.status == 200
                await page.fill("#key", TEST_API_KEY)
                await page.click("#keyform button[type=submit]")
                await page.wait_for_selector(
                    '[data-metric="outcomes.success"] .value', timeout=15_000
                )
                await page.wait_for_function(
                    "document.querySelectorAll('#failures tr').length > 0", timeout=15_000
                )
                shown = {
                    metric: await page.inner_text(f'[data-metric="{metric}"] .value')
                    for metric in TILES
                }
                failures_text = await page.inner_text("#failures")
                status_text = await page.inner_text("#status")
                await page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
            finally:
                await browser.close()

        stats = (await client.get("/api/v1/stats")).json()

    print(f"\ndashboard screenshot: {tmp_path / 'dashboard.png'}")
    expected = {metric: str(stats[a][b]) for metric, (a, b) in TILES.items()}
    assert shown == expected
    assert expected["outcomes.success"] == str(n_ok)
    assert expected["outcomes.failure"] == str(n_failed)
    assert expected["events.active"] == str(n_ok + n_failed)
    assert expected["triggers.total"] == "3"
    for event_id in failed_ids:
        assert event_id in failures_text, (event_id, failures_text)
    assert status_text.startswith("as of "), status_text
    assert not console_errors, console_errors
    assert not page_errors, page_errors
    assert (tmp_path / "dashboard.png").stat().st_size > 0
