"""The console's Audit page in a real browser (Debian's Chromium via Playwright) against
the real process: it lists what the API lists, newest first, with the key, the target's
link and the field names; the target filter narrows it; Older/Newer page by cursor."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from eventtrigger.store.db import Database
from tests.e2e.conftest import create_trigger
from tests.e2e.test_console import console, go
from tests.process import EventtriggerProcess


async def test_the_audit_page_shows_the_trail_filters_and_pages(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    db: Database,
) -> None:
    async with db.connection() as tx:
        await tx.execute("DELETE FROM audit_log")
    proc = launch(roles="api")
    async with api(proc) as client, console(proc) as b:
        page = b.page
        config = {"endpoint": "https://example.com/hook", "schema": {"type": "object"}}
        first = await create_trigger(client, "webhook", config, name="first")
        renamed = await client.patch(f"/api/v1/triggers/{first['id']}", json={"name": "again"})
        assert renamed.status_code == 200
        for n in range(50):  # a full page of newer entries, so the first two are on page 2
            await create_trigger(client, "webhook", config, name=f"n{n}")
        listed = (await client.get("/api/v1/audit", params={"limit": 200})).json()["items"]
        assert len(listed) == 52

        await go(b, "#/audit", "#audit-rows tr[data-audit]")
        assert await page.get_attribute("#nav a.current", "data-nav") == "audit"
        shown = await page.eval_on_selector_all(
            "#audit-rows tr[data-audit]", "rows => rows.map(r => r.dataset.audit)"
        )
        assert shown == [i["id"] for i in listed[:50]]
        assert await page.inner_text("#page-info") == "Page 1 · 50 entries"

        await page.click("#next")
        await page.wait_for_selector("#page-info:text('Page 2')")
        older = page.locator("#audit-rows tr[data-audit]")
        assert await older.count() == 2
        update = page.locator(f'#audit-rows tr[data-audit="{listed[50]["id"]}"]')
        assert await update.get_attribute("data-action") == "trigger.update"
        cells = await update.locator("td").all_inner_texts()
        assert cells[1:3] == ["trigger.update", first["id"]]
        assert cells[4] == "name"
        assert await update.locator(f'a[href="#/triggers/{first["id"]}"]').count() == 1
        await page.click("#prev")
        await page.wait_for_selector("#page-info:text('Page 1')")

        # The target filter, through the form as a user would.
        await page.fill("#audit-target_id", first["id"])
        await page.click("#audit-filters button[type=submit]")
        await page.wait_for_selector("#page-info:text('2 entries')")
        actions = await page.eval_on_selector_all(
            "#audit-rows tr[data-audit]", "rows => rows.map(r => r.dataset.action)"
        )
        assert actions == ["trigger.update", "trigger.create"]
        assert b.calls("/api/v1/audit")[-1]["target_id"] == [first["id"]]

        assert b.page_errors == []
        assert b.unexpected_errors() == []
