"""The console's sign-in in a real browser (headless Chromium, see browser.py): it names
the signed-in key and offers no action the key's scopes do not allow."""

from __future__ import annotations

import shutil
from collections.abc import Callable

import httpx
import pytest
from playwright.async_api import Page, async_playwright

from eventtrigger.store.db import Database
from tests.conftest import TEST_API_KEY
from tests.e2e.browser import CHROMIUM, CHROMIUM_ARGS
from tests.e2e.conftest import create_trigger
from tests.process import EventtriggerProcess

ACTIONS = ("#new-trigger", '[data-action="delete"]', '[data-action="toggle"]')


async def _sign_in(page: Page, base_url: str, key: str) -> None:
    await page.goto(f"{base_url}/dashboard#/triggers")
    await page.fill("#key", key)
    await page.click("#keyform button[type=submit]")
    await page.wait_for_selector("#trigger-rows tr")


async def test_the_console_names_the_key_and_hides_what_its_scopes_forbid(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    db: Database,
) -> None:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: run `bash scripts/browser.sh` (or `make test`)")
    proc = launch("api")
    async with api(proc) as client:
        await create_trigger(
            client, "interval_scheduled", {"endpoint": "http://127.0.0.1:9/x", "every": "1h"}
        )
        reader = (
            await client.post(
                "/api/v1/keys", json={"name": "reader", "scopes": ["triggers:read", "events:read"]}
            )
        ).json()
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            await _sign_in(page, proc.base_url, reader["key"])
            await page.wait_for_selector("#who:text('signed in as reader')")
            for action in ACTIONS:
                assert not await page.is_visible(action), action
            assert not await page.is_visible('#nav a[data-nav="audit"]')

            await page.click("#forget")
            await _sign_in(page, proc.base_url, TEST_API_KEY)
            await page.wait_for_selector("#who:text('signed in as bootstrap key')")
            for action in ACTIONS:
                assert await page.is_visible(action), action
        finally:
            await browser.close()
